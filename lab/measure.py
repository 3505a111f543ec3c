"""Measurement helpers the stage benchmarks share: the bare openai reference loop, medians, peak memory."""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from typing import Any


async def bare_loop(base_url: str, api_key: str, model: str, requests: list[tuple[list[dict[str, str]], int]],
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


def medians(seen: dict[str, list[float]]) -> dict[str, float]:
    """Median of each variant's interleaved measurements (a shared 2-core VM is too noisy for best-of)."""
    return {k: round(statistics.median(v), 1) for k, v in seen.items()}


def ratio_line(res: dict[str, Any], concurrency: int, scaling_target: float, who: str, key: str,
               target: float) -> str:
    """The line a suite ends with: scaling and the share of the bare openai loop, each beside its target."""
    return (f"scaling c{concurrency}/c1: {res['scaling']}x (target >= {scaling_target:g}x); "
            f"{who} / bare openai loop: {res[key]:.1%} (target >= {target:.0%})")


def peak_memory() -> dict[str, float]:
    """Peak RSS of this process, and peak CUDA memory when torch is already imported with a GPU."""
    out = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    torch = sys.modules.get("torch")  # never import torch just to ask: it takes seconds
    if torch is not None and torch.cuda.is_available():
        out["peak_vram_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out
