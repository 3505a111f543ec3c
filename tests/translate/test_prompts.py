"""lab.translate.prompts: only the terms and examples a chunk uses, glossary/few-shot errors by line, retry notes."""

import pytest

from lab import LabError
from lab.translate import (
    Chunk,
    PromptSpec,
    Term,
    Unit,
    load_fewshot,
    load_glossary,
)
from lab.translate.checks import clean, japanese_left
from lab.translate.prompts import feedback


def test_prompt_injects_only_present_terms_and_examples():
    spec = PromptSpec(preface="翻译：", glossary=[Term("葵", "葵"), Term("城", "城堡"), Term("森", "森林")],
                      fewshot=[("猫", "猫")])
    chunk = Chunk(0, [Unit(0, 0, "葵は城を見た。", 7)], context=["前の行。"])
    msgs = spec.messages(chunk)
    assert msgs[:2] == [{"role": "user", "content": "翻译：\n猫"}, {"role": "assistant", "content": "猫"}]
    user = msgs[-1]["content"]
    assert user.startswith("参考术语：葵→葵；城→城堡\n") and "森" not in user
    assert "上文（仅供参考，不要翻译）：\n前の行。\n" in user and user.endswith("翻译：\n葵は城を見た。")
    sakura = PromptSpec(template="sakura", glossary=[Term("城", "城堡", "castle")]).messages(chunk)
    assert sakura[0]["role"] == "system" and "城->城堡 #castle" in sakura[-1]["content"]
    with pytest.raises(LabError, match="unknown template 'gpt'"):
        PromptSpec(template="gpt").messages(chunk)


TWO = Chunk(0, [Unit(0, 0, "春の朝。", 4), Unit(1, 0, "駅だ。", 3)])
ONE = Chunk(0, [Unit(0, 0, "春の朝。", 4)])
NOTE_2 = "（原文共2行。请逐行翻译，译文也是2行，一行对一行，只输出译文。）"


def test_a_chunk_of_several_lines_is_told_how_many_lines_come_back():
    """Merged or split lines were the 1.5B's only rejection: every one cost a retry, then a split to one line."""
    user = PromptSpec(preface="翻译：", fewshot=[("猫\n犬", "猫\n狗")]).messages(TWO)
    assert user[0]["content"] == f"翻译：{NOTE_2}\n猫\n犬"
    assert user[-1]["content"] == f"翻译：{NOTE_2}\n春の朝。\n駅だ。"
    assert PromptSpec(preface="翻译：").messages(ONE)[-1]["content"] == "翻译：\n春の朝。"  # a split line: as before
    assert "原文共" not in PromptSpec(template="sakura").messages(TWO)[-1]["content"]  # Sakura's own wording
    off = PromptSpec(preface="翻译：", line_note=False)  # --no-line-note: the prompt a plain-preface adapter learned
    assert off.messages(TWO)[-1]["content"] == "翻译：\n春の朝。\n駅だ。" and off.longest_note() == ""
    assert off.fingerprint() != PromptSpec(preface="翻译：").fingerprint()  # never served from the other's cache


def test_a_retry_of_a_reply_that_kept_japanese_asks_for_chinese_only():
    spec = PromptSpec(preface="翻译：")
    assert spec.messages(ONE, chinese_only=True)[-1]["content"] == "翻译：（只输出中文译文。）\n春の朝。"
    want = f"翻译：{NOTE_2}（只输出中文译文。）\n春の朝。\n駅だ。"
    assert spec.messages(TWO, chinese_only=True)[-1]["content"] == want
    # an echoed retry instruction is dropped like the first one
    assert clean("翻译：（只输出中文译文。）\n春天的早晨。", "春の朝。", spec.echoes("春の朝。")) == "春天的早晨。"
    sakura = PromptSpec(template="sakura")
    assert sakura.messages(ONE, chinese_only=True) == sakura.messages(ONE)  # Sakura's own wording


def test_glossary_and_fewshot_errors_name_file_and_line(tmp_path):
    g = tmp_path / "g.tsv"
    g.write_text("# comment\n城\t城堡\tnote\n\n魔法使い 魔法师\n")
    with pytest.raises(LabError, match=r"g.tsv:4: expected 'source<TAB>target"):
        load_glossary(g)
    g.write_text("城\t城堡\tnote\n")
    assert load_glossary(g) == [Term("城", "城堡", "note")]
    g.write_text("城\t城堡\tnote\n城\t城堡\n")  # a repeat is kept once, not sent twice
    assert load_glossary(g) == [Term("城", "城堡", "note")]
    g.write_text("城\t城堡\n葵\t葵\n城\t城池\n")  # the prompt would ask for both
    with pytest.raises(LabError, match=r"g.tsv:3: 城 -> 城池, but line 1 has 城 -> 城堡"):
        load_glossary(g)
    f = tmp_path / "f.jsonl"
    f.write_text('{"source": "a", "target": "b"}\n{"src": "a"}\n')
    with pytest.raises(LabError, match=r"f.jsonl:2: expected"):
        load_fewshot(f)
    for bad in ('{"source": 1, "target": 2}', '{"source": "a", "target": " "}', '["a", "b"]'):
        f.write_text('{"source": "a", "target": "b"}\n' + bad + "\n")
        with pytest.raises(LabError, match=r"f.jsonl:2: expected .* two non-empty strings"):
            load_fewshot(f)
    f.write_text('{"source": "猫\\n犬", "target": "猫\\n狗", "note": "extra keys are ignored"}\n')
    assert load_fewshot(f) == [("猫\n犬", "猫\n狗")]


def test_a_retry_is_told_what_was_wrong_where_that_can_help():
    assert japanese_left("一通目の消印是昭和。是魔法使い少年。カタカナ、の") == ["通目の", "法使い", "カタカナ"]
    assert japanese_left("全是中文。") == []
    src = "一通目の消印は昭和三十年の春だった。\n差出人の名前はなかった。"
    note = feedback(["japanese_word", "line_count"], src, "一通目の消印是昭和三十年的春。差出人的名字没有。")
    assert "「通目の」" in note and "原文有2行，译文却有1行" in note and note.endswith("只输出译文。")
    assert "长度" in feedback(["length_ratio"], src, "春。\n无。")
    for hopeless in (["loop"], ["truncated", "kana"], ["empty"], []):  # showing such a reply again would not help
        assert feedback(hopeless, src, "哈哈哈哈") is None
