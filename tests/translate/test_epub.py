"""EPUB in, EPUB out: same files, markup, styles and images; every text node translated; ruby handled."""

import re
import zipfile
from pathlib import Path

import pytest
from helpers import lab, source_of
from lxml import etree

from lab import LabError
from lab.translate import PromptSpec, Settings, Translator
from lab.translate.epub import _put, _text, chapters, segments, write

PREFACE = PromptSpec().preface
KANA = re.compile(r"[\u3040-\u30ff]")
XHTML_NS = "http://www.w3.org/1999/xhtml"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 16
CSS = b"p { writing-mode: vertical-rl; } .em { font-weight: bold; }"

CH1 = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" xml:lang="ja">
<head><title>第一章</title><link rel="stylesheet" type="text/css" href="../style.css"/></head>
<body>
  <h1 class="title">第一章　雨の駅</h1>
  <p><ruby>改札<rt>かいさつ</rt></ruby>に、雨の音だけが響いていた。</p>
  <p>「あっ――！」<br/>少女は思わず声を上げた。</p>
  <p>彼女は<span class="em">とても</span>
     静かだった。</p>
  <div class="scene"><img src="../img/rain.png" alt="雨"/></div>
  <section><p>翌朝、空は晴れていた。</p>残った文字です。</section>
</body></html>
"""
CH2 = """<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>あとがき</title></head>
<body><p>読んでくれてありがとう。</p><ul><li>一つ目の項目です。</li><li>二つ目です。</li></ul></body></html>
"""
OPF = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">lab-test</dc:identifier>
<dc:title>雨の駅</dc:title><dc:language>ja</dc:language></metadata>
<manifest><item id="c1" href="text/ch1.xhtml" media-type="application/xhtml+xml"/>
<item id="c2" href="text/ch2.xhtml" media-type="application/xhtml+xml"/>
<item id="css" href="style.css" media-type="text/css"/><item id="img" href="img/rain.png" media-type="image/png"/>
</manifest><spine page-progression-direction="rtl"><itemref idref="c1"/><itemref idref="c2"/></spine></package>
"""
CONTAINER = """<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>
"""


def make_epub(path: Path, ch2: str = CH2) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")  # stored, first, as EPUB requires
        for name, data in (("META-INF/container.xml", CONTAINER), ("OEBPS/content.opf", OPF),
                           ("OEBPS/text/ch1.xhtml", CH1), ("OEBPS/text/ch2.xhtml", ch2),
                           ("OEBPS/style.css", CSS), ("OEBPS/img/rain.png", PNG)):
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _zh(line: str) -> str:
    return "".join(chr(0x4E00 + ord(c) % 5000) for c in line)  # a kana-free stand-in, as long as the source


def _tags(data: bytes) -> list[str]:
    root = etree.fromstring(data)
    ruby = ("ruby", "rb", "rt", "rp", "rtc")
    return [e.tag for e in root.iter() if isinstance(e.tag, str) and e.tag.rsplit("}", 1)[-1] not in ruby]


def test_chapters_are_the_spine_in_order_with_ruby_readings_dropped(tmp_path):
    chs = chapters(make_epub(tmp_path / "b.epub"))
    assert [c.href for c in chs] == ["OEBPS/text/ch1.xhtml", "OEBPS/text/ch2.xhtml"]
    assert chs[0].text.split("\n") == ["第一章", "第一章　雨の駅", "改札に、雨の音だけが響いていた。", "「あっ――！」",
                                       "少女は思わず声を上げた。", "彼女はとても静かだった。", "翌朝、空は晴れていた。",
                                       "残った文字です。"]
    (tmp_path / "x.epub").write_bytes(b"not a zip")
    with pytest.raises(LabError, match="x.epub: not an EPUB"):
        chapters(tmp_path / "x.epub")


