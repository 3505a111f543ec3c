"""lab.translate.sources: Aozora markup, sentences, folder inputs."""

from pathlib import Path

import pytest

from lab import LabError
from lab.translate.sources import (
    GETA,
    HEADER_TITLE,
    clean_aozora,
    file_texts,
    gaiji,
    inputs,
    load,
    looks_aozora,
    split_sentences,
)

JA = "春の朝、駅に少女が立っていた。彼女の名前は葵。"


def test_empty_and_missing_are_refused_and_line_ends_made_one(tmp_path):
    (tmp_path / "e.txt").write_text("  \n\n")
    with pytest.raises(LabError, match="e.txt: empty file"):
        load(tmp_path / "e.txt")
    with pytest.raises(LabError, match="does not exist"):
        inputs(tmp_path / "missing")
    (tmp_path / "crlf.txt").write_bytes("一\r\n二\r\n".encode("cp932"))
    assert file_texts(tmp_path / "crlf.txt") == [("", "一\n二\n", "cp932", "\r\n")]


def test_a_legacy_reading_without_kana_is_read_and_said(tmp_path, capsys):
    """Chinese saved as GBK reads as EUC-JP kanji (计算 -> 柴麻) and was translated so without a word."""
    (tmp_path / "zh.txt").write_bytes("计算两个数的和。\n".encode("gbk"))
    assert file_texts(tmp_path / "zh.txt")[0][2] == "euc_jp"
    assert "zh.txt: read as euc_jp, but it holds no kana" in capsys.readouterr().err
    (tmp_path / "ja.txt").write_bytes("雨が降っていた。\n".encode("euc_jp"))
    file_texts(tmp_path / "ja.txt")
    assert capsys.readouterr().err == ""


def test_a_file_name_that_is_not_utf8_is_refused_before_anything(tmp_path):
    """A name in another system's encoding (bytes Python holds as surrogates) crashed the run after its first
    request, writing the UTF-8 manifest: "internal error UnicodeEncodeError"."""
    import os
    (tmp_path / "ok.txt").write_text(JA, encoding="utf-8")
    bad = Path(os.fsdecode(bytes(tmp_path) + b"/\xff\xfe.txt"))
    bad.write_text(JA, encoding="utf-8")
    for given in (tmp_path, bad):
        with pytest.raises(LabError, match=r"/\\xff\\xfe\.txt: the file name is not UTF-8"):
            inputs(given)


def test_aozora_markup_is_removed():
    assert clean_aozora("｜魔法使《まほうつか》いは［＃「魔法」に傍点］笑った")[0] == "魔法使いは笑った"
    # Web novels write the bar in ASCII; a | that no reading follows is text and stays
    assert clean_aozora("|吾輩《わがはい》は猫|である")[0] == "吾輩は猫|である"
    # and emphasis dots as 《《word》》 (Kakuyomu): read as ruby, the word was lost and a 》 stayed
    text = "俺は《《本気》》だ。|魔法《マジック》は《《嘘》》じゃない。"
    assert looks_aozora(text) and clean_aozora(text)[0] == "俺は本気だ。魔法は嘘じゃない。"
    assert clean_aozora(text)[2] == ["1 ruby readings and 2 layout/emphasis notes stripped"]
    # unclosed marks stay text, each looked for within a bound (searched to the end of the line, a 20,000-mark line
    # once took seconds); a whole one on the same line is still stripped
    line = "《" * 5000 + "吾輩《わがはい》は猫［＃「猫」に傍点］" + "［＃" * 5000
    assert clean_aozora(line)[0] == "《" * 5000 + "吾輩は猫" + "［＃" * 5000


def test_aozora_repetition_marks_are_written_out():
    """Aozora types くの字点 as ／＼ (voiced ／″＼), in nearly every Meiji-era text; sent as they were, two slashes."""
    text, _, notes = clean_aozora("いろ／＼考へた。しみ／″＼と思ふ。ひと／″＼が来る。代る／＼に読む。")
    assert text == "いろいろ考へた。しみじみと思ふ。ひとびとが来る。代る〳〵に読む。"  # after a kanji: Unicode's mark
    assert any(n.startswith("4 repetition marks") for n in notes)


