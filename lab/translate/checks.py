"""Translation output: cleaning (think blocks, echoes) and GalTransl-style problem checks."""

from __future__ import annotations

import re

from lab.client import strip_reasoning

KANA = re.compile(r"[\u3040-\u309f\u30a0-\u30ff]")
CJK_OR_KANA = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
LOOP = re.compile(r"(.{1,20}?)\1{7,}", re.S)  # a 1-20 char unit repeated 8+ times in a row
KANA_MAX = 0.15       # Chinese has no kana; a few may remain in names written in katakana
LENGTH_RATIO = (0.3, 3.0)  # zh chars / ja chars; real pairs sit around 0.6-1.2
FAILING = ("empty", "loop", "truncated", "kana", "length_ratio", "line_count")  # retried; glossary only warns


def clean(output: str, source: str, preface: str = "") -> str:
    """Translation only: drop reasoning (up to the last </think>), echoed instructions and echoed source lines.

    A line equal to its source is an echo only when the source has kana: `◆◆◆`, numbers and names
    translate to themselves."""
    text = strip_reasoning(output)
    src_lines = {s.strip() for s in source.splitlines() if s.strip() and KANA.search(s)}
    pre = {s.strip() for s in preface.splitlines() if s.strip()}
    kept = [ln for ln in text.strip("\n").splitlines() if ln.strip() not in src_lines | pre]
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join(ln.rstrip() for ln in kept).strip("\n")


def checks(output: str, source: str, finish_reason: str | None, terms: list | None = None) -> list[str]:
    """Problems found in a cleaned output (empty list = fine)."""
    problems = []
    if not output.strip():
        return ["empty"]
    if LOOP.search(output):
        problems.append("loop")
    if finish_reason == "length":
        problems.append("truncated")
    letters = CJK_OR_KANA.findall(output)
    if letters and len(KANA.findall(output)) / len(letters) > KANA_MAX:
        problems.append("kana")
    ratio = len(output.replace("\n", "")) / max(1, len(source.replace("\n", "")))
    if not LENGTH_RATIO[0] <= ratio <= LENGTH_RATIO[1]:
        problems.append("length_ratio")
    if len([x for x in output.splitlines() if x.strip()]) != len([x for x in source.splitlines() if x.strip()]):
        problems.append("line_count")
    for t in terms or []:
        if t.source in source and t.target not in output:
            problems.append(f"glossary:{t.source}")
    return problems


def failing(problems: list[str]) -> list[str]:
    """The problems that make a chunk be retried (glossary misses are warnings)."""
    return [p for p in problems if p in FAILING]
