"""Reading source texts: encoding detection, binary refusal, Aozora Bunko markup, input files, sentences."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from lab import LabError, paths
from lab.jatext import decode, unproven

INPUT_SUFFIXES = (".txt", ".epub", ".zip")  # .zip: the .txt files inside (Aozora ships zips)
# Readings and notes are looked for within 200 and 1,000 characters (Aozora's run to ~30 and ~100): unbounded, a
# line of 20,000 unclosed 《 took 2.5 s and of ［＃ 4.7 s, each searched to the end of its line (quadratic; a
# line may hold 200,000 characters: now 1.3 s for one of ［＃, 0.02 s of 《)
RUBY = re.compile(r"《[^《》\n]{0,200}》")     # ruby readings: 漢字《かんじ》 (a reading holds no 《)
# Kakuyomu's emphasis dots (傍点): 《《絶対》》 shows 絶対 dotted; read as ruby, the word went and 》 stayed
EMPHASIS = re.compile(r"《《([^《》\n]+)》》")
# Marks where a ruby base starts: ｜ always; an ASCII | (web-novel notation, |漢字《かんじ》) only before a reading
RUBY_BAR = re.compile(r"｜|\|(?=[^|｜《\n]+《)")
NOTE = re.compile(r"(※?)［＃([^］\n]{0,1000})］")  # editor notes; with ※ a gaiji (a character JIS X 0208 lacks)
MEN_KU_TEN = re.compile(r"(?<![\d-])([12])-(\d{1,2})-(\d{1,2})(?![\d-])")  # JIS X 0213 plane-row-cell
UCS = re.compile(r"U\+([0-9A-Fa-f]{4,6})")
# くの字点, the vertical repetition mark, as Aozora types it (／＼, voiced ／″＼): after two kana it repeats them
# (いろ／＼ -> いろいろ, しみ／″＼ -> しみじみ), elsewhere it becomes Unicode's own 〳〵 / 〴〵; a model read the
# two slashes as text
KUNOJI = re.compile(r"／(″?)＼")
TWO_KANA = re.compile(r"[ぁ-ゖァ-ヺー]{2}")
GETA = "〓"  # the typesetter's mark for a missing character: visible, and models copy it
HEADER_TITLE = "【テキスト中に現れる記号について】"
RULE = re.compile(r"^-{20,}\s*$")           # the dashed lines around Aozora's notation header
FOOTER = re.compile(r"^[\s　]*底本[：:]")


@dataclass
class Source:
    """One document to translate: its cleaned text and the lines copied untranslated."""

    path: Path
    name: str
    text: str
    encoding: str
    newline: str = "\n"                              # the source's line ends, which its translation keeps
    verbatim: set[int] = field(default_factory=set)  # line indices (Aozora footer, no letter) kept out of the prompt
    notes: list[str] = field(default_factory=list)    # what reading did, said once per file
    epub_href: str | None = None                      # the chapter inside an EPUB input


def source_text(p: Path) -> str:
    """A .txt file's text (or a .zip's one .txt) as `lab translate` reads it by default (any supported encoding,
    Aozora markup removed when detected): what the lines of its translation align with."""
    texts = file_texts(p)
    if len(texts) != 1:
        raise LabError(f"{p}: holds {len(texts)} .txt files; give the one this translation is of")
    text = texts[0][1]
    return clean_aozora(text)[0] if is_aozora(text) else text


def file_texts(p: Path, in_folder: bool = False) -> list[tuple[str, str, str, str]]:
    """(member, text with \n line ends, detected encoding, its own line end) of a .txt file (member ""), or of
    each .txt inside a .zip, decoded and refused as files are, naming the member. in_folder: a zip without text
    is skipped, said."""
    if p.suffix.lower() != ".zip":
        return [("", *_decoded(p))]
    from lab.translate import archive
    try:
        found = archive.texts(p)
    except archive.NoText as e:
        if not in_folder:
            raise
        paths.warn(f"{e}; skipped")
        return []
    return [(m, *_lf(decode(data, f"{p}:{m}"), f"{p}:{m}")) for m, data in found]


def is_aozora(text: str, aozora: bool | None = None) -> bool:
    """Whether a text is cleaned as Aozora Bunko: as --aozora/--no-aozora says, else as its markup shows."""
    return looks_aozora(text) if aozora is None else aozora


def _decoded(p: Path) -> tuple[str, str, str]:
    """A file's text with \n line ends, its detected encoding and its own line end."""
    return _lf(decode(paths.read_bytes(p, "input"), str(p)), str(p))


