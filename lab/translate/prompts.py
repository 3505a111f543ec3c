"""Translation prompts: glossary, preface, few-shot, templates (Qwen chat, Sakura style)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lab import LabError, paths
from lab.translate.checks import japanese_left, lines_of
from lab.translate.chunking import Chunk, Unit

TEMPLATES = ("qwen", "sakura")
# Said with every chunk of two or more lines: models merge or split lines, and each such reply is retried, then
# split down to single lines. With it Qwen2.5-Coder-1.5B took 3 requests instead of 12 for the samples (chrF 42.0
# -> 42.4), 1 instead of 13 for the Aozora text, 1 instead of 15 for an unseen 10-line one (chrF 35.8 -> 36.3);
# the 0.5B, which keeps no line count either way, lost ~1 chrF (README, 2026-12-06). --no-line-note leaves it out.
LINE_NOTE = "（原文共{n}行。请逐行翻译，译文也是{n}行，一行对一行，只输出译文。）"
# Said on the retries of a chunk whose reply kept Japanese (kana, a kanji + okurigana word): Qwen2.5-Coder-1.5B
# rewrote 「ABC株式会社の田中さんは、C++とRustを勉強している。」 as Japanese at three temperatures, and translated it
# greedily once told this (README, 2026-12-06). First attempts stay the plain preface the fine-tune data uses.
CHINESE_ONLY = "（只输出中文译文。）"
SAKURA_SYSTEM = ("你是一个轻小说翻译模型，可以流畅通顺地以日本轻小说的风格将日文翻译成简体中文，"
                 "并联系上下文正确使用人称代词，不擅自添加原文中没有的代词。")


@dataclass
class Term:
    source: str
    target: str
    note: str = ""


def load_glossary(path: str | Path | None) -> list[Term]:
    """TSV: source<TAB>target[<TAB>note]; '#' comments and blank lines skipped; errors name file:line."""
    if not path:
        return []
    p = Path(path)
    terms: dict[str, tuple[int, Term]] = {}
    for n, line in enumerate(paths.read_text(p, "glossary").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            raise LabError(f"{p}:{n}: expected 'source<TAB>target[<TAB>note]', got {line!r}")
        t = Term(cols[0].strip(), cols[1].strip(), cols[2].strip() if len(cols) > 2 else "")
        if t.source in terms and terms[t.source][1].target != t.target:  # the prompt would ask for both
            first, was = terms[t.source]
            raise LabError(f"{p}:{n}: {t.source} -> {t.target}, but line {first} has {t.source} -> {was.target}; "
                           f"keep one target per term (a note column can name the other)")
        terms.setdefault(t.source, (n, t))
    return [t for _, t in terms.values()]


def load_fewshot(path: str | Path | None) -> list[tuple[str, str]]:
    """JSONL of {"source": ..., "target": ...} examples; errors name file:line."""
    if not path:
        return []
    out = []
    for n, rec in paths.read_jsonl(path, "few-shot file"):
        pair = (rec.get("source"), rec.get("target")) if isinstance(rec, dict) else (None, None)
        # both texts, non-empty: a number or a blank target would teach the model to answer with one
        if not all(isinstance(x, str) and x.strip() for x in pair):
            raise LabError(f"{path}:{n}: expected {{\"source\": \"...\", \"target\": \"...\"}} with two "
                           f"non-empty strings")
        out.append(pair)
    return out


def terms_in(text: str, glossary: list[Term]) -> list[Term]:
    """Only the glossary entries whose source occurs in the text (keeps prompts short)."""
    return [t for t in glossary if t.source in text]


@dataclass
class PromptSpec:
    """How prompts are built; its fingerprint is part of every cache key."""

    preface: str = "把下面的日语翻译成中文。"
    template: str = "qwen"
    glossary: list[Term] = field(default_factory=list)
    fewshot: list[tuple[str, str]] = field(default_factory=list)
    context_lines: int = 0
    line_note: bool = True

    def fingerprint(self, glossary: bool = True) -> str:
        """What changes a prompt; glossary=False leaves the glossary to per-chunk keys (Doc.piece_fp)."""
        terms = [(t.source, t.target, t.note) for t in self.glossary] if glossary else []
        return json.dumps([self.preface, self.template, terms, self.fewshot, self.context_lines,
                           LINE_NOTE if self.line_note else ""], ensure_ascii=False)

    def instruction(self, text: str, chinese_only: bool = False) -> str:
        """The preface, plus the line count a text of several lines must come back in (qwen template), plus
        CHINESE_ONLY on the retries of a reply that kept Japanese."""
        n = len(lines_of(text))
        note = LINE_NOTE.format(n=n) if n > 1 and self.line_note else ""
        return f"{self.preface}{note}{CHINESE_ONLY if chinese_only else ''}"

    def echoes(self, text: str) -> str:
        """Every instruction line a reply to `text` might echo back (the cleaner drops them)."""
        return f"{self.preface}\n{self.instruction(text)}\n{self.instruction(text, True)}"

    def longest_note(self) -> str:
        """The longest line-count note a prompt may carry: the token budget reserves room for it."""
        return LINE_NOTE.format(n=10**6) if self.template == "qwen" and self.line_note else ""

    def glossary_block(self, text: str) -> str:
        """The glossary part of a prompt for `text`: only the terms that occur in it, as the template writes
        them ("" when none)."""
        terms = terms_in(text, self.glossary)
        if not terms:
            return ""
        if self.template == "sakura":
            gl = "\n".join(f"{t.source}->{t.target}" + (f" #{t.note}" if t.note else "") for t in terms)
            return f"根据以下术语表（可以为空）：\n{gl}\n"
        return "参考术语：" + "；".join(f"{t.source}→{t.target}" for t in terms)

    def messages(self, chunk: Chunk, chinese_only: bool = False) -> list[dict[str, str]]:
        """Chat messages for a chunk: few-shot turns, then glossary, context and the text itself (chinese_only:
        a retry's, see CHINESE_ONLY; the sakura template has its own wording and ignores it).

        Context is the preceding source lines only: their translations would make a prompt depend on which
        chunk finished first, and the same input must give the same output at any concurrency."""
        if self.template not in TEMPLATES:
            raise LabError(f"unknown template {self.template!r}; choose from {', '.join(TEMPLATES)}")
        head = self.glossary_block(chunk.text)
        if self.template == "sakura":
            msgs = [{"role": "system", "content": SAKURA_SYSTEM}]
            for src, tgt in self.fewshot:
                msgs += [{"role": "user", "content": f"将下面的日文文本翻译成中文：{src}"},
                         {"role": "assistant", "content": tgt}]
            return msgs + [{"role": "user", "content": f"{head}将下面的日文文本根据对应关系和备注翻译成中文："
                                                       f"{chunk.text}"}]
        msgs = []
        for src, tgt in self.fewshot:
            msgs += [{"role": "user", "content": f"{self.instruction(src)}\n{src}"},
                     {"role": "assistant", "content": tgt}]
        parts = []
        if head:
            parts.append(head)
        if chunk.context:
            parts.append("上文（仅供参考，不要翻译）：\n" + "\n".join(chunk.context))
        parts += [self.instruction(chunk.text, chinese_only), chunk.text]
        return msgs + [{"role": "user", "content": "\n".join(parts)}]


def feedback(problems: list[str], source: str, reply: str) -> str | None:
    """What a retry tells the model about its rejected reply; None where showing the reply would not help
    (empty, looping or cut off: those are retried with fresh sampling only)."""
    if {"empty", "loop", "truncated"} & set(problems):
        return None
    notes = []
    if {"kana", "japanese_word"} & set(problems):
        left = "".join(f"「{w}」" for w in japanese_left(reply))
        notes.append("译文里还有日语" + (f"：{left}" if left else "") + "，请全部译成中文，不要保留假名")
    if "line_count" in problems:
        n, m = len(lines_of(source)), len(lines_of(reply))
        notes.append(f"原文有{n}行，译文却有{m}行；请逐行翻译，一行原文对应一行译文，共{n}行")
    if "length_ratio" in problems:
        notes.append("译文和原文的长度相差太多；请完整、忠实地翻译，不增不减")
    if not notes:
        return None
    return "。".join(notes) + "。请重新翻译上面的日语原文，只输出译文。"


def with_feedback(messages: list[dict[str, str]], reply: str, note: str) -> list[dict[str, str]]:
    """A retry's messages: the chunk's own, the rejected reply, and what was wrong with it."""
    return [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": note}]


def panel_prompt(text: str, glossary: bool = False) -> str:
    """The prompt the playground widgets send for `text` (one line a unit, the project's preface, the glossary's
    terms that occur when ticked): lab.widgets' `frame` for translation."""
    pre = (paths.data() / "translation" / "preface.txt").read_text("utf-8").strip()
    terms = load_glossary(paths.data() / "translation" / "glossary.tsv") if glossary else []
    lines = [Unit(i, 0, t, 0) for i, t in enumerate(text.splitlines()) if t.strip()]
    return PromptSpec(preface=pre, glossary=terms).messages(Chunk(0, lines))[-1]["content"]
