"""transformers vs vLLM, measured like vLLM's benchmarks: tok/s, TTFT, TPOT, ITL, percentiles, roofline."""

from __future__ import annotations

import asyncio
import json
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lab import LabError, config, paths
from lab.client import Client, Result

ENGINES = ("hf", "vllm", "server")
# Peak memory bandwidth (GB/s) by GPU name fragment, from the vendors' data sheets.
# Data-sheet memory bandwidth by a fragment of the NVML name; the first match wins, so specific
# names come first. NVML calls the H100 SXM "NVIDIA H100 80GB HBM3" (seen on a lent H100).
GPU_BANDWIDTH_GBS = {"H200": 4800, "H100 SXM": 3350, "H100 80GB HBM3": 3350, "H100 NVL": 3900, "H100": 2000,
                     "A100-SXM4-80GB": 2039, "A100 80GB PCIe": 1935, "A100": 1555,
                     "RTX 6000 Ada": 960, "L40S": 864, "L40": 864, "RTX 4090": 1008, "RTX A6000": 768,
                     "A10": 600, "L4": 300, "T4": 320, "V100": 900}


def workload(n: int, seed: int = 0) -> list[str]:
    """n seeded prompts drawn from the Japanese corpus (1-3 sentences each)."""
    lines = [ln for ln in (paths.data() / "corpus" / "ja.txt").read_text("utf-8").splitlines() if ln.strip()]
    rng = random.Random(seed)
    return ["把下面的日语翻译成中文。\n" + "".join(rng.sample(lines, rng.randint(1, 3))) for _ in range(n)]


