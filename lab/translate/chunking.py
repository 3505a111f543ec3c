"""Chunking by the server's token counts: lines packed into chunks that fit the context with their output."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lab import LabError
from lab.client import context_room
from lab.streaming import CHARS_PER_TOKEN
from lab.translate.sources import split_sentences

# Output tokens per source token, for budgeting: ja -> zh is usually shorter in characters; 1.5 leaves room
# for a model that explains or loops before the checks catch it.
OUTPUT_RATIO = 1.5


@dataclass
class Unit:
    """A translatable piece: a whole line, or a sentence group of a line longer than the budget."""

    line: int
    piece: int
    text: str
    tokens: int


@dataclass
class Chunk:
    """Units translated by one request, plus the source lines before them as context."""

    index: int
    units: list[Unit]
    context: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(u.text for u in self.units)

    @property
    def tokens(self) -> int:
        return sum(u.tokens for u in self.units)


# Characters str.splitlines() breaks a line at besides \n (\r is gone on reading): inside a source line (a form
# feed from a PDF export, a U+2028 from a word processor) they made the reply's line count check expect more
# lines than the chunk has, so every try failed; the model sees a space instead
LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")

# Where a sentence too long for one request may be cut: after a clause mark or a space (ja and zh punctuation)
CLAUSE = re.compile(r"(?<=[、，,；;：:…―—　 ])")

# One line longer than this is refused, not translated: a whole novel is ~350,000 characters (吾輩は猫である),
# and chunking a random 1,000,000-character line took ~13,000 token counts (~30 s on a local server)
MAX_LINE_CHARS = 1_000_000
# A text whose chunking takes long enough to say so first (a /tokenize per line and per cut sentence: ~600 a
# second on a local server, so ~5 s for 200,000 characters of short sentences)
LONG_TEXT = 200_000


def refuse_long_line(line: str, where: str) -> None:
    """One error line naming `where` ("FILE: line N") when `line` is over MAX_LINE_CHARS characters."""
    if len(line) > MAX_LINE_CHARS:
        raise LabError(f"{where} has {len(line):,} characters, over the {MAX_LINE_CHARS:,} of one line (a whole "
                       f"novel is ~350,000): break it into paragraphs")


def over(text: str, count: Callable[[str], int], limit: int) -> bool:
    """Whether `text` has more than `limit` tokens; a text far too long is not sent to be counted."""
    return len(text) > CHARS_PER_TOKEN * limit or count(text) > limit


def fit(text: str, count: Callable[[str], int], hard: int) -> list[str]:
    """`text` in consecutive pieces of at most `hard` tokens: whole when it fits, else cut after clause marks,
    else halved (a 200,000-character line with no 。 was refused; a piece per request translates it)."""
    if not over(text, count, hard):
        return [text]
    parts = [p for p in CLAUSE.split(text) if p]
    if len(parts) == 1:
        parts = [text[:len(text) // 2], text[len(text) // 2:]]
    out: list[str] = []
    cur = ""
    for q in (x for p in parts for x in fit(p, count, hard)):
        if cur and over(cur + q, count, hard):
            out.append(cur)
            cur = ""
        cur += q
    return out + [cur] if cur else out


def line_units(i: int, line: str, count: Callable[[str], int], budget: int, room: int) -> list[Unit]:
    """Line `i` as one unit when it fits, else its sentences packed up to `budget` tokens, each cut to `room`."""
    if not over(line, count, min(budget, room)):
        return [Unit(i, 0, line, count(line))]
    units: list[Unit] = []
    piece, piece_tokens = "", 0
    sents = split_sentences(line)
    if any(over(x, count, room) for x in sents):  # an unclosed 「 or a very long quotation
        sents = split_sentences(line, quotes=False)
    for sent in (x for s in sents for x in fit(s, count, room)):
        st = count(sent)
        if piece and piece_tokens + st > budget:
            units.append(Unit(i, len(units), piece, piece_tokens))
            piece, piece_tokens = "", 0
        piece, piece_tokens = piece + sent, piece_tokens + st
    return units + [Unit(i, len(units), piece, piece_tokens)] if piece else units


def make_chunks(lines: list[str], count: Callable[[str], int], budget: int, context_lines: int = 0,
                hard: int | None = None, skip: set[int] | frozenset[int] = frozenset(),
                extra: Callable[[str], int] | None = None) -> list[Chunk]:
    """Pack non-empty lines (but those in `skip`) into chunks of at most `budget` source tokens; longer
    lines split at 。！？ outside quotes (inside them only when a quotation alone is too long).

    A single sentence over `budget` still gets a chunk of its own when it fits `hard` (what the model's
    context allows); a sentence over `hard` is cut into pieces that fit (see fit). `extra(text)`: what the
    prompt of `text` adds (its glossary terms), in source tokens; a chunk's text and its extra fit `hard`."""
    hard = max(hard or budget, budget)
    if budget < 1:
        raise LabError(f"chunk budget must be >= 1 token, got {budget}")
    extra = extra or (lambda _text: 0)
    # The terms of the whole text bound any chunk's: while they fit beside a chunk, no chunk's own are counted
    # (the same chunks as a budget net of them); a 400-name glossary on a 2,048-token model needs each chunk's
    bound = extra("\n".join(ln for i, ln in enumerate(lines) if i not in skip))
    units: list[Unit] = []
    for i, line in enumerate(lines):
        line = LINE_BREAKS.sub(" ", line)
        if not line.strip() or i in skip:
            continue
        refuse_long_line(line, f"line {i + 1}")
        room = hard - bound if hard - bound >= budget else hard - extra(line)  # the line's terms bound its pieces'
        if room < 8:
            raise LabError(f"line {i + 1}: its glossary terms fill the model's context; shorten the glossary")
        units += line_units(i, line, count, budget, room)
    chunks: list[Chunk] = []
    cur: list[Unit] = []
    for u in units:
        tokens = sum(x.tokens for x in cur) + u.tokens
        if cur and (tokens > budget or (tokens + bound > hard and
                                        tokens + extra("\n".join(x.text for x in [*cur, u])) > hard)):
            chunks.append(Chunk(len(chunks), cur))
            cur = []
        cur.append(u)
    if cur:
        chunks.append(Chunk(len(chunks), cur))
    if context_lines:
        for c in chunks:
            before = [u.text for u in units if u.line < c.units[0].line or
                      (u.line == c.units[0].line and u.piece < c.units[0].piece)]
            c.context = before[-context_lines:]
    return chunks


def chunk_budget(max_model_len: int, overhead: int, user_cap: int) -> int:
    """Largest chunk (source tokens) whose prompt and expected output fit the context: S + 1.5 S + overhead."""
    room = int((max_model_len - overhead) / (1 + OUTPUT_RATIO))
    if room < 8:
        raise LabError(f"the model's context ({max_model_len} tokens) is too small for the prompt ({overhead} "
                       f"tokens of preface, glossary and examples) plus even one paragraph")
    return min(user_cap, room)


def max_tokens_for(max_model_len: int, prompt_tokens: int, source_tokens: int, cap: int) -> int:
    """max_tokens for one request: room left in the context, at most 2x the source + 64 and the cap."""
    return max(1, min(cap, context_room(max_model_len, prompt_tokens), 2 * source_tokens + 64))
