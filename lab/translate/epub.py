"""EPUB in and out: chapters' text blocks become lines; translations go back into the same markup and files."""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from lab import LabError, paths
from lab.translate.archive import open_zip, read_member
from lab.translate.checks import CJK_OR_KANA

BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "td", "th", "caption", "figcaption",
          "blockquote", "div", "title", "pre", "address", "section", "article", "aside", "header", "footer",
          "nav", "body", "ol", "ul", "dl", "table", "tr", "tbody", "thead", "figure"}
SKIP = {"rt", "rp", "script", "style"}   # not text to translate (ruby is made plain before reading)
# Note references (<a href="#n1">※1</a>, <sup>2</sup>) stay in place: sent, their text came back inside the
# translation and the link was left empty
MARKERS = {"a", "sup"}
LETTER = re.compile(r"[^\W\d_]")
XHTML = ("application/xhtml+xml", "text/html")
SPACE = re.compile(r"\s*\n\s*")          # line breaks inside a block are source formatting
# A > inside a quoted attribute value is no tag's end; no < inside a tag, nor in its quoted values (XML allows
# none): with `[^>"']`, each stray < of a damaged chapter was tried to the end of the file (20 KB of them: 7 s)
TAG = re.compile(r"""<(?:[^<>"']|"[^<"]*"|'[^<']*')*>""")


def without_comments(raw: str) -> str:
    """raw without its <!-- --> comments, in one pass; an unclosed one stays as text, as `<!--.*?-->` left it
    (which searched to the end from every "<!--": 36 s for 80 KB of them)."""
    parts, at = [], 0
    while (start := raw.find("<!--", at)) >= 0 and (end := raw.find("-->", start + 4)) >= 0:
        parts.append(raw[at:start])
        at = end + 3
    return "".join(parts) + raw[at:]


@dataclass
class Chapter:
    href: str   # path inside the zip
    name: str
    text: str   # one line per text segment (a block, or a part of it between <br/>)


# Deeper nesting is refused: chapters are walked recursively (200,000 nested <div>s raised RecursionError, and
# each level scanned all below it), and real XHTML nests ~10-30 deep
MAX_DEPTH = 256


def _local(el: Any) -> str:
    return el.tag.rsplit("}", 1)[-1].lower() if isinstance(el.tag, str) else ""


def _parse(data: bytes, where: str) -> Any:
    from lxml import etree
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=True)
    try:
        tree = etree.parse(BytesIO(data), parser)
    except etree.LxmlError as e:
        raise LabError(f"{where}: not valid XHTML ({e})") from None
    if tree.getroot() is None:
        raise LabError(f"{where}: empty or not XHTML")
    depth = 0
    for event, _el in etree.iterwalk(tree, events=("start", "end")):  # iterative: the walk below recurses
        depth += 1 if event == "start" else -1
        if depth > MAX_DEPTH:
            raise LabError(f"{where}: elements nest over {MAX_DEPTH} deep (a book's XHTML nests ~10-30); "
                           f"not translated")
    if len(parser.error_log):
        _refuse_damage(data, tree, list(parser.error_log), where)
    return tree


def _refuse_damage(data: bytes, tree: Any, errors: list[Any], where: str) -> None:
    """Refuse what libxml2's recover mode could not mend without loss: an entity bomb or a second stray end tag
    (</div></div>) ends the tree there, and the chapter's rest would go untranslated without a word; a character
    reference XML forbids (&#xD800;) stays in the tree as bytes that lxml cannot read back."""
    def refuse(e: Any, what: str) -> None:
        raise LabError(f"{where}:{e.line}: {what} ({e.message.strip().split(',')[0]}); repair the file (e.g. "
                       f"Calibre's Edit book, Check book) and rerun")
    for e in errors:
        if "amplification" in e.message or "entity reference loop" in e.message:
            refuse(e, "its entities expand past libxml2's limit, an entity bomb; not read")
        if "CharRef" in e.message:
            refuse(e, "a character reference XML does not allow")
    try:
        raw = data.decode(tree.docinfo.encoding or "utf-8", errors="replace")
    except LookupError:  # an encoding name libxml2 knows and Python does not
        raw = data.decode("utf-8", errors="replace")
    raw = TAG.sub("", without_comments(raw))  # entity references add to the tree, so the tree may hold more
    lost = len(CJK_OR_KANA.findall(raw)) - sum(len(CJK_OR_KANA.findall(t)) for t in tree.getroot().itertext())
    if lost > 0:
        refuse(errors[0], f"not well-formed XHTML; reading on would drop {lost} characters of its text after this line")


