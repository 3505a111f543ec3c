"""lab.bench.cli: what `lab bench suite` prints from a suite's results (synthetic numbers: the lines a reader
checks the targets by), and the settings its options hand the suite."""

import json

import pytest

from lab import cli
from lab.bench import cli as bench_cli

RES = {"scaling": 9.4, "lab_vs_bare": 0.962, "roofline": {"batch1_ceiling_tok_s": 30.1,
                                                           "ceiling_range_tok_s": [27.5, 33.0]},
       "hf_b1": {"best": {"dtype": "bfloat16", "threads": 2}, "configs": [{}, {}, {}, {}]},
       "server_b1_above_roofline": False, "server_b1_pct_of_roofline": 56.5, "server_b1_pct_rounds": [55.0, 58.1],
       "server_hi_vs_hf_b1": 12.3}


@pytest.fixture
def seen(monkeypatch):
    got = {}

    def fake_suite(profile, settings):
        got.update(profile=profile, settings=settings)
        return dict(RES)
    monkeypatch.setattr(bench_cli, "serving_suite", fake_suite)
    return got


def test_the_suite_prints_each_ratio_beside_its_target(seen, capsys):
    assert cli.main(["bench", "suite", "--profile", "tiny", "--concurrency", "16", "--repeats", "3",
                     "--engines"]) == 0
    s = seen["settings"]
    assert seen["profile"] == "tiny" and (s.concurrency, s.repeats, s.engines, s.num_prompts) == (16, 3, True, 64)
    out = capsys.readouterr().out.splitlines()
    assert "scaling c16/c1: 9.4x (target >= 8x); lab client / bare openai loop: 96.2% (target >= 95%)" in out
    assert "server c16 / c1: 9.4x (target >= 8x)" in out
    assert ("server batch-1 decode: 56.5% of the roofline (ceiling 30.1 tok/s, range [27.5, 33.0]; each round "
            "against its own bandwidth read: [55.0, 58.1]; target >= 50%)") in out
    assert ("server c16 / transformers batch 1 (bfloat16, 2 threads, the fastest correct of 4): 12.3x "
            "(target >= 10x)") in out


def test_a_decode_above_the_ceiling_prints_no_share(seen, capsys, monkeypatch):
    monkeypatch.setitem(RES, "server_b1_above_roofline", True)
    assert cli.main(["bench", "suite", "--engines"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("server batch-1 decode"))
    assert "above the ceiling: the bytes counted or the bandwidth measured is wrong" in line and "%" not in line[:60]


def test_without_engines_no_roofline_line(seen, capsys):
    assert cli.main(["bench", "suite"]) == 0
    out = capsys.readouterr().out
    assert "server batch-1 decode" not in out and "server c32 / c1: 9.4x" in out and not seen["settings"].engines


def test_rate_sized_from_a_results_file(tmp_path, monkeypatch, capsys):
    got = {}
    monkeypatch.setattr(bench_cli.sweeps, "rate_run", lambda profile, st: got.update(st=st) or [])
    runs = [{"engine": "server", "concurrency": c, "req_s": r, "ttft_ms": {"p50": 100.0 * c}, "tpot_ms": {"p50": 20.0}}
            for c, r in ((1, 0.9), (8, 6.0))]
    (tmp_path / "results.json").write_text(json.dumps({"runs": runs}))
    assert cli.main(["bench", "rate", "--sized-from", str(tmp_path), "--num-prompts", "8"]) == 0
    st = got["st"]
    assert (st.rates, st.slo_ttft_ms, st.slo_tpot_ms, st.num_prompts) == ((1.5, 3.0, 6.0, 12.0), 400.0, 40.0, 8)
    assert f"sized from {tmp_path}: rates 1.5, 3, 6, 12 req/s, TTFT <= 400 ms, TPOT <= 40 ms" in capsys.readouterr().out
    (tmp_path / "results.json").write_text('{"runs": "none"}')
    assert cli.main(["bench", "rate", "--sized-from", str(tmp_path)]) == 1
    assert "not the results.json of `lab bench run`" in capsys.readouterr().err
