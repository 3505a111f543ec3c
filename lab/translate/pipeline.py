"""JA -> ZH long-text pipeline: chunks over a bounded async queue, checks and retries, resumable cache, outputs."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai

from lab import LabError
from lab.client import Client, run_sync, server_error
from lab.translate.cache import ChunkCache, text_hash
from lab.translate.checks import checks, clean, failing
from lab.translate.chunking import Chunk, chunk_budget, make_chunks, max_tokens_for
from lab.translate.outputs import write_document, write_epub
from lab.translate.prompts import PromptSpec, terms_in
from lab.translate.sources import inputs, read_text

FAILED_MARK = "【未翻译】"  # visible in the output: the source line kept, never dropped


class Abort(LabError):
    """The server is unreachable after retries: stop, keep what is done."""


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
    split: bool = True
    chunk_tokens: int = 512       # user cap on source tokens per chunk (the context may force less)
    max_tokens: int = 4096
    temperature: float = 0.0
    timeout: float = 120.0
    retries: int = 2              # transport retries (openai client: backoff 0.5 s, 1 s, ...)
    thinking: bool = False        # False sends enable_thinking=False (Qwen3 templates skip <think>)
    aozora: bool = False
    bilingual: bool = False
    epub: bool = False
    resume: bool = True
    log_text: bool = True         # False keeps source and target text out of the per-document logs
    progress_every_s: float = 5.0


@dataclass
class Doc:
    path: Path
    name: str
    lines: list[str]
    chunks: list[Chunk]
    encoding: str
    results: dict[int, list[str]] = field(default_factory=dict)  # chunk index -> one line per unit
    failed: list[int] = field(default_factory=list)
    done: dict[str, str] = field(default_factory=dict)  # source unit -> its translation, for context






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
        self.model = self.clients[0].model  # asks the server: also checks it is up before any work
        self.max_model_len = self.clients[0].max_model_len
        self.fp = text_hash(json.dumps([s.spec.fingerprint(), self.model, s.temperature, s.thinking]))[:8]
        self.stats = {"requests": 0, "cached": 0, "failed_units": 0, "output_tokens": 0, "retries": 0, "splits": 0}
        self._tok_cache: dict[str, int] = {}
        self._rr = 0
        self._last_start = 0.0
        self._aclients: list[openai.AsyncOpenAI] = []
        self.cache = ChunkCache(s.out, self.fp, s.resume)
        # One open log per document: on the tiny model the client's per-chunk work competes with the
        # server for 2 cores, so no reopen per request.
        self._logs: dict[str, Any] = {}

    # -- preparation -------------------------------------------------------------------------
    def count(self, text: str) -> int:
        """Tokens of a text as the server's tokenizer counts them (cached per line)."""
        if text not in self._tok_cache:
            self._tok_cache[text] = self.clients[0].count_text(text)
        return self._tok_cache[text]

    def prepare(self, path: str | Path) -> list[Doc]:
        """Read, decode and chunk every input file; nothing is sent yet."""
        files = inputs(path)
        texts = [read_text(f, self.s.aozora) for f in files]  # bad input fails before any request
        spec = self.s.spec
        overhead = self.clients[0].count_tokens(spec.messages(Chunk(0, []))) + 16
        overhead += self.count("；".join(f"{t.source}→{t.target}" for t in spec.glossary)) if spec.glossary else 0
        budget = chunk_budget(self.max_model_len, overhead, self.s.chunk_tokens)
        hard = chunk_budget(self.max_model_len, overhead, 10**9)
        src_budget = budget * 2 // 3 if spec.context_lines else budget  # the rest carries context lines
        self.overhead = overhead
        docs = []
        for f, (text, enc) in zip(files, texts, strict=True):
            lines = text.split("\n")
            chunks = make_chunks(lines, self.count, src_budget, spec.context_lines,
                                 hard * 2 // 3 if spec.context_lines else hard)
            for c in chunks:  # keep the newest context lines that fit the remaining budget
                while c.context and sum(self.count(x) for x in c.context) > budget - src_budget:
                    c.context.pop(0)
            name = f.stem if len(files) == 1 else str(f.relative_to(path)).removesuffix(".txt").replace("/", "__")
            docs.append(Doc(f, name, lines, chunks, enc))
        return docs

    # -- cache ---------------------------------------------------------------------------------
    def cached(self, doc: Doc, text: str) -> list[str] | None:
        """A locked correction (any settings) or this settings' cached translation of a chunk text."""
        return self.cache.get(doc.name, text)

    def store(self, doc: Doc, text: str, lines: list[str], meta: dict[str, Any]) -> None:
        self.cache.put(doc.name, text, lines, {"model": self.model, **meta})

    # -- requests ------------------------------------------------------------------------------
    def _log(self, doc: Doc, rec: dict[str, Any]) -> None:
        fh = self._logs.get(doc.name)
        if fh is None:
            f = self.s.out / "logs" / f"{doc.name}.jsonl"
            f.parent.mkdir(parents=True, exist_ok=True)
            fh = self._logs[doc.name] = open(f, "a", encoding="utf-8")  # noqa: SIM115 (closed by _run)
        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")  # one line per request, as it happens:
        fh.flush()  # flushed, so a killed process keeps every line it wrote

    async def _ask(self, messages: list[dict[str, str]], max_tokens: int, attempt: int) -> tuple[Any, str]:
        if self.s.rps:
            wait = self._last_start + 1.0 / self.s.rps - time.monotonic()
            self._last_start = time.monotonic() + max(0.0, wait)
            if wait > 0:
                await asyncio.sleep(wait)
        i = self._rr % len(self._aclients)
        self._rr += 1
        extra: dict[str, Any] = {} if self.s.thinking else {"chat_template_kwargs": {"enable_thinking": False}}
        # A retry after a failed check changes sampling: a little temperature and a frequency
        # penalty break the repetition loops that greedy decoding falls into.
        kw: dict[str, Any] = {"temperature": self.s.temperature + 0.2 * (attempt - 1)}
        if attempt > 1:
            kw["frequency_penalty"] = 0.3 * (attempt - 1)
        self.stats["requests"] += 1
        try:
            r = await self._aclients[i].chat.completions.create(model=self.model, messages=messages,
                                                                max_tokens=max_tokens, extra_body=extra, **kw)
        except (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError) as e:
            raise Abort(f"server {self.clients[i].base_url} failed after {self.s.retries} retries "
                        f"({type(e).__name__})") from None
        except openai.OpenAIError as e:  # 400/401/404...: the server's own words, and what was kept (run())
            raise Abort(str(server_error(e, self.clients[i].base_url))) from None
        return r, self.clients[i].base_url

    async def _translate_chunk(self, doc: Doc, chunk: Chunk, allow_split: bool = True) -> list[str] | None:
        """Lines for a chunk (one per unit) after checks, retries and splitting; None units failed."""
        hit = self.cached(doc, chunk.text)
        if hit is not None and len(hit) == len(chunk.units):
            self.stats["cached"] += 1
            return hit
        if allow_split and self.s.split and self._was_split(doc, chunk):
            return await self._split(doc, chunk)  # a resumed run goes straight to the halves it cached
        prompt_est = self.overhead + chunk.tokens + sum(self.count(c) for c in chunk.context)
        mt = max_tokens_for(self.max_model_len, prompt_est, chunk.tokens, self.s.max_tokens)
        terms = terms_in(chunk.text, self.s.spec.glossary)
        problems: list[str] = []
        for attempt in range(1, self.s.attempts + 1):
            if attempt > 1:
                self.stats["retries"] += 1
                await asyncio.sleep(min(4.0, 0.25 * 2 ** (attempt - 2)))  # backoff between attempts
            # The slot bounds requests in flight, not chunks: checks and file writes below run
            # outside it. The prompt is built inside, so at concurrency 1 the previous chunk's
            # translation is there to serve as context.
            async with self._sem:
                ctx_tr = [doc.done.get(c) or (self.cached(doc, c) or [""])[0] for c in chunk.context]
                msgs = self.s.spec.messages(chunk, ctx_tr if ctx_tr and all(ctx_tr) else None)
                t0 = time.time()
                r, url = await self._ask(msgs, mt, attempt)
            raw = r.choices[0].message.content or ""
            out = clean(raw, chunk.text, self.s.spec.preface)
            problems = checks(out, chunk.text, r.choices[0].finish_reason, terms)
            usage = [r.usage.prompt_tokens, r.usage.completion_tokens] if r.usage else [0, 0]
            self.stats["output_tokens"] += usage[1]
            rec = {"chunk": chunk.index, "lines": [chunk.units[0].line + 1, chunk.units[-1].line + 1],
                   "attempt": attempt, "endpoint": url, "max_tokens": mt, "usage": usage,
                   "finish_reason": r.choices[0].finish_reason, "problems": problems,
                   "seconds": round(time.time() - t0, 3),
                   **({"messages": msgs, "response": raw} if self.s.log_text else {})}
            self._log(doc, rec)
            if not failing(problems):
                lines = out.splitlines()
                self.store(doc, chunk.text, lines, {"attempts": attempt, "warnings": problems})
                return lines
        if allow_split and self.s.split and len(chunk.units) > 1:
            return await self._split(doc, chunk)
        self.stats["failed_units"] += len(chunk.units)
        return None

    @staticmethod
    def _halves(chunk: Chunk) -> list[Chunk]:
        half = len(chunk.units) // 2
        return [Chunk(chunk.index, chunk.units[:half], chunk.context), Chunk(chunk.index, chunk.units[half:])]

    def _was_split(self, doc: Doc, chunk: Chunk) -> bool:
        """True when a previous run split this chunk (some half, at any depth, is in the cache)."""
        if len(chunk.units) < 2:
            return False
        return any(self.cached(doc, h.text) is not None or self._was_split(doc, h) for h in self._halves(chunk))

    async def _split(self, doc: Doc, chunk: Chunk) -> list[str | None]:
        """Translate the two halves separately; the whole is cached only when every unit succeeded."""
        self.stats["splits"] += 1
        lines: list[str | None] = []
        for part in self._halves(chunk):
            got = await self._translate_chunk(doc, part)
            lines += got if got is not None else [None] * len(part.units)
        if None not in lines:
            self.store(doc, chunk.text, lines, {"attempts": self.s.attempts, "split": True})
        return lines

    # -- the run ---------------------------------------------------------------------------------
    async def _run(self, docs: list[Doc]) -> None:
        self._aclients = [c.async_client() for c in self.clients]
        self._sem = asyncio.Semaphore(self.s.concurrency)  # requests in flight (see _translate_chunk)
        total = sum(len(d.chunks) for d in docs)
        done, t0, last = 0, time.time(), 0.0

        async def one(doc: Doc, chunk: Chunk) -> None:
            nonlocal done, last
            lines = await self._translate_chunk(doc, chunk)
            if lines is None:
                lines = [None] * len(chunk.units)
            if None in lines:  # some units kept their source with the marker: report the chunk
                doc.failed.append(chunk.index)
            doc.results[chunk.index] = lines
            doc.done.update((u.text, t) for u, t in zip(chunk.units, lines, strict=True) if t is not None)
            done += 1
            now = time.time()
            if now - last >= self.s.progress_every_s or done == total:
                last = now
                el = now - t0
                print(f"translate: {done}/{total} chunks ({done / total:.0%}), {self.stats['output_tokens'] / el:,.0f} "
                      f"tok/s, {self.stats['requests']} requests, eta {el / done * (total - done):.0f}s, "
                      f"failed {sum(len(d.failed) for d in docs)}", flush=True)
            if len(doc.results) == len(doc.chunks):
                self.write_outputs(doc)
        try:
            await asyncio.gather(*[one(d, c) for d in docs for c in d.chunks])
        finally:
            for ac in self._aclients:
                await ac.close()
            for fh in self._logs.values():
                fh.close()
            self._logs.clear()

    def run(self, path: str | Path) -> dict[str, Any]:
        """Translate a file or folder; outputs per document as each completes; returns the stats."""
        out = self.s.out
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / f".write-test-{id(self)}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise LabError(f"output folder {out} is not writable ({e.strerror})") from None
        docs = self.prepare(path)
        t0 = time.time()
        try:
            run_sync(self._run(docs))
        except Abort as e:
            raise LabError(f"{e}; {self.cache.count()} finished chunks are kept in {out}, rerun to resume") from None
        except KeyboardInterrupt:
            raise LabError(f"interrupted: {self.cache.count()} finished chunks are kept in {out}; "
                           f"rerun to resume") from None
        if self.s.epub and len(docs) > 1:
            write_epub([d.name for d in docs], out / "book.epub")
        self.stats.update(wall_s=round(time.time() - t0, 2), documents=len(docs),
                          chunks=sum(len(d.chunks) for d in docs), model=self.model,
                          failed=[{"doc": d.name, "chunks": sorted(d.failed)} for d in docs if d.failed])
        return self.stats

    # -- outputs ---------------------------------------------------------------------------------
    def assemble(self, doc: Doc) -> list[tuple[str, str]]:
        """(source line, translated line) for every line; blank lines stay blank, failures are marked."""
        pieces: dict[int, list[str]] = {}
        for c in doc.chunks:
            for u, t in zip(c.units, doc.results.get(c.index, [None] * len(c.units)), strict=True):
                pieces.setdefault(u.line, []).append(t if t is not None else f"{FAILED_MARK}{u.text}")
        return [(ln, "".join(pieces.get(i, [ln]))) for i, ln in enumerate(doc.lines)]

    def write_outputs(self, doc: Doc) -> None:
        write_document(self.s.out, doc.name, self.assemble(doc), self.s.bilingual)
