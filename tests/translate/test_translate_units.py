"""Translation building blocks: encodings, chunking, prompts, cleaning, every check."""

import codecs

import pytest

from lab import LabError
from lab.translate import (
    Chunk,
    PromptSpec,
    Term,
    Unit,
    chunk_budget,
    load_fewshot,
    load_glossary,
    make_chunks,
    max_tokens_for,
)
from lab.translate.checks import checks, clean, failing
from lab.translate.sources import clean_aozora, decode, inputs, read_text, split_sentences

JA = "春の朝、駅に少女が立っていた。彼女の名前は葵。"


@pytest.mark.parametrize("enc,bom", [("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE),
                                     ("utf-16-be", codecs.BOM_UTF16_BE), ("cp932", b""), ("euc_jp", b"")])
def test_encodings_are_detected(enc, bom):
    text, found = decode(bom + JA.encode(enc), "x.txt")
    assert text == JA
    assert found == {"cp932": "cp932", "euc_jp": "euc_jp"}.get(enc, found)


def test_binary_and_unknown_and_empty_are_refused(tmp_path):
    with pytest.raises(LabError, match="x.bin: looks binary"):
        decode(b"PK\x03\x04\x00\x00binary", "x.bin")
    with pytest.raises(LabError, match="y.txt: unknown encoding"):
        decode(b"\x80\xff\xfe\xfd abc", "y.txt")
    (tmp_path / "e.txt").write_text("  \n\n")
    with pytest.raises(LabError, match="e.txt: empty file"):
        read_text(tmp_path / "e.txt")
    with pytest.raises(LabError, match="does not exist"):
        inputs(tmp_path / "missing")
    (tmp_path / "crlf.txt").write_bytes("一\r\n二\r\n".encode("cp932"))
    assert read_text(tmp_path / "crlf.txt") == ("一\n二\n", "cp932")


def test_aozora_markup_is_removed():
    assert clean_aozora("｜魔法使《まほうつか》いは［＃「魔法」に傍点］笑った") == "魔法使いは笑った"


def test_sentences_split_after_terminators_only():
    assert split_sentences("あ。い！う？え") == ["あ。", "い！", "う？", "え"]


def test_chunks_respect_the_budget_and_keep_lines():
    lines = ["一二三四", "", "五六七八", "九十", "ああああ。いいいい。うううう。"]
    chunks = make_chunks(lines, len, budget=8, context_lines=1)
    assert [c.text for c in chunks] == ["一二三四\n五六七八", "九十\nああああ。", "いいいい。", "うううう。"]
    assert all(c.tokens <= 8 for c in chunks)
    assert [(u.line, u.piece) for c in chunks for u in c.units] == [(0, 0), (2, 0), (3, 0), (4, 0), (4, 1), (4, 2)]
    assert chunks[1].context == ["五六七八"] and chunks[0].context == []
    with pytest.raises(LabError, match="line 1: a sentence of 12 tokens does not fit the model's context"):
        make_chunks(["長い長い長い長い長い長い"], len, budget=8)
    assert [c.text for c in make_chunks(["長い長い長い長い長い長い。短い。"], len, 8, hard=20)] == [
        "長い長い長い長い長い長い。", "短い。"]  # over the soft budget, within the context: a chunk of its own


def test_budget_and_max_tokens_come_from_the_context():
    assert chunk_budget(2048, 48, 512) == 512
    assert chunk_budget(1000, 100, 512) == 360  # (1000 - 100) / 2.5
    with pytest.raises(LabError, match="context \\(40 tokens\\) is too small"):
        chunk_budget(40, 30, 512)
    assert max_tokens_for(2048, 1900, 100, 4096) == 140  # never more than what is left: no 400 errors
    assert max_tokens_for(32768, 500, 100, 4096) == 264


def test_prompt_injects_only_present_terms_and_examples():
    spec = PromptSpec(preface="翻译：", glossary=[Term("葵", "葵"), Term("城", "城堡"), Term("森", "森林")],
                      fewshot=[("猫", "猫")])
    chunk = Chunk(0, [Unit(0, 0, "葵は城を見た。", 7)], context=["前の行。"])
    msgs = spec.messages(chunk, ["上一行。"])
    assert msgs[:2] == [{"role": "user", "content": "翻译：\n猫"}, {"role": "assistant", "content": "猫"}]
    user = msgs[-1]["content"]
    assert user.startswith("参考术语：葵→葵；城→城堡\n") and "森" not in user
    assert "上文（仅供参考，不要翻译）：\n前の行。 => 上一行。" in user and user.endswith("翻译：\n葵は城を見た。")
    sakura = PromptSpec(template="sakura", glossary=[Term("城", "城堡", "castle")]).messages(chunk)
    assert sakura[0]["role"] == "system" and "城->城堡 #castle" in sakura[-1]["content"]
    with pytest.raises(LabError, match="unknown template 'gpt'"):
        PromptSpec(template="gpt").messages(chunk)


def test_glossary_and_fewshot_errors_name_file_and_line(tmp_path):
    g = tmp_path / "g.tsv"
    g.write_text("# comment\n城\t城堡\tnote\n\n魔法使い 魔法师\n")
    with pytest.raises(LabError, match=r"g.tsv:4: expected 'source<TAB>target"):
        load_glossary(g)
    g.write_text("城\t城堡\tnote\n")
    assert load_glossary(g) == [Term("城", "城堡", "note")]
    f = tmp_path / "f.jsonl"
    f.write_text('{"source": "a", "target": "b"}\n{"src": "a"}\n')
    with pytest.raises(LabError, match=r"f.jsonl:2: expected"):
        load_fewshot(f)


def test_cleaning_strips_think_and_echoes():
    src = "葵は笑った。\n空は青い。"
    assert clean("<think>考える</think>\n葵笑了。\n天空很蓝。", src) == "葵笑了。\n天空很蓝。"
    assert clean("葵笑了。\n天空很蓝。<think>never closed", src) == "葵笑了。\n天空很蓝。"
    assert clean("翻译：\n葵は笑った。\n葵笑了。\n空は青い。\n天空很蓝。", src, "翻译：") == "葵笑了。\n天空很蓝。"


def test_every_check():
    src = "葵は笑った。\n空は青い。"
    assert checks("葵笑了。\n天空很蓝。", src, "stop") == []
    assert checks("", src, "stop") == ["empty"]
    assert "loop" in checks("葵笑了。\n" + "哈哈" * 10, src, "stop")
    assert "truncated" in checks("葵笑了。\n天空很", src, "length")
    assert "kana" in checks("葵は笑った。\n天空很蓝。", src, "stop")
    assert "length_ratio" in checks("葵。\n天", src, "stop")
    assert "line_count" in checks("葵笑了。天空很蓝。", src, "stop")
    probs = checks("葵笑了。\n天空很蓝。", "魔法使いは笑った。\n空は青い。", "stop", [Term("魔法使い", "魔法师")])
    assert probs == ["glossary:魔法使い"] and failing(probs) == []  # a glossary miss only warns
