"""OpenAI-compatible client: served model from the server, chat, streaming, concurrent batches."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lab import LabError, workers
from lab.messages import defuse, messages_of, send_folded, split_reasoning
from lab.server_errors import ServerTimeout, not_openai, server_error, server_errors
from lab.streaming import CHARS_PER_TOKEN, Relay, Result, StreamTally, resend_delay, stream_chat

if TYPE_CHECKING:  # openai is imported where used: `lab` starts without it (test_cli)
    import openai

TIMEOUT_S = 300.0  # one request; a 32B model writing 8k tokens at ~30 tok/s needs ~270 s
MAX_RETRIES = 3     # the openai client retries 408/409/429/5xx and connection errors with backoff
PROBE_S = 10.0      # /v1/models: answered by vLLM's API process in milliseconds, also while it generates
TOKENIZE_S = 30.0   # /tokenize: milliseconds in the API process; 30 s leaves room for a 2-core server at full load


def model_entries(body: Any) -> list[dict[str, Any]]:
    """The models of a /v1/models body as {id, max_model_len, root, parent}, max_model_len a positive int or None;
    ValueError for any other shape (a hostile or foreign server: `"data": 5`, entries without an id)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]
                                             for m in data):
        raise ValueError("/v1/models holds no list of models with ids")
    out = []
    for m in data:
        n = m.get("max_model_len")
        ok = isinstance(n, int) and not isinstance(n, bool) and n > 0
        out.append({"id": m["id"], "max_model_len": n if ok else None, "root": m.get("root"),
                    "parent": m.get("parent")})
    return out


CANCEL_WAIT_S = 10.0  # an interrupted coroutine's clean-up (closing clients, a cache write) takes milliseconds


