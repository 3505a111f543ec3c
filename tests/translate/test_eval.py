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


@pytest.mark.parametrize("enc", ["utf-8", "cp932"])
def test_a_source_is_read_as_the_translation_read_it(tmp_path, enc):
    """--source with an Aozora Bunko file (32 lines, 22 after its markup) or a Shift_JIS one: the lines align
    with its translation's, as `lab translate` cleaned and decoded them; before, 'they must align' or 'not UTF-8'."""
    from helpers import NOVEL as novel
    from helpers import lab
    for d in ("hyp", "ref", "src"):
        (tmp_path / d).mkdir()
    ref = (novel / "ame.zh.txt").read_text("utf-8")
    (tmp_path / "hyp" / "ame.zh.txt").write_text(ref, encoding="utf-8")
    (tmp_path / "ref" / "ame.txt").write_text(ref, encoding="utf-8")
    (tmp_path / "src" / "ame.txt").write_bytes((novel / "ame.txt").read_text("utf-8").encode(enc))
    (tmp_path / "g.tsv").write_text("雨\t雨\n", encoding="utf-8")  # in the title and in lines of the text
    r = lab("translate", "eval", str(tmp_path / "hyp"), str(tmp_path / "ref"), "--source", str(tmp_path / "src"),
            "--glossary", str(tmp_path / "g.tsv"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].split() == ["ame", "100.0", "100.0", "0", "1.0"]
