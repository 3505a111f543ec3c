"""lab.translate.eval: lines too long to score are refused; a partial evaluation scores what has a reference."""

import pytest

from lab import LabError


def test_eval_refuses_a_line_too_long_to_score(tmp_path, monkeypatch):
    """chrF counts a line's character n-grams: one 20,000,000-character line takes gigabytes."""
    from lab.translate import chunking
    from lab.translate import eval as ev
    monkeypatch.setattr(chunking, "MAX_LINE_CHARS", 10)
    (tmp_path / "h.txt").write_text("猫がいる\n" + "猫" * 11 + "\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("有猫\n有猫\n", encoding="utf-8")
    with pytest.raises(LabError, match=r"h.txt: line 2 \(of those with text\) has 11 characters, over the 10"):
        ev.evaluate(tmp_path / "h.txt", tmp_path / "r.txt")
    (tmp_path / "h.txt").write_text("猫がいる\n猫\n", encoding="utf-8")
    assert ev.evaluate(tmp_path / "h.txt", tmp_path / "r.txt")["total"]["chrf"] >= 0


def test_partial_eval_scores_what_has_a_reference_and_nothing_is_no_error(tmp_path):
    """Notebook 04 on a reader's own texts: those with a reference are scored, the rest are not, and a folder
    with none gives chrF None instead of "translate X first" for the project's samples."""
    from lab.translate import eval as ev
    hyp, ref = tmp_path / "hyp", tmp_path / "ref"
    hyp.mkdir()
    ref.mkdir()
    (hyp / "a.zh.txt").write_text("有一只猫\n", encoding="utf-8")
    (hyp / "mine.zh.txt").write_text("我的\n", encoding="utf-8")
    (ref / "a.txt").write_text("有一只猫\n", encoding="utf-8")
    (ref / "c.txt").write_text("没有翻译\n", encoding="utf-8")
    with pytest.raises(LabError, match=r"c.zh.txt is missing: translate c first"):
        ev.evaluate(hyp, ref)
    got = ev.evaluate(hyp, ref, partial=True)
    assert [r["doc"] for r in got["rows"]] == ["a"] and got["total"]["chrf"] == 100
    (ref / "a.txt").unlink()
    assert ev.evaluate(hyp, ref, partial=True)["total"] == {"doc": "ALL", "chrf": None, "bleu": None,
                                                           "untranslated_lines": 0}
    assert ev.evaluate(hyp, tmp_path / "none", partial=True)["rows"] == []