def spine(z: zipfile.ZipFile, path: Path) -> tuple[str, list[str]]:
    """(OPF path, the XHTML documents of the spine in reading order)."""
    try:
        container = _parse(read_member(z, "META-INF/container.xml", path), f"{path}:META-INF/container.xml")
    except KeyError:
        raise LabError(f"{path}: not an EPUB (no META-INF/container.xml)") from None
    rootfile = next((e.get("full-path") for e in container.iter() if _local(e) == "rootfile"), None)
    if not rootfile or rootfile not in z.namelist():
        raise LabError(f"{path}: META-INF/container.xml names no package file that exists")
    opf = _parse(read_member(z, rootfile, path), f"{path}:{rootfile}")
    base = posixpath.dirname(rootfile)
    items = {e.get("id"): e for e in opf.iter() if _local(e) == "item"}
    hrefs = []
    for ref in (e for e in opf.iter() if _local(e) == "itemref"):
        item = items.get(ref.get("idref"))
        if item is not None and item.get("media-type") in XHTML:
            hrefs.append(posixpath.normpath(posixpath.join(base, item.get("href"))))
    return rootfile, hrefs


def _marker(el: Any) -> bool:
    """A note reference: a link or superscript of no letters (※1, *, [2], ¹), kept as it is and never sent."""
    return _local(el) in MARKERS and len(el) == 0 and bool((el.text or "").strip()) and not LETTER.search(el.text)


def _flow(el: Any) -> Iterator[tuple[Any, str] | None]:
    """Text slots of a leaf block in reading order; None marks a <br/> (a new segment starts)."""
    yield el, "text"
    for ch in el:
        name = _local(ch)
        if name == "br":
            yield None
        elif name and name not in SKIP and not _marker(ch):
            yield from _flow(ch)
        yield ch, "tail"


def segments(root: Any) -> list[list[tuple[Any, str]]]:
    """Every translatable text in a document, as groups of slots: a leaf block split at <br/>, or a stray
    text directly inside a container block."""
    out: list[list[tuple[Any, str]]] = []

    def walk(el: Any) -> None:
        name = _local(el)
        if not name or name in SKIP:
            return
        has_block = any(_local(d) in BLOCKS for d in el.iterdescendants())
        if name in BLOCKS and not has_block:
            cur: list[tuple[Any, str]] = []
            for slot in _flow(el):
                if slot is None:
                    out.append(cur)
                    cur = []
                elif slot[0] is not el or slot[1] == "text":
                    cur.append(slot)
            out.append(cur)
            return
        if (el.text or "").strip() and name in BLOCKS:
            out.append([(el, "text")])
        for ch in el:
            walk(ch)
            if (ch.tail or "").strip() and name in BLOCKS:
                out.append([(ch, "tail")])
    walk(root)
    return [g for g in out if _text(g)]


def _text(group: list[tuple[Any, str]]) -> str:
    return SPACE.sub("", "".join(getattr(el, attr) or "" for el, attr in group)).replace("\n", " ").strip()


def _encrypted(z: zipfile.ZipFile, path: Path) -> set[str]:
    """Entries META-INF/encryption.xml says are encrypted (DRM; fonts are often only obfuscated)."""
    if "META-INF/encryption.xml" not in z.namelist():
        return set()
    enc = _parse(read_member(z, "META-INF/encryption.xml", path), f"{path}:META-INF/encryption.xml")
    return {posixpath.normpath(e.get("URI")) for e in enc.iter() if _local(e) == "cipherreference" and e.get("URI")}


def chapters(path: Path) -> list[Chapter]:
    """The spine's documents with text, each as lines to translate."""
    with open_zip(path, "an EPUB") as z:
        _, hrefs = spine(z, path)
        locked = sorted(set(hrefs) & _encrypted(z, path))
        if locked:
            raise LabError(f"{path}: {len(locked)} of its {len(hrefs)} chapters are encrypted (DRM, named in "
                           f"META-INF/encryption.xml, e.g. {locked[0]}): only a DRM-free EPUB can be translated")
        out = []
        for i, href in enumerate(hrefs):
            try:
                tree = _parse(read_member(z, href, path), f"{path}:{href}")
            except KeyError:
                raise LabError(f"{path}: the spine names {href}, which is not in the file") from None
            _plain_ruby(tree.getroot())
            lines = [_text(g) for g in segments(tree.getroot())]
            if lines:
                out.append(Chapter(href, f"{i:03d}_{re.sub(r'[^0-9A-Za-z_-]', '_', Path(href).stem)}",
                                   "\n".join(lines)))
    if not out:
        raise LabError(f"{path}: the EPUB has no text to translate")
    return out


def _in_block(el: Any, attr: str) -> bool:
    """A slot of the block itself (its text, or the tail of a child), not the inside of an inline element."""
    owner = el if attr == "text" else el.getparent()
    return owner is not None and _local(owner) in BLOCKS


def _put(group: list[tuple[Any, str]], text: str) -> None:
    """The translation goes where the segment's first text of the block itself was, else its first text; its
    other texts are emptied: `<p><a href="#n1">※1</a>本文</p>` and `<p><span class="em">本当に</span>…</p>`
    put the whole paragraph inside the link or the bold span when the first text won."""
    slots = [(el, attr) for el, attr in group if (getattr(el, attr) or "").strip()]
    target = next((s for s in slots if _in_block(*s)), slots[0] if slots else None)
    for el, attr in slots:
        old = getattr(el, attr)
        setattr(el, attr, (old[:len(old) - len(old.lstrip())] + text) if (el, attr) == target else "")