def run_sync(coro: Any) -> Any:
    """asyncio.run, also from inside a running loop (a notebook kernel): then on a worker thread (workers.run_all),
    and an interrupt of the caller (the cell's) cancels the coroutine and is raised at once. A thread pool there
    waited for the coroutine to finish: an interrupted translation or benchmark held the kernel busy to its end."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import threading
    box: dict[str, Any] = {}
    started, finished = threading.Event(), threading.Event()

    async def main() -> Any:
        box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        try:
            return await coro
        finally:
            finished.set()  # its clean-up has run
    try:
        return workers.run_all(lambda _: asyncio.run(main()), [None], 1)[0]
    except BaseException:
        if started.wait(1) and not finished.is_set():
            with contextlib.suppress(RuntimeError):  # the loop closed just now: nothing left to cancel
                box["loop"].call_soon_threadsafe(box["task"].cancel)
            finished.wait(CANCEL_WAIT_S)
        raise


def root_url(base_url: str) -> str:
    """The server root of an OpenAI base URL (http://h:p/v1 -> http://h:p), where /health and /tokenize live."""
    return base_url.rstrip("/").rsplit("/v1", 1)[0]


def context_room(max_model_len: int, prompt_tokens: int) -> int:
    """Tokens left for the reply after a prompt (8 spare: chat templates add a few at generation)."""
    return max_model_len - prompt_tokens - 8


def _result(r: Any, e2e: float) -> Result:
    """A Result from a non-streamed chat completion (usage may be missing on other servers); reasoning apart."""
    if not getattr(r, "choices", None):
        raise ValueError("a completion without choices")
    u = r.usage
    text, reasoning = split_reasoning(r.choices[0].message)
    return Result(text, r.choices[0].finish_reason, u.prompt_tokens if u else 0, u.completion_tokens if u else 0,
                  e2e, reasoning=reasoning)


class Client:
    """Thin layer over the official openai client; the model name always comes from the server."""

    def __init__(self, base_url: str, api_key: str = "EMPTY", model: str | None = None,
                 timeout: float = TIMEOUT_S, max_retries: int = MAX_RETRIES) -> None:
        import openai

        from lab import bounded  # loads httpx2: at first use, as openai
        self.base_url, self._api_key = base_url.rstrip("/"), api_key or "EMPTY"
        self.timeout, self.max_retries = timeout, max_retries
        self.sync = openai.OpenAI(base_url=self.base_url, api_key=self._api_key, timeout=timeout,
                                  max_retries=max_retries, http_client=bounded.sync_http())
        self._models: list[dict[str, Any]] | None = None
        self._model = model

    @property
    def api_key(self) -> str:
        """The key this client sends (for clients of its own: the bench's light client, SACToR's config)."""
        return self._api_key

    def models(self, refresh: bool = False) -> list[dict[str, Any]]:
        """The server's /v1/models entries (id, max_model_len, root, parent).

        The first call to a server is also its health check, so it has a short bound of its own: a server
        that accepts connections but never answers fails here in PROBE_S seconds, not after the request
        timeout and every retry (4 x 120 s)."""
        if self._models is None or refresh:
            try:
                with server_errors(self.base_url):
                    # the raw JSON, checked here: the SDK's page of a `[1]` body crashed with AttributeError
                    body = self.sync.with_options(timeout=min(self.timeout, PROBE_S), max_retries=1).get(
                        "/models", cast_to=object)
                    self._models = model_entries(body)
            except ServerTimeout:
                raise ServerTimeout(f"server {self.base_url} accepted the connection but did not answer /v1/models "
                                    f"within {min(self.timeout, PROBE_S):.0f} s (twice): is it hung, or not an "
                                    f"OpenAI-compatible server? `lab serve status` and its log tell") from None
        return self._models

    @property
    def model(self) -> str:
        """Served model name: the one asked for if the server has it, else the server's first base model."""
        ids = [m["id"] for m in self.models()]
        if self._model:
            if self._model not in ids:
                raise LabError(f"server at {self.base_url} has no model {self._model!r}; it serves {ids}")
            return self._model
        if not ids:
            raise LabError(f"server at {self.base_url} lists no models")
        base = [m["id"] for m in self.models() if not m.get("parent")]
        return (base or ids)[0]

    @property
    def max_model_len(self) -> int:
        """Context length the server reports for the model (vLLM adds max_model_len to /v1/models)."""
        for m in self.models():
            if m["id"] == self.model and m["max_model_len"]:
                return m["max_model_len"]
        return 4096

    def _tokenize(self, body: dict[str, Any], fallback: int, chars: int) -> int:
        """vLLM's /tokenize count for a request body; `fallback` when the server has no such endpoint.

        Any other failure is an error, never the fallback: chunk boundaries follow these counts, and a
        count that fell back on a dropped connection changed a run's output (UTF-8 bytes are ~3x tokens).
        A text of more than CHARS_PER_TOKEN characters a token of the context is not sent: it cannot fit,
        and its count is given as chars / CHARS_PER_TOKEN rounded up, a lower bound already over the context."""
        import openai
        if chars > CHARS_PER_TOKEN * self.max_model_len:
            return -(-chars // CHARS_PER_TOKEN)
        bound = min(self.timeout, TOKENIZE_S)  # a hung server would otherwise hold a run silent for 3 x 120 s
        post = self.sync.with_options(timeout=bound, max_retries=1).post
        try:  # /tokenize applies the chat template too: a count is folded as its request will be sent
            got = send_folded(self.base_url, lambda b: post(f"{root_url(self.base_url)}/tokenize", cast_to=object,
                                                            body=b), {"model": self.model, **body})
        except openai.APITimeoutError:
            raise ServerTimeout(f"server {self.base_url} did not answer /tokenize within {bound:.0f} s (twice), "
                                f"though it lists its models: hung? `lab serve status` and its log tell") from None
        except openai.APIStatusError as e:
            if e.status_code in (404, 405, 501):  # no /tokenize here (not vLLM): bytes, for the whole run
                return fallback
            raise server_error(e, self.base_url) from None
        except openai.OpenAIError as e:
            raise server_error(e, self.base_url) from None
        n = got.get("count") if isinstance(got, dict) else None
        # only a count is a count: -5 packed chunks with negative budgets, 1e308 became a 309-digit prompt size
        return n if type(n) is int and n >= 0 else fallback

    def count_tokens(self, prompt: str | list[dict[str, str]]) -> int:
        """Prompt tokens as the server counts them (chat template applied); falls back to the UTF-8
        byte count, an upper bound for byte-level BPE tokenizers."""
        msgs = messages_of(prompt)
        return self._tokenize({"messages": msgs, "add_generation_prompt": True},
                              sum(len(m["content"].encode()) + 8 for m in msgs), sum(len(m["content"]) for m in msgs))

    def count_text(self, text: str) -> int:
        """Tokens of a plain text by the server's tokenizer; UTF-8 bytes as a fallback."""
        return self._tokenize({"prompt": defuse(text), "add_special_tokens": False}, len(text.encode()), len(text))

    def _kw(self, model: str | None, **kw: Any) -> dict[str, Any]:
        kw.setdefault("temperature", 0.0)
        extra = kw.pop("extra_body", None) or {}
        if kw.pop("thinking", None) is False:
            extra.setdefault("chat_template_kwargs", {})["enable_thinking"] = False
        if kw.pop("ignore_eos", False):
            extra["ignore_eos"] = True
        return {"model": model or self.model, **kw, **({"extra_body": extra} if extra else {})}

    def chat(self, prompt: str | list[dict[str, str]], model: str | None = None,
             system: str | None = None, **kw: Any) -> Result:
        """One chat completion (blocking)."""
        t0 = time.perf_counter()
        with server_errors(self.base_url):
            r = self._create(messages_of(prompt, system), **self._kw(model, **kw))
            return _result(r, time.perf_counter() - t0)

    def _create(self, messages: list[dict[str, str]], **kw: Any) -> Any:
        """chat.completions.create, sent once more with the system prompt folded into the user turn when the
        model's template refuses a system role."""
        return send_folded(self.base_url, lambda k: self.sync.chat.completions.create(**k),
                           {"messages": messages, **kw})

    def complete(self, prompt: str | list[dict[str, str]], model: str | None = None, **kw: Any) -> Result:
        """One chat completion (blocking), streamed underneath (stream_chat): the timeout bounds each token's wait,
        so a long reply on a slow CPU is not cut off and sent again while it is being written."""
        async def go() -> Result:
            ac = self.async_client()
            try:
                with server_errors(self.base_url):
                    return await stream_chat(ac, self.max_retries, messages=messages_of(prompt),
                                             **self._kw(model, **kw))
            finally:
                await ac.close()
        return run_sync(go())

    def stream(self, prompt: str | list[dict[str, str]], model: str | None = None,
               system: str | None = None, on_text: Any = None, **kw: Any) -> Result:
        """Streamed chat completion: measures TTFT and inter-token latencies; on_text(piece) per chunk. A reply
        cut off mid-stream is sent again unchanged (same seed), as stream_chat does, its text shown once. Blocking,
        not stream_chat in run_sync: in a notebook that runs it in a worker thread, and the playground's on_text
        prints inside `with output:`, which captures the kernel's own thread only."""
        import openai
        relay, body = Relay(on_text), self._kw(model, **kw)
        with server_errors(self.base_url):
            for left in range(self.max_retries, -1, -1):
                tally, started = StreamTally(relay.restart()), False
                try:
                    stream = self._create(messages_of(prompt, system), stream=True,
                                          stream_options={"include_usage": True}, **body)
                    started = True
                    try:
                        for chunk in stream:
                            tally.feed(chunk)
                            if tally.cut(kw.get("max_tokens")):
                                break
                    finally:
                        stream.close()
                except openai.APIConnectionError:
                    wait = resend_delay(started, left, self.max_retries)
                    if wait is None:
                        raise
                    time.sleep(wait)
                    continue
                break
            if not tally.events:
                raise ValueError("the streamed reply held no server-sent events")
        return tally.result()

    def async_client(self) -> openai.AsyncOpenAI:
        """An AsyncOpenAI on openai's own HTTP client (1000 connections) with bounded replies. Never an `httpx`
        client: openai 3.x runs on httpx2, and with an httpx 0.28 client requests went out one at a time
        (measured at concurrency 32 on the tiny server: ~800 tok/s, the same as concurrency 1)."""
        import openai

        from lab import bounded  # loads httpx2: at first use, as openai
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self.timeout,
                                  max_retries=self.max_retries, http_client=bounded.async_http())

    async def _one(self, ac: openai.AsyncOpenAI, sem: asyncio.Semaphore, prompt: Any,
                   stream: bool, kw: dict[str, Any]) -> Result:
        import openai
        async with sem:
            t0 = time.perf_counter()
            try:
                if not stream:
                    r = await ac.chat.completions.create(messages=messages_of(prompt), **kw)
                    return _result(r, time.perf_counter() - t0)
                return await stream_chat(ac, 0, messages=messages_of(prompt), **kw)
            except openai.OpenAIError as e:
                return Result("", None, 0, 0, time.perf_counter() - t0, error=str(server_error(e, self.base_url)))
            except (ValueError, RecursionError) as e:  # a reply of another shape fails its request, not the batch
                return Result("", None, 0, 0, time.perf_counter() - t0, error=str(not_openai(self.base_url, e)))

    async def abatch(self, prompts: Iterable[Any], concurrency: int = 8, stream: bool = False,
                     model: str | None = None, **kw: Any) -> list[Result]:
        """Send prompts with at most `concurrency` in flight; results in prompt order."""
        if concurrency < 1:
            raise LabError(f"concurrency must be >= 1, got {concurrency}")
        kw = self._kw(model, **kw)
        ac = self.async_client()
        sem = asyncio.Semaphore(concurrency)
        try:
            return list(await asyncio.gather(*[self._one(ac, sem, p, stream, kw) for p in prompts]))
        finally:
            await ac.close()

    def batch(self, prompts: Iterable[Any], concurrency: int = 8, stream: bool = False, **kw: Any) -> list[Result]:
        """Blocking wrapper of abatch that also works inside a running notebook event loop."""
        return run_sync(self.abatch(list(prompts), concurrency, stream, **kw))

    def timed_batch(self, prompts: Iterable[Any], concurrency: int = 8, stream: bool = False,
                    **kw: Any) -> dict[str, Any]:
        """One batch, timed: its concurrency and throughput row (what notebook 01 and `bench suite` print)."""
        t0 = time.perf_counter()
        res = self.batch(prompts, concurrency, stream, **kw)
        return {"concurrency": concurrency, **throughput(res, time.perf_counter() - t0)}


def throughput(results: list[Result], wall: float) -> dict[str, Any]:
    """Aggregate numbers of a batch: output tokens/s, requests/s, failed requests (bench.metrics adds latencies)."""
    ok = [r for r in results if not r.error]
    toks = sum(r.completion_tokens for r in ok)
    return {"requests": len(results), "failed": len(results) - len(ok), "wall_s": round(wall, 3),
            "output_tokens": toks, "output_tok_s": round(toks / wall, 1) if wall > 0 else 0.0,
            "req_s": round(len(ok) / wall, 3) if wall > 0 else 0.0}
