"""A measuring client that is not the bottleneck: raw streamed bytes and timestamps, parsed after the run.

The openai client plus per-chunk bookkeeping cost 20-40% of the server's throughput on 2 shared cores
(issue #17: 4,197 vs 6,561 tok/s at c32). This client does what vLLM's benchmark does (aiohttp, one
POST per request, SSE read as it comes) and less: during the run it only appends (timestamp, bytes);
JSON is parsed once every request has finished."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from lab import paths
from lab.client import Result


@dataclass
class Raw:
    """One request as it happened: send time, each received piece with its arrival time, end time."""

    start: float
    pieces: list[tuple[float, bytes]] = field(default_factory=list)
    end: float = 0.0
    error: str | None = None


def parse(raw: Raw) -> Result:
    """A Result from raw SSE pieces, with vLLM's benchmark definitions (vllm/benchmarks/lib/
    endpoint_request_func.py): TTFT at the first event with choices, ITL between such events, latency up to
    the last of them (the trailing usage event carries no token), output tokens from the usage event."""
    if raw.error:
        return Result("", None, 0, 0, raw.end - raw.start, error=raw.error)
    events: list[tuple[float, bytes]] = []
    buf = b""
    for t, data in raw.pieces:  # an event's time is the arrival of the piece that completed it
        buf += data
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            events.append((t, ev))
    text, times, usage, finish = [], [], None, None
    for t, ev in events:
        line = ev.strip()
        if not line.startswith(b"data:"):
            continue
        body = line[5:].strip()
        if body == b"[DONE]":
            continue
        try:
            obj = paths.parse_json(body)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):  # a failed request, counted as one, never a crash of the whole benchmark
            return Result("", None, 0, 0, raw.end - raw.start, error=f"a server-sent event that is not a JSON "
                                                                      f"object: {body[:60]!r}")
        usage = obj.get("usage") or usage
        choices = obj.get("choices") or []
        if choices:
            times.append(t)
        for ch in choices:
            text.append((ch.get("delta") or {}).get("content") or "")
            finish = ch.get("finish_reason") or finish
    ttft = times[0] - raw.start if times else None
    itl = [b - a for a, b in zip(times, times[1:], strict=False)]
    out_tokens = usage["completion_tokens"] if usage else len(times)
    e2e = (times[-1] if times else raw.end) - raw.start
    return Result("".join(text), finish, usage["prompt_tokens"] if usage else 0, out_tokens, e2e, ttft, itl)


def arrivals(n: int, rate: float | None, seed: int = 0) -> list[float]:
    """Send offsets (s): all at 0 without a rate, else a Poisson process (exponential gaps) at `rate` req/s."""
    if not rate:
        return [0.0] * n
    rng, t, out = random.Random(seed), 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(rate)
    return out


async def _send(session: Any, url: str, body: dict[str, Any], headers: dict[str, str]) -> Raw:
    from lab.bounded import MAX_REPLY_BYTES  # loads httpx2: at first use
    raw = Raw(time.perf_counter())
    try:
        async with session.post(url, json=body, headers=headers) as resp:
            if resp.status != 200:  # the head of the body only: a hostile one may never end
                raw.error = f"{resp.status}: {(await resp.content.read(800)).decode('utf-8', 'replace')[:200]}"
            else:
                size = 0
                async for data in resp.content.iter_any():
                    raw.pieces.append((time.perf_counter(), data))
                    size += len(data)
                    if size > MAX_REPLY_BYTES:  # as every lab client: bounded memory, a failed request
                        raw.error = f"a reply over {MAX_REPLY_BYTES >> 20} MiB"
                        break
    except Exception as e:  # connection reset, timeout: a failed request, counted as such
        raw.error = f"{type(e).__name__}: {e}"
    raw.end = time.perf_counter()
    return raw


async def _run(base_url: str, api_key: str, model: str, prompts: list[str], output_len: int,
               concurrency: int | None, rate: float | None, seed: int, timeout: float) -> tuple[list[Raw], float]:
    import aiohttp
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"}
    sem = asyncio.Semaphore(concurrency or len(prompts))
    offsets = arrivals(len(prompts), rate, seed)
    conn = aiohttp.TCPConnector(limit=0)  # the semaphore bounds requests; the pool must not
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        t0 = time.perf_counter()

        async def one(p: str, at: float) -> Raw:
            delay = t0 + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with sem:
                body = {"model": model, "messages": [{"role": "user", "content": p}], "max_tokens": output_len,
                        "temperature": 0.0, "stream": True, "stream_options": {"include_usage": True},
                        "ignore_eos": True}
                return await _send(session, url, body, headers)
        raws = await asyncio.gather(*[one(p, at) for p, at in zip(prompts, offsets, strict=True)])
        wall = time.perf_counter() - t0
    return list(raws), wall


def run(base_url: str, api_key: str, model: str, prompts: list[str], output_len: int,
        concurrency: int | None = None, rate: float | None = None, seed: int = 0,
        timeout: float = 600.0) -> tuple[list[Result], float]:
    """Every prompt once (EOS ignored, greedy): at most `concurrency` in flight, arriving at `rate` req/s
    (Poisson) when given; (results, wall seconds)."""
    from lab.client import run_sync
    raws, wall = run_sync(_run(base_url, api_key, model, prompts, output_len, concurrency, rate, seed, timeout))
    return [parse(r) for r in raws], wall


def goodput(results: list[Result], wall: float, slo_ttft_ms: float, slo_tpot_ms: float) -> dict[str, float]:
    """Requests per second that met both service levels (TTFT and TPOT), as vLLM and GuideLLM report it."""
    from lab.bench.metrics import tpot
    ok = [r for r in results if not r.error and r.ttft is not None and r.ttft * 1000 <= slo_ttft_ms
          and (tpot(r) or 0.0) * 1000 <= slo_tpot_ms]
    return {"goodput_req_s": round(len(ok) / wall, 3) if wall > 0 else 0.0, "met_slo": len(ok),
            "met_slo_pct": round(100 * len(ok) / max(1, len(results)), 1)}
