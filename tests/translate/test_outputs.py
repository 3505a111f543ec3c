"""lab.translate.outputs: the files a translation run writes, the refusals before it writes any, and `rebuild`."""

import zipfile

import pytest

from lab import LabError
from lab.translate.cache import ChunkCache
from lab.translate.chunking import Chunk, Unit
from lab.translate.document import FAILED_MARK, Doc, save_manifest
from lab.translate.outputs import UNTRANSLATED, planned, rebuild, refuse_overwrites, write_all, write_document


def doc(name: str, lines: list[str], results: list[str | None], source: str = "") -> Doc:
    """One chunk per non-empty line, with its result (None: failed)."""
    chunks = [Chunk(i, [Unit(i, 0, ln, 3)]) for i, ln in enumerate(lines) if ln]
    d = Doc(name, lines, chunks, source=source, fp="f")
    d.results = {c.index: [r] for c, r in zip(chunks, results, strict=True)}
    return d


def test_one_line_per_source_line_and_a_bilingual_page_without_empty_pairs(tmp_path):
    write_document(tmp_path, "eki", [("駅。", "车站。"), ("", ""), ("雨。", "雨。")], bilingual=True)
    assert (tmp_path / "eki.zh.txt").read_text("utf-8") == "车站。\n\n雨。"
    assert (tmp_path / "eki.bilingual.md").read_text("utf-8") == "# eki\n\n> 駅。\n\n车站。\n\n> 雨。\n\n雨。\n"
    write_document(tmp_path, "b", [("駅。", "车站。")], bilingual=False)
    assert not (tmp_path / "b.bilingual.md").exists()


def test_the_final_write_lists_untranslated_lines_and_removes_the_list_once_none_is_left(tmp_path):
    d = doc("eki", ["駅に着いた。", "", "雨が降る。"], ["到了车站。", None])
    got = write_all(tmp_path, [d], bilingual=False, final=True)
    assert got == {"outputs": ["eki.zh.txt"], "untranslated_lines": 1}
    assert (tmp_path / "eki.zh.txt").read_text("utf-8") == f"到了车站。\n\n{FAILED_MARK}雨が降る。"
    assert (tmp_path / UNTRANSLATED).read_text("utf-8") == "doc\tline\tsource\neki\t3\t雨が降る。\n"
    d.fixes[2] = "下雨了。"
    assert write_all(tmp_path, [d], bilingual=False, final=True)["untranslated_lines"] == 0
    assert not (tmp_path / UNTRANSLATED).exists()


def test_not_final_writes_the_texts_only(tmp_path):
    d = doc("eki", ["雨が降る。"], [None])
    assert write_all(tmp_path, [d], bilingual=False, epub=True) == {"outputs": ["eki.zh.txt"]}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["eki.zh.txt"]


def test_epub_makes_one_book_of_the_text_documents(tmp_path):
    docs = [doc("a", ["駅。"], ["车站。"]), doc("b", ["雨。"], ["下雨。"])]
    assert write_all(tmp_path, docs, bilingual=False, epub=True, final=True)["outputs"][-1] == "book.epub"
    with zipfile.ZipFile(tmp_path / "book.epub") as z:
        pages = "".join(z.read(n).decode() for n in z.namelist() if n.endswith("html"))
    assert "车站。" in pages and "下雨。" in pages
    assert planned(tmp_path, docs[:1], bilingual=True, epub=True)[-3:] == [
        tmp_path / "a.zh.txt", tmp_path / "a.bilingual.md", tmp_path / "a.epub"]  # one document: its own name


def test_an_output_may_not_replace_an_input(tmp_path):
    src = tmp_path / "eki.zh.txt"  # a source named like the translation of another
    src.write_text("駅。", encoding="utf-8")
    with pytest.raises(LabError, match="is an input and this run would overwrite it"):
        refuse_overwrites(tmp_path, [doc("eki", ["駅。"], ["车站。"], source=str(src))], bilingual=False, epub=False)


def test_a_folder_no_run_wrote_keeps_its_files(tmp_path):
    (tmp_path / "eki.zh.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(LabError, match=r"holds eki.zh.txt from something other than a translation run"):
        refuse_overwrites(tmp_path, [doc("eki", ["駅。"], ["车站。"])], bilingual=False, epub=False)
    (tmp_path / ".lab-cache").mkdir()  # a run's folder: its own outputs are rewritten
    refuse_overwrites(tmp_path, [doc("eki", ["駅。"], ["车站。"])], bilingual=False, epub=False)


def test_rebuild_rewrites_what_the_last_run_wrote_from_the_cache_alone(tmp_path):
    d = doc("eki", ["駅に着いた。"], ["到了车站。"])
    cache = ChunkCache(tmp_path)
    save_manifest(cache, d)
    cache.put("eki", d.chunks[0].text, ["到了车站。"], {}, d.fp)
    write_all(tmp_path, [d], bilingual=True, final=True)
    (tmp_path / "eki.zh.txt").unlink()
    (tmp_path / "eki.bilingual.md").write_text("stale", encoding="utf-8")
    assert rebuild(tmp_path) == {"documents": 1, "outputs": ["eki.zh.txt"], "untranslated_lines": 0}
    assert (tmp_path / "eki.zh.txt").read_text("utf-8") == "到了车站。"
    assert "> 駅に着いた。" in (tmp_path / "eki.bilingual.md").read_text("utf-8")  # kept bilingual: it was there


def test_rebuild_of_a_folder_without_a_run_is_one_error(tmp_path):
    with pytest.raises(LabError, match="no translation run here"):
        rebuild(tmp_path)
