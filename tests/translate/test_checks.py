"""lab.translate.checks: cleaning a reply and every check, on made-up and real pairs."""

from lab.translate import (
    Term,
)
from lab.translate.checks import checks, clean, failing, japanese_left


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
    # one Japanese word left in (kanji + okurigana) is under the kana share, and still retried
    long_src = "先週、彼女は魔法使いの少年が旅に出る物語を読んだ。"
    assert failing(checks("上周，她读了一本关于魔法使い少年旅行的故事。", long_src, "stop")) == ["japanese_word"]
    assert checks("他在纸上写了「あ」。", "彼は紙に「あ」と書いた。", "stop") == []  # a quoted kana is no word left in
    assert "length_ratio" in checks("葵。", "葵は" + "とても長い文章を書いていた" * 4 + "。", "stop")
    assert checks("谢谢。", "ありがとうございます。", "stop") == []  # short lines vary the most
    assert "line_count" in checks("葵笑了。天空很蓝。", src, "stop")
    assert "line_count" in checks("葵笑了。\n天空很蓝。\n（译注：多出来的一行）", src, "stop")
    assert checks("葵笑了。\n\n天空很蓝。", src, "stop") == []  # a blank line between is no extra line
    # half-width katakana (web novels, sound effects) left in are kana too, and an echo of them is dropped
    assert "kana" in checks("葵笑了。\nﾄﾞｷﾄﾞｷしてる", "葵は笑った。\nﾄﾞｷﾄﾞｷしてる", "stop")
    assert "kana" in checks("ｱｵｲﾊﾜﾗｯﾀ\n天空很蓝。", "ｱｵｲﾊﾜﾗｯﾀ。\n空は青い。", "stop")
    assert clean("ｱｵｲﾊﾜﾗｯﾀ。\n葵笑了。", "ｱｵｲﾊﾜﾗｯﾀ。") == "葵笑了。"
    assert japanese_left("他说：ﾄﾞｷﾄﾞｷ") == ["ﾄﾞｷﾄﾞｷ"]


def test_checks_accept_what_real_pairs_do():
    pairs = [("◆◆◆", "◆◆◆"), ("「あっ――――――！」", "「啊――――――！」"),
             ("　トン、トン、トン、トン、トン、トン、トン、トン。", "　咚、咚、咚、咚、咚、咚、咚、咚。"),
             ("　彼は黙った……………………", "　他沉默了……………………"), ("2026年", "2026年")]
    for src, zh in pairs:
        assert clean(zh, src) == zh and checks(zh, src, "stop") == [], src
    assert "loop" in checks("咚、" * 30, "トン、" * 8, "stop")  # far more than the source repeats
    # a sentence the source itself writes 12 times: its translation repeats as often, and is no loop
    said = "彼女は駅の階段を駆け上がりながら、昨日の夜に届いた手紙のことを考えていた。"
    assert checks("她一边上台阶一边想着昨晚收到的信。" * 12, said * 12, "stop") == []  # a 17-char unit
    assert "loop" in checks("她想着昨晚收到的信。" * 30, said * 2, "stop")  # the source says it twice
    probs = checks("葵笑了。\n天空很蓝。", "魔法使いは笑った。\n空は青い。", "stop", [Term("魔法使い", "魔法师")])
    assert probs == ["glossary:魔法使い"] and failing(probs) == []  # a glossary miss only warns
