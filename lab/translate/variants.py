"""Notebook 04's steps as single calls: translate through a running server, translate and score, base vs adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.translate.eval import evaluate
from lab.translate.pipeline import Settings, Translator
from lab.translate.prompts import PromptSpec, Term


def translate(out: str | Path, server: Any, inputs: Any, spec: PromptSpec, model: str | None = None,
              **settings: Any) -> dict[str, Any]:
    """Translate `inputs` (file, folder, EPUB or loaded sources) through a running lab.serve.Server into `out`;
    the run's stats. `settings` are Settings fields (concurrency, attempts, chunk_tokens, bilingual, ...)."""
    s = Settings(out=Path(out), endpoints=[server.base_url], api_key=server.api_key, model=model, spec=spec,
                 **settings)
    return Translator(s).run(inputs)


def scored(out: str | Path, server: Any, inputs: str | Path, refs: str | Path, spec: PromptSpec,
           glossary: list[Term], model: str | None = None, **settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """translate() a folder, then its chrF/BLEU/glossary adherence against `refs`: (stats, scores). Documents
    without a reference are translated, counted in the total's untranslated lines, and left unscored."""
    stats = translate(out, server, inputs, spec, model, **settings)
    ev = evaluate(out, refs, inputs, glossary, partial=True)
    if len(ev["rows"]) < stats["documents"]:
        print(f"{stats['documents'] - len(ev['rows'])} of {stats['documents']} document(s) have no reference in "
              f"{refs}: chrF and BLEU are over the {len(ev['rows'])} that have one")
    ev["total"]["untranslated_lines"] = stats["untranslated_lines"]  # scored or not
    return stats, ev


def base_vs_adapter(out_root: str | Path, server: Any, adapter: str, inputs: str | Path, refs: str | Path,
                    spec: PromptSpec, glossary: list[Term], **settings: Any) -> list[dict[str, Any]]:
    """The same folder through the base model and a served LoRA adapter: chrF of each, per document and total."""
    scores = {who: scored(Path(out_root) / f"lora_{who}", server, inputs, refs, spec, glossary, model,
                          **settings)[1] for who, model in (("base", None), ("adapter", adapter))}
    base, tuned = scores["base"], scores["adapter"]
    return [{"doc": b["doc"], "chrf_base": b["chrf"], "chrf_adapter": a["chrf"]}
            for b, a in zip([*base["rows"], base["total"]], [*tuned["rows"], tuned["total"]], strict=True)]
