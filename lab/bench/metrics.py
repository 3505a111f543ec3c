"""Benchmark arithmetic as vLLM's benchmarks define it: workload, percentiles, TPOT, summaries, parity."""

from __future__ import annotations

import random
from typing import Any

from lab import LabError, paths
from lab.client import Result, throughput


def workload(n: int, seed: int = 0) -> list[str]:
    """n seeded prompts drawn from the Japanese corpus (1-3 sentences each)."""
    lines = [ln for ln in (paths.data() / "corpus" / "ja.txt").read_text("utf-8").splitlines() if ln.strip()]
    rng = random.Random(seed)
    return ["把下面的日语翻译成中文。\n" + "".join(rng.sample(lines, rng.randint(1, 3))) for _ in range(n)]


def percentiles(xs: list[float], ps: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    """mean and pXX of a list in milliseconds (numpy's linear interpolation, as vLLM's benchmark)."""
    import numpy as np  # at first use: `lab` starts without it (test_cli)
    if not xs:
        return {"mean": float("nan"), **{f"p{p}": float("nan") for p in ps}}
    arr = np.asarray(xs, dtype=float) * 1000
    return {"mean": round(float(arr.mean()), 3), **{f"p{p}": round(float(np.percentile(arr, p)), 3) for p in ps}}


def tpot(r: Result) -> float | None:
    """Time per output token after the first: (E2E - TTFT) / (output_tokens - 1)."""
    if r.ttft is None or r.completion_tokens < 2:
        return None
    return (r.e2e - r.ttft) / (r.completion_tokens - 1)


def failures(failed: int, total: int, where: str, first: str = "", server: str = "the server") -> str:
    """A note for a run where `failed` of `total` requests failed ("" when none did), `first` being the first
    error; a LabError when all did (a server that died mid-run answers nothing, and 0 tok/s would read as a
    measurement, or be divided by)."""
    if total and failed == total:
        why = f" ({first[:160]})" if first else ""
        raise LabError(f"every request at {where} failed{why}: {server} stopped answering")
    return f"  ({failed} of {total} requests failed{f': {first[:80]}' if first else ''})" if failed else ""


def summarize(results: list[Result], wall: float, concurrency: int) -> dict[str, Any]:
    """vLLM-style metrics for one run: throughput and TTFT/TPOT/ITL/E2E distributions."""
    ok = [r for r in results if not r.error]
    tp = [t for t in (tpot(r) for r in ok) if t is not None]
    return {"concurrency": concurrency, **throughput(results, wall),
            "ttft_ms": percentiles([r.ttft for r in ok if r.ttft is not None]),
            "tpot_ms": percentiles(tp), "itl_ms": percentiles([x for r in ok for x in r.itl]),
            "e2e_ms": percentiles([r.e2e for r in ok])}


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