def percentiles(xs: list[float], ps: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    """mean and pXX of a list in milliseconds (numpy's linear interpolation, as vLLM's benchmark)."""
    if not xs:
        return {"mean": float("nan"), **{f"p{p}": float("nan") for p in ps}}
    arr = np.asarray(xs, dtype=float) * 1000
    return {"mean": round(float(arr.mean()), 3), **{f"p{p}": round(float(np.percentile(arr, p)), 3) for p in ps}}


def tpot(r: Result) -> float | None:
    """Time per output token after the first: (E2E - TTFT) / (output_tokens - 1)."""
    if r.ttft is None or r.completion_tokens < 2:
        return None
    return (r.e2e - r.ttft) / (r.completion_tokens - 1)


def summarize(results: list[Result], wall: float, concurrency: int) -> dict[str, Any]:
    """vLLM-style metrics for one run: throughput and TTFT/TPOT/ITL/E2E distributions."""
    ok = [r for r in results if not r.error]
    out_tok = sum(r.completion_tokens for r in ok)
    tp = [t for t in (tpot(r) for r in ok) if t is not None]
    return {"concurrency": concurrency, "requests": len(results), "failed": len(results) - len(ok),
            "wall_s": round(wall, 3), "output_tokens": out_tok,
            "output_tok_s": round(out_tok / wall, 1) if wall > 0 else 0.0,
            "req_s": round(len(ok) / wall, 3) if wall > 0 else 0.0,
            "ttft_ms": percentiles([r.ttft for r in ok if r.ttft is not None]),
            "tpot_ms": percentiles(tp), "itl_ms": percentiles([x for r in ok for x in r.itl]),
            "e2e_ms": percentiles([r.e2e for r in ok])}


def cpu_bandwidth_gbs(mb: int = 256, repeats: int = 3) -> float:
    """Measured copy bandwidth (read + write bytes / s) of this CPU, best of a few runs."""
    src = np.ones(mb * 2**20 // 8)
    dst = np.empty_like(src)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = max(best, 2 * src.nbytes / (time.perf_counter() - t))
    return round(best / 1e9, 1)


def gpu_bandwidth_gbs(name: str) -> float | None:
    """Data-sheet bandwidth of a GPU by its NVML name, None when the table does not know it."""
    return next((float(bw) for frag, bw in GPU_BANDWIDTH_GBS.items() if frag.lower() in name.lower()), None)


def bandwidth_gbs() -> tuple[float, str]:
    """Memory bandwidth of the device that runs decode: GPU table by name, else measured CPU copy."""
    from lab import doctor
    devs = doctor.gpus().get("devices") or []
    if devs:
        name = devs[0]["name"]
        bw = gpu_bandwidth_gbs(name)
        if bw:
            return bw, f"{name} (data sheet)"
        return cpu_bandwidth_gbs(), f"{name} not in table; CPU copy measured instead"
    return cpu_bandwidth_gbs(), "CPU copy bandwidth (measured)"


def weight_bytes(model_dir: str) -> int:
    """Bytes of weights read per decode step: size of the safetensors files (hub ids: 0, unknown)."""
    p = Path(model_dir)
    return sum(f.stat().st_size for f in p.glob("*.safetensors")) if p.is_dir() else 0


def roofline(wbytes: int, bw_gbs: float) -> dict[str, Any]:
    """Batch-1 decode ceiling: every step reads all weights once, so steps/s <= bandwidth / weight bytes."""
    ceiling = bw_gbs * 1e9 / wbytes if wbytes else None
    return {"weight_bytes": wbytes, "bandwidth_gbs": bw_gbs,
            "batch1_ceiling_tok_s": round(ceiling, 1) if ceiling else None}


def pct_of_ceiling(tok_s: float, concurrency: int, roof: dict[str, Any]) -> float | None:
    """Decode steps/s (tok/s per sequence in flight) as a percentage of the batch-1 ceiling."""
    c = roof.get("batch1_ceiling_tok_s")
    return round(100 * tok_s / max(concurrency, 1) / c, 2) if c else None


async def _bare_loop(base_url: str, api_key: str, model: str, requests: list[tuple[list[dict[str, str]], int]],
                     concurrency: int, extra_body: dict[str, Any]) -> tuple[int, float]:
    """The reference: a plain openai async loop with a semaphore (what the lab code must match).

    requests: (messages, max_tokens) pairs; returns (completion tokens, wall seconds)."""
    import openai
    ac = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=300)
    sem = asyncio.Semaphore(concurrency)

    async def one(messages: list[dict[str, str]], max_tokens: int) -> int:
        async with sem:
            r = await ac.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens,
                                                 temperature=0.0, extra_body=extra_body)
            return r.usage.completion_tokens
    t0 = time.perf_counter()
    toks = sum(await asyncio.gather(*[one(m, mt) for m, mt in requests]))
    wall = time.perf_counter() - t0
    await ac.close()
    return toks, wall


def server_sweep(client: Client, prompts: list[str], concurrencies: list[int], output_len: int,
                 progress: bool = True) -> list[dict[str, Any]]:
    """Streamed requests through the OpenAI API at each concurrency; one warm-up request first."""
    client.chat(prompts[0], max_tokens=4)
    rows = []
    for c in concurrencies:
        t0 = time.perf_counter()
        res = client.batch(prompts, concurrency=c, stream=True, max_tokens=output_len, ignore_eos=True)
        rows.append({"engine": "server", **summarize(res, time.perf_counter() - t0, c)})
        if progress:
            print(f"  server c={c:<3} {rows[-1]['output_tok_s']:>9.1f} tok/s  "
                  f"TTFT p50 {rows[-1]['ttft_ms']['p50']:.1f} ms  TPOT p50 {rows[-1]['tpot_ms']['p50']:.2f} ms",
                  flush=True)
    return rows


def _token(seq: list[int], j: int, decode: Any) -> Any:
    if j >= len(seq):
        return None
    return decode([seq[j]]) if decode else seq[j]


