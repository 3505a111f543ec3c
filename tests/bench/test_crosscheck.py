"""lab.bench.crosscheck: the two clients against one server, /metrics counters, a ratio that cannot be taken."""

import pytest

from lab.bench import crosscheck


@pytest.mark.server
def test_a_short_real_cross_check_and_rate_run(tiny_server):
    from lab.bench import sweeps
    cc = crosscheck.cross_check(None, num_prompts=16, concurrency=4, output_len=16, repeats=1)
    assert cc["all"]["vllm_tok_s"][0] > 0 and cc["all"]["lab_tok_s"][0] > 0
    assert cc["throughput_ratio"] > 0 and "vllm bench serve at c4" in crosscheck.line(cc)
    # a starved client reads a 16-token reply of the toy in one go: TPOT 0, and then no ratio rather than 0
    assert cc["tpot_ratio"] is None or cc["tpot_ratio"] > 0
    t = cc["tokens"]  # the same 16 prompts x 16 tokens from both clients, and the server counted what each got
    assert t["lab_tokens"] == t["vllm_tokens"] == [256] and t["server_tokens_lab"] == t["server_tokens_vllm"] == [256]
    assert cc["all"]["lab_cpu_ms_per_1k"][0] > 0 and cc["all"]["vllm_cpu_ms_per_1k"][0] > 0
    rows = sweeps.rate_sweep(tiny_server.client(), ["把下面的日语翻译成中文。\n猫です。"] * 8, [20.0], 8, 5000, 1000,
                             progress=False)
    assert rows[0]["requests"] == 8 and rows[0]["failed"] == 0 and rows[0]["met_slo"] <= 8


def test_prometheus_counters_are_summed_over_labels():
    text = ('# HELP vllm:generation_tokens_total Number of generation tokens processed.\n'
            '# TYPE vllm:generation_tokens_total counter\n'
            'vllm:generation_tokens_total{engine="0",model_name="m"} 1200.0\n'
            'vllm:generation_tokens_total{engine="1",model_name="m"} 34.0\n'
            'vllm:generation_tokens_created{engine="0"} 1.7e9\n')
    assert crosscheck.parse_counter(text, "vllm:generation_tokens_total") == 1234.0
    assert crosscheck.parse_counter(text, "vllm:prompt_tokens_total") is None


def test_a_tpot_of_zero_gives_no_ratio_and_the_line_says_why():
    res = {"concurrency": 4, "throughput_ratio": 0.98, "tpot_ratio": crosscheck._ratio(0.0, 12.5)}
    assert res["tpot_ratio"] is None and "TPOT p50 not measurable" in crosscheck.line(res)
    res["tpot_ratio"] = crosscheck._ratio(12.0, 12.5)
    assert res["tpot_ratio"] == 0.96 and "TPOT p50 96.0%" in crosscheck.line(res)