def test_a_translation_lands_in_the_paragraph_and_note_references_stay_in_place():
    """The first text won: `<p><a href="#n1">※1</a>本文</p>` became one link, and a bold first word a bold
    paragraph. A note reference (a link or superscript without letters) is never sent and stays where it was."""
    body = ('<body xmlns="http://www.w3.org/1999/xhtml"><p><a href="#n1" id="r1">※1</a>本文です。</p>'
            '<p><span class="em">本当に</span>そう思った。<a href="#n2">*2</a></p>'
            '<p><span class="g">全部です。</span></p><p><a id="filepos1"/>目印のあと。<sup>3</sup></p>'
            '<p><a href="#n4">［注］</a>注のある文。</p></body>')
    root = etree.fromstring(body)
    groups = segments(root)
    assert [_text(g) for g in groups] == ["本文です。", "本当にそう思った。", "全部です。", "目印のあと。",
                                          "［注］注のある文。"]
    for group, zh in zip(groups, ["正文。", "真的这么想。", "全部。", "标记之后。", "【注】有注的句子。"], strict=True):
        _put(group, zh)
    out = etree.tostring(root, encoding="unicode").replace(' xmlns="http://www.w3.org/1999/xhtml"', "")
    assert out == ('<body><p><a href="#n1" id="r1">※1</a>正文。</p>'
                   '<p><span class="em"></span>真的这么想。<a href="#n2">*2</a></p>'
                   '<p><span class="g">全部。</span></p><p><a id="filepos1"/>标记之后。<sup>3</sup></p>'
                   '<p><a href="#n4"></a>【注】有注的句子。</p></body>')


NCX = """<?xml version="1.0" encoding="utf-8"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><docTitle><text>雨の駅</text></docTitle>
<navMap><navPoint id="n1" playOrder="1"><navLabel><text>第一章　雨の駅</text></navLabel>
<content src="text/ch1.xhtml"/></navPoint><navPoint id="n2" playOrder="2"><navLabel><text>付録</text></navLabel>
<content src="text/ch2.xhtml"/></navPoint></navMap></ncx>"""
NAV = """<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"><head><title>目次</title></head>
<body><nav epub:type="toc"><ol><li><a href="text/ch1.xhtml"> 第一章　雨の駅</a></li></ol></nav></body></html>"""


def test_the_table_of_contents_reads_as_the_translated_headings(tmp_path):
    """A reader listed the chapters by their Japanese names over a Chinese book: the NCX and a navigation
    document outside the spine were copied as they were."""
    book = make_epub(tmp_path / "b.epub")
    with zipfile.ZipFile(book, "a") as z:
        z.writestr("OEBPS/toc.ncx", NCX)
        z.writestr("OEBPS/nav.xhtml", NAV)
    translations = {c.href: [f"译{i}:{line[:2]}" for i, line in enumerate(c.text.split("\n"))] for c in chapters(book)}
    write(book, tmp_path / "out.epub", translations)
    with zipfile.ZipFile(tmp_path / "out.epub") as z:
        ncx, nav = z.read("OEBPS/toc.ncx").decode(), z.read("OEBPS/nav.xhtml").decode()
    assert "<text>译1:第一</text>" in ncx and "<text>付録</text>" in ncx  # no chapter block reads 付録: kept
    assert "<text>雨の駅</text>" in ncx  # the book's title is no block of its text
    assert '<a href="text/ch1.xhtml"> 译1:第一</a>' in nav and "<title>目次</title>" in nav


def test_an_epub_that_unpacks_past_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    from lab.translate import archive
    book = make_epub(tmp_path / "bomb.epub")
    with zipfile.ZipFile(book, "a") as z:
        z.writestr("OEBPS/img/zeros.bin", b"\0" * (3 << 20), compress_type=zipfile.ZIP_DEFLATED)
    assert book.stat().st_size < 64 << 10  # 3 MiB of zeros packs to a few KiB
    monkeypatch.setattr(archive, "MAX_UNPACKED", 2 << 20)
    with pytest.raises(LabError, match=r"bomb.epub: unpacks to 3 MiB, over the 2 MiB limit"):
        chapters(book)
    monkeypatch.setattr(archive, "MAX_UNPACKED", 4 << 20)
    assert len(chapters(book)) == 2


