"""lab.translate.sources: encodings detected or refused naming the line, Aozora markup, sentences, folder inputs."""

import codecs
from pathlib import Path

import pytest

from lab import LabError
from lab.translate.sources import (
    GETA,
    HEADER_TITLE,
    clean_aozora,
    decode,
    file_texts,
    gaiji,
    inputs,
    load,
    looks_aozora,
    split_sentences,
)

JA = "春の朝、駅に少女が立っていた。彼女の名前は葵。"


@pytest.mark.parametrize("enc,bom", [("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE),
                                     ("utf-16-be", codecs.BOM_UTF16_BE), ("cp932", b""), ("euc_jp", b"")])
def test_encodings_are_detected(enc, bom):
    text, found = decode(bom + JA.encode(enc), "x.txt")
    assert text == JA
    assert found == {"cp932": "cp932", "euc_jp": "euc_jp"}.get(enc, found)


@pytest.mark.parametrize("enc", ["cp932", "euc_jp"])
@pytest.mark.parametrize("text", ["ﾄﾞｶｰﾝ！ﾄﾞｶｰﾝ！ｷｬｰ!! ﾀｽｹﾃｰ", "「ｷｬｰ!! ﾀｽｹﾃｰ」", "ｺﾝﾆﾁﾊ、ｾｶｲ。\n今日は①番の㈱です。"])
def test_half_width_kana_are_text_in_either_legacy_encoding(text, enc):
    """A Shift_JIS web novel's sound effects: counted as mojibake, they made the file "unknown encoding" past 2%
    of its characters, and EUC-JP's (8E xx) were read as CP932 kanji (ﾄﾞｶｰﾝ -> 執汐鴫...)."""
    if enc == "euc_jp" and "①" in text:
        text = text.replace("①", "1").replace("㈱", "株")  # NEC's special characters are CP932's own
    assert decode(text.encode(enc), "x.txt") == (text, enc)


def test_binary_and_unknown_and_empty_are_refused(tmp_path):
    with pytest.raises(LabError, match="x.bin: looks binary"):
        decode(b"PK\x03\x04\x00\x00binary", "x.bin")
    with pytest.raises(LabError, match="y.txt: unknown encoding"):
        decode(b"\x80\xff\xfe\xfd abc", "y.txt")
    (tmp_path / "e.txt").write_text("  \n\n")
    with pytest.raises(LabError, match="e.txt: empty file"):
        load(tmp_path / "e.txt")
    with pytest.raises(LabError, match="does not exist"):
        inputs(tmp_path / "missing")
    (tmp_path / "crlf.txt").write_bytes("一\r\n二\r\n".encode("cp932"))
    assert file_texts(tmp_path / "crlf.txt") == [("", "一\n二\n", "cp932")]


@pytest.mark.parametrize("enc", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read_and_binary_still_refused(enc):
    """Saved as UTF-16 without a BOM, a novel's ASCII digits and line ends hold NUL bytes: it was refused as binary."""
    text = "第1章\r\n　雨が降っていた。\r\n「寒いね」と彼女は言った。ABC 123\r\n"
    assert decode(text.encode(enc), "u.txt") == (text, enc)
    random = bytes((i * 7919 + 13) % 251 for i in range(4000))  # data with NULs that is no text in any reading
    for data in (random, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10, "English only\n".encode(enc)):
        with pytest.raises(LabError, match="u.bin: looks binary"):
            decode(data, "u.bin")


@pytest.mark.parametrize("enc", ["cp932", "euc_jp"])
def test_a_file_in_two_encodings_or_a_damaged_utf8_one_is_refused_naming_the_line(enc):
    """Read as CP932, the UTF-8 lines became mojibake (あい -> 縺ゅ＞) that the checks took for kanji, and the run
    said "every line translated"."""
    with pytest.raises(LabError, match=r"^m.txt:3: not UTF-8 \(byte 0x[0-9a-f]{2}\), but line 1 is UTF-8 Japanese: "
                                       r"two encodings in one file"):
        decode(f"{JA}\nabc\n".encode() + JA.encode(enc) + b"\n", "m.txt")
    damaged = (JA + "\n" + JA).encode()
    with pytest.raises(LabError, match=r"^d.txt:2: not UTF-8 .*, but line 1 is UTF-8 Japanese"):
        decode(damaged[:-4] + b"\xe3" + damaged[-3:], "d.txt")
    assert decode(f"{JA}\n{JA}\n".encode(enc), "l.txt") == (f"{JA}\n{JA}\n", enc)  # one legacy encoding: as before


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


def test_iso2022jp_and_jis_x_0213_files_are_detected():
    text = "「あっ――――――！」と彼は言った。"
    assert decode(text.encode("iso2022_jp"), "x.txt") == (text, "iso2022_jp")
    assert decode("跑る𠮟".encode("shift_jis_2004"), "y.txt")[0] == "跑る𠮟"


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
