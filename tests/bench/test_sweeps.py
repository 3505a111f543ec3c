"""lab.bench.sweeps: bad input and a taken port fail before any work; a real sweep starts and stops its server."""

import pytest

from lab import LabError, bench


def test_bad_input_is_one_clear_line():
    with pytest.raises(LabError, match="unknown engine 'tgi'"):
        bench.validate(["hf", "tgi"], [1], 8, 2048)
    with pytest.raises(LabError, match="concurrency must be >= 1"):
        bench.validate(["server"], [0, 4], 8, 2048)
    with pytest.raises(LabError, match="output length 4096 does not fit max_model_len 2048"):
        bench.validate(["server"], [1], 4096, 2048)


def test_an_out_that_is_a_file_is_refused_before_measuring(tmp_path, monkeypatch):
    from lab.bench import sweeps
    (tmp_path / "f").write_text("kept")
    monkeypatch.setattr(sweeps, "_free_for_offline", lambda *a: pytest.fail("measuring started"))
    with pytest.raises(LabError, match=r"--out \S+f is a file; give a folder"):
        sweeps.run("tiny", out=tmp_path / "f", engines=("server",))
    assert (tmp_path / "f").read_text() == "kept"


def test_a_port_held_by_another_program_fails_before_any_work(monkeypatch):
    import socket
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        monkeypatch.setenv("LAB_PORT", str(held.getsockname()[1]))
        with pytest.raises(LabError, match="port .* is in use by another program"):
            bench.run("tiny", engines=("hf", "server"), concurrencies=(1,), num_prompts=2, output_len=4,
                      progress=False)


@pytest.mark.server
def test_real_sweep_starts_the_server_it_needs_and_stops_it(tmp_path, monkeypatch):
    from helpers import free_port

    from lab import serve
    monkeypatch.setenv("LAB_PORT", str(free_port()))  # no server there: bench.run starts one, as a user's would
    settings = bench.RunSettings(engines=("hf", "vllm", "server"), concurrencies=(1, 4), num_prompts=4,
                                 output_len=8, hf_batch=2, hf_prompts=2, progress=False)
    res = bench.run("tiny", settings, tmp_path)
    assert res["server_started"] is True and not serve.status("tiny")["running"]  # stopped: it started it
    engines = [r["engine"] for r in res["runs"]]
    assert engines == ["hf b=1", "hf b=2", "vllm offline", "server", "server"]
    srv = [r for r in res["runs"] if r["engine"] == "server"]
    assert [r["output_tokens"] for r in srv] == [32, 32] and all(r["failed"] == 0 for r in srv)
    assert all(r["ttft_ms"]["p50"] > 0 and r["e2e_ms"]["p99"] >= r["ttft_ms"]["p99"] for r in srv)
    # the server's rows against the bandwidth read beside the server, the others against the read before them
    from lab.bench.roofline import pct_of_ceiling
    first, beside = res["roofline_offline"], res["roofline"]
    assert first["bandwidth"] is not beside["bandwidth"] and first["step_bytes"] == beside["step_bytes"]
    assert all(r["pct_of_ceiling"] == pct_of_ceiling(r["output_tok_s"], r["concurrency"], beside) for r in srv)
    hf = [r for r in res["runs"] if r["engine"] != "server"]
    assert all(r["pct_of_ceiling"] == pct_of_ceiling(r["output_tok_s"], r["concurrency"], first) for r in hf)
    assert res["ratios"]["server_c1_pct_of_roofline"] == srv[0]["pct_of_ceiling"]
    assert any("the read before them" in ln for ln in bench.roofline_lines(res))
    assert res["parity"]["prompts"] == 2  # reported either way; the tiny model in float32 agrees
    assert (tmp_path / "results.json").exists() and (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert set(res["ratios"]) == {"server_c1_pct_of_roofline", "server_c1_above_roofline", "server_c4_over_c1",
                                  "server_c4_over_hf_b1"}
    assert res["env"]["versions"]["vllm"] and res["seed"] == 0 and "command" in res


def test_ratios_from_synthetic_rows():
    roof = bench.roofline(10**9, 20.0)  # ceiling 20 tok/s
    runs = [{"engine": "hf b=1", "concurrency": 1, "output_tok_s": 5.0},
            {"engine": "server", "concurrency": 1, "output_tok_s": 12.0},
            {"engine": "server", "concurrency": 32, "output_tok_s": 120.0}]
    assert bench.ratios(runs, roof) == {"server_c1_pct_of_roofline": 60.0, "server_c1_above_roofline": False,
                                        "server_c32_over_c1": 10.0, "server_c32_over_hf_b1": 24.0}
    runs[1]["output_tok_s"] = 25.0  # beats the ceiling: no share, a flag
    r = bench.ratios(runs, roof)
    assert r["server_c1_pct_of_roofline"] is None and r["server_c1_above_roofline"] is True
    assert bench.ratios(runs[:1], roof) == {}


def _srv(c, req_s, ttft, tpot, **kw):
    return {"engine": "server", "concurrency": c, "req_s": req_s, "ttft_ms": {"p50": ttft}, "tpot_ms": {"p50": tpot},
            **kw}


SWEEP = {"runs": [{"engine": "hf b=1", "concurrency": 1, "req_s": 9.0, "ttft_ms": None},
                  _srv(4, 1.8, 690.0, 51.0), _srv(1, 0.52, 237.0, 55.0), _srv(16, 3.195, 2456.0, 82.0),
                  _srv(32, 30.0, 1.0, 1.0, failed=32), "hand-edited", _srv(8, "fast", 1.0, 1.0)]}


def test_sized_rates_and_slos_follow_the_measured_server():
    st = bench.sized(SWEEP)  # capacity 3.195 req/s (c16; the failed and garbled rows left out); c1 237 / 55 ms
    assert st.rates == (0.8, 1.6, 3.2, 6.4)
    assert (st.slo_ttft_ms, st.slo_tpot_ms) == (950.0, 110.0)
    assert (st.num_prompts, st.output_len) == (bench.RateSettings().num_prompts, bench.RateSettings().output_len)


def test_sized_keeps_what_is_given_and_sizes_what_is_empty():
    st = bench.sized(SWEEP, rates=[], slo_ttft_ms=0.0, slo_tpot_ms=70, num_prompts=16, seed=3)
    assert (st.rates, st.slo_ttft_ms, st.slo_tpot_ms, st.num_prompts, st.seed) == ((0.8, 1.6, 3.2, 6.4), 950.0,
                                                                                   70, 16, 3)
    fixed = bench.sized({"runs": []}, rates=[1, 2.5], slo_ttft_ms=500, slo_tpot_ms=50)  # nothing to size: no rows
    assert (fixed.rates, fixed.slo_ttft_ms, fixed.slo_tpot_ms) == ((1, 2.5), 500, 50)
    with pytest.raises(LabError, match="no server run that answered"):
        bench.sized({"runs": [SWEEP["runs"][0]]}, rates=[1])


def test_a_rate_sweep_refuses_rates_or_slos_that_are_not_positive_numbers():
    for bad in ({"rates": ("lots",)}, {"rates": ()}, {"rates": (True,)}, {"slo_tpot_ms": 0}, {"slo_ttft_ms": "1s"}):
        with pytest.raises(LabError, match="rates must be numbers|SLOs must be numbers"):
            bench.rate_run("tiny", bench.RateSettings(**{"rates": (1.0,), **bad}))