def test_a_damaged_or_drm_encrypted_epub_is_one_line(tmp_path):
    book = make_epub(tmp_path / "crc.epub")
    data = bytearray(book.read_bytes())
    at = data.index(b"OEBPS/text/ch2.xhtml") + len("OEBPS/text/ch2.xhtml")  # ch2's local header, then its data
    data[at + 4] ^= 0xFF
    book.write_bytes(bytes(data))
    with pytest.raises(LabError, match=r"crc.epub: OEBPS/text/ch2.xhtml inside it cannot be read .*damaged"):
        chapters(book)
    drm = make_epub(tmp_path / "drm.epub")
    enc = ('<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
           'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
           '<enc:CipherReference URI="{}"/></enc:CipherData></enc:EncryptedData></encryption>')
    with zipfile.ZipFile(drm, "a") as z:
        z.writestr("META-INF/encryption.xml", enc.format("OEBPS/text/ch1.xhtml"))
    with pytest.raises(LabError, match=r"drm.epub: 1 of its 2 chapters are encrypted \(DRM.*ch1.xhtml"):
        chapters(drm)
    fonts = make_epub(tmp_path / "fonts.epub")  # an obfuscated font is no reason to refuse the book
    with zipfile.ZipFile(fonts, "a") as z:
        z.writestr("META-INF/encryption.xml", enc.format("OEBPS/fonts/mincho.otf"))
    assert len(chapters(fonts)) == 2


def test_an_epub_nested_too_deep_is_one_line(tmp_path):
    """200,000 nested <div>s raised RecursionError ("internal error"): chapters are walked recursively."""
    def nested(n: int) -> str:
        return f'<html xmlns="http://www.w3.org/1999/xhtml"><body>{"<div>" * n}深い。{"</div>" * n}</body></html>'
    assert [c.text for c in chapters(make_epub(tmp_path / "ok.epub", nested(200)))][-1] == "深い。"
    with pytest.raises(LabError, match=r"deep.epub:OEBPS/text/ch2.xhtml: elements nest over 256 deep"):
        chapters(make_epub(tmp_path / "deep.epub", nested(200_000)))


def test_an_entity_bomb_is_one_line_not_a_silently_shortened_chapter(tmp_path):
    """libxml2 stops at a billion-laughs DOCTYPE; recover mode returned the chapter cut there, and a book with
    that one chapter was refused as "no text to translate" (the paragraph after the bomb was dropped)."""
    ents = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY l0 "lol">{ents}]>'
            f'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&l9;</p><p>後の段落。</p></body></html>')
    with pytest.raises(LabError, match=r"bomb.epub:OEBPS/text/ch2.xhtml:1: its entities expand past .*entity bomb.*"
                                       r"\(Maximum entity amplification factor exceeded\)"):
        chapters(make_epub(tmp_path / "bomb.epub", bomb))
    nbsp = '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>前&nbsp;後。</p><p>次の段落。</p></body></html>'
    assert chapters(make_epub(tmp_path / "ok.epub", nbsp))[-1].text.split("\n")[-1] == "次の段落。"


def test_stray_end_tags_and_forbidden_references_are_one_line(tmp_path):
    """libxml2's recover mode ends the tree at a second stray end tag: the paragraphs after it were dropped."""
    html = '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>前の段落。</p>{}<p>後の段落。</p></body></html>'
    with pytest.raises(LabError, match=r"stray.epub:OEBPS/text/ch2.xhtml:1: not well-formed XHTML; reading on would "
                                       r"drop 4 characters .* \(Opening and ending tag mismatch: body line 1 and div"):
        chapters(make_epub(tmp_path / "stray.epub", html.format("<p>途中。</p></div></div>")))
    # a surrogate's reference stayed in the tree as bytes lxml cannot read back: UnicodeDecodeError, a traceback
    with pytest.raises(LabError, match=r"ref.epub:OEBPS/text/ch2.xhtml:1: a character reference XML does not allow"):
        chapters(make_epub(tmp_path / "ref.epub", html.format("<p>前&#xD800;後。</p>")))
    # what recover mode mends without loss is still read: one stray end tag, an unclosed <p>, a bare <, an
    # undefined entity beside an attribute holding >
    for mid in ("<p>途中。</p></p>", "<p>閉じない", "<p>a < b</p>", '<p title="a>b 題名">&nbsp;本文。</p>'):
        lines = chapters(make_epub(tmp_path / "mended.epub", html.format(mid)))[-1].text.split("\n")
        assert lines[0] == "前の段落。" and lines[-1].endswith("後の段落。"), (mid, lines)
    # thousands of bare < and unclosed comments: read in one pass each (each < was once searched to the end of the
    # chapter, each <!-- too: minutes for such a file), the text kept, what libxml2 drops after an unclosed comment
    # refused as before
    many = "<p>a < b 段落。</p>" * 3000
    lines = chapters(make_epub(tmp_path / "bare.epub", html.format(many)))[-1].text.split("\n")
    assert len(lines) == 3002 and lines[1].endswith("b 段落。") and lines[-1] == "後の段落。"  # libxml2 drops a bare <
    with pytest.raises(LabError, match=r"not well-formed XHTML; reading on would drop \d+ characters"):
        chapters(make_epub(tmp_path / "open.epub", html.format("<p>途中。<!-- 閉じない</p>" * 3000)))


