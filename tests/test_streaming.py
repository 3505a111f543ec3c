"""lab.streaming: the tally of a streamed reply, the relay that shows re-sent text once, the re-send rule, and
stream_chat against a real local server that stops mid-reply."""

import asyncio
from types import SimpleNamespace as NS

import openai
import pytest
from helpers import Trickle

from lab.streaming import CHARS_PER_TOKEN, Relay, StreamTally, resend_delay, stream_chat


def chunk(content=None, finish=None, usage=None, choices=True, **extra):
    """An object shaped like openai's ChatCompletionChunk (delta.model_extra holds a reasoning parser's field)."""
    delta = NS(content=content, model_extra=extra)
    return NS(choices=[NS(delta=delta, finish_reason=finish)] if choices else [], usage=usage)


def test_the_tally_joins_text_times_each_token_and_keeps_the_usage():
    shown: list[str] = []
    t = StreamTally(on_text=shown.append)
    for c in (chunk("駅に"), chunk(""), chunk("着いた"), chunk(None, finish="stop"),
              chunk(usage=NS(prompt_tokens=7, completion_tokens=2), choices=False)):
        t.feed(c)
    r = t.result()
    assert (r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) == ("駅に着いた", "stop", 7, 2)
    assert shown == ["駅に", "着いた"]  # empty pieces are not shown
    assert r.ttft is not None and len(r.itl) == 1  # two tokens with text: a first-token time and one gap
    assert r.e2e >= r.ttft >= 0


def test_without_usage_the_tally_counts_its_events_and_splits_reasoning_from_the_answer():
    t = StreamTally()
    for c in (chunk(None, reasoning_content="想一想"), chunk("<think>再想</think>"), chunk("好。", finish="stop")):
        t.feed(c)
    r = t.result()
    assert r.text == "好。" and r.reasoning == "想一想\n再想"
    assert r.completion_tokens == 3 and r.prompt_tokens == 0  # one event with text or reasoning a token


def test_an_event_that_is_no_chunk_is_a_value_error():
    with pytest.raises(ValueError, match="not a chat completion chunk"):
        StreamTally().feed(5)


@pytest.mark.parametrize("pieces,events", [(["x" * (CHARS_PER_TOKEN * 4 + 1)], 1), ([""] * 73, 73)])
def test_a_reply_far_past_its_cap_is_cut_and_reads_as_truncated(pieces, events):
    """max_tokens=4: over 16 characters a token, or over 2 x 4 + 64 events (empty ones too), is past the cap."""
    t = StreamTally()
    for p in pieces:
        t.feed(chunk(p))
    assert t.events == events and t.cut(4) and t.finish == "length"
    assert not t.cut(None)  # no cap asked: nothing to cut at


def test_a_reply_within_its_cap_is_not_cut():
    t = StreamTally()
    for p in ["ab"] * 10:
        t.feed(chunk(p))
    assert not t.cut(4) and t.finish is None


def test_the_relay_shows_what_a_resent_try_repeats_once():
    shown: list[str] = []
    relay = Relay(shown.append)
    on = relay.restart()
    on("fn ")
    on("ma")          # the connection dies here; the same body is sent again
    on = relay.restart()
    on("fn main")     # repeats what was shown, then 2 new characters
    on("() {}")
    assert "".join(shown) == "fn main() {}" and shown[-2:] == ["in", "() {}"]
    assert Relay(None).restart() is None  # nothing to show: no callback at all


@pytest.mark.parametrize("started,left,retries,want", [
    (False, 2, 2, None),   # failed before the reply began: openai's own retries were spent there
    (True, 0, 2, None),    # no try left
    (True, 2, 2, 0.5),     # the first re-send waits 0.5 s, then twice as long each time
    (True, 1, 2, 1.0),
    (True, 1, 3, 2.0)])
def test_resend_delay(started, left, retries, want):
    assert resend_delay(started, left, retries) == want


def _ask(url: str, retries: int):
    async def go():
        async with openai.AsyncOpenAI(base_url=url, api_key="k", timeout=1, max_retries=0) as ac:
            return await stream_chat(ac, retries, model="m", messages=[{"role": "user", "content": "hi"}],
                                     max_tokens=8, seed=11)
    return asyncio.run(go())


def test_stream_chat_resends_a_reply_that_stops_with_the_same_body():
    srv = Trickle(lambda body: ["駅に", "着いた"], gap=0.02, stall=(0,))
    try:
        r = _ask(srv.url, retries=1)
        assert r.text == "駅に着いた" and r.finish_reason == "stop"
        assert len(srv.bodies) == 2 and srv.bodies[0] == srv.bodies[1] and srv.bodies[1]["seed"] == 11
    finally:
        srv.close()


def test_stream_chat_gives_up_after_its_retries():
    srv = Trickle(lambda body: ["駅に", "着いた"], gap=0.02, stall=(0, 1))
    try:
        with pytest.raises(openai.APITimeoutError):
            _ask(srv.url, retries=1)
        assert len(srv.bodies) == 2
    finally:
        srv.close()
