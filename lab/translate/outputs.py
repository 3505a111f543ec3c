"""What a translation run writes (NAME.zh.txt, NAME.bilingual.md, EPUBs, untranslated.tsv) and `rebuild`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab import LabError, locks, paths
from lab.translate import sources
from lab.translate.document import Doc, assemble, load_doc, names, untranslated

UNTRANSLATED = "untranslated.tsv"
RUN_STATS = "run.json"  # the run's numbers, written by `lab translate` once the run ends


def write_document(out: Path, name: str, pairs: list[tuple[str, str]], bilingual: bool,
                   newline: str = "\n") -> None:
    """The translation (one line per source line, ending as the source's lines do) and, optionally, the
    line-aligned bilingual Markdown."""
    paths.atomic_write(out / f"{name}.zh.txt", newline.join(t for _, t in pairs))
    if bilingual:
        md = [f"# {name}", ""]
        for src, tgt in pairs:
            md += [f"> {src}", "", tgt, ""] if src.strip() else []
        paths.atomic_write(out / f"{name}.bilingual.md", "\n".join(md))


def write_epub(names: list[str], dest: Path) -> None:
    """One EPUB, a chapter per document, from the written NAME.zh.txt files beside it."""
    from lab.translate.epub import book
    book([(n, (dest.parent / f"{n}.zh.txt").read_text("utf-8")) for n in names], dest, "译文", "zh")


def book_path(out: Path, plain: list[str]) -> Path:
    """The --epub book of the text documents: book.epub, or NAME.epub for a single one."""
    return out / ("book.epub" if len(plain) > 1 else f"{plain[0]}.epub")


def epub_path(out: Path, src: str | Path) -> Path:
    """The translation of an EPUB input."""
    return out / sources.epub_name(Path(src))


def planned(out: Path, docs: list[Doc], bilingual: bool, epub: bool) -> list[Path]:
    """Every file a run will write in `out` (the cache and logs/ aside)."""
    files = [out / RUN_STATS, out / UNTRANSLATED]
    for d in docs:
        files += [out / f"{d.name}.zh.txt"] + ([out / f"{d.name}.bilingual.md"] if bilingual else [])
    files += [epub_path(out, src) for src in {d.epub for d in docs if d.epub}]
    plain = [d.name for d in docs if not d.epub]
    return files + ([book_path(out, plain)] if epub and plain else [])


def refuse_overwrites(out: Path, docs: list[Doc], bilingual: bool, epub: bool) -> None:
    """Before anything is written: no output may replace an input (-o the input folder, --epub beside a
    NAME.epub source), and a folder no run wrote (no .lab-cache) keeps the files it holds."""
    files = planned(out, docs, bilingual, epub)
    ins = {Path(x).resolve() for d in docs for x in (d.source, d.epub) if x}
    for f in files:
        if f.resolve() in ins:
            raise LabError(f"{f} is an input and this run would overwrite it with a translation: choose another "
                           f"-o (nothing was written)")
    if not (out / ".lab-cache").exists():
        taken = [f.name for f in files if f.exists()]
        if taken:
            raise LabError(f"{out} holds {', '.join(taken[:5])} from something other than a translation run: "
                           f"choose a new or empty -o (nothing was written)")


def write_all(out: Path, docs: list[Doc], bilingual: bool, epub: bool = False, final: bool = False) -> dict[str, Any]:
    """Each document's text outputs; with final=True also the EPUBs and the list of untranslated lines."""
    from lab.translate import epub as epubio
    written: list[str] = []
    for d in docs:
        write_document(out, d.name, assemble(d), bilingual, d.newline)
        written.append(f"{d.name}.zh.txt")
    if not final:
        return {"outputs": written}
    books: dict[str, list[Doc]] = {}
    for d in docs:
        if d.epub:
            books.setdefault(d.epub, []).append(d)
    for src, chs in books.items():  # an EPUB input comes back as an EPUB, chapter by chapter
        dest = epub_path(out, src)
        epubio.write(Path(src), dest, {c.epub_href: [t for _, t in assemble(c)] for c in chs if c.epub_href})
        written.append(dest.name)
    plain = [d.name for d in docs if not d.epub]
    if epub and plain:
        dest = book_path(out, plain)
        write_epub(plain, dest)
        written.append(dest.name)
    rows = [f"{d.name}\t{i + 1}\t{d.lines[i]}" for d in docs for i in untranslated(d)]
    tsv = out / UNTRANSLATED
    if rows:
        paths.atomic_write(tsv, "doc\tline\tsource\n" + "\n".join(rows) + "\n")
    elif tsv.exists():
        tsv.unlink()  # a rerun or a fix cleared the last ones
    return {"outputs": written, "untranslated_lines": len(rows)}


def rebuild(out: Path, bilingual: bool | None = None, epub: bool | None = None) -> dict[str, Any]:
    """Rewrite every output from the cache and the fixes, sending nothing; None keeps what the last run wrote."""
    from lab import LabError
    found = names(out)
    if not found:
        raise LabError(f"{out}: no translation run here (no .lab-cache/*/manifest.json)")
    docs = [load_doc(out, n) for n in found]
    if bilingual is None:
        bilingual = any((out / f"{d.name}.bilingual.md").exists() for d in docs)
    if epub is None:
        epub = (out / "book.epub").exists() or any((out / f"{d.name}.epub").exists() for d in docs)
    with locks.writing(out, "lab translate"):
        return {"documents": len(docs), **write_all(out, docs, bilingual, epub=epub, final=True)}
