"""Is a server up (lab/readiness.py): the wait's bound; the waits themselves run in test_serve.py with real servers."""

from lab import readiness


def test_readiness_waits_while_the_log_grows():
    assert not readiness.ready_timed_out(elapsed=900, silent=5, timeout=600)    # still downloading
    assert readiness.ready_timed_out(elapsed=700, silent=120, timeout=600)      # past it, and stalled
    assert not readiness.ready_timed_out(elapsed=500, silent=500, timeout=600)  # not yet past the timeout
    assert readiness.ready_timed_out(elapsed=6001, silent=1, timeout=600)       # growing forever is a stall too


def test_probe_tells_a_model_list_a_locked_server_a_foreign_one_and_nobody_apart():
    from types import SimpleNamespace

    from helpers import FakeServer, free_port
    answers = {"list": (200, {"data": [{"id": "m", "max_model_len": 64}]}), "locked": (401, {"error": "no key"}),
               "foreign": (200, b"<html>a router's login page</html>")}
    for kind, answer in answers.items():
        fake = FakeServer(lambda path, body, a=answer: a)
        try:
            found = readiness.probe(SimpleNamespace(base_url=fake.url), timeout=5)
        finally:
            fake.close()
        assert found == {"list": {"models": [{"id": "m", "max_model_len": 64, "root": None, "parent": None}]},
                         "locked": {"models": [], "unauthorized": True},
                         "foreign": {"models": [], "not_openai": True, "status_code": 200}}[kind], kind
    assert readiness.probe(SimpleNamespace(base_url=f"http://127.0.0.1:{free_port()}/v1"), timeout=2) is None
