"""lab.translate.cli: `lab tokens` counts a long text in pieces cut before a line."""

import pytest

from lab import LabError


def test_lab_tokens_counts_a_long_text_in_pieces_cut_before_a_line(monkeypatch):
    """A 104,857,600-character chapter tokenized at once took 24 GB and the OOM killer."""
    from lab.translate import chunking
    from lab.translate.cli import _count
    monkeypatch.setattr(chunking, "MAX_LINE_CHARS", 10)
    asked = []

    def tok(text, add_special_tokens):  # a character a token, so the pieces must add up exactly
        asked.append(text)
        return {"input_ids": list(text)}
    text = "一二三\n四五六七八\n九\n十一二三四五六七\n八"
    assert _count(tok, text, "t.txt") == len(text) and "".join(asked) == text
    assert len(asked) > 1 and all(len(a) <= 11 and (a.endswith("\n") or a is asked[-1]) for a in asked)
    with pytest.raises(LabError, match=r"t.txt: line 2 has 11 characters, over the 10 of one line"):
        _count(tok, "短い\n" + "長" * 11, "t.txt")
