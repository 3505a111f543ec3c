"""lab.bench.metrics: TPOT, summaries and percentiles as vLLM defines them, the seeded workload, parity."""

import math

import pytest

from lab import bench
from lab.client import Result


def _r(ttft, e2e, n, itl=()):
    return Result("x", "length", 10, n, e2e, ttft, list(itl))


def test_tpot_and_summary_follow_vllm_definitions():
    rs = [_r(0.1, 1.1, 11, [0.1] * 10), _r(0.2, 2.2, 21, [0.1] * 20), _r(0.3, 0.3, 1)]
    assert bench.tpot(rs[0]) == pytest.approx(0.1) and bench.tpot(rs[1]) == pytest.approx(0.1)
    assert bench.tpot(rs[2]) is None  # one token: no TPOT
    s = bench.summarize(rs, wall=2.0, concurrency=3)
    assert s["output_tokens"] == 33 and s["output_tok_s"] == 16.5 and s["req_s"] == 1.5
    assert s["ttft_ms"]["mean"] == pytest.approx(200.0) and s["ttft_ms"]["p50"] == pytest.approx(200.0)
    assert s["tpot_ms"]["p99"] == pytest.approx(100.0) and s["itl_ms"]["p90"] == pytest.approx(100.0)
    failed = bench.summarize([Result("", None, 0, 0, 1.0, error="boom")] + rs[:1], 1.0, 2)
    assert failed["failed"] == 1 and failed["output_tokens"] == 11


def test_percentiles_interpolate_like_numpy():
    p = bench.percentiles([0.001 * i for i in range(1, 101)])
    assert p["p50"] == pytest.approx(50.5) and p["p90"] == pytest.approx(90.1) and p["p99"] == pytest.approx(99.01)
    assert math.isnan(bench.percentiles([])["p50"])


def test_parity_reports_first_divergence():
    same = bench.parity([[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5]])
    assert same == {"prompts": 2, "identical": 2, "first_divergence": None}
    diff = bench.parity([[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [4, 9, 6]], decode=lambda t: f"<{t[0]}>")
    assert diff["identical"] == 1 and diff["first_divergence"] == {"prompt": 1, "index": 1, "a": "<5>", "b": "<9>"}
    short = bench.parity([[1, 2]], [[1, 2, 3]])
    assert short["first_divergence"] == {"prompt": 0, "index": 2, "a": None, "b": 3}


def test_workload_is_seeded():
    assert bench.workload(4, 1) == bench.workload(4, 1) != bench.workload(4, 2)
