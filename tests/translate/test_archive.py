"""lab.translate.archive: the .txt files inside a zip (Aozora's CP932 names read right), damaged and bomb zips
refused in one line, and a zip translated, counted and scored as its text is."""

import zipfile

import pytest
from helpers import NOVEL, legacy_zip

from lab import LabError
from lab.translate import archive, sources

AME = (NOVEL / "ame.txt").read_text("utf-8")


def test_an_aozora_zip_is_read_as_its_text_with_the_cp932_name_right(tmp_path):
    """Aozora ships each work as a zip of one Shift_JIS text with CP932 names (read as CP437 they are mojibake),
    often beside gaiji images; a Mac adds __MACOSX/ forks."""
    z = legacy_zip(tmp_path / "ame.zip", {"雨/あめ.txt": AME.encode("cp932"), "雨/gaiji.png": b"\x89PNG",
                                          "__MACOSX/雨/._あめ.txt": b"\0\5\26\7"})
    assert [m for m, _ in archive.texts(z)] == ["雨/あめ.txt"]
    (doc,) = sources.load(z)
    assert doc.name == "ame" and doc.encoding == "cp932" and doc.path == z
    assert doc.text == sources.source_text(NOVEL / "ame.txt") == sources.source_text(z)
    assert doc.notes[0] == "read 雨/あめ.txt inside the zip" and "Aozora Bunko markup detected" in doc.notes[1]


def test_a_zip_of_several_texts_is_a_document_each_and_an_empty_one_is_skipped(tmp_path, capsys):
    """In a folder, a zip without text (the novel's illustrations) is skipped with a warning, not the run's end."""
    z = tmp_path / "pack.zip"
    with zipfile.ZipFile(z, "w") as w:
        w.writestr("a.txt", "一行目です。")
        w.writestr("sub/b.TXT", "二行目です。".encode("euc_jp"))
        w.writestr("empty.txt", "")
        w.writestr("\x1b[2J\\x.txt", "三行目です。")  # a name made to clear a terminal, with a backslash
    docs = sources.load(z)
    assert [(d.name, d.encoding, d.text) for d in docs] == [("pack__a", "utf-8", "一行目です。"),
                                                            ("pack__sub__b", "euc_jp", "二行目です。"),
                                                            ("pack___[2J_x", "utf-8", "三行目です。")]
    assert "pack.zip:empty.txt: empty file, skipped" in capsys.readouterr().err
    with pytest.raises(LabError, match=r"pack.zip: holds 4 .txt files; give the one"):
        sources.source_text(z)
    legacy_zip(tmp_path / "挿絵.zip", {"01.jpg": b"\xff\xd8"})
    assert [d.name for d in sources.load(tmp_path)] == ["pack__a", "pack__sub__b", "pack___[2J_x"]
    assert "挿絵.zip: no .txt file inside the zip (it holds 01.jpg); skipped" in capsys.readouterr().err


def test_bad_zips_are_one_line_naming_the_file_and_member(tmp_path, monkeypatch):
    (tmp_path / "no.zip").write_bytes(b"plain text, no zip")
    with pytest.raises(LabError, match=r"no.zip: not a zip file \(not a zip file"):
        sources.load(tmp_path / "no.zip")
    legacy_zip(tmp_path / "img.zip", {"表紙.png": b"\x89PNG"})
    with pytest.raises(LabError, match=r"img.zip: no .txt file inside the zip \(it holds 表紙.png\)$"):
        sources.load(tmp_path / "img.zip")
    with zipfile.ZipFile(tmp_path / "crc.zip", "w") as w:
        w.writestr("a.txt", "駅に着いた。" * 50)
    data = (tmp_path / "crc.zip").read_bytes().replace("駅".encode(), "雨".encode(), 1)  # stored: the CRC breaks
    (tmp_path / "crc.zip").write_bytes(data)
    with pytest.raises(LabError, match=r"crc.zip: a.txt inside it cannot be read .*damaged"):
        sources.load(tmp_path / "crc.zip")
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as w:
        w.writestr("a.txt", "あ" * (1 << 20))
    monkeypatch.setattr(archive, "MAX_UNPACKED", 2 << 20)
    with pytest.raises(LabError, match=r"bomb.zip: unpacks to 3 MiB, over the 2 MiB limit"):
        sources.load(tmp_path / "bomb.zip")
    (tmp_path / "mixed").mkdir()
    with zipfile.ZipFile(tmp_path / "mixed" / "m.zip", "w") as w:
        w.writestr("m.txt", "あいうえお。\n".encode() + "漢字です。\n".encode("cp932"))
    with pytest.raises(LabError, match=r"m.zip:m.txt:2: not UTF-8"):
        sources.load(tmp_path / "mixed")


def test_a_zip_is_translated_and_scored_against_its_source_as_its_text(tmp_path, openai_fake):
    """The translation of ame.zip is ame.zh.txt, and `eval --source` finds ame.zip for the reference ame.txt."""
    from helpers import AME_PAIRS, source_of

    from lab.translate import PromptSpec, Settings, Translator, evaluate
    (tmp_path / "src").mkdir()
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "ame.txt").write_text((NOVEL / "ame.zh.txt").read_text("utf-8"), "utf-8")
    legacy_zip(tmp_path / "src" / "ame.zip", {"あめ.txt": AME.encode("cp932")})

    def reply(body):
        return 200, "\n".join(AME_PAIRS.get(x, x) for x in source_of(body, PromptSpec().preface).split("\n")), "stop"
    fake = openai_fake(reply)
    Translator(Settings(out=tmp_path / "out", endpoints=[fake.url], timeout=10, progress_every_s=0)).run(
        tmp_path / "src")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.txt")) == ["ame.zh.txt"]
    scores = evaluate(tmp_path / "out", tmp_path / "ref", tmp_path / "src")
    assert scores["rows"][0]["doc"] == "ame" and scores["rows"][0]["chrf"] > 90
