"""Benchmark arithmetic on synthetic timings, bad input, and real short runs of every engine."""

import importlib
import math

import pytest

from lab import LabError, bench
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


def test_roofline_and_percentage():
    roof = bench.roofline(8 * 10**9, 960.0)  # a 4B model in bf16 on an RTX 6000 Ada
    assert roof["batch1_ceiling_tok_s"] == 120.0
    assert bench.pct_of_ceiling(60.0, 1, roof) == 50.0
    assert bench.pct_of_ceiling(960.0, 16, roof) == 50.0  # per sequence in flight
    assert bench.roofline(0, 100)["batch1_ceiling_tok_s"] is None


def test_a_beaten_ceiling_is_not_a_share_and_kv_and_spread_count():
    rl = importlib.import_module("lab.bench.roofline")  # the package re-exports a function of that name
    roof = rl.roofline(10**9, 20.0, kv_per_token=12 * 2**10, context_tokens=1000,
                       bandwidth=rl.bandwidth_stats([18.0, 20.0, 26.0], 2, 2**30))
    assert roof["step_bytes"] == 10**9 + 12_288_000 and roof["batch1_ceiling_tok_s"] == 19.8
    assert roof["ceiling_range_tok_s"] == [17.8, 25.7] and roof["bandwidth"]["median_gbs"] == 20.0
    assert rl.pct_of_ceiling(9.9, 1, roof) == 50.0 and not rl.above_ceiling(9.9, 1, roof)
    assert rl.pct_of_ceiling(21.0, 1, roof) is None and rl.above_ceiling(21.0, 1, roof)  # 106%: never printed


def test_each_rounds_decode_is_divided_by_the_bandwidth_read_beside_it():
    rl = importlib.import_module("lab.bench.roofline")  # the package re-exports a function of that name
    from lab.bench.suite import b1_share
    reads = [rl.bandwidth_stats(g, 2, 2**29) for g in ([49.0, 50.0, 51.0], [78.0, 80.0, 85.0], [54.0, 55.0, 56.0])]
    bw = rl.pooled(reads)
    assert bw["rounds_gbs"] == [50.0, 80.0, 55.0] and bw["median_gbs"] == 55.0
    assert (bw["min_gbs"], bw["max_gbs"], bw["runs"]) == (49.0, 85.0, 9)
    roof = rl.roofline(10**9, bw["median_gbs"], bandwidth=bw)  # 1 GB a step: the ceiling is 55 tok/s
    # the host's bandwidth drifted between rounds; the decode followed it in rounds 1 and 2, round 3 was slow
    share = b1_share([30.0, 48.0, 20.0], roof)
    assert share["server_b1_pct_rounds"] == [60.0, 60.0, 36.36] and share["server_b1_pct_of_roofline"] == 60.0
    unpaired = b1_share([30.0, 48.0, 20.0], rl.roofline(10**9, 55.0))  # median decode 30 over the one ceiling
    assert unpaired == {"server_b1_pct_of_roofline": 54.55, "server_b1_above_roofline": False}
    above = b1_share([90.0], rl.roofline(10**9, 50.0, bandwidth=rl.pooled(reads[:1])))
    assert above["server_b1_pct_of_roofline"] is None and above["server_b1_above_roofline"]  # 180%: never a share


def test_decode_bytes_skip_an_untied_embedding_and_follow_the_served_dtype():
    rl = importlib.import_module("lab.bench.roofline")  # the package re-exports a function of that name
    emb, head, layer = 151936 * 896 * 2, 151936 * 896 * 2, 700 * 2**20  # Qwen2.5-0.5B as imported from GGUF
    untied = [("model.embed_tokens.weight", "BF16", emb), ("lm_head.weight", "BF16", head),
              ("model.layers.0.mlp.up_proj.weight", "BF16", layer)]
    assert rl.decode_bytes(untied) == {"weights": head + layer, "embedding_lookup_only": emb}
    tied = [untied[0], untied[2]]  # the table is the lm_head: read whole, once
    assert rl.decode_bytes(tied)["weights"] == emb + layer
    assert rl.decode_bytes(tied, "float32")["weights"] == 2 * (emb + layer)  # bf16 files served in float32
    awq = [("model.layers.0.mlp.up_proj.qweight", "I32", 1000), ("model.layers.0.mlp.up_proj.scales", "F16", 10)]
    assert rl.decode_bytes(awq, "float32")["weights"] == 1020  # packed ints stay as stored
    qwen = {"num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "hidden_size": 896}
    assert rl.kv_bytes_per_token(qwen, "bfloat16") == 2 * 24 * 2 * 64 * 2 == 12 * 2**10
    assert rl.kv_bytes_per_token({"text_config": {**qwen, "head_dim": 128}}, "float32") == 2 * 24 * 2 * 128 * 4
    assert rl.kv_bytes_per_token({}) == 0


def test_server_threads_follow_the_bind_setting():
    rl = importlib.import_module("lab.bench.roofline")  # the package re-exports a function of that name
    assert rl.server_threads({"VLLM_CPU_OMP_THREADS_BIND": "0-3,8"}) == 5
    assert rl.server_threads({"VLLM_CPU_OMP_THREADS_BIND": "0-1|2-3"}) == 2  # per data-parallel rank
    cores = len(__import__("os").sched_getaffinity(0))
    assert rl.server_threads({}) == max(1, cores - 1)  # vLLM's auto binding keeps one core for its front end
    assert rl.server_threads({"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}) == cores


def test_gpu_bandwidth_table_matches_nvml_names():
    assert bench.gpu_bandwidth_gbs("NVIDIA H100 80GB HBM3") == 3350  # the SXM part, as NVML names it
    assert bench.gpu_bandwidth_gbs("NVIDIA H100 PCIe") == 2000
    assert bench.gpu_bandwidth_gbs("NVIDIA H100 NVL") == 3900
    assert bench.gpu_bandwidth_gbs("NVIDIA H200") == 4800
    assert bench.gpu_bandwidth_gbs("NVIDIA A100-SXM4-80GB") == 2039
    assert bench.gpu_bandwidth_gbs("Some Future GPU") is None


def test_parity_reports_first_divergence():
    same = bench.parity([[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5]])
    assert same == {"prompts": 2, "identical": 2, "first_divergence": None}
    diff = bench.parity([[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [4, 9, 6]], decode=lambda t: f"<{t[0]}>")
    assert diff["identical"] == 1 and diff["first_divergence"] == {"prompt": 1, "index": 1, "a": "<5>", "b": "<9>"}
    short = bench.parity([[1, 2]], [[1, 2, 3]])
    assert short["first_divergence"] == {"prompt": 0, "index": 2, "a": None, "b": 3}


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


def test_workload_is_seeded():
    assert bench.workload(4, 1) == bench.workload(4, 1) != bench.workload(4, 2)


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


@pytest.mark.server
def test_suite_prints_ratios_measured_in_one_run(tiny_server):
    res = bench.suite("tiny", num_prompts=4, output_len=4, concurrency=2, repeats=1)
    assert set(res["tok_s_median"]) == {"lab_c1", "lab_c2", "lab_c2_stream", "bare_openai_c2"}
    assert res["scaling"] == round(res["tok_s_median"]["lab_c2"] / res["tok_s_median"]["lab_c1"], 2)
    assert res["lab_vs_bare"] > 0


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
