"""Reading source texts: encoding detection, binary refusal, Aozora Bunko markup, line structure."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from lab import LabError

# Tried after the BOMs, with strict decoding.
ENCODINGS = ("utf-8", "cp932", "euc_jp")
RUBY = re.compile(r"《[^》]*》")            # ruby readings: 漢字《かんじ》
RUBY_BAR = re.compile(r"｜")                # marks where a ruby base starts
NOTE = re.compile(r"［＃[^］]*］")          # editor notes: ［＃「…」に傍点］


def decode(data: bytes, name: str = "input") -> tuple[str, str]:
    """(text, encoding) of raw bytes; refuses binary and undecodable data naming the file."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                raise LabError(f"{name}: starts with a {enc} byte-order mark but does not decode as {enc}") from None
    if b"\x00" in data[:8192]:
        raise LabError(f"{name}: looks binary (NUL bytes), not a text file")
    try:
        return data.decode("utf-8"), "utf-8"  # strict UTF-8 almost never accepts legacy Japanese bytes
    except UnicodeDecodeError:
        pass
    candidates = []
    for enc in ENCODINGS[1:]:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        candidates.append((_implausible(text), enc, text))
    # CP932 also "decodes" EUC-JP and random bytes, into half-width kana and private-use characters:
    # keep the candidate with the fewest such characters, and refuse when even that one is garbage.
    if candidates:
        bad, enc, text = min(candidates)
        if bad <= 0.02:
            return text, enc
    raise LabError(f"{name}: unknown encoding (not UTF-8/16, Shift_JIS/CP932 or EUC-JP); convert it to UTF-8")


def _implausible(text: str) -> float:
    """Share of characters a real Japanese text almost never has: private use, half-width kana, C1 controls."""
    odd = sum(1 for ch in text if "\ue000" <= ch <= "\uf8ff" or "\uff61" <= ch <= "\uff9f" or "\x80" <= ch <= "\x9f")
    return odd / max(1, len(text))


def read_text(path: str | Path, aozora: bool = False) -> tuple[str, str]:
    """Read a text file: (text with \\n line ends, detected encoding)."""
    p = Path(path)
    if not p.exists():
        raise LabError(f"{p} does not exist")
    if p.is_dir():
        raise LabError(f"{p} is a folder; give a .txt file")
    text, enc = decode(p.read_bytes(), str(p))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if aozora:
        text = clean_aozora(text)
    if not text.strip():
        raise LabError(f"{p}: empty file, nothing to translate")
    return text, enc


def clean_aozora(text: str) -> str:
    """Remove Aozora Bunko ruby readings, ruby bars and ［＃…］ notes, keeping the base text."""
    return NOTE.sub("", RUBY.sub("", RUBY_BAR.sub("", text)))


def inputs(path: str | Path) -> list[Path]:
    """The .txt files to translate: the file itself, or every .txt below a folder (sorted)."""
    p = Path(path)
    if not p.exists():
        raise LabError(f"{p} does not exist")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.rglob("*.txt") if f.is_file())
    if not files:
        raise LabError(f"{p}: no .txt files in this folder")
    return files


SENTENCE_END = re.compile(r"(?<=[。！？!?])")


def split_sentences(line: str) -> list[str]:
    """Split a line after 。！？ (keeping them), never inside a character; '' pieces dropped."""
    return [s for s in SENTENCE_END.split(line) if s]
