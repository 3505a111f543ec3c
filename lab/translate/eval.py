"""Translation quality: chrF and BLEU (sacrebleu, Chinese tokenization) and glossary adherence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab import LabError, paths
from lab.translate import sources
from lab.translate.chunking import refuse_long_line
from lab.translate.document import FAILED_MARK
from lab.translate.prompts import Term, terms_in


def _lines(path: Path, what: str) -> list[str]:
    """The lines with text of a translation or reference (UTF-8), or of a source read as `lab translate` reads it
    (Shift_JIS, Aozora markup: 32 lines of ame.txt are the 22 its translation has)."""
    text = sources.source_text(path) if what == "source" else paths.read_text(path, what)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):  # chrF's n-gram counts: a 2,000,000-character line took 0.58 GB and 5 s
        refuse_long_line(ln, f"{path}: line {i + 1} (of those with text)")
    return lines


def score(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """Corpus chrF and BLEU (tokenize='zh') of aligned lines."""
    import sacrebleu
    if len(hyps) != len(refs):
        raise LabError(f"{len(hyps)} translated lines but {len(refs)} reference lines: they must align")
    if not refs:
        raise LabError("no lines to score: the reference and the translation are empty")
    return {"chrf": round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2),
            "bleu": round(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score, 2)}


def glossary_adherence(sources: list[str], hyps: list[str], glossary: list[Term]) -> float | None:
    """Share of glossary occurrences in the source whose target appears in the translated line."""
    hits = total = 0
    for s, h in zip(sources, hyps, strict=True):
        for t in terms_in(s, glossary):
            total += 1
            hits += t.target in h
    return round(hits / total, 3) if total else None


def _documents(hyp: Path, ref: Path, src: Path | None, partial: bool) -> list[tuple[Path, Path, Path | None]]:
    """(translation, reference, source or None) for each document: two files, or two folders matched by name;
    partial: no references at all is none, not an error."""
    if not ref.exists():
        if partial:
            return []
        raise LabError(f"{ref} does not exist")
    if not hyp.exists():
        raise LabError(f"{hyp} does not exist")
    for p in (ref, hyp, src):
        if p is not None and p.exists() and not (p.is_file() or p.is_dir()):  # /dev/zero would never end
            raise LabError(f"{p} is neither a file nor a folder (a device, pipe or socket)")
    if ref.is_file():
        h = hyp if hyp.is_file() else hyp / f"{paths.short_name(ref.stem)}.zh.txt"
        return [(h, ref, (src if src.is_file() else _source_of(src, ref)) if src else None)]
    if hyp.is_file():
        raise LabError(f"{hyp} is a file but {ref} is a folder: give two files or two folders")
    refs = sorted(ref.glob("*.txt"))
    if not refs and not partial:
        raise LabError(f"no reference .txt files in {ref}")
    return [(hyp / f"{paths.short_name(r.stem)}.zh.txt", r, _source_of(src, r) if src else None) for r in refs]


def _source_of(src: Path, ref: Path) -> Path:
    """The source document of `ref` in the folder `src`: NAME.txt, or NAME.zip (a zip translates to NAME.zh.txt)."""
    txt, packed = src / ref.name, src / f"{ref.stem}.zip"
    return packed if not txt.exists() and packed.is_file() else txt


def evaluate(hyp_dir: str | Path, ref_dir: str | Path, src_dir: str | Path | None = None,
             glossary: list[Term] | None = None, partial: bool = False) -> dict[str, Any]:
    """Scores per document (NAME.zh.txt against REF/NAME.txt, or one file against one) and over all of them.
    partial: only documents both translated and referenced count, and none is no error (chrF and BLEU None),
    as for notebook 04 run on a reader's own texts."""
    rows, all_h, all_r, all_s = [], [], [], []
    for hyp, ref, src in _documents(Path(hyp_dir), Path(ref_dir), Path(src_dir) if src_dir else None, partial):
        if not hyp.is_file():
            if partial:
                continue
            raise LabError(f"{hyp} is missing: translate {ref.stem} first")
        h, r = _lines(hyp, "translation"), _lines(ref, "reference")
        if src and not src.is_file():
            raise LabError(f"--source {src_dir} has no {ref.name} (each reference needs its source document)")
        s = _lines(src, "source") if src else []
        if s and len(s) != len(h):
            raise LabError(f"{src}: {len(s)} source lines but {len(h)} translated lines in {hyp}: they must align")
        try:
            scores = score(h, r)
        except LabError as e:
            raise LabError(f"{hyp} against {ref}: {e}") from None
        row = {"doc": ref.stem, **scores, "untranslated_lines": sum(FAILED_MARK in x for x in h)}
        if glossary and s:
            row["glossary"] = glossary_adherence(s, h, glossary)
        rows.append(row)
        all_h += h
        all_r += r
        all_s += s
    if not rows:  # partial, and no document has a reference
        return {"rows": [], "total": {"doc": "ALL", "chrf": None, "bleu": None, "untranslated_lines": 0}}
    total = {"doc": "ALL", **score(all_h, all_r), "untranslated_lines": sum(FAILED_MARK in x for x in all_h)}
    if glossary and all_s:
        total["glossary"] = glossary_adherence(all_s, all_h, glossary)
    return {"rows": rows, "total": total}


def rejections(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Why replies were rejected (a row per check, most frequent first) and what the retry ladder rescued."""
    rows: list[dict[str, Any]] = [{"rejected because": p, "replies": n}
                                  for p, n in sorted(stats.get("rejected", {}).items(), key=lambda x: (-x[1], x[0]))]
    rows.append({"rejected because": "(rescued by a retry / by splitting)",
                 "replies": f"{stats.get('rescued_by_retry', 0)} / {stats.get('rescued_by_split', 0)} chunks"})
    return rows
