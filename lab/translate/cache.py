"""The resume cache: one JSON record per finished chunk, keyed by source text and a settings fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lab import LabError, paths


def text_hash(text: str) -> str:
    """sha256 hex of a text (cache keys, EPUB identifiers)."""
    return hashlib.sha256(text.encode()).hexdigest()


def read_record(f: Path) -> dict[str, Any] | None:
    """A cache record; None for an empty file (left by an OS crash); bad JSON names the file."""
    text = paths.read_text(f, "cache record")
    if not text.strip():
        return None
    try:
        rec = paths.parse_json(text)
    except ValueError as e:
        raise LabError(f"{f}: not valid JSON ({e}); fix the correction or delete the file to translate "
                       f"that chunk again") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("lines"), list):
        raise LabError(f"{f}: a cache record needs an object with a \"lines\" list; fix or delete it")
    return rec


def _file_name(text: str, fp: str, suffix: str) -> str:
    """A cache file's name: <source hash>-<fingerprint><suffix> (.json a translation, .split a split marker)."""
    return f"{text_hash(text)[:16]}-{fp}{suffix}"


class ChunkCache:
    """Records under OUT/.lab-cache/DOC/<source hash>-<fingerprint>.json; a locked record wins over any.

    The fingerprint is per chunk (settings plus the glossary entries that chunk uses), so a changed
    glossary re-translates only the chunks whose text has a changed term."""

    def __init__(self, out: Path, resume: bool = True) -> None:
        self.root, self.resume = Path(out) / ".lab-cache", resume
        # Per document: file names by source hash, one listdir instead of a glob per chunk (quadratic
        # on a long novel otherwise).
        self._index: dict[str, dict[str, set[str]]] = {}

    def folder(self, doc: str) -> Path:
        """The cache folder of one document."""
        return self.root / doc

    def _names(self, doc: str) -> dict[str, set[str]]:
        if doc not in self._index:
            try:
                names = os.listdir(self.folder(doc))
            except FileNotFoundError:
                names = []
            index: dict[str, set[str]] = {}
            for n in names:
                if n.endswith(".json") and "-" in n:
                    index.setdefault(n.split("-", 1)[0], set()).add(n)
            self._index[doc] = index
        return self._index[doc]

    def get(self, doc: str, text: str, fp: str) -> list[str] | None:
        """A locked correction (any settings) or this fingerprint's translation of a chunk text."""
        d, src = self.folder(doc), text_hash(text)[:16]
        own = None
        for name in sorted(self._names(doc).get(src, ())):  # each file read once
            if not (d / name).is_file():  # removed while this run went on (the output folder deleted): not cached
                self._names(doc)[src].discard(name)
                continue
            rec = read_record(d / name)
            if not rec or rec.get("source") != text:
                continue
            if rec.get("locked"):
                return rec["lines"]
            if name == f"{src}-{fp}.json":
                own = rec
        return own["lines"] if own is not None and self.resume else None

    def put(self, doc: str, text: str, lines: list[str], meta: dict[str, Any], fp: str) -> None:
        """Store a chunk's lines atomically."""
        rec = {"source": text, "lines": lines, "locked": False, **meta}
        # Atomic but not fsync'd: a killed process loses nothing (the page cache outlives it), and
        # fsync in the event loop cost ~2 ms a chunk under load, 15-25% of a c16 run on the tiny
        # model. After an OS crash an empty file may remain: read_record treats it as missing.
        name = _file_name(text, fp, ".json")
        paths.atomic_write(self.folder(doc) / name, json.dumps(rec, ensure_ascii=False, indent=1) + "\n",
                           durable=False)
        self._names(doc).setdefault(name.split("-", 1)[0], set()).add(name)

    def mark_split(self, doc: str, text: str, fp: str) -> None:
        """Record that a chunk failed whole and went to its halves (a resumed run then goes there at once).

        A marker of its own, not "some half is cached": an identical half elsewhere in the text (はい。)
        may be cached first, and taking that as a reason to split made the output depend on which chunk
        finished first."""
        paths.atomic_write(self.folder(doc) / _file_name(text, fp, ".split"), text, durable=False)

    def was_split(self, doc: str, text: str, fp: str) -> bool:
        """True when this chunk (these settings) failed whole in an earlier or this run."""
        f = self.folder(doc) / _file_name(text, fp, ".split")
        try:
            return f.read_text("utf-8") == text
        except (OSError, UnicodeDecodeError):
            return False

    def count(self) -> int:
        """Chunk records on disk (what an interrupted run keeps)."""
        return sum(1 for f in self.root.rglob("*.json") if "-" in f.name)
