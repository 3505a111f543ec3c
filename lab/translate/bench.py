"""Translation pipeline vs a bare openai loop on the same chunk requests, concurrency 16 vs 1."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lab import config, paths
from lab.measure import bare_loop, medians
from lab.translate.chunking import max_tokens_for
from lab.translate.pipeline import Settings, Translator
from lab.translate.prompts import PromptSpec


def translate_suite(profile: str | None = None, copies: int = 8, chunk_tokens: int = 32, concurrency: int = 16,
                    repeats: int = 5) -> dict[str, Any]:
    """Translation pipeline vs a bare openai loop on the same chunk requests; concurrency 16 vs 1.

    8 copies make 168 chunks: a c16 run lasts ~1.3 s, so opening 16 connections and the first
    requests no longer decide the ratio, as they did with 4 copies (~0.6 s runs). Medians of 5."""
    prof = config.load(profile)
    key = config.client_key()
    tmp = Path(tempfile.mkdtemp(prefix="lab-tbench-"))
    try:
        src = tmp / "in"
        src.mkdir()
        for k in range(copies):
            for f in sorted((paths.data() / "translation" / "ja").glob("*.txt")):
                (src / f"{k}_{f.name}").write_text(f.read_text("utf-8"), "utf-8")

        def pipeline(c: int, i: int) -> float:
            s = Settings(out=tmp / f"out{c}_{i}", endpoints=[prof.base_url], api_key=key, concurrency=c,
                         attempts=1, split=False, resume=False, chunk_tokens=chunk_tokens, progress_every_s=1e9,
                         spec=PromptSpec())
            st = Translator(s).run(src)
            return st["output_tokens"] / st["wall_s"]
        t = Translator(Settings(out=tmp / "prep", endpoints=[prof.base_url], api_key=key, chunk_tokens=chunk_tokens))
        reqs = []
        for d in t.prepare(src):
            for ch in d.chunks:
                est = t.overhead + ch.tokens
                reqs.append((t.s.spec.messages(ch), max_tokens_for(t.max_model_len, est, ch.tokens, t.s.max_tokens)))

        def bare() -> float:
            toks, wall = asyncio.run(bare_loop(prof.base_url, key, t.model, reqs, concurrency,
                                                {"chat_template_kwargs": {"enable_thinking": False}}))
            return toks / wall
        seen: dict[str, list[float]] = {}
        for i in range(repeats):  # interleaved, medians (see lab.bench.suite on this machine's noise)
            seen.setdefault("pipeline_c1", []).append(pipeline(1, i))
            seen.setdefault(f"pipeline_c{concurrency}", []).append(pipeline(concurrency, i))
            seen.setdefault(f"bare_c{concurrency}", []).append(bare())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = medians(seen)
    return {"chunks": len(reqs), "tok_s_median": med,
            "tok_s_all": {k: [round(x, 1) for x in v] for k, v in seen.items()},
            "scaling": round(med[f"pipeline_c{concurrency}"] / med["pipeline_c1"], 2),
            "pipeline_vs_bare": round(med[f"pipeline_c{concurrency}"] / med[f"bare_c{concurrency}"], 3)}
