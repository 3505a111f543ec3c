"""JA -> ZH long-text pipeline: workers over chunks, checks and seeded retries, failover, resumable cache."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import LabError, locks, paths
from lab.client import Client, Result, context_room, run_sync
from lab.server_errors import ServerError, not_openai, server_error
from lab.streaming import stream_chat
from lab.translate import sources
from lab.translate.cache import ChunkCache, text_hash
from lab.translate.checks import checks, clean, failing, lines_of
from lab.translate.chunking import LONG_TEXT, OUTPUT_RATIO, Chunk, chunk_budget, make_chunks, max_tokens_for
from lab.translate.document import FAILED_MARK, Doc, halves, load_fixes, lookup, save_manifest, untranslated
from lab.translate.endpoints import Endpoint, NoEndpoint, Pool
from lab.translate.outputs import refuse_overwrites, write_all
from lab.translate.prompts import CHINESE_ONLY, PromptSpec, feedback, terms_in, with_feedback

if TYPE_CHECKING:  # openai is imported where used: `lab` starts without it (test_cli)
    import openai

__all__ = ["FAILED_MARK", "Abort", "Settings", "Translator"]


class Abort(LabError):
    """No endpoint answers, or the server refused a request: stop, keep what is done."""


@dataclass
class Settings:
    """Everything a translation run needs besides the input."""

    out: Path
    endpoints: list[str]
    spec: PromptSpec = field(default_factory=PromptSpec)
    model: str | None = None
    api_key: str = "EMPTY"
    concurrency: int = 8
    rps: float | None = None      # optional cap on request starts per second
    attempts: int = 3             # per chunk size, before splitting
    feedback: bool = False        # a retry shows the model its rejected reply and what was wrong with it (off:
    # measured on 0.5B/1.5B, it rescued no more chunks than sampling alone; see the README)
    split: bool = True
    # A reply with the wrong line count splits a chunk of several lines at once: retrying it whole rescued 0 of 6
    # such replies on the 1.5B and 26 of 309 chunks on the 0.5B; at once, the samples took 118 s instead of 297 s
    # on the 1.5B (the same bytes) and 48 s instead of 115 s on the 0.5B; on another text a whole retry mended it
    # (191 s against 254 s split): 1 of 4 such 1.5B chunks, so splitting still costs less on average (README)
    split_at_once: bool = True
    chunk_tokens: int = 512       # user cap on source tokens per chunk (the context may force less)
    max_tokens: int = 4096
    temperature: float = 0.0
    timeout: float = 120.0
    retries: int = 2              # transport retries per endpoint (openai client: backoff 0.5 s, 1 s, ...)
    thinking: bool = False        # False sends enable_thinking=False (Qwen3 templates skip <think>)
    aozora: bool | None = None    # None: detected from the text's markup
    bilingual: bool = False
    epub: bool = False
    resume: bool = True
    log_text: bool = True         # False keeps source and target text out of the per-document logs
    progress_every_s: float = 10.0


def seed_of(text: str, attempt: int) -> int:
    """Sampling seed of one attempt at one chunk: reruns, resumed runs and any concurrency ask the same."""
    return int(text_hash(f"{attempt}\n{text}")[:8], 16)


class Translator:
    """One run over one file or a folder of files."""

    def __init__(self, s: Settings) -> None:
        if s.concurrency < 1:
            raise LabError(f"--concurrency must be >= 1, got {s.concurrency}")
        if not s.endpoints:
            raise LabError("no endpoint: give --profile or --base-url")
        self.s = s
        self.clients = [Client(u, api_key=s.api_key, model=s.model, timeout=s.timeout, max_retries=s.retries)
                        for u in s.endpoints]
        first = self._first_answering()  # asks for the model: also checks a server is up before any work
        self.model, self.max_model_len = first.model, first.max_model_len
        self.counter = first  # token counts (chunk boundaries) from one answering server
        spec = s.spec
        # The glossary is not in the run fingerprint: each chunk's key adds the entries it uses (Doc.piece_fp).
        self.fp = text_hash(json.dumps([spec.fingerprint(glossary=False), self.model, s.temperature, s.thinking],
                                       ensure_ascii=False))[:8]
        self.stats: dict[str, Any] = {"requests": 0, "cached": 0, "reused": 0, "failed_units": 0, "output_tokens": 0,
                                      "retries": 0, "splits": 0, "rejected": {}, "rescued_by_retry": 0,
                                      "rescued_by_split": 0}
        self.thinks = s.thinking  # becomes True when replies carry reasoning although it was not asked for
        self._tok_cache: dict[str, int] = {}
        self._in_flight: dict[object, float] = {}  # request -> start (progress lines say what is awaited)
        self._streamed: dict[object, int] = {}  # request in flight -> pieces of its reply so far (~ tokens)
        self._last_start = -math.inf  # the first request starts at once, whatever --rps
        self.cache = ChunkCache(s.out, s.resume)
        self._logs: dict[str, Any] = {}  # one open log per document (no reopen per request on 2 cores)

    def _first_answering(self) -> Client:
        errors = []
        for c in self.clients:
            try:
                _ = c.model
                return c
            except LabError as e:
                errors.append(str(e))
        raise LabError(errors[0] if len(errors) == 1 else "no endpoint answers: " + "; ".join(errors))

    # -- preparation -------------------------------------------------------------------------
    def count(self, text: str) -> int:
        """Tokens of a text as the server's tokenizer counts them (cached per line)."""
        if text and text not in self._tok_cache:
            self._tok_cache[text] = self.counter.count_text(text)
        return self._tok_cache.get(text, 0)

    def _gloss_tokens(self, text: str) -> int:
        """Tokens of the glossary block a prompt for `text` carries (0 without matching terms)."""
        block = self.s.spec.glossary_block(text)
        return self.count(block) if block else 0

    def prepare(self, path: str | Path | list[sources.Source]) -> list[Doc]:
        """Read (unless given), decode and chunk every input; nothing is sent or written yet."""
        srcs = path if isinstance(path, list) else sources.load(path, self.s.out, self.s.aozora)
        spec = self.s.spec
        self.overhead = self.counter.count_tokens(spec.messages(Chunk(0, []))) + self.count(spec.longest_note()) + 16
        budget = chunk_budget(self.max_model_len, self.overhead, self.s.chunk_tokens)
        hard = chunk_budget(self.max_model_len, self.overhead, 10**9)
        src_budget = budget * 2 // 3 if spec.context_lines else budget  # the rest carries context lines
        docs = []
        for src in srcs:
            lines = src.text.split("\n")
            if len(src.text) > LONG_TEXT and self.s.progress_every_s > 0:  # what the silence is, while it lasts
                print(paths.one_line(f"translate: counting {src.name}'s {len(src.text):,} characters on the server"),
                      flush=True)
            try:
                # A chunk's prompt carries only the glossary terms in it (a 200,000-entry glossary counted whole
                # refused every text on a 2,048-token model); they take context as the source does, 2.5 x less
                chunks = make_chunks(lines, self.count, src_budget, spec.context_lines,
                                     hard * 2 // 3 if spec.context_lines else hard, src.verbatim,
                                     lambda text: math.ceil(self._gloss_tokens(text) / (1 + OUTPUT_RATIO)))
            except LabError as e:
                raise LabError(f"{src.path}: {e}") from None
            for c in chunks:  # keep the newest context lines that fit the remaining budget
                while c.context and sum(self.count(x) for x in c.context) > budget - src_budget:
                    c.context.pop(0)
            doc = Doc(src.name, lines, chunks, str(src.path), src.encoding, src.verbatim,
                      str(src.path) if src.epub_href else None, src.epub_href, self.fp, spec.glossary,
                      newline=src.newline)
            doc.fixes = load_fixes(self.cache, doc)  # a person's corrections win over any model output
            docs.append(doc)
        return docs

    # -- requests ------------------------------------------------------------------------------
    def _log(self, doc: Doc, rec: dict[str, Any]) -> None:
        fh = self._logs.get(doc.name)
        if fh is None:
            f = self.s.out / "logs" / f"{doc.name}.jsonl"
            f.parent.mkdir(parents=True, exist_ok=True)
            fh = self._logs[doc.name] = open(f, "a", encoding="utf-8")  # noqa: SIM115 (closed by _run)
        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")  # one line per request, as it happens:
        fh.flush()  # flushed, so a killed process keeps every line it wrote

    async def _ask(self, messages: list[dict[str, str]], max_tokens: int, attempt: int,
                   seed: int) -> tuple[Result, str]:
        import openai
        if self.s.rps:
            wait = self._last_start + 1.0 / self.s.rps - time.monotonic()
            self._last_start = time.monotonic() + max(0.0, wait)
            if wait > 0:
                await asyncio.sleep(wait)
        extra: dict[str, Any] = {} if self.s.thinking else {"chat_template_kwargs": {"enable_thinking": False}}
        # A retry after a failed check changes sampling: a little temperature and a frequency penalty break
        # the repetition loops greedy decoding falls into; the seed keeps that sampling reproducible.
        kw: dict[str, Any] = {"temperature": self.s.temperature + 0.2 * (attempt - 1), "seed": seed}
        if attempt > 1:
            kw["frequency_penalty"] = 0.3 * (attempt - 1)
        self.stats["requests"] += 1

        key = object()

        def streamed(_piece: str) -> None:  # the progress line's tok/s counts replies while they are written
            self._streamed[key] = self._streamed.get(key, 0) + 1

        async def send(ac: openai.AsyncOpenAI) -> Result:
            self._streamed.pop(key, None)  # another endpoint's try starts the count again
            try:  # streamed: --timeout bounds each token's wait, so a slow CPU's long reply is not cut off
                return await stream_chat(ac, self.s.retries, on_text=streamed, model=self.model, messages=messages,
                                         max_tokens=max_tokens, extra_body=extra, **kw)
            except (ValueError, RecursionError) as e:  # HTML, or JSON of another shape: a wrong URL, not a retry
                raise not_openai(str(ac.base_url).rstrip("/"), e) from None
        try:
            async with self._slots:  # requests in flight <= --concurrency, split halves included
                self._in_flight[key] = time.monotonic()
                try:
                    return await self.pool.call(send)
                finally:
                    del self._in_flight[key]
                    self._streamed.pop(key, None)  # its usage counts from here (output_tokens)
        except (NoEndpoint, ServerError) as e:
            raise Abort(str(e)) from None
        except openai.OpenAIError as e:  # 400/401/404...: the server's own words, and what was kept (run())
            raise Abort(str(server_error(e, self.s.endpoints[0]))) from None

    def _budget(self, chunk: Chunk, extra: int = 0) -> int:
        """max_tokens for a chunk's request; `extra`: tokens a retry's feedback turns add to the prompt."""
        prompt_est = (self.overhead + self._gloss_tokens(chunk.text) + chunk.tokens
                      + sum(self.count(c) for c in chunk.context) + extra)
        if self.thinks:  # reasoning comes first and is long: the whole room left, up to the cap
            return max(1, min(self.s.max_tokens, context_room(self.max_model_len, prompt_est)))
        return max_tokens_for(self.max_model_len, prompt_est, chunk.tokens, self.s.max_tokens)

    async def _translate(self, doc: Doc, chunk: Chunk, allow_split: bool = True) -> list[str | None]:
        """Lines for a chunk (one per unit) after checks, seeded retries and splitting; None where a unit failed."""
        fp = doc.piece_fp(chunk.text)
        hit = self.cache.get(doc.name, chunk.text, fp)
        if hit is not None and len(hit) == len(chunk.units):
            self.stats["cached"] += 1
            return list(hit)
        splittable = allow_split and self.s.split and len(chunk.units) > 1
        if splittable and lookup(self.cache, doc, chunk) is not None:
            return await self._split(doc, chunk)  # a resumed run goes straight to the halves it cached
        terms = terms_in(chunk.text, self.s.spec.glossary)
        base = self.s.spec.messages(chunk)
        msgs, extra, said = base, 0, 0
        for attempt in range(1, self.s.attempts + 1):
            if attempt > 1:
                self.stats["retries"] += 1
                await asyncio.sleep(min(4.0, 0.25 * 2 ** (attempt - 2)))  # backoff between attempts
            mt = self._budget(chunk, extra)
            t0 = time.time()
            r, url = await self._ask(msgs, mt, attempt, seed_of(chunk.text, attempt))
            content, reasoning = r.text, r.reasoning
            if reasoning and not self.thinks:
                self.thinks = True
                print("translate: the model reasons before it answers; replies now get room for that", flush=True)
            out = clean(content, chunk.text, self.s.spec.echoes(chunk.text))
            finish = r.finish_reason
            problems = checks(out, chunk.text, finish, terms)
            usage = [r.prompt_tokens, r.completion_tokens]
            self.stats["output_tokens"] += usage[1]
            self._log(doc, {"chunk": chunk.index, "lines": [chunk.units[0].line + 1, chunk.units[-1].line + 1],
                            "attempt": attempt, "endpoint": url, "max_tokens": mt, "usage": usage,
                            "finish_reason": finish, "problems": problems, "seconds": round(time.time() - t0, 3),
                            **({"messages": msgs, "response": content, "reasoning": reasoning}
                               if self.s.log_text else {})})
            for p in failing(problems):  # why replies were rejected (notebook 04's table)
                self.stats["rejected"][p] = self.stats["rejected"].get(p, 0) + 1
            if not failing(problems):
                self.stats["rescued_by_retry"] += attempt > 1
                lines = lines_of(out)  # one per unit: the line_count check passed
                self.cache.put(doc.name, chunk.text, lines, {"model": self.model, "attempts": attempt,
                                                             "warnings": problems}, fp)
                return list(lines)
            if splittable and self.s.split_at_once and failing(problems) == ["line_count"]:
                break
            if {"kana", "japanese_word"} & set(problems):  # Japanese kept: say "only Chinese" from here on
                base, said = self.s.spec.messages(chunk, chinese_only=True), len(CHINESE_ONLY.encode())
            msgs, extra = self._retry_messages(base, chunk, out, usage[1], failing(problems))
            extra += said  # its UTF-8 bytes: no fewer than its tokens (no /tokenize call mid-run, below)
        if splittable:
            return await self._split(doc, chunk)
        self.stats["failed_units"] += len(chunk.units)
        return [None] * len(chunk.units)

    def _retry_messages(self, base: list[dict[str, str]], chunk: Chunk, reply: str, counted: int,
                        problems: list[str]) -> tuple[list[dict[str, str]], int]:
        """The next attempt's messages and the tokens they add: the rejected reply and what was wrong with it,
        where that fits beside a full reply (off by default: the 0.5B sent 一通目の消印 back at three temperatures,
        and again when told; README)."""
        note = feedback(problems, chunk.text, reply) if self.s.feedback else None
        if note is None:
            return base, 0
        # Sizes without a /tokenize call mid-run (it asks one endpoint only, and failed a run whose first one had
        # just died): the reply as the smaller of two upper bounds, the server's `counted` tokens of the whole
        # reply (reasoning included) and the cleaned reply's UTF-8 bytes (byte-level BPE makes no more tokens);
        # the note as its bytes.
        size = len(reply.encode())
        extra = min(counted or size, size) + len(note.encode()) + 16  # + the two turns' chat markup
        full = max_tokens_for(self.max_model_len, 0, chunk.tokens, self.s.max_tokens)  # a whole answer's room
        if self._budget(chunk, extra) < full:  # the context has no room for the feedback too: sampling only
            return base, 0
        return with_feedback(base, reply, note), extra

    async def _split(self, doc: Doc, chunk: Chunk) -> list[str | None]:
        """Translate the two halves separately; the whole is cached only when every unit succeeded."""
        self.stats["splits"] += 1
        self.cache.mark_split(doc.name, chunk.text, doc.piece_fp(chunk.text))
        # Both halves at once (a request slot each): a long failing chunk splits into a tree of small
        # requests that would otherwise go one at a time while the other slots sit idle.
        got = await asyncio.gather(*[self._translate(doc, part) for part in halves(chunk)])
        lines: list[str | None] = [x for part in got for x in part]
        if None not in lines:
            self.stats["rescued_by_split"] += 1
            self.cache.put(doc.name, chunk.text, lines, {"model": self.model, "attempts": self.s.attempts,
                                                         "split": True}, doc.piece_fp(chunk.text))
        return lines

    # -- the run ---------------------------------------------------------------------------------
    def _progress(self, docs: list[Doc], total: int, t0: float) -> str:
        done = sum(len(d.results) for d in docs)
        fresh, el = done - self.stats["reused"], time.time() - t0
        eta = f"{el / fresh * (total - done):.0f}s" if fresh else "?"
        n = sum(len(untranslated(d, finished_only=True)) for d in docs)
        bad = f"{n} line{'' if n == 1 else 's'}"
        waiting = ""
        if self._in_flight:
            oldest = time.monotonic() - min(self._in_flight.values())
            waiting = (f", waiting on {len(self._in_flight)} request(s) (longest {oldest:.0f}s; a try fails after "
                       f"{self.s.timeout:.0f}s without a token, {self.s.retries + 1} tries at most)")
        return (f"translate: {done}/{total} chunks ({done / max(1, total):.0%}), reused {self.stats['reused']}, "
                f"{self.stats['requests']} requests, {self.stats['retries']} retries, {bad} untranslated, "
                f"{(self.stats['output_tokens'] + sum(self._streamed.values())) / max(el, 1e-9):,.0f} tok/s, "
                f"eta {eta}{waiting}")

    async def _run(self, docs: list[Doc]) -> None:
        self.pool = Pool([Endpoint(c.base_url, c.async_client()) for c in self.clients], self.s.retries,
                         say=lambda m: print(m, flush=True))
        self._slots = asyncio.Semaphore(self.s.concurrency)
        total = sum(len(d.chunks) for d in docs)
        todo: deque[tuple[Doc, Chunk]] = deque()
        for d in docs:  # what an earlier run finished (or a person fixed) is taken now, and said
            for c in d.chunks:
                got = [""] * len(c.units) if d.fixed(c) else lookup(self.cache, d, c)
                if got is not None and None not in got:
                    d.results[c.index] = got
                    self.stats["reused"] += 1
                else:
                    todo.append((d, c))
        if self.stats["reused"]:
            print(f"translate: reused {self.stats['reused']} of {total} chunks from {self.cache.root}", flush=True)
        t0, last = time.time(), [time.time()]
        every = self.s.progress_every_s

        def report(force: bool = False) -> None:
            if force or (every > 0 and time.time() - last[0] >= every):
                last[0] = time.time()
                print(self._progress(docs, total, t0), flush=True)

        async def worker() -> None:
            # A worker owns its chunk until it is finished, retries included: retries never queue behind
            # untouched chunks, so an interrupt keeps every chunk that was started early.
            while todo:
                doc, chunk = todo.popleft()
                lines = await self._translate(doc, chunk)
                if None in lines:
                    doc.failed.append(chunk.index)
                doc.results[chunk.index] = lines
                report(force=every <= 0)
                if len(doc.results) == len(doc.chunks):
                    write_all(self.s.out, [doc], self.s.bilingual)

        async def ticker() -> None:
            while every > 0:  # a line at least every `every` s, even while one long chunk is in flight
                await asyncio.sleep(every)
                report()
        tick = asyncio.ensure_future(ticker())
        try:
            # no more workers than chunks: --concurrency 1000000 spent 15 s making idle workers for one chunk
            await asyncio.gather(*[worker() for _ in range(min(self.s.concurrency, len(todo)))])
        finally:
            tick.cancel()
            for ep in self.pool.endpoints:
                await ep.client.close()
            for fh in self._logs.values():
                fh.close()
            self._logs.clear()
        if every > 0:
            report(force=True)

    def _kept(self, out: Path) -> str:
        """What an interrupted run leaves for the rerun; a split chunk's halves are records of their own."""
        return f"{self.cache.count()} finished pieces (chunks or their halves) are kept in {out}"

    def _translate_all(self, out: Path, docs: list[Doc]) -> dict[str, Any]:
        """Every document's chunks, then its outputs (with the output folder's lock held)."""
        for d in docs:
            save_manifest(self.cache, d)
        try:
            run_sync(self._run(docs))
        except Abort as e:
            raise LabError(f"{e}; {self._kept(out)}, rerun to resume") from None
        except KeyboardInterrupt:
            raise LabError(f"interrupted: {self._kept(out)}; rerun to resume") from None
        except OSError as e:  # a full disk mid-run: what reached the cache stays
            if isinstance(e, (ConnectionError, TimeoutError)) and not e.filename:  # not a file: the network
                raise LabError(f"connection failed: {e}; {self._kept(out)}, rerun to resume") from None
            raise LabError(f"cannot write {e.filename or out}: {e.strerror or e}; {self._kept(out)}, "
                           f"rerun to resume once there is room") from None
        return write_all(out, docs, self.s.bilingual, epub=self.s.epub, final=True)

    def run(self, path: str | Path | list[sources.Source]) -> dict[str, Any]:
        """Translate a file or folder; outputs per document as each completes; returns the stats."""
        out = paths.out_dir(self.s.out, "-o", create=False)
        docs = self.prepare(path)  # every input problem is found before anything is created
        refuse_overwrites(out, docs, self.s.bilingual, self.s.epub)
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / f".write-test-{id(self)}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise LabError(f"output folder {out} is not writable ({e.strerror})") from None
        t0 = time.time()
        with locks.writing(out, "lab translate"):
            summary = self._translate_all(out, docs)
        self.stats.update(wall_s=round(time.time() - t0, 2), documents=len(docs),
                          chunks=sum(len(d.chunks) for d in docs), model=self.model,
                          failed=[{"doc": d.name, "chunks": sorted(d.failed)} for d in docs if d.failed],
                          untranslated_lines=summary["untranslated_lines"], outputs=summary["outputs"])
        return self.stats
