"""lab.translate.chunking: chunks within the token budget, whole lines, huge lines counted in pieces."""

import pytest

from lab import LabError
from lab.translate import (
    chunk_budget,
    make_chunks,
    max_tokens_for,
)
from lab.translate.checks import checks
from lab.translate.chunking import CHARS_PER_TOKEN, MAX_LINE_CHARS, fit


def test_a_long_quotation_is_split_inside_only_when_it_must_be():
    line = "「" + "あ。" * 10 + "」"
    chunks = make_chunks([line], len, budget=8, hard=12)
    assert "".join(c.text for c in chunks) == line and all(c.tokens <= 12 for c in chunks)
    chunks = make_chunks(["「はい。」と言った。いいえ。"], len, budget=10)
    assert [c.text for c in chunks] == ["「はい。」と言った。", "いいえ。"]


def test_a_line_break_inside_a_source_line_reaches_the_model_as_a_space():
    """A form feed or U+2028 inside a line made the line-count check expect 4 reply lines for a 2-line chunk:
    every try of the chunk failed and both lines came back untranslated."""
    lines = ["一行目です。\u2028二行目です。", "三行目です。\f四行目\x85五行目", "\x0c"]
    (chunk,) = make_chunks(lines, len, budget=100)
    assert chunk.text == "一行目です。 二行目です。\n三行目です。 四行目 五行目"
    assert [u.line for u in chunk.units] == [0, 1]  # the form-feed-only line is blank: copied, not sent
    assert checks("第一行。第二行。\n第三行。第四行第五行", chunk.text, "stop") == []


def test_chunks_respect_the_budget_and_keep_lines():
    lines = ["一二三四", "", "五六七八", "九十", "ああああ。いいいい。うううう。"]
    chunks = make_chunks(lines, len, budget=8, context_lines=1)
    assert [c.text for c in chunks] == ["一二三四\n五六七八", "九十\nああああ。", "いいいい。", "うううう。"]
    assert all(c.tokens <= 8 for c in chunks)
    assert [(u.line, u.piece) for c in chunks for u in c.units] == [(0, 0), (2, 0), (3, 0), (4, 0), (4, 1), (4, 2)]
    assert chunks[1].context == ["五六七八"] and chunks[0].context == []
    # a sentence longer than the context is cut: after clause marks first, else in halves; nothing is lost
    long = make_chunks(["長い長い長い長い長い長い"], len, budget=8)
    assert [c.text for c in long] == ["長い長い長い", "長い長い長い"] and all(c.tokens <= 8 for c in long)
    assert [(u.line, u.piece) for c in long for u in c.units] == [(0, 0), (0, 1)]
    clauses = make_chunks(["雨が降り、風が吹き、雪が舞った"], len, budget=8)
    assert [c.text for c in clauses] == ["雨が降り、", "風が吹き、", "雪が舞った"]
    huge = "あ" * 5000
    pieces = fit(huge, len, 64)
    assert "".join(pieces) == huge and max(map(len, pieces)) <= 64
    assert [c.text for c in make_chunks(["長い長い長い長い長い長い。短い。"], len, 8, hard=20)] == [
        "長い長い長い長い長い長い。", "短い。"]  # over the soft budget, within the context: a chunk of its own


def test_a_huge_line_is_counted_in_pieces_and_one_over_the_limit_is_refused():
    asked: list[int] = []

    def count(text: str) -> int:  # the server's /tokenize: what it is asked to count must stay small
        asked.append(len(text))
        return len(text)
    line = "雨が降り、" * 40_000  # 200,000 characters: a paragraph with no 。
    chunks = make_chunks([line], count, budget=300, hard=400)
    assert "".join(u.text for c in chunks for u in c.units) == line and all(c.tokens <= 400 for c in chunks)
    assert max(asked) <= CHARS_PER_TOKEN * 400  # never the whole line: 100M characters took vLLM to the OOM killer
    with pytest.raises(LabError, match=f"line 2 has {MAX_LINE_CHARS + 1:,} characters"):
        make_chunks(["短い。", "あ" * (MAX_LINE_CHARS + 1)], count, budget=300)


def test_budget_and_max_tokens_come_from_the_context():
    assert chunk_budget(2048, 48, 512) == 512
    assert chunk_budget(1000, 100, 512) == 360  # (1000 - 100) / 2.5
    with pytest.raises(LabError, match="context \\(40 tokens\\) is too small"):
        chunk_budget(40, 30, 512)
    assert max_tokens_for(2048, 1900, 100, 4096) == 140  # never more than what is left: no 400 errors
    assert max_tokens_for(32768, 500, 100, 4096) == 264
