"""The one-line errors of talking to an OpenAI-compatible server: a class per cause, mapped from openai's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lab import LabError

if TYPE_CHECKING:  # openai is imported where used: `lab` starts without it (test_cli)
    import openai


class ServerError(LabError):
    """Something went wrong talking to an OpenAI-compatible server; the message names it and what to do."""


class ServerUnreachable(ServerError):
    """Nothing answers at the URL (connection refused, DNS, reset)."""


class ServerTimeout(ServerError):
    """The server did not answer within the request timeout."""


class AuthError(ServerError):
    """401/403: wrong or missing API key."""


class BadRequest(ServerError):
    """400/422: the server rejected the request; its own message is kept."""


class ModelNotFound(ServerError):
    """404: the server does not serve the model (or the path)."""


class ServerFailed(ServerError):
    """429 or 5xx after the client's retries."""


def server_message(e: openai.APIStatusError) -> str:
    """The server's own one-line message from an error body (vLLM: {"message": ...}; OpenAI: {"error": {...}})."""
    body = e.body
    msg = None
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        msg = inner.get("message") or body.get("detail")
    text = str(msg or e.message or type(e).__name__)
    return " ".join(text.split())[:300]


def server_error(e: BaseException, base_url: str) -> ServerError:
    """One LabError subclass with a one-line message for an openai (or httpx) error from `base_url`."""
    import openai
    where = f"server {base_url}"
    if isinstance(e, openai.APITimeoutError):
        return ServerTimeout(f"{where} did not answer in time (request timeout); it may be overloaded or hung: "
                             f"check `lab serve status` and its log")
    if isinstance(e, openai.APIConnectionError):
        return ServerUnreachable(f"no server answers at {base_url}: start one with `lab serve start` "
                                 f"or check the URL")
    if isinstance(e, openai.APIStatusError):
        code, msg = e.status_code, server_message(e)
        if code in (401, 403):
            return AuthError(f"{where} rejected the API key ({code}): set LAB_API_KEY to the key it was started with")
        if code == 404:
            return ModelNotFound(f"{where} answered 404 ({msg}): list its models with `lab serve status`")
        if code in (400, 422):
            hint = ("; the model has no chat template (a base model?): serve its Instruct version, or give one with "
                    "extra_args = [\"--chat-template\", \"FILE.jinja\"] in the profile's [serve]"
                    if "chat template" in msg.lower() else "")
            return BadRequest(f"{where} rejected the request ({code}): {msg}{hint}")
        return ServerFailed(f"{where} failed with {code} after retries: {msg}")
    if type(e) is openai.APIError:  # an error event mid-stream (vLLM: "EngineCore encountered an issue. See
        # stack trace (above)..."): that trace is in the server's log, not above
        return ServerFailed(f"{where} reported an error mid-reply: {' '.join(str(e.message).split())[:300]} "
                            f"(its log: `lab serve logs`)")
    return ServerError(f"{where}: {type(e).__name__}: {' '.join(str(e).split())[:300]}")


@contextmanager
def server_errors(base_url: str) -> Iterator[None]:
    """Turn openai errors raised inside the block into ServerError subclasses."""
    import openai
    try:
        yield
    except openai.OpenAIError as e:
        raise server_error(e, base_url) from None
    except (ValueError, RecursionError) as e:  # not JSON (JSONDecodeError), nested past the parser, not the shape
        raise not_openai(base_url, e) from None


def not_openai(base_url: str, e: BaseException) -> ServerError:
    """The one line for a reply that is not an OpenAI chat completion (HTML, JSON of another shape, no choices)."""
    why = "nested too deeply to parse" if isinstance(e, RecursionError) else " ".join(str(e).split())[:120]
    return ServerError(f"server {base_url} sent a reply that is not OpenAI-compatible JSON ({why}): is the URL an "
                       f"OpenAI-compatible /v1?")
