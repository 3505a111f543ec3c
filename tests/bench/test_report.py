"""lab.bench.report: the tables and lines the CLI and notebook 02 both show, on synthetic results."""

from lab import bench

ROOF = {"batch1_ceiling_tok_s": 40.0, "bandwidth_gbs": 20.0, "bandwidth_source": "measured", "step_bytes": 5e8,
        "weight_bytes": 4.9e8, "context_tokens": 96, "ceiling_range_tok_s": [36.0, 44.0]}


def test_engine_table_shows_every_run_and_never_a_share_over_the_ceiling():
    res = {"roofline": ROOF, "runs": [
        {"engine": "hf b=1", "concurrency": 1, "output_tok_s": 5.0, "e2e_ms": {"p99": 900.0}, "pct_of_ceiling": 12.5},
        {"engine": "server", "concurrency": 1, "output_tok_s": 44.0, "ttft_ms": {"p50": 30.0},
         "tpot_ms": {"p50": 22.7}, "e2e_ms": {"p99": 1500.0}, "pct_of_ceiling": None, "above_ceiling": True}]}
    rows = bench.engine_table(res)
    assert [(r["engine"], r["tok_s"], r["pct_ceiling"]) for r in rows] == [("hf b=1", 5.0, 12.5),
                                                                            ("server", 44.0, "above")]
    assert rows[0]["ttft_p50_ms"] is None and rows[1]["tpot_p50_ms"] == 22.7
    lines = bench.roofline_lines(res)
    assert lines[0].startswith("ceiling 40.0 tok/s = 20.0 GB/s (measured) / 500 MB a step (490 MB weights")
    assert len(lines) == 2 and "beat the ceiling" in lines[1]
    res["runs"].pop()
    assert len(bench.roofline_lines(res)) == 1


def test_rate_table_and_cross_check_record():
    row = {"request_rate": 4.0, "output_tok_s": 120.0, "ttft_ms": {"p50": 80.0}, "tpot_ms": {"p50": 30.0},
           "goodput_req_s": 3.5, "met_slo_pct": 87.5}
    assert bench.rate_table([row]) == [{"req_s": 4.0, "tok_s": 120.0, "ttft_p50_ms": 80.0, "tpot_p50_ms": 30.0,
                                        "goodput_req_s": 3.5, "within_slo_pct": 87.5}]
    cc = {"median": {"lab_tok_s": 100.0, "vllm_tok_s": 104.0, "lab_cpu_ms_per_1k": 50.0, "vllm_cpu_ms_per_1k": 90.0},
          "throughput_ratio": 0.96, "tpot_ratio": 1.02, "tokens": {"server": 2048}}
    rec = bench.cross_check_record(cc)
    assert rec["throughput_ratio"] == 0.96 and rec["client_cpu_ms_per_1k_tokens"] == {"lab": 50.0, "vllm_bench": 90.0}


def test_load_line_names_every_rate_and_both_slos():
    st = bench.RateSettings(rates=(0.26, 0.52, 1.0, 2.1), slo_ttft_ms=2300.0, slo_tpot_ms=280.0)
    assert bench.load_line(st) == "rates 0.26, 0.52, 1, 2.1 req/s, TTFT <= 2300 ms, TPOT <= 280 ms"