def test_lab_tokens_counts_each_chapter_of_an_epub(tmp_path):
    book = make_epub(tmp_path / "b.epub")
    r = lab("tokens", str(book))
    assert r.returncode == 0, r.stderr
    rows = {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines()[1:]}
    ch1, ch2 = (rows[f"{book}:OEBPS/text/ch{i}.xhtml"] for i in (1, 2))
    assert ch1[0] == "epub" and int(ch1[1]) == len(chapters(book)[0].text) and int(ch1[2]) > 0
    assert int(rows["TOTAL"][1]) == int(ch1[2]) + int(ch2[2])  # TOTAL: chars, tokens (no encoding)
    (tmp_path / "empty.txt").write_text("\n")  # counted as nothing; it failed the whole folder's count
    r = lab("tokens", str(tmp_path))
    rows = {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines()[1:]}
    assert r.returncode == 0 and rows[str(tmp_path / "empty.txt")][1] == "1", r.stderr
    assert int(rows["TOTAL"][0]) == int(ch1[1]) + int(ch2[1]) + 1


def test_epub_round_trip_keeps_structure_and_translates_every_text_node(tmp_path, openai_fake):
    seen = []

    def reply(body):
        src = source_of(body, PREFACE)
        seen.append(src)
        assert "<" not in src and "かいさつ" not in src  # markup and readings never reach the model
        return 200, "\n".join(_zh(x) for x in src.split("\n")), "stop"
    fake = openai_fake(reply)
    book = make_epub(tmp_path / "ame.epub")
    s = Settings(out=tmp_path / "out", endpoints=[fake.url], timeout=10, progress_every_s=0)
    stats = Translator(s).run(book)
    assert stats["documents"] == 2 and "ame.zh.epub" in stats["outputs"]
    with zipfile.ZipFile(book) as a, zipfile.ZipFile(tmp_path / "out" / "ame.zh.epub") as b:
        assert a.namelist() == b.namelist()
        assert b.infolist()[0].filename == "mimetype" and b.infolist()[0].compress_type == zipfile.ZIP_STORED
        for name in ("OEBPS/style.css", "OEBPS/img/rain.png", "META-INF/container.xml", "mimetype"):
            assert a.read(name) == b.read(name), name
        assert b"<dc:language>zh-CN</dc:language>" in b.read("OEBPS/content.opf")
        for name in ("OEBPS/text/ch1.xhtml", "OEBPS/text/ch2.xhtml"):
            before, after = a.read(name), b.read(name)
            assert _tags(before) == _tags(after), name  # same elements in the same order (ruby made plain)
            root = etree.fromstring(after)
            texts = [t for t in root.itertext() if t.strip()]
            assert texts and all(not KANA.search(t) for t in texts), texts
        ch1 = b.read("OEBPS/text/ch1.xhtml").decode()
        assert '<img src="../img/rain.png" alt="雨"/>' in ch1 and 'href="../style.css"' in ch1
        assert "<br/>" in ch1 and '<span class="em">' in ch1 and ch1.startswith("<?xml") and "ruby" not in ch1
        assert 'xml:lang="zh-CN"' in ch1 and "<!DOCTYPE html>" in ch1
    assert (tmp_path / "out" / "ame__000_ch1.zh.txt").exists()  # each chapter also as text
    again = lab("translate", str(book), "-o", str(tmp_path / "out"), "--base-url", fake.url)
    assert again.returncode == 0 and "reused" in again.stdout and len(seen) == stats["requests"]
