"""Translation output: cleaning (think blocks, echoes) and GalTransl-style problem checks."""

from __future__ import annotations

import re

from lab.jatext import KANA
from lab.messages import strip_reasoning

CJK_OR_KANA = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uff66-\uff9f]")
RUN = re.compile(r"(.{1,20}?)\1{3,}", re.S)  # a 1-20 char unit repeated 4+ times in a row
# The source's own repeats are looked for in units up to 80 chars: a 37-char sentence written 12 times in a row
# came back (rightly) as its 15-char Chinese 12 times, judged a loop against a source run of 0, retried 3 times
# and split. 80 covers two sentences; 0.6 s on a 300,000-char line (20: 0.14 s).
SOURCE_RUN = re.compile(r"(.{1,80}?)\1{3,}", re.S)
LETTER = re.compile(r"[\w\u3040-\u30ff\u4e00-\u9fff]")  # runs of ―…！◆ are style, not loops
LOOP_MIN = 8          # repeats before a run can be a loop (degenerate decoding repeats dozens of times)
KANA_MAX = 0.15       # Chinese has no kana; a few may remain in names written in katakana
LENGTH_RATIO = (0.3, 3.0)  # zh chars / ja chars; real pairs sit around 0.6-1.2
LENGTH_SLACK = 6      # chars: short lines vary most ("ありがとうございます。" -> "谢谢。" is 0.27)
# A kanji followed by hiragana (使い, 書かれ, 読む) is a Japanese word left in: Chinese has no okurigana. Kana
# alone may be a kept katakana name or a quoted 「あ」, which KANA_MAX judges by share instead.
OKURIGANA = re.compile(r"[\u4e00-\u9fff][\u3040-\u309f]")
# 使い, 明かり, になると: the kana and the kanji they inflect (more kanji would take in the Chinese words around
# them: 是魔法使い)
JAPANESE_WORD = re.compile(r"[\u4e00-\u9fff]{0,2}[\u3040-\u30ff\uff66-\uff9f]+")
FAILING = ("empty", "loop", "truncated", "kana", "japanese_word", "length_ratio", "line_count")  # retried
# (glossary misses only warn)


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


def longest_run(text: str, pattern: re.Pattern[str] = RUN) -> int:
    """Most repeats in a row of any unit with a letter in it (トン、×8 -> 8; ――――― and …… count 0)."""
    return max((len(m.group(0)) // len(m.group(1)) for m in pattern.finditer(text) if LETTER.search(m.group(1))),
               default=0)


def lines_of(output: str) -> list[str]:
    """The non-empty lines of a cleaned output: one per source unit when the reply is well formed."""
    return [ln for ln in output.splitlines() if ln.strip()]


def checks(output: str, source: str, finish_reason: str | None, terms: list | None = None) -> list[str]:
    """Problems found in a cleaned output (empty list = fine), judged against the source."""
    problems = []
    if not output.strip():
        return ["empty"]
    run = longest_run(output)
    if run >= LOOP_MIN and run > 2 * longest_run(source, SOURCE_RUN):  # the source's own トン、トン、… is no loop
        problems.append("loop")
    if finish_reason == "length":
        problems.append("truncated")
    letters = CJK_OR_KANA.findall(output)
    if letters and len(KANA.findall(output)) / len(letters) > KANA_MAX:
        problems.append("kana")
    elif OKURIGANA.search(output):
        problems.append("japanese_word")
    n_out, n_src = len(output.replace("\n", "")), len(source.replace("\n", ""))
    if not LENGTH_RATIO[0] * n_src - LENGTH_SLACK <= n_out <= LENGTH_RATIO[1] * n_src + LENGTH_SLACK:
        problems.append("length_ratio")
    if len(lines_of(output)) != len(lines_of(source)):
        problems.append("line_count")
    for t in terms or []:
        if t.source in source and t.target not in output:
            problems.append(f"glossary:{t.source}")
    return problems


def japanese_left(output: str, most: int = 3) -> list[str]:
    """Up to `most` distinct Japanese fragments left in an output (kana, with up to 2 kanji before them)."""
    seen: list[str] = []
    for m in JAPANESE_WORD.finditer(output):  # each match holds kana: the pattern requires them
        if m.group(0) not in seen:
            seen.append(m.group(0))
    return seen[:most]


def failing(problems: list[str]) -> list[str]:
    """The problems that make a chunk be retried (glossary misses are warnings)."""
    return [p for p in problems if p in FAILING]