def test_aozora_gaiji_header_and_footer():
    assert gaiji("「足＋包」、第3水準1-92-34") == "跑"  # JIS X 0213 plane 1, row 92, cell 34
    assert gaiji("「口＋和」、第4水準2-3-76") == "咊"    # plane 2 (EUC-JIS-2004 SS3)
    assert gaiji("「土＋竒」、U+57FC、ページ数-行数") == "埼"
    assert gaiji("「てへん＋劣」、52-8") is None        # a page-line reference is no code
    body = "本文※［＃「足＋包」、第3水準1-92-34］だ。※［＃「てへん＋劣」、52-8］"
    text = "\n".join(["題", "-" * 55, HEADER_TITLE, "（例）※［＃「足＋包」、第3水準1-92-34］", "-" * 55, "",
                      body, "", "底本：「題」", "入力：誰か"])
    assert looks_aozora(text) and not looks_aozora("「普通の」小説《しょうせつ》です。")
    cleaned, verbatim, notes = clean_aozora(text)
    assert cleaned.split("\n") == ["題", "", "本文跑だ。" + GETA, "", "底本：「題」", "入力：誰か"]
    assert verbatim == {4, 5} and any("footer" in n for n in notes) and any("header" in n for n in notes)


def test_sentences_split_after_terminators_outside_quotes():
    assert split_sentences("あ。い！う？え") == ["あ。", "い！", "う？", "え"]
    assert split_sentences("「はい。」と言った。次だ！？「ええ。そう。」") == \
        ["「はい。」と言った。", "次だ！？", "「ええ。そう。」"]
    assert split_sentences("「開いたまま。閉じない", quotes=False) == ["「開いたまま。", "閉じない"]


def test_folder_inputs_skip_outputs_and_empty_files(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("一行目です。")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "a.zh.txt").write_text("译文")
    (tmp_path / "out" / ".lab-cache").mkdir(parents=True)
    (tmp_path / "out" / "x.txt").write_text("前回の出力")
    (tmp_path / "old" / ".lab-cache").mkdir(parents=True)
    (tmp_path / "old" / "y.txt").write_text("別の出力")
    assert inputs(tmp_path, tmp_path / "out") == [tmp_path / "empty.txt", tmp_path / "a.txt"][::-1]
    docs = load(tmp_path, tmp_path / "out")
    assert [d.name for d in docs] == ["a"] and "empty.txt: empty file, skipped" in capsys.readouterr().err
    assert [d.name for d in load(tmp_path, tmp_path)] == ["a"]  # -o the input folder itself
    with pytest.raises(LabError, match="empty file"):
        load(tmp_path / "empty.txt")


def test_lines_without_a_letter_are_copied_and_never_sent(tmp_path, openai_fake):
    """A scene break (＊　＊　＊, ――――), a bare number or an ellipsis went to the model, which invented a
    sentence for it; an Aozora footer stays verbatim beside them."""
    from helpers import source_of

    from lab.translate import PromptSpec, Settings, Translator
    lines = ["駅に着いた。", "＊　＊　＊", "", "――――", "１２", "「……」", "😀", "ｗｗｗ", "雨が降る。"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = load(tmp_path / "in.txt")[0]
    assert doc.verbatim == {1, 3, 4, 5, 6}  # the empty line is no line to send anyway; ｗｗｗ has letters
    assert doc.notes == ["5 line(s) without a letter (scene breaks, numbers) copied as they are"]
    sent = []

    def reply(body):
        src = source_of(body, PromptSpec().preface)
        sent.extend(src.split("\n"))
        return 200, "\n".join("译" * max(2, len(x)) for x in src.split("\n")), "stop"
    fake = openai_fake(reply)
    Translator(Settings(out=tmp_path / "out", endpoints=[fake.url], timeout=10, progress_every_s=0)).run(
        tmp_path / "in.txt")
    assert sorted(set(sent)) == sorted({"駅に着いた。", "ｗｗｗ", "雨が降る。"})
    got = (tmp_path / "out" / "in.zh.txt").read_text("utf-8").split("\n")
    assert [got[i] for i in (1, 3, 4, 5, 6)] == [lines[i] for i in (1, 3, 4, 5, 6)] and got[0] == "译" * 6