def _plain_ruby(root: Any) -> None:
    """Ruby becomes its base text: readings (rt, rp) dropped, ruby/rb/rtc unwrapped, like Aozora ruby."""
    from lxml import etree
    etree.strip_elements(root, "{*}rt", "{*}rp", with_tail=False)
    etree.strip_tags(root, "{*}ruby", "{*}rb", "{*}rtc")


def write(src: Path, dest: Path, translations: dict[str, list[str]], lang: str = "zh-CN") -> None:
    """A copy of `src` with each chapter's text replaced (markup, styles, images and order untouched), its
    language set to `lang`; deterministic (entries keep their order, dates and compression)."""
    from lxml import etree
    buf = BytesIO()
    with open_zip(src, "an EPUB") as z, zipfile.ZipFile(buf, "w") as zo:
        opf, _ = spine(z, src)
        # every chapter parsed first: the table of contents, often stored before them, takes their headings
        names = set(z.namelist())
        parsed = {href: _blocks(z, src, href, lines) for href, lines in translations.items() if href in names}
        known: dict[str, str] = {}  # each block's source text -> its translation (the first, where one repeats)
        for href, (_, groups) in parsed.items():
            for g, t in zip(groups, translations[href], strict=True):
                known.setdefault(_text(g), t)
        for info in z.infolist():
            data = read_member(z, info.filename, src)
            if info.filename in parsed:
                tree, groups = parsed[info.filename]
                for g, t in zip(groups, translations[info.filename], strict=True):
                    _put(g, t)
                root = tree.getroot()
                for attr in ("lang", "{http://www.w3.org/XML/1998/namespace}lang"):
                    if root.get(attr):
                        root.set(attr, lang)
                data = etree.tostring(tree, xml_declaration=True, encoding="utf-8")
            elif _is_toc(info.filename, data):
                data = _retitle(data, f"{src}:{info.filename}", known)
            elif info.filename == opf:
                data = re.sub(rb"(<dc:language[^>]*>)[^<]*(</dc:language>)", rb"\g<1>" + lang.encode() + rb"\g<2>",
                              data)
            zo.writestr(info, data, compress_type=info.compress_type)
    paths.atomic_write(dest, buf.getvalue())


def _blocks(z: zipfile.ZipFile, src: Path, href: str, lines: list[str]) -> tuple[Any, list[list[tuple[Any, str]]]]:
    """A chapter's tree, ruby made plain, and its text blocks, one for each translated line."""
    tree = _parse(read_member(z, href, src), f"{src}:{href}")
    _plain_ruby(tree.getroot())
    groups = segments(tree.getroot())
    if len(groups) != len(lines):
        raise LabError(f"{src}:{href}: {len(lines)} translated lines for {len(groups)} text blocks; the EPUB "
                       f"changed since it was translated: rerun")
    return tree, groups


def _is_toc(name: str, data: bytes) -> bool:
    """The NCX table of contents, or an XHTML navigation document left out of the spine."""
    return name.lower().endswith(".ncx") or (name.lower().endswith((".xhtml", ".html", ".htm")) and b"<nav" in data)


def _retitle(data: bytes, where: str, known: dict[str, str]) -> bytes:
    """A table of contents whose entries read as the chapters' translated headings: each leaf whose text is a
    translated block's source text gets its translation (a reader showed Japanese chapter names over a Chinese
    book); other entries, and the file when nothing matches, stay as they were."""
    from lxml import etree
    tree = _parse(data, where)
    hits = 0
    for el in tree.getroot().iter():
        key = _text([(el, "text")]) if isinstance(el.tag, str) and len(el) == 0 else ""
        if key in known:
            _put([(el, "text")], known[key])
            hits += 1
    return etree.tostring(tree, xml_declaration=True, encoding="utf-8") if hits else data


def book(chapters: list[tuple[str, str]], dest: Path, title: str, lang: str) -> None:
    """A plain EPUB: one chapter per (title, text), a paragraph per non-empty line (atomic, stable id)."""
    from html import escape

    from ebooklib import epub

    from lab.translate.cache import text_hash
    b = epub.EpubBook()
    b.set_identifier(text_hash("".join(t for t, _ in chapters))[:16])
    b.set_title(title)
    b.set_language(lang)
    items = []
    for i, (name, text) in enumerate(chapters):
        ch = epub.EpubHtml(title=name, file_name=f"chap_{i:03d}.xhtml", lang=lang)
        ch.content = f"<h1>{escape(name)}</h1>" + "".join(f"<p>{escape(p)}</p>" for p in text.splitlines() if p)
        b.add_item(ch)
        items.append(ch)
    b.toc = items
    b.spine = ["nav", *items]
    b.add_item(epub.EpubNcx())
    b.add_item(epub.EpubNav())
    tmp = dest.with_name(dest.name + ".tmp")
    epub.write_epub(str(tmp), b)
    tmp.replace(dest)
