"""lab.translate.document: a document's chunks assembled with fixes and failures, the cache looked up through
splits, and the manifest and fixes that `rebuild` and `fix` read back without a source or a server."""

import json

import pytest

from lab import LabError
from lab.translate.cache import ChunkCache
from lab.translate.chunking import Chunk, Unit
from lab.translate.document import (
    FAILED_MARK,
    FIXES,
    Doc,
    assemble,
    check_line,
    halves,
    load_doc,
    lookup,
    names,
    save_fix,
    save_manifest,
    untranslated,
)
from lab.translate.prompts import Term

LINES = ["駅に着いた。", "", "雨が降る。", "長い一文の前半。長い一文の後半。"]


def doc() -> Doc:
    """Four lines: two one-unit chunks, an empty line left out, and a long line in two pieces of one chunk."""
    chunks = [Chunk(0, [Unit(0, 0, LINES[0], 5)]),
              Chunk(1, [Unit(2, 0, LINES[2], 4), Unit(3, 0, "長い一文の前半。", 6), Unit(3, 1, "長い一文の後半。", 6)],
                    context=[LINES[0]])]
    return Doc("eki", list(LINES), chunks, source="in/eki.txt", fp="f0", glossary=[Term("駅", "车站", "")])


def test_assemble_joins_pieces_marks_failures_and_lets_fixes_win():
    d = doc()
    d.results = {0: ["到了车站。"], 1: ["下雨了。", "长句前半。", None]}
    assert assemble(d) == [(LINES[0], "到了车站。"), ("", ""), (LINES[2], "下雨了。"),
                           (LINES[3], f"长句前半。{FAILED_MARK}長い一文の後半。")]
    assert untranslated(d) == [3]
    d.fixes[3] = "一句长话。"
    assert assemble(d)[3] == (LINES[3], "一句长话。") and untranslated(d) == []


def test_a_translation_takes_its_source_lines_indent_and_no_other():
    """The 1.5B kept 4 of the 10 paragraph indents (　) of the Aozora sample: the source decides, not the model."""
    lines = ["　雨が降る。", "「はい。」", "　　長い一文の前半。長い一文の後半。", "　駅。"]
    chunks = [Chunk(0, [Unit(0, 0, lines[0], 4), Unit(1, 0, lines[1], 3)]),
              Chunk(1, [Unit(2, 0, "　　長い一文の前半。", 6), Unit(2, 1, "長い一文の後半。", 6),
                        Unit(3, 0, lines[3], 2)])]
    d = Doc("ame", lines, chunks)
    d.results = {0: ["下雨了。", "  “是。”"], 1: ["　长句前半。", "长句后半。", None]}
    assert [t for _, t in assemble(d)] == ["　下雨了。", "“是。”", "　　长句前半。长句后半。", f"{FAILED_MARK}　駅。"]
    d.fixes[1] = "  “好。”"  # a person's line stays as typed
    assert assemble(d)[1][1] == "  “好。”"


def test_a_line_of_dialogue_keeps_its_brackets_when_the_model_drops_them():
    """The 1.5B gave 「ねえ、聞いてる？」 back as 你好，正在听吗？: the source's frame comes back, a quote style of
    the model's own stays, a half-kept pair is completed with its partner, and unframed lines are untouched."""
    lines = ["「ねえ、聞いてる？」", "　（どうしよう）", "「はい」", "「行こう」と彼は言った。", "【第一話】",
             "「いいえ」", "「まだ」"]
    got = ["你好，正在听吗？", "怎么办", "是的。”", "他说走吧。", "第一话", "“不。”", None]
    d = Doc("talk", lines, [Chunk(0, [Unit(i, 0, ln, 3) for i, ln in enumerate(lines)])])
    d.results = {0: got}
    assert [t for _, t in assemble(d)] == ["「你好，正在听吗？」", "　（怎么办）", "“是的。”", "他说走吧。",
                                           "【第一话】", "“不。”", f"{FAILED_MARK}「まだ」"]
    d.fixes[0] = "你好"  # a person's line stays as typed
    assert assemble(d)[0][1] == "你好"


def test_a_chunk_in_flight_is_no_failure_for_progress_lines():
    d = doc()
    d.results = {0: ["到了车站。"]}
    assert untranslated(d) == [2, 3] and untranslated(d, finished_only=True) == []
    assert assemble(d)[2] == (LINES[2], f"{FAILED_MARK}{LINES[2]}")  # never dropped: the source line, marked


def test_halves_keep_the_index_and_give_the_context_to_the_first():
    a, b = halves(doc().chunks[1])
    assert [len(a.units), len(b.units)] == [1, 2] and a.index == b.index == 1
    assert a.context == [LINES[0]] and b.context == []


