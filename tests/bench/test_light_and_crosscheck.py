"""The light measuring client's arithmetic on synthetic timings, and one short real cross-check against
`vllm bench serve` on the tiny server (ratios reported, never asserted)."""

import json

import pytest

from lab.bench import crosscheck, light
from lab.bench.metrics import summarize, tpot


def _event(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def test_parse_times_tokens_from_raw_pieces():
    raw = light.Raw(start=10.0, end=10.5)  # vLLM's definitions: every event with choices is a token event
    raw.pieces = [(10.1, _event({"choices": [{"delta": {"role": "assistant", "content": ""}}]})),
                  (10.2, _event({"choices": [{"delta": {"reasoning": "hm"}}]})),
                  (10.25, _event({"choices": [{"delta": {"content": "Pa"}}]})[:9]),  # an event split in two pieces
                  (10.3, _event({"choices": [{"delta": {"content": "Pa"}}]})[9:]),
                  (10.4, _event({"choices": [{"delta": {"content": "ris"}, "finish_reason": "length"}]})
                   + _event({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
                   + b"data: [DONE]\n\n")]
    r = light.parse(raw)
    assert r.text == "Paris" and r.finish_reason == "length" and r.completion_tokens == 3 and r.prompt_tokens == 7
    assert r.ttft == pytest.approx(0.1) and r.itl == pytest.approx([0.1, 0.1, 0.1])
    assert r.e2e == pytest.approx(0.4)  # up to the last event with choices, not the stream's close at 10.5
    assert tpot(r) == pytest.approx((0.4 - 0.1) / 2)
    bad = light.parse(light.Raw(start=1.0, end=1.2, error="500: engine died"))
    assert bad.error and summarize([r, bad], 1.0, 2)["failed"] == 1
    for body in (b"data: <html>\n\n", b"data: " + b"[" * 100_000 + b"\n\n", b"data: 5\n\n"):  # a hostile server
        broken = light.parse(light.Raw(0.0, [(0.1, body)], end=0.2))
        assert broken.error.startswith("a server-sent event that is not a JSON object")


def test_poisson_arrivals_and_goodput():
    offs = light.arrivals(2000, rate=4.0, seed=1)
    assert offs == sorted(offs) and offs[0] == 0 and offs == light.arrivals(2000, rate=4.0, seed=1)
    assert 3.6 < len(offs) / offs[-1] < 4.4  # mean rate within 10% over 2000 arrivals
    assert light.arrivals(3, None) == [0.0, 0.0, 0.0]
    fast = light.parse(light.Raw(0.0, [(0.1, _event({"choices": [{"delta": {"content": "a"}}]})),
                                       (0.12, _event({"choices": [{"delta": {"content": "b"}}]}))], 0.12))
    slow = light.parse(light.Raw(0.0, [(2.0, _event({"choices": [{"delta": {"content": "a"}}]})),
                                       (2.5, _event({"choices": [{"delta": {"content": "b"}}]}))], 2.5))
    g = light.goodput([fast, slow], wall=2.0, slo_ttft_ms=500, slo_tpot_ms=50)
    assert g == {"goodput_req_s": 0.5, "met_slo": 1, "met_slo_pct": 50.0}


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


def _dying_server():
    """A real local server that answers c=1 (one request of four fails), then only 500s: an engine gone."""
    from helpers import FakeServer
    streamed = []

    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "m", "object": "model", "max_model_len": 4096}]}
        if not body.get("stream"):  # the warm-up
            return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                         "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant",
                                                                                        "content": "ok"}}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
        streamed.append(body)
        if len(streamed) == 2 or len(streamed) > 4:  # one failure at c=1, then the engine is gone
            return 500, {"error": {"message": "engine dead"}}
        return 200, (_event({"choices": [{"delta": {"content": "a"}}]})
                     + _event({"choices": [{"delta": {"content": "b"}, "finish_reason": "length"}]})
                     + _event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
                     + b"data: [DONE]\n\n")
    return FakeServer(handler)


def test_a_server_that_stops_answering_mid_sweep_ends_it_and_the_rows_before_are_kept(capsys):
    """Rows of 0 tok/s from a dead server would read as measurements (and crashed the log-scale plot)."""
    from lab import LabError
    from lab.bench import sweeps
    from lab.client import Client
    srv = _dying_server()
    rows: list = []
    try:
        with pytest.raises(LabError, match=r"every request at concurrency 2 failed \(500: .*engine dead.*\): the "
                                           r"server stopped answering"):
            sweeps.server_sweep(Client(srv.url, max_retries=0), ["p"] * 4, [1, 2], 2, rows=rows)
    finally:
        srv.close()
    assert [(r["concurrency"], r["failed"], r["output_tokens"]) for r in rows] == [(1, 1, 6)]
    assert "(1 of 4 requests failed: 500: " in capsys.readouterr().out


def test_a_bench_run_whose_server_dies_keeps_every_row_measured_in_results_json(tmp_path, monkeypatch):
    """The rows of the engines before the server and of the concurrencies it answered stay on disk, judged
    against the roofline, and the error says where; the server this run started is released."""
    from lab import LabError, config
    from lab.bench import sweeps
    from lab.client import Client
    srv = _dying_server()
    released = []

    class Started:
        owned = True

        def client(self, **kw):
            return Client(srv.url, max_retries=0)

    monkeypatch.setattr(sweeps.serve, "start", lambda *a, **k: Started())
    monkeypatch.setattr(sweeps.serve, "release", lambda prof, **k: released.append(prof.name))
    res = {"runs": [{"engine": "hf b=1", "concurrency": 1, "output_tok_s": 5.0}],
           "roofline": {"batch1_ceiling_tok_s": 1e6}}
    st = sweeps.RunSettings(concurrencies=(1, 2), progress=False)
    try:
        with pytest.raises(LabError, match=r"concurrency 2 failed .*; what was measured is kept in "
                                           + str(tmp_path / "results.json")):
            sweeps._server_runs(config.load("tiny"), res, ["p"] * 4, st, tmp_path, keep=False)
    finally:
        srv.close()
    kept = json.loads((tmp_path / "results.json").read_text())
    assert [(r["engine"], r["concurrency"]) for r in kept["runs"]] == [("hf b=1", 1), ("server", 1)]
    row = kept["runs"][1]  # judged against the roofline: a share (a few tok/s of 1e6 round to 0.0, so no > 0)
    assert row["failed"] == 1 and row["pct_of_ceiling"] is not None
    assert row["pct_of_ceiling"] == sweeps.pct_of_ceiling(row["output_tok_s"], 1, kept["roofline"])
    assert released == ["tiny"] and kept["server_started"] is True


def test_the_suite_refuses_a_server_that_answers_nothing(monkeypatch):
    """c32 / c1 divided by a dead server's 0 tok/s: a ZeroDivisionError before."""
    from helpers import openai_fake

    from lab import LabError, config
    from lab.bench.suite import suite
    from lab.client import Client
    srv = openai_fake(lambda body: (500, "engine dead", None))
    monkeypatch.setattr(config, "client", lambda *a, **k: Client(srv.url, max_retries=0))
    monkeypatch.setattr(Client, "chat", lambda self, *a, **k: None)  # the warm-up passes; then the engine is gone
    try:
        with pytest.raises(LabError, match=r"every request at concurrency 1 failed: the server at .* stopped"):
            suite("tiny", num_prompts=2, output_len=4, concurrency=2, repeats=1, engines=False)
    finally:
        srv.close()
