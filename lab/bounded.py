"""HTTP clients for the openai SDK whose replies are bounded in bytes and in time between server-sent events.

The SDK's read timeout bounds the wait for each network read, not for a reply: a server (or a proxy) that sends
an SSE comment every second held `lab chat` for ever, and one that streamed a single line without a newline
grew it to 1.4 GB in 30 s (measured 2026-12-06), since the event decoder keeps a line until it ends."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx2

if TYPE_CHECKING:  # openai is imported where used: `lab` starts without it (test_cli)
    import openai

# A reply of 64 MiB is far past any honest one: vLLM streams ~250 bytes an event, one event a token, so 32k tokens
# are ~8 MB; the cap bounds what a hostile or broken server can make the client hold
MAX_REPLY_BYTES = 64 << 20
EVENT = b"data:"  # every SSE event vLLM (and OpenAI) sends has a data field; comments and padding have none


class _Guard:
    """Counts a reply's bytes and the time since its last event (a whole non-SSE body counts as one wait)."""

    def __init__(self, response: httpx2.Response) -> None:
        timeout = (response.request.extensions.get("timeout") or {}).get("read")
        self.limit_s = float(timeout) if timeout else None
        self.last = time.monotonic()
        self.total, self.tail, self.url = 0, b"", str(response.request.url)

    def check(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.total > MAX_REPLY_BYTES:
            raise ValueError(f"a reply over {MAX_REPLY_BYTES >> 20} MiB")
        seen, now = self.tail + chunk, time.monotonic()
        self.tail = seen[-(len(EVENT) - 1):]
        if EVENT in seen:
            self.last = now
        elif self.limit_s and now - self.last > self.limit_s:
            raise httpx2.ReadTimeout(f"no event within {self.limit_s:.0f} s from {self.url}, though bytes came")


class _SyncBounded(httpx2.SyncByteStream):
    def __init__(self, inner: Any, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.guard.check(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class _AsyncBounded(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.guard.check(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


def _plain(response: httpx2.Response) -> None:
    """Refuse a compressed reply: its bytes on the wire would not bound what it decodes to (a gzip bomb)."""
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise ValueError(f"a reply in {coding[:20]} though only identity was accepted")


def _bound_sync(response: httpx2.Response) -> None:
    _plain(response)
    response.stream = _SyncBounded(response.stream, _Guard(response))


async def _bound_async(response: httpx2.Response) -> None:
    _plain(response)
    response.stream = _AsyncBounded(response.stream, _Guard(response))


IDENTITY = {"Accept-Encoding": "identity"}


def sync_http() -> openai.DefaultHttpxClient:
    """openai's own sync HTTP client (pool and defaults kept) with bounded replies."""
    import openai
    return openai.DefaultHttpxClient(headers=IDENTITY, event_hooks={"response": [_bound_sync]})


def async_http() -> openai.DefaultAsyncHttpxClient:
    """openai's own async HTTP client (its 1000-connection pool kept) with bounded replies."""
    import openai
    return openai.DefaultAsyncHttpxClient(headers=IDENTITY, event_hooks={"response": [_bound_async]})