def parity(a: list[list[int]], b: list[list[int]], decode: Any = None) -> dict[str, Any]:
    """Token-by-token comparison of two engines' greedy outputs; the first divergence is reported."""
    first = None
    same = 0
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        j = next((k for k, (u, v) in enumerate(zip(x, y, strict=False)) if u != v), None)
        if j is None and len(x) != len(y):
            j = min(len(x), len(y))
        if j is None:
            same += 1
        elif first is None:
            first = {"prompt": i, "index": j, "a": _token(x, j, decode), "b": _token(y, j, decode)}
    return {"prompts": len(a), "identical": same, "first_divergence": first}


def validate(engines: list[str], concurrencies: list[int], output_len: int, max_model_len: int | None) -> None:
    """Reject bad input with one clear line."""
    bad = [e for e in engines if e not in ENGINES]
    if bad:
        raise LabError(f"unknown engine {bad[0]!r}; choose from {', '.join(ENGINES)}")
    if not concurrencies or min(concurrencies) < 1:
        raise LabError(f"concurrency must be >= 1, got {concurrencies}")
    if output_len < 2:
        raise LabError(f"output length must be >= 2 (TPOT needs two tokens), got {output_len}")
    if max_model_len and output_len >= max_model_len:
        raise LabError(f"output length {output_len} does not fit max_model_len {max_model_len}")