def _lf(decoded: tuple[str, str], name: str) -> tuple[str, str, str]:
    """\n line ends, and the text's own (\r\n where most lines end so: a Windows editor's file gets its translation
    back the same way); an unproven legacy reading is said (it would be translated as read)."""
    text, enc = decoded
    if unproven(text, enc):
        paths.warn(f"{name}: read as {enc}, but it holds no kana: if it is not Japanese (Chinese in GBK?), "
                   f"convert it to UTF-8")
    newline = "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
    return text.replace("\r\n", "\n").replace("\r", "\n"), enc, newline


def gaiji(note: str) -> str | None:
    """The character an Aozora gaiji note describes by men-ku-ten (JIS X 0213) or U+XXXX; None without a code."""
    m = UCS.search(note)
    if m:
        return chr(int(m.group(1), 16))
    m = MEN_KU_TEN.search(note)
    if not m:
        return None
    men, ku, ten = (int(x) for x in m.groups())
    if not (1 <= ku <= 94 and 1 <= ten <= 94):
        return None
    raw = bytes([0xA0 + ku, 0xA0 + ten])  # EUC-JIS-2004: plane 1 as two bytes, plane 2 after SS3 (0x8F)
    try:
        return (raw if men == 1 else b"\x8f" + raw).decode("euc_jis_2004")
    except UnicodeDecodeError:
        return None


def looks_aozora(text: str) -> bool:
    """Aozora Bunko markup present: the notation header, ［＃ notes, or several 《ruby》 readings."""
    return HEADER_TITLE in text or "［＃" in text or len(RUBY.findall(text)) >= 2


def clean_aozora(text: str) -> tuple[str, set[int], list[str]]:
    """(text, verbatim line indices, notes): header removed, gaiji resolved, ruby/notes stripped, footer kept aside."""
    lines = text.split("\n")
    notes: list[str] = []
    head = next((i for i, ln in enumerate(lines[:80]) if HEADER_TITLE in ln), None)
    if head is not None:
        start = max((i for i in range(head) if RULE.match(lines[i])), default=head)
        end = next((i for i in range(head + 1, len(lines)) if RULE.match(lines[i])), head)
        del lines[start:end + 1]
        notes.append(f"notation header removed ({end + 1 - start} lines)")
    counts = {"resolved": 0, "placeholder": 0, "notes": 0, "kunoji": 0}

    def note(m: re.Match) -> str:
        if not m.group(1):
            counts["notes"] += 1
            return ""
        ch = gaiji(m.group(2))
        counts["resolved" if ch else "placeholder"] += 1
        return ch or GETA
    def repeat(m: re.Match) -> str:
        counts["kunoji"] += 1
        prev = m.string[max(0, m.start() - 2):m.start()]
        if not TWO_KANA.fullmatch(prev):
            return "〴〵" if m.group(1) else "〳〵"
        voiced = unicodedata.normalize("NFC", prev[0] + "\u3099") if m.group(1) else prev[0]
        return (voiced if len(voiced) == 1 else prev[0]) + prev[1]
    dots = sum(len(EMPHASIS.findall(ln)) for ln in lines)
    lines = [EMPHASIS.sub(r"\1", ln) for ln in lines]
    ruby = sum(len(RUBY.findall(ln)) for ln in lines)
    lines = [KUNOJI.sub(repeat, RUBY.sub("", RUBY_BAR.sub("", NOTE.sub(note, ln)))) for ln in lines]
    if ruby or counts["notes"] or dots:
        notes.append(f"{ruby} ruby readings and {counts['notes'] + dots} layout/emphasis notes stripped")
    if counts["kunoji"]:
        notes.append(f"{counts['kunoji']} repetition marks ／＼ written out (いろ／＼ -> いろいろ)")
    if counts["resolved"] or counts["placeholder"]:
        notes.append(f"{counts['resolved']} gaiji notes became their character, {counts['placeholder']} without "
                     f"a code became {GETA}")
    foot = next((i for i in range(len(lines) - 1, max(-1, len(lines) - 200), -1) if FOOTER.match(lines[i])), None)
    verbatim = set(range(foot, len(lines))) if foot is not None else set()
    if verbatim:
        notes.append(f"底本 footer ({len(verbatim)} lines) copied untranslated, never sent to the model")
    return "\n".join(lines), verbatim, notes


