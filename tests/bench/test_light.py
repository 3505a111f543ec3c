"""lab.bench.light: the light measuring client's arithmetic on synthetic timings, Poisson arrivals, goodput."""

import json

import pytest

from lab.bench import light
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
