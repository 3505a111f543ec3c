"""lab.jatext: Japanese text encodings detected, binary and mixed files refused naming the line."""

import codecs

import pytest

from lab import LabError
from lab.jatext import decode, read_text, unproven

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


def test_binary_and_unknown_are_refused():
    with pytest.raises(LabError, match="x.bin: looks binary"):
        decode(b"PK\x03\x04\x00\x00binary", "x.bin")
    with pytest.raises(LabError, match="y.txt: unknown encoding"):
        decode(b"\x80\xff\xfe\xfd abc", "y.txt")


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


def test_iso2022jp_and_jis_x_0213_files_are_detected():
    text = "「あっ――――――！」と彼は言った。"
    assert decode(text.encode("iso2022_jp"), "x.txt") == (text, "iso2022_jp")
    assert decode("跑る𠮟".encode("shift_jis_2004"), "y.txt")[0] == "跑る𠮟"


def test_read_text_reads_a_cp932_c_program_and_refuses_as_decode_does(tmp_path):
    """A C program saved by a Japanese Windows editor (CP932 comments) was "not UTF-8 text"; a Chinese one (GBK)
    still is refused, not read as EUC-JP."""
    src = '#include <stdio.h>\n// 合計を出す\nint main(void) { puts("合計"); return 0; }\n'
    (tmp_path / "p.c").write_bytes(src.encode("cp932"))
    assert read_text(tmp_path / "p.c", "C program") == src
    (tmp_path / "g.c").write_bytes('// 计算两个数的和\nint main(void) { puts("结果"); return 0; }\n'.encode("gbk"))
    with pytest.raises(LabError, match=r"g.c:1: not UTF-8 text \(byte 0xbc at offset 3\)"):
        read_text(tmp_path / "g.c", "C program")  # read as EUC-JP it was 柴麻曾倖方議才, silently
    (tmp_path / "b.c").write_bytes(b"\x7fELF\x00\x00")
    with pytest.raises(LabError, match="b.c:1: .*NUL"):
        read_text(tmp_path / "b.c", "C program")


def test_only_a_legacy_reading_without_kana_is_unproven():
    gbk = "计算两个数的和".encode("gbk")
    assert unproven(*decode(gbk))  # GBK read as EUC-JP kanji: nothing Japanese about it
    assert not unproven(*decode("合計を出す".encode("cp932")))
    assert not unproven("计算", "utf-8") and not unproven("计算", "utf-16")  # UTF needs no guessing
