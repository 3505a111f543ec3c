"""A document being translated: its chunks, what the cache holds for them, fixes, and its manifest on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import LabError, locks, paths
from lab.translate.cache import ChunkCache, text_hash
from lab.translate.chunking import Chunk, Unit
from lab.translate.prompts import Term, terms_in

FAILED_MARK = "【未翻译】"  # visible in the output: the source line kept, never dropped
MANIFEST, FIXES = "manifest.json", "fixes.json"
# A line of dialogue 「……」 or thought （……） is framed by its brackets, and without them a novel's Chinese loses
# who speaks: the 1.5B dropped both of a probe text's whole-line quotes (「ねえ、聞いてる？」 -> 你好，正在听吗？).
# Quote marks of any style count as kept (the samples' references use “”, Aozora's 「」).
QUOTES = ("「」", "『』", "“”", "‘’", "〝〟", "〝〞", '""')
PARENS = ("（）", "()")
FRAMES = {"「": ("」", QUOTES), "『": ("』", QUOTES), "“": ("”", QUOTES), "〝": ("〟", QUOTES),
          "（": ("）", PARENS), "【": ("】", ("【】", "[]")), "《": ("》", ("《》",)), "〈": ("〉", ("〈〉", "<>"))}


@dataclass
class Doc:
    """One document: cleaned source lines, chunks, and the results gathered so far."""

    name: str
    lines: list[str]
    chunks: list[Chunk]
    source: str = ""
    encoding: str = "utf-8"
    verbatim: set[int] = field(default_factory=set)   # line indices copied untranslated
    epub: str | None = None                           # the EPUB this chapter came from
    epub_href: str | None = None
    fp: str = ""                                      # settings fingerprint (glossary excluded)
    glossary: list[Term] = field(default_factory=list)
    results: dict[int, list[str | None]] = field(default_factory=dict)  # chunk index -> one entry per unit
    failed: list[int] = field(default_factory=list)
    fixes: dict[int, str] = field(default_factory=dict)  # line index -> a person's locked translation
    newline: str = "\n"                                # the source's line ends, kept by NAME.zh.txt

    def piece_fp(self, text: str) -> str:
        """Fingerprint of one chunk text: the settings plus the glossary entries it uses."""
        used = [(t.source, t.target, t.note) for t in terms_in(text, self.glossary)]
        return text_hash(self.fp + json.dumps(used, ensure_ascii=False))[:8] if used else self.fp

    def fixed(self, chunk: Chunk) -> bool:
        """Every line of the chunk has a person's correction: nothing to send."""
        return all(u.line in self.fixes for u in chunk.units)


def halves(chunk: Chunk) -> list[Chunk]:
    """The two chunks a failing chunk is split into (the first keeps the context)."""
    half = len(chunk.units) // 2
    return [Chunk(chunk.index, chunk.units[:half], chunk.context), Chunk(chunk.index, chunk.units[half:])]


def lookup(cache: ChunkCache, doc: Doc, chunk: Chunk) -> list[str | None] | None:
    """What the cache holds for a chunk: its lines, or, when it was split, its halves' lines (None where a unit
    is missing); None when neither."""
    fp = doc.piece_fp(chunk.text)
    hit = cache.get(doc.name, chunk.text, fp)
    if hit is not None and len(hit) == len(chunk.units):
        return list(hit)
    if len(chunk.units) < 2 or not cache.was_split(doc.name, chunk.text, fp):
        return None
    parts = [(h, lookup(cache, doc, h)) for h in halves(chunk)]
    if all(got is None for _, got in parts):
        return None
    return [x for h, got in parts for x in (got if got is not None else [None] * len(h.units))]


def assemble(doc: Doc) -> list[tuple[str, str]]:
    """(source line, translated line) for every line: fixes win, verbatim lines copied, failures marked (the
    mark first, before the source's indent), translations given their source line's indent."""
    pieces: dict[int, list[str]] = {}
    for c in doc.chunks:
        for u, t in zip(c.units, doc.results.get(c.index, [None] * len(c.units)), strict=True):
            pieces.setdefault(u.line, []).append(t if t is not None else f"{FAILED_MARK}{u.text}")
    failed = set(untranslated(doc))  # fixed lines are not in it: a fix wins below anyway
    out = []
    for i, ln in enumerate(doc.lines):
        if i in doc.fixes:
            out.append((ln, doc.fixes[i]))
        elif i not in pieces:  # empty, or copied verbatim (no letter to translate)
            out.append((ln, ln))
        else:
            text = "".join(pieces[i])
            out.append((ln, text if i in failed else indented(ln, framed(ln, text))))
    return out


def framed(source: str, text: str) -> str:
    """A translated line given back its source line's frame (「……」, （……）) where the model wrote none of its
    kind: a missing opener or closer is the partner of the one written (“…  ->  “…”), or the source's."""
    body = source.strip()
    if len(body) < 2 or body[0] not in FRAMES or FRAMES[body[0]][0] != body[-1]:
        return text
    pairs = FRAMES[body[0]][1]
    core = text.strip()
    opened = [p for p in pairs if p[0] in core]
    closed = [p for p in pairs if p[1] in core]
    if not opened:
        core = (max(closed, key=lambda p: core.rfind(p[1]))[0] if closed else body[0]) + core
    if not closed:
        core += min(opened, key=lambda p: core.find(p[0]))[1] if opened else body[-1]
    return core


def indented(source: str, text: str) -> str:
    """A translated line with its source line's indent (a novel's paragraph 　) and no other: the model keeps one
    or not as it likes (the 1.5B kept 4 of the 10 indents of the Aozora sample), and a book's paragraphs should
    not depend on that."""
    return source[:len(source) - len(source.lstrip())] + text.lstrip()


