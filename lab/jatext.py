"""Japanese text of unknown encoding: byte-order marks, UTF-16 without one, ISO-2022-JP, UTF-8, and Shift_JIS/CP932
against EUC-JP told apart by what each reading gives; binary data and files mixing two encodings refused."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from lab import LabError, paths

# Tried after the BOMs, with strict decoding; the *_2004 codecs add JIS X 0213 (Aozora's 第3/第4水準).
ENCODINGS = ("utf-8", "cp932", "euc_jp", "shift_jis_2004", "euc_jis_2004")
ISO2022 = ("iso2022_jp", "iso2022_jp_2004", "iso2022_jp_ext", "iso2022_jp_3")  # 7-bit with ESC $ B / ESC $ @
# kana, including the half-width katakana (ｶﾀｶﾅ, U+FF66-FF9F) of web novels and sound effects: a line of them left
# untranslated passed every check before
KANA = re.compile(r"[\u3040-\u309f\u30a0-\u30ff\uff66-\uff9f]")
# What tells a right legacy reading from a wrong one (decode): kana and 、。「」『』！？… (not 〜, U+301C, which
# Shift_JIS-2004 reads where CP932 reads ～), private use and C1 controls, half-width kana
JAPANESE = re.compile(r"[\u3040-\u30ff、。「」『』！？…]")
GARBLED = re.compile(r"[\ue000-\uf8ff\x80-\x9f]")
HALF_WIDTH_KANA = re.compile(r"[\uff61-\uff9f]")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\ufffe\uffff]")


def read_text(path: str | Path, what: str = "file") -> str:
    """A file that need not be Japanese (a C program) in any of the encodings decode() knows; anything else is
    paths.read_text's error naming the line and byte that are not UTF-8. A legacy reading must hold kana: Chinese
    saved as GBK reads as EUC-JP kanji (计算 -> 柴麻), which a novel's kana would rule out, a C comment's not."""
    data = paths.read_bytes(path, what)
    try:
        text, enc = decode(data, str(path))
    except LabError:
        text, enc = "", ""
    if not unproven(text, enc):
        return text
    return paths.read_text(path, what)  # raises: decode() refused it, or read no kana


def unproven(text: str, encoding: str) -> bool:
    """A legacy (not UTF) reading without one kana: Chinese saved as GBK reads as EUC-JP kanji (计算 -> 柴麻), and
    only kana tell a Japanese file from it (a kanji-only Japanese file is rare, not impossible)."""
    return not encoding.startswith(("utf-8", "utf-16")) and not KANA.search(text)


def decode(data: bytes, name: str = "input") -> tuple[str, str]:
    """(text, encoding) of raw bytes; refuses binary and undecodable data naming the file."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                raise LabError(f"{name}: starts with a {enc} byte-order mark but does not decode as {enc}") from None
    if b"\x00" in data[:8192]:
        found = _utf16_without_bom(data)
        if found is None:
            raise LabError(f"{name}: looks binary (NUL bytes), not a text file")
        return found
    if b"\x1b$" in data and max(data, default=0) < 0x80:  # ISO-2022-JP: 7-bit, kanji behind ESC $ B
        for enc in ISO2022:
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                continue
    try:
        return data.decode("utf-8"), "utf-8"  # strict UTF-8 almost never accepts legacy Japanese bytes
    except UnicodeDecodeError:
        _refuse_mixed(data, name)
    candidates = []
    for rank, enc in enumerate(ENCODINGS[1:]):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        candidates.append((_evidence(text), rank, enc, text))
    # CP932 also "decodes" EUC-JP (あ, A4 A2, becomes ､｢) and random bytes, into half-width kana and private-use
    # characters. Keep the candidate with the most hiragana, full-width katakana and Japanese punctuation (a wrong
    # reading gives none: CP932 hiragana need the lead byte 82, which EUC-JP never has, and EUC-JP's A4 is ､ in
    # CP932), then the fewest private-use and control characters (Shift_JIS-2004's extra kanji are private use
    # in CP932), then the fewest half-width kana, among those whose private use and controls are 2% at most
    # (none: refused).
    # Half-width kana alone refuse nothing: a Shift_JIS web novel's ﾄﾞｶｰﾝ are text (a file of nothing but
    # half-width kana and kanji, without one kana or 、。, stays ambiguous: read as the kanji reading).
    fit = [c for c in candidates if c[0][1] <= 0.02 * max(1, len(c[3]))]
    if fit:
        _, _, enc, text = max(fit, key=lambda c: (c[0][0], -c[0][1], -c[0][2], -c[1]))
        return text, enc
    raise LabError(f"{name}: unknown encoding (not UTF-8/16, Shift_JIS/CP932, EUC-JP or ISO-2022-JP); "
                   f"convert it to UTF-8")


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """UTF-16 saved without a byte-order mark (its NUL bytes are the high half of ASCII characters): the reading,
    LE or BE, with no control character but tab and line ends and a tenth or more of Japanese kana and
    punctuation; None for anything else (binary data read as UTF-16 gives controls and few kana)."""
    if len(data) % 2:
        return None
    for enc in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if not CONTROL.search(text) and len(JAPANESE.findall(text)) >= 0.1 * len(text.strip()) > 0:
            return text, enc
    return None


def _refuse_mixed(data: bytes, name: str) -> None:
    """Refuse bytes that are UTF-8 Japanese on one line and not UTF-8 on another (files joined from two encodings,
    or a damaged UTF-8 file): read as CP932, the UTF-8 lines would become mojibake (あい -> 縺ゅ＞) that every
    check takes for kanji. Legacy encodings never form UTF-8 kana (E3 81-83 xx): EUC-JP has no byte under 0xA1
    after a lead, and a whole Shift_JIS line that decodes as UTF-8 with kana takes a chain of coincidences."""
    kana = bad = None
    for no, line in enumerate(data.split(b"\n"), 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            bad = bad or (no, line[e.start])
        else:
            kana = kana or (no if KANA.search(text) else None)
        if kana and bad:
            raise LabError(f"{name}:{bad[0]}: not UTF-8 (byte 0x{bad[1]:02x}), but line {kana} is UTF-8 Japanese: "
                           f"two encodings in one file, or a damaged one; convert it to UTF-8")


def _evidence(text: str) -> tuple[int, int, int]:
    """(hiragana, full-width katakana and CJK punctuation; private-use and C1 control characters; half-width
    kana) in a decoded text: what a right reading has, what a wrong one gives."""
    return len(JAPANESE.findall(text)), len(GARBLED.findall(text)), len(HALF_WIDTH_KANA.findall(text))