def test_the_glossary_enters_the_fingerprint_only_where_a_chunk_uses_a_term():
    d = doc()
    assert d.piece_fp(LINES[2]) == "f0"
    assert d.piece_fp(LINES[0]) != "f0"
    d.glossary = [Term("駅", "站", "")]
    assert d.piece_fp(LINES[0]) != doc().piece_fp(LINES[0])  # a changed target re-sends the chunks using it


def test_lookup_reads_a_chunk_whole_or_through_its_halves(tmp_path):
    d, cache = doc(), ChunkCache(tmp_path)
    whole, split = d.chunks
    assert lookup(cache, d, whole) is None
    cache.put("eki", whole.text, ["到了车站。"], {}, d.piece_fp(whole.text))
    assert lookup(cache, d, whole) == ["到了车站。"]
    cache.mark_split("eki", split.text, d.piece_fp(split.text))
    first, second = halves(split)
    cache.put("eki", second.text, ["长句前半。", "长句后半。"], {}, d.piece_fp(second.text))
    assert lookup(cache, d, split) == [None, "长句前半。", "长句后半。"]  # the first half is still to do
    cache.put("eki", first.text, ["下雨了。"], {}, d.piece_fp(first.text))
    assert lookup(cache, d, split) == ["下雨了。", "长句前半。", "长句后半。"]


def test_the_manifest_and_cache_bring_a_document_back_without_its_source(tmp_path):
    d, cache = doc(), ChunkCache(tmp_path)
    save_manifest(cache, d)
    cache.put("eki", d.chunks[0].text, ["到了车站。"], {}, d.piece_fp(d.chunks[0].text))
    back = load_doc(tmp_path, "eki")
    assert names(tmp_path) == ["eki"]
    assert (back.lines, back.chunks, back.glossary, back.fp) == (d.lines, d.chunks, d.glossary, d.fp)
    assert back.results == {0: ["到了车站。"]}
    with pytest.raises(LabError, match=r"no translated document named 'nope' \(documents: eki\)"):
        load_doc(tmp_path, "nope")
    (cache.folder("eki") / "manifest.json").write_text('{"name": "eki"}')
    with pytest.raises(LabError, match="not a manifest lab wrote"):
        load_doc(tmp_path, "eki")


def test_a_fix_is_locked_on_disk_and_goes_stale_when_the_source_line_changes(tmp_path):
    d = doc()
    save_manifest(ChunkCache(tmp_path), d)
    rec = save_fix(tmp_path, d, 3, "下雨了。")
    assert rec == {"source": LINES[2], "text": "下雨了。"} and d.fixes == {2: "下雨了。"}
    assert load_doc(tmp_path, "eki").fixes == {2: "下雨了。"}
    changed = doc()
    changed.lines[2] = "雪が降る。"
    save_manifest(ChunkCache(tmp_path), changed)
    assert load_doc(tmp_path, "eki").fixes == {}  # the fix was for another line


@pytest.mark.parametrize("line,text,why", [
    (0, "x", "between 1 and 4"), (5, "x", "between 1 and 4"),
    (3, "两\n行", "must be one line"), (3, "两\u2028行", "must be one line"),
    (3, " ", "--text is empty, but line 3")])
def test_a_fix_that_cannot_be_one_line_of_the_output_is_refused(tmp_path, line, text, why):
    d = doc()
    save_manifest(ChunkCache(tmp_path), d)
    with pytest.raises(LabError, match=why):
        save_fix(tmp_path, d, line, text)
    assert not (ChunkCache(tmp_path).folder("eki") / FIXES).exists()


def test_an_empty_line_may_be_fixed_empty_and_the_last_empty_piece_is_no_line(tmp_path):
    d = doc()
    save_manifest(ChunkCache(tmp_path), d)
    assert save_fix(tmp_path, d, 2, "") == {"source": "", "text": ""}
    d.lines.append("")  # the text ended with a newline
    check_line(d, 4)
    with pytest.raises(LabError, match="between 1 and 4"):
        check_line(d, 5)


def test_a_hand_edited_fixes_file_is_named(tmp_path):
    d = doc()
    save_manifest(ChunkCache(tmp_path), d)
    f = ChunkCache(tmp_path).folder("eki") / FIXES
    for bad, why in (("{oops", "not valid JSON"), (json.dumps({"x": {"text": "a"}}), "expected")):
        f.write_text(bad)
        with pytest.raises(LabError, match=why):
            load_doc(tmp_path, "eki")
