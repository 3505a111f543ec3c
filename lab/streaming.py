"""A chat completion streamed: the Result, the tally of its events, one text shown once over re-sent tries, and
the async request that re-sends a reply cut off mid-stream with the same body."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.messages import after_refusal, split_text, system_first

if TYPE_CHECKING:  # openai is imported where used: `lab` starts without it (test_cli)
    import openai

# A token covers a few characters (Qwen: ~1 of Japanese, ~4 of English), so a text over 16 characters a token
# of a limit is over it without asking: a 104,857,600-character line (an EPUB's one paragraph) sent whole to
# /tokenize took vLLM's API server to 22 GB and the OOM killer on a 24 GB machine (2026-12-05)
CHARS_PER_TOKEN = 16


@dataclass
class Result:
    """One completion with its timings (seconds) and token counts."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    e2e: float
    ttft: float | None = None
    itl: list[float] = field(default_factory=list)
    error: str | None = None
    reasoning: str = ""   # a thinking model's reasoning, apart from the answer in `text`


class StreamTally:
    """Accumulates streamed chunks: text, TTFT, inter-token latencies, finish reason, usage."""

    def __init__(self, on_text: Any = None) -> None:
        self.t0 = self.last = time.perf_counter()
        self.ttft: float | None = None
        self.itl: list[float] = []
        self.parts: list[str] = []
        self.thoughts: list[str] = []
        self.finish: str | None = None
        self.usage: Any = None
        self.on_text = on_text
        self.events = self.chars = 0

    def cut(self, max_tokens: int | None) -> bool:
        """Whether to stop reading: the reply is far past what `max_tokens` allows, and so reads as truncated, as
        vLLM cuts at the cap. A server that ignores the cap (or sends empty events for ever, each within the
        timeout) would otherwise hold a run and fill memory without end."""
        if max_tokens and (self.chars > CHARS_PER_TOKEN * max_tokens or self.events > 2 * max_tokens + 64):
            self.finish = "length"
            return True
        return False

    def feed(self, chunk: Any) -> None:
        self.events += 1
        if not hasattr(chunk, "choices"):  # `data: 5`: the SDK hands the event over as it came
            raise ValueError("a streamed event that is not a chat completion chunk")
        if getattr(chunk, "usage", None):
            self.usage = chunk.usage
        if not chunk.choices:
            return
        delta = getattr(chunk.choices[0], "delta", None)
        if delta is None:  # an event without a delta generated nothing
            return
        extra = getattr(delta, "model_extra", None) or {}
        thought = extra.get("reasoning") or extra.get("reasoning_content") or ""
        self.thoughts.append(thought)
        piece = delta.content or ""
        self.chars += len(piece) + len(thought)
        now = time.perf_counter()
        if piece or thought:  # a reasoning token is a generated token too (TTFT, ITL)
            if self.ttft is None:
                self.ttft = now - self.t0
            else:
                self.itl.append(now - self.last)
            self.last = now
            self.parts.append(piece)
            if self.on_text and piece:
                self.on_text(piece)
        self.finish = chunk.choices[0].finish_reason or self.finish

    def result(self) -> Result:
        u = self.usage
        text, reasoning = split_text("".join(self.parts), "".join(self.thoughts))
        return Result(text, self.finish, u.prompt_tokens if u else 0,
                      u.completion_tokens if u else len(self.parts), time.perf_counter() - self.t0,
                      self.ttft, self.itl, reasoning=reasoning)


class Relay:
    """Hands on_text each stretch of a reply's text once over its tries: a try re-sent after a cut-off (same body,
    same seed) repeats what was shown already."""

    def __init__(self, on_text: Any) -> None:
        self.on_text, self.shown, self.pos = on_text, 0, 0

    def restart(self) -> Any:
        """The callback for one try (None without on_text)."""
        self.pos = 0
        return self if self.on_text else None

    def __call__(self, piece: str) -> None:
        end = self.pos + len(piece)
        if end > self.shown:
            self.on_text(piece[max(0, self.shown - self.pos):])
            self.shown = end
        self.pos = end


def resend_delay(started: bool, left: int, retries: int) -> float | None:
    """Seconds to wait before a reply whose connection failed is sent again (same body, same seed); None when it
    is not: it failed before the reply began (openai's own retries were spent there) or no try is left."""
    return 0.5 * 2 ** (retries - left) if started and left else None


async def stream_chat(ac: openai.AsyncOpenAI, retries: int, on_text: Any = None, **kw: Any) -> Result:
    """One chat completion, streamed, as a Result. The client's timeout then bounds the wait for each token (the
    first included) instead of the whole reply: the 1.5B on 2 cores needed 225 s for one 26-line chunk, past a
    120 s bound on the whole request, and a try thrown away at 120 s is work lost. A connection that fails
    mid-reply (a dead endpoint, no token within the timeout) is re-sent with the same body, so the same seed, up
    to `retries` times, as openai itself re-sends failures before the reply starts. on_text(piece) gets each
    stretch of the answer once over the tries (Relay)."""
    import openai
    relay = Relay(on_text)
    for left in range(retries, -1, -1):
        tally, started = StreamTally(relay.restart()), False
        try:
            kw = system_first(ac.base_url, kw)
            try:
                s = await ac.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw)
            except openai.BadRequestError as e:  # no system turn in this model's template: once more without it
                kw = after_refusal(ac.base_url, kw, e)
                s = await ac.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw)
            started = True
            try:
                async for chunk in s:
                    tally.feed(chunk)
                    if tally.cut(kw.get("max_tokens")):
                        break
            finally:  # also when an event is not a chunk: else the open stream is closed at garbage collection,
                await s.close()  # which printed an asyncio error beside the run's one line
        except openai.APIConnectionError:  # timeouts included
            wait = resend_delay(started, left, retries)
            if wait is None:
                raise
            await asyncio.sleep(wait)
            continue
        if not tally.events:  # a JSON (or HTML) body where events were asked for
            raise ValueError("the streamed reply held no server-sent events")
        r = tally.result()
        if r.finish_reason is None and not r.text and not r.reasoning:  # events, but not one choice in them
            raise ValueError("a completion without choices")
        return r
    raise AssertionError("unreachable: the last try returns or raises")