def run(profile: str | None = None, engines: tuple[str, ...] = ENGINES, concurrencies: tuple[int, ...] = (1, 4, 16),
        num_prompts: int = 16, output_len: int = 64, hf_batch: int = 8, hf_prompts: int = 8, seed: int = 0,
        out: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """The whole comparison; writes results.json (and plots) to `out` when given."""
    from lab import doctor, serve
    prof = config.load(profile)
    engines, concs = list(engines), sorted(set(concurrencies))
    validate(engines, concs, output_len, prof.serve.get("max_model_len"))
    model = prof.model_path()
    prompts = workload(num_prompts, seed)
    bw, bw_src = bandwidth_gbs()
    roof = {**roofline(weight_bytes(model), bw), "bandwidth_source": bw_src}
    res: dict[str, Any] = {"profile": prof.name, "model": model, "served_name": prof.served_name, "seed": seed,
                           "num_prompts": num_prompts, "output_len": output_len, "env": doctor.environment(),
                           "command": shlex.join(sys.argv), "roofline": roof, "runs": []}
    dtype = str(prof.serve.get("dtype", "auto"))
    tokens: dict[str, list[list[int]]] = {}
    from lab import engines as eng
    if "hf" in engines:
        for b in sorted({1, hf_batch}):
            r = eng.run_isolated("hf_generate", model=model, prompts=prompts[:hf_prompts], batch=b,
                                 output_len=output_len, dtype=dtype)
            tokens.setdefault("hf", r["token_ids"])
            row = {"engine": f"hf b={b}", "concurrency": b, "requests": hf_prompts, "wall_s": round(r["wall_s"], 3),
                   "output_tokens": r["output_tokens"], "output_tok_s": round(r["output_tokens"] / r["wall_s"], 1),
                   "e2e_ms": percentiles(r["e2e"]), "peak_rss_mb": r.get("peak_rss_mb"),
                   "peak_vram_mb": r.get("peak_vram_mb")}
            res["runs"].append(row)
            if progress:
                print(f"  hf batch {b:<3} {row['output_tok_s']:>9.1f} tok/s", flush=True)
    if "vllm" in engines:
        r = eng.run_isolated("vllm_generate", model=model, prompts=prompts, output_len=output_len, dtype=dtype,
                             max_model_len=prof.serve.get("max_model_len"),
                             gpu_memory_utilization=prof.serve.get("gpu_memory_utilization"))
        tokens["vllm"] = r["token_ids"][:hf_prompts]
        res["runs"].append({"engine": "vllm offline", "concurrency": len(prompts), "requests": len(prompts),
                            "wall_s": round(r["wall_s"], 3), "output_tokens": r["output_tokens"],
                            "output_tok_s": round(r["output_tokens"] / r["wall_s"], 1),
                            "peak_rss_mb": r.get("peak_rss_mb"), "peak_vram_mb": r.get("peak_vram_mb")})
        if progress:
            print(f"  vllm offline {res['runs'][-1]['output_tok_s']:>9.1f} tok/s", flush=True)
    if "server" in engines:
        st = serve.status(prof)
        if not st["running"]:
            raise LabError(f"no server for profile {prof.name!r} at {prof.base_url}: start it with "
                           f"`lab serve start --profile {prof.name}`")
        client = Client(prof.base_url, api_key=config.api_key() or "EMPTY")
        res["runs"] += server_sweep(client, prompts, concs, output_len, progress)
    for row in res["runs"]:
        row["pct_of_ceiling"] = pct_of_ceiling(row["output_tok_s"], row["concurrency"], roof)
    if "hf" in tokens and "vllm" in tokens:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(model)
        res["parity"] = parity(tokens["hf"], tokens["vllm"], tok.decode)
    if out:
        out = Path(out)
        paths.atomic_write(out / "results.json", json.dumps(res, indent=1, ensure_ascii=False) + "\n")
        plot(res, out)
    return res


def plot(res: dict[str, Any], out: Path | None = None) -> Any:
    """Two panels: output tok/s vs concurrency per engine; server E2E/TTFT percentiles vs concurrency."""
    import matplotlib
    if out is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in res["runs"]:
        groups.setdefault(r["engine"].split(" ")[0], []).append(r)
    for name, rows in groups.items():
        rows = sorted(rows, key=lambda r: r["concurrency"])
        a.plot([r["concurrency"] for r in rows], [r["output_tok_s"] for r in rows], "o-", label=name)
    a.set(xscale="log", yscale="log", xlabel="concurrency / batch", ylabel="output tokens/s",
          title=f"throughput ({res['served_name']})")
    a.legend()
    srv = sorted([r for r in res["runs"] if r["engine"] == "server"], key=lambda r: r["concurrency"])
    if srv:
        xs = [r["concurrency"] for r in srv]
        for key, style in (("ttft_ms", "s--"), ("e2e_ms", "o-")):
            b.plot(xs, [r[key]["p50"] for r in srv], style, label=f"{key[:-3]} p50")
            b.fill_between(xs, [r[key]["p50"] for r in srv], [r[key]["p99"] for r in srv], alpha=0.2,
                           label=f"{key[:-3]} p50..p99")
        b.set(xscale="log", xlabel="concurrency", ylabel="ms", title="server latency")
        b.legend(fontsize=8)
    fig.tight_layout()
    if out is not None:
        fig.savefig(Path(out) / "bench.png", dpi=80, metadata={"Software": None})
    return fig


def suite(profile: str | None = None, num_prompts: int = 64, output_len: int = 128,
          concurrency: int = 32, repeats: int = 5) -> dict[str, Any]:
    """The project's own serving benchmark: ratios of variants measured interleaved in one run.

    A shared 2-core VM is noisy (the same c16 loop measured 2.4k-4.6k tok/s within a minute), so
    variants run interleaved, every measurement is kept, and ratios use each variant's median of
    `repeats`. High-concurrency runs that are all slow mean the client was starved: see
    set_autogroup_nice in lab/serve.py.
    """
    prof = config.load(profile)
    client = Client(prof.base_url, api_key=config.api_key() or "EMPTY")
    prompts = workload(num_prompts, 1)
    client.chat(prompts[0], max_tokens=4)  # warm-up
    seen: dict[str, list[float]] = {}

    def lab_run(c: int, stream: bool = False) -> float:
        t0 = time.perf_counter()
        res = client.batch(prompts, concurrency=c, stream=stream, max_tokens=output_len, ignore_eos=True)
        return sum(r.completion_tokens for r in res) / (time.perf_counter() - t0)
    hi = f"c{concurrency}"
    bare_reqs = [([{"role": "user", "content": p}], output_len) for p in prompts]
    for _ in range(repeats):  # interleaved so drift in machine load hits every variant alike
        seen.setdefault("lab_c1", []).append(lab_run(1))
        seen.setdefault(f"lab_{hi}", []).append(lab_run(concurrency))
        seen.setdefault(f"lab_{hi}_stream", []).append(lab_run(concurrency, stream=True))
        toks, wall = asyncio.run(_bare_loop(client.base_url, client._api_key, client.model, bare_reqs,
                                            concurrency, {"ignore_eos": True}))
        seen.setdefault(f"bare_openai_{hi}", []).append(toks / wall)
    med = _medians(seen)
    return {"tok_s_median": med, "tok_s_all": {k: [round(x, 1) for x in v] for k, v in seen.items()},
            "scaling": round(med[f"lab_{hi}"] / med["lab_c1"], 2),
            "lab_vs_bare": round(med[f"lab_{hi}"] / med[f"bare_openai_{hi}"], 3)}


def _medians(seen: dict[str, list[float]]) -> dict[str, float]:
    import statistics
    return {k: round(statistics.median(v), 1) for k, v in seen.items()}


def translate_suite(profile: str | None = None, copies: int = 8, chunk_tokens: int = 32, concurrency: int = 16,
                    repeats: int = 5) -> dict[str, Any]:
    """Translation pipeline vs a bare openai loop on the same chunk requests; concurrency 16 vs 1.

    8 copies make 168 chunks: a c16 run lasts ~1.3 s, so opening 16 connections and the first
    requests no longer decide the ratio, as they did with 4 copies (~0.6 s runs). Medians of 5."""
    import shutil
    import tempfile

    from lab.prompting import PromptSpec
    from lab.translate import Settings, Translator
    prof = config.load(profile)
    key = config.api_key() or "EMPTY"
    tmp = Path(tempfile.mkdtemp(prefix="lab-tbench-"))
    try:
        src = tmp / "in"
        src.mkdir()
        for k in range(copies):
            for f in sorted((paths.data() / "translation" / "ja").glob("*.txt")):
                (src / f"{k}_{f.name}").write_text(f.read_text("utf-8"), "utf-8")

        def pipeline(c: int, i: int) -> float:
            s = Settings(out=tmp / f"out{c}_{i}", endpoints=[prof.base_url], api_key=key, concurrency=c,
                         attempts=1, split=False, resume=False, chunk_tokens=chunk_tokens, progress_every_s=1e9,
                         spec=PromptSpec())
            st = Translator(s).run(src)
            return st["output_tokens"] / st["wall_s"]
        t = Translator(Settings(out=tmp / "prep", endpoints=[prof.base_url], api_key=key, chunk_tokens=chunk_tokens))
        reqs = []
        from lab.prompting import max_tokens_for
        for d in t.prepare(src):
            for ch in d.chunks:
                est = t.overhead + ch.tokens
                reqs.append((t.s.spec.messages(ch), max_tokens_for(t.max_model_len, est, ch.tokens, t.s.max_tokens)))

        def bare() -> float:
            toks, wall = asyncio.run(_bare_loop(prof.base_url, key, t.model, reqs, concurrency,
                                                {"chat_template_kwargs": {"enable_thinking": False}}))
            return toks / wall
        seen: dict[str, list[float]] = {}
        for i in range(repeats):  # interleaved, medians (see suite() on this machine's noise)
            seen.setdefault("pipeline_c1", []).append(pipeline(1, i))
            seen.setdefault(f"pipeline_c{concurrency}", []).append(pipeline(concurrency, i))
            seen.setdefault(f"bare_c{concurrency}", []).append(bare())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = _medians(seen)
    return {"chunks": len(reqs), "tok_s_median": med,
            "tok_s_all": {k: [round(x, 1) for x in v] for k, v in seen.items()},
            "scaling": round(med[f"pipeline_c{concurrency}"] / med["pipeline_c1"], 2),
            "pipeline_vs_bare": round(med[f"pipeline_c{concurrency}"] / med[f"bare_c{concurrency}"], 3)}
