"""What a translation run writes: NAME.zh.txt (translation only), NAME.bilingual.md, book.epub."""

from __future__ import annotations

from pathlib import Path

from lab import paths
from lab.translate.cache import text_hash


def write_document(out: Path, name: str, pairs: list[tuple[str, str]], bilingual: bool) -> None:
    """The translation (one line per source line) and, optionally, the line-aligned bilingual Markdown."""
    paths.atomic_write(out / f"{name}.zh.txt", "\n".join(t for _, t in pairs))
    if bilingual:
        md = [f"# {name}", ""]
        for src, tgt in pairs:
            md += [f"> {src}", "", tgt, ""] if src.strip() else []
        paths.atomic_write(out / f"{name}.bilingual.md", "\n".join(md))


def write_epub(names: list[str], dest: Path) -> None:
    """One EPUB, a chapter per document, from the written NAME.zh.txt files beside it."""
    from html import escape

    from ebooklib import epub
    book = epub.EpubBook()
    book.set_identifier(text_hash("".join(names))[:16])
    book.set_title("译文")
    book.set_language("zh")
    chapters = []
    for i, name in enumerate(names):
        text = (dest.parent / f"{name}.zh.txt").read_text("utf-8")
        ch = epub.EpubHtml(title=name, file_name=f"chap_{i:03d}.xhtml", lang="zh")
        ch.content = f"<h1>{escape(name)}</h1>" + "".join(f"<p>{escape(p)}</p>" for p in text.splitlines() if p)
        book.add_item(ch)
        chapters.append(ch)
    book.toc = chapters
    book.spine = ["nav", *chapters]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    tmp = dest.with_name(dest.name + ".tmp")
    epub.write_epub(str(tmp), book)
    tmp.replace(dest)
