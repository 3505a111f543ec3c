"""Several OpenAI endpoints as one: fewest requests in flight first, a failing endpoint leaves and comes back."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab import LabError
from lab.client import model_entries

if TYPE_CHECKING:  # openai is imported where used: `lab` starts without it (test_cli)
    import openai

PROBE_EVERY_S = 5.0   # a failed endpoint is asked /v1/models at most this often
PROBE_TIMEOUT_S = 3.0


def _down() -> tuple[type[BaseException], ...]:
    """The errors that mark an endpoint down (timeouts included)."""
    import openai
    return openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError


class NoEndpoint(LabError):
    """Every endpoint failed for one request."""


@dataclass
class Endpoint:
    url: str
    client: openai.AsyncOpenAI
    in_flight: int = 0
    down: bool = False
    error: str = ""
    next_probe: float = 0.0


@dataclass
class Pool:
    """Sends each request to a working endpoint; moves it to another when one fails (bounded: once each)."""

    endpoints: list[Endpoint]
    retries: int = 2
    say: Callable[[str], None] = print

    async def call(self, send: Callable[[openai.AsyncOpenAI], Awaitable[Any]]) -> tuple[Any, str]:
        """send(client) on the endpoint with the fewest requests in flight; (result, url). A failure moves the
        request to the next endpoint; NoEndpoint when each has failed it (or is down and does not answer)."""
        tried: set[str] = set()
        while True:
            ep = await self._pick(tried)
            if ep is None:
                raise NoEndpoint(self._why())
            ep.in_flight += 1
            try:
                res = await send(ep.client)
            except _down() as e:
                tried.add(ep.url)
                self._fail(ep, e)
                continue
            finally:
                ep.in_flight -= 1
            return res, ep.url

    def _why(self) -> str:
        if len(self.endpoints) == 1:
            ep = self.endpoints[0]
            return f"server {ep.url} failed after {self.retries} retries ({ep.error})"
        return "no endpoint answers: " + ", ".join(f"{e.url} ({e.error or 'down'})" for e in self.endpoints)

    def _fail(self, ep: Endpoint, e: BaseException) -> None:
        ep.error = type(e).__name__
        if not ep.down:
            ep.down, ep.next_probe = True, time.monotonic() + PROBE_EVERY_S
            up = sum(not x.down for x in self.endpoints)
            if len(self.endpoints) > 1:
                self.say(f"translate: endpoint {ep.url} failed ({ep.error}); {up} other(s) carry on, "
                         f"its requests move to them")

    async def _pick(self, tried: set[str]) -> Endpoint | None:
        now = time.monotonic()
        for ep in self.endpoints:
            if ep.down and ep.url not in tried and now >= ep.next_probe:
                await self._probe(ep)
        up = [e for e in self.endpoints if not e.down and e.url not in tried]
        if not up:
            return None
        return min(up, key=lambda e: (e.in_flight, self.endpoints.index(e)))

    async def _probe(self, ep: Endpoint) -> None:
        import openai
        ep.next_probe = time.monotonic() + PROBE_EVERY_S
        try:
            model_entries(await ep.client.with_options(timeout=PROBE_TIMEOUT_S, max_retries=0).get(
                "/models", cast_to=object))
        except (openai.OpenAIError, ValueError, RecursionError):  # down, or not (yet) an OpenAI server again
            return
        ep.down, ep.error = False, ""
        self.say(f"translate: endpoint {ep.url} answers again; back in the rotation")