def inputs(path: str | Path, exclude: Path | None = None) -> list[Path]:
    """The files to translate: the file itself, or every .txt/.epub below a folder (sorted). What a run writes
    is never read back: the output folder, any earlier run's output folder (it holds .lab-cache), and
    *.zh.txt / *.zh.epub / the --epub books when the output folder is the input folder itself."""
    p = Path(path)
    if not p.exists():
        raise LabError(f"{p} does not exist")
    if p.is_file():
        return [_utf8_name(p)]
    if not p.is_dir():
        raise LabError(f"{p} is neither a file nor a folder (a device, pipe or socket)")
    top = p.resolve()
    skip = [c.parent.resolve() for c in p.rglob(".lab-cache")]
    if exclude is not None:
        skip.append(exclude.resolve())
    skip = [s for s in skip if s != top]

    def ours(f: Path) -> bool:
        n = f.name.lower()
        return (n.endswith((".zh.txt", ".zh.epub")) or (f.parent / ".lab-cache").exists()
                and (n == "book.epub" or (f.suffix == ".epub" and (f.parent / f"{f.stem}.zh.txt").exists())))
    files = sorted(f for f in p.rglob("*") if f.suffix.lower() in INPUT_SUFFIXES and f.is_file() and not ours(f)
                   and not any(f.resolve().is_relative_to(s) for s in skip))
    files = paths.inside(p, files)
    if not files:
        raise LabError(f"{p}: no .txt, .epub or .zip files in this folder (translations, output folders and links "
                       f"out of it are not read)")
    return [_utf8_name(f) for f in files]


def _utf8_name(f: Path) -> Path:
    """A path whose name is UTF-8: other bytes (Python holds them as surrogates) cannot go into the UTF-8
    manifest, logs and output names, and crashed the run after its first request."""
    try:
        str(f).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(f).decode("utf-8", "backslashreplace")
        raise LabError(f"{shown}: the file name is not UTF-8 (a name from another system's encoding); rename "
                       f"it") from None
    return f


def load(path: str | Path, out: Path | None = None, aozora: bool | None = None) -> list[Source]:
    """Every document of a file or folder, decoded and cleaned; nothing is written. aozora=None detects it."""
    from lab.translate import epub
    root, files = Path(path), inputs(path, out)
    docs: list[Source] = []
    for f in files:
        base = f.stem if len(files) == 1 else str(f.relative_to(root).with_suffix("")).replace("/", "__")
        if f.suffix.lower() == ".epub":
            docs += [_named(Source(f, f"{base}__{ch.name}", ch.text, "epub", epub_href=ch.href))
                     for ch in epub.chapters(f)]
            continue
        texts = file_texts(f, in_folder=len(files) > 1)
        for member, text, enc, newline in texts:
            where = f"{f}:{member}" if member else str(f)
            if not text.strip():
                if len(files) == 1 and len(texts) == 1:
                    raise LabError(f"{where}: empty file, nothing to translate")
                paths.warn(f"{where}: empty file, skipped")
                continue
            name = base if len(texts) == 1 else f"{base}__{_member_name(member)}"
            docs.append(_named(_text_source(Source(f, name, text, enc, newline), aozora, member)))
    if not docs:
        raise LabError(f"{path}: every input file is empty (or a zip without text)")
    unique_outputs(docs)
    return docs


