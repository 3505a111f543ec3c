"""lab.bench.sweeps and suite against a server that dies or answers nothing: the rows measured before are kept."""

import json

import pytest


def _event(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


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