def untranslated(doc: Doc, finished_only: bool = False) -> list[int]:
    """Line indices still marked untranslated (after fixes); finished_only: of finished chunks only (progress
    lines, where a chunk still in flight is not yet a failure)."""
    bad = {u.line for c in doc.chunks if not finished_only or c.index in doc.results
           for u, t in zip(c.units, doc.results.get(c.index, [None] * len(c.units)), strict=True) if t is None}
    return sorted(bad - set(doc.fixes))


# -- on disk: OUT/.lab-cache/NAME/{manifest,fixes}.json ------------------------------------------------
def save_manifest(cache: ChunkCache, doc: Doc) -> None:
    """What `rebuild` and `fix` need to reassemble this document without the source or a server."""
    rec = {"name": doc.name, "source": doc.source, "encoding": doc.encoding, "newline": doc.newline, "epub": doc.epub,
           "epub_href": doc.epub_href, "fp": doc.fp, "lines": doc.lines, "verbatim": sorted(doc.verbatim),
           "glossary": [[t.source, t.target, t.note] for t in doc.glossary],
           "chunks": [{"context": c.context, "units": [[u.line, u.piece, u.text, u.tokens] for u in c.units]}
                      for c in doc.chunks]}
    paths.atomic_write(cache.folder(doc.name) / MANIFEST, json.dumps(rec, ensure_ascii=False) + "\n")


def names(out: Path) -> list[str]:
    """Documents with a manifest in an output folder, sorted."""
    return sorted(f.parent.name for f in (Path(out) / ".lab-cache").glob(f"*/{MANIFEST}"))


def load_doc(out: Path, name: str) -> Doc:
    """A document from its manifest, with fixes and what the cache holds (no server, no source file)."""
    cache = ChunkCache(out)
    f = cache.folder(name) / MANIFEST
    if not f.exists():
        known = ", ".join(names(out)) or "none"
        raise LabError(f"{out}: no translated document named {name!r} (documents: {known})")
    try:
        m = paths.parse_json(paths.read_text(f, "manifest"))
        chunks = [Chunk(i, [Unit(*u) for u in c["units"]], c["context"]) for i, c in enumerate(m["chunks"])]
        doc = Doc(m["name"], m["lines"], chunks, m["source"], m["encoding"], set(m["verbatim"]), m["epub"],
                  m["epub_href"], m["fp"], [Term(*t) for t in m["glossary"]],
                  newline="\r\n" if m.get("newline") == "\r\n" else "\n")  # manifests before 2026-12-07: none
    except (ValueError, KeyError, TypeError) as e:  # written by lab, so only a hand edit or a disk fault
        raise LabError(f"{f}: not a manifest lab wrote ({type(e).__name__}: {e}); run `lab translate` on the "
                       f"source again to rewrite it") from None
    doc.fixes = load_fixes(cache, doc)
    for c in chunks:
        got = lookup(cache, doc, c)
        if got is not None:
            doc.results[c.index] = got
    return doc


def _fixes_file(f: Path) -> dict[str, Any]:
    """fixes.json: {"LINE": {"source": ..., "text": ...}}; anything else names the file (people edit it)."""
    recs = paths.read_json(f, "fixes file", "fix or delete it")
    if not isinstance(recs, dict) or not all(k.isdigit() and isinstance(r, dict) and isinstance(r.get("text"), str)
                                             for k, r in recs.items()):
        raise LabError(f'{f}: expected {{"LINE": {{"source": ..., "text": ...}}, ...}}; fix or delete it')
    return recs


def load_fixes(cache: ChunkCache, doc: Doc) -> dict[int, str]:
    """Corrections whose source line still reads the same (a changed source makes a fix stale: skipped)."""
    f = cache.folder(doc.name) / FIXES
    if not f.exists():
        return {}
    recs = _fixes_file(f)
    out = {}
    for key, rec in recs.items():
        i = int(key) - 1
        if 0 <= i < len(doc.lines) and doc.lines[i] == rec.get("source"):
            out[i] = rec["text"]
    return out


def check_line(doc: Doc, line: int) -> None:
    """--line names a line of NAME.zh.txt as an editor numbers it: the empty piece after the final newline is no
    line (a fix of it added a line the source does not have)."""
    n = len(doc.lines) - (len(doc.lines) > 1 and doc.lines[-1] == "")
    if not 1 <= line <= n:
        raise LabError(f"--line must be between 1 and {n} for {doc.name}, got {line}")


def save_fix(out: Path, doc: Doc, line: int, text: str) -> dict[str, Any]:
    """Lock a person's translation of line `line` (1-based, as in NAME.zh.txt); returns the record."""
    check_line(doc, line)
    if text and text.splitlines() != [text]:  # \r, \v, \x1c, \u2028... split a line as \n does
        raise LabError("--text must be one line: NAME.zh.txt keeps one line per source line")
    if not text.strip() and doc.lines[line - 1].strip():
        raise LabError(f"--text is empty, but line {line} of {doc.name} is not ({doc.lines[line - 1][:40]!r}): "
                       f"a fix is the translation to keep; give its text")
    cache = ChunkCache(out)
    f = cache.folder(doc.name) / FIXES
    with locks.writing(out, "lab translate"):  # a run going on would write its outputs without this fix
        recs = _fixes_file(f) if f.exists() else {}
        rec = {"source": doc.lines[line - 1], "text": text}
        recs[str(line)] = rec
        paths.atomic_write(f, json.dumps(recs, ensure_ascii=False, indent=1) + "\n")
    doc.fixes[line - 1] = text
    return rec