def _member_name(member: str) -> str:
    """A zip member's part of a document name: its path without .txt, folders joined by __ as a folder's are,
    control characters and backslashes as _ (a zip's names are anyone's: `\x1b[2J.txt` is one)."""
    return "".join("_" if unicodedata.category(ch) == "Cc" or ch == "\\" else ch
                   for ch in member[:-4].replace("/", "__"))


def _text_source(src: Source, aozora: bool | None, member: str) -> Source:
    """A text document with its Aozora markup removed when it has (or is told it has) some, and said."""
    if member:
        src.notes.append(f"read {member} inside the zip")
    if is_aozora(src.text, aozora):
        src.text, src.verbatim, notes = clean_aozora(src.text)
        src.notes += ["Aozora Bunko markup" + (" detected (--no-aozora keeps it)" if aozora is None else ""),
                      *notes]
    return src


def letterless(text: str) -> set[int]:
    """Indices of lines with something on them but no letter (＊　＊　＊, ――――, ……, １２): a scene break or a
    number is the same in Chinese, and a model asked to translate one invents a sentence (the toy did, every time)."""
    return {i for i, ln in enumerate(text.split("\n")) if ln.strip() and not any(c.isalpha() for c in ln)}


def _named(src: Source) -> Source:
    """The source with a name its outputs can carry (a long folder path or title is shortened, and said), and its
    letterless lines kept out of the prompt."""
    if bare := letterless(src.text) - src.verbatim:
        src.verbatim |= bare
        src.notes.append(f"{len(bare)} line(s) without a letter (scene breaks, numbers) copied as they are")
    short = paths.short_name(src.name)
    if short != src.name:
        src.notes.append(f"output name shortened to {short} (the full name is over {paths.MAX_NAME_BYTES} bytes)")
        src.name = short
    return src


def epub_name(src: Path) -> str:
    """The translation of an EPUB input: NAME.zh.epub from its file name, shortened as document names are."""
    return f"{paths.short_name(src.stem)}.zh.epub"


def unique_outputs(docs: list[Source]) -> None:
    """Refuse inputs whose outputs would share a name (one translation would overwrite the other): sub/eki.txt
    and sub__eki.txt are both sub__eki; eki.epub's chapter 000_c1 and eki__000_c1.txt; a/x.epub and b/x.epub
    both x.zh.epub. Compared without case, as macOS and Windows file systems do."""
    owners: dict[str, tuple[str, Path]] = {}
    for key, name, path in [(f"{d.name}.zh.txt".casefold(), f"{d.name}.zh.txt", d) for d in docs] + \
            [(epub_name(d.path).casefold(), epub_name(d.path), d.path) for d in docs if d.epub_href]:
        if key in owners and (owners[key][1] != path or isinstance(path, Source)):
            a, b = (x.path if isinstance(x, Source) else x for x in (owners[key][1], path))
            what = f"{a} and {b}" if a != b else f"{a} (two chapters named alike)"
            raise LabError(f"{what} would both write {name}: rename one of them; nothing was translated")
        owners[key] = (name, path)


SENTENCE_END = "。！？!?"
OPEN, CLOSE = "「『（(【", "」』）)】"


def split_sentences(line: str, quotes: bool = True) -> list[str]:
    """Split a line after 。！？ (keeping them), never inside 「」『』（）【】 unless quotes=False."""
    out, start, depth = [], 0, 0
    for i, ch in enumerate(line):
        if quotes and ch in OPEN:
            depth += 1
        elif quotes and ch in CLOSE:
            depth = max(0, depth - 1)
        elif ch in SENTENCE_END and depth == 0:
            nxt = line[i + 1:i + 2]
            if nxt and nxt in SENTENCE_END + CLOSE:  # "！？" or "。」" stay together
                continue
            out.append(line[start:i + 1])
            start = i + 1
    out.append(line[start:])
    return [s for s in out if s]
