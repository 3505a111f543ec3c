"""Translation building blocks: encodings, chunking, prompts, cleaning, every check."""

import codecs
import shutil
from pathlib import Path

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
from lab.translate.checks import checks, clean, failing, japanese_left
from lab.translate.chunking import CHARS_PER_TOKEN, MAX_LINE_CHARS, fit
from lab.translate.prompts import feedback
from lab.translate.sources import (
    GETA,
    HEADER_TITLE,
    clean_aozora,
    decode,
    gaiji,
    inputs,
    load,
    looks_aozora,
    read_text,
    split_sentences,
)

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


@pytest.mark.parametrize("enc", ["cp932", "euc_jp"])
def test_a_file_in_two_encodings_or_a_damaged_utf8_one_is_refused_naming_the_line(enc):
    """Read as CP932, the UTF-8 lines became mojibake (あい -> 縺ゅ＞) that the checks took for kanji, and the run
    said "every line translated"."""
    with pytest.raises(LabError, match=r"^m.txt:3: not UTF-8 \(byte 0x[0-9a-f]{2}\), but line 1 is UTF-8 Japanese: "
                                       r"two encodings in one file"):
        decode(f"{JA}\nabc\n".encode() + JA.encode(enc) + b"\n", "m.txt")
    damaged = (JA + "\n" + JA).encode()
    with pytest.raises(LabError, match=r"^d.txt:2: not UTF-8 .*, but line 1 is UTF-8 Japanese"):
        decode(damaged[:-4] + b"\xe3" + damaged[-3:], "d.txt")
    assert decode(f"{JA}\n{JA}\n".encode(enc), "l.txt") == (f"{JA}\n{JA}\n", enc)  # one legacy encoding: as before


def test_a_file_name_that_is_not_utf8_is_refused_before_anything(tmp_path):
    """A name in another system's encoding (bytes Python holds as surrogates) crashed the run after its first
    request, writing the UTF-8 manifest: "internal error UnicodeEncodeError"."""
    import os
    (tmp_path / "ok.txt").write_text(JA, encoding="utf-8")
    bad = Path(os.fsdecode(bytes(tmp_path) + b"/\xff\xfe.txt"))
    bad.write_text(JA, encoding="utf-8")
    for given in (tmp_path, bad):
        with pytest.raises(LabError, match=r"/\\xff\\xfe\.txt: the file name is not UTF-8"):
            inputs(given)


def test_aozora_markup_is_removed():
    assert clean_aozora("｜魔法使《まほうつか》いは［＃「魔法」に傍点］笑った")[0] == "魔法使いは笑った"


def test_aozora_gaiji_header_and_footer():
    assert gaiji("「足＋包」、第3水準1-92-34") == "跑"  # JIS X 0213 plane 1, row 92, cell 34
    assert gaiji("「口＋和」、第4水準2-3-76") == "咊"    # plane 2 (EUC-JIS-2004 SS3)
    assert gaiji("「土＋竒」、U+57FC、ページ数-行数") == "埼"
    assert gaiji("「てへん＋劣」、52-8") is None        # a page-line reference is no code
    body = "本文※［＃「足＋包」、第3水準1-92-34］だ。※［＃「てへん＋劣」、52-8］"
    text = "\n".join(["題", "-" * 55, HEADER_TITLE, "（例）※［＃「足＋包」、第3水準1-92-34］", "-" * 55, "",
                      body, "", "底本：「題」", "入力：誰か"])
    assert looks_aozora(text) and not looks_aozora("「普通の」小説《しょうせつ》です。")
    cleaned, verbatim, notes = clean_aozora(text)
    assert cleaned.split("\n") == ["題", "", "本文跑だ。" + GETA, "", "底本：「題」", "入力：誰か"]
    assert verbatim == {4, 5} and any("footer" in n for n in notes) and any("header" in n for n in notes)


def test_iso2022jp_and_jis_x_0213_files_are_detected():
    text = "「あっ――――――！」と彼は言った。"
    assert decode(text.encode("iso2022_jp"), "x.txt") == (text, "iso2022_jp")
    assert decode("跑る𠮟".encode("shift_jis_2004"), "y.txt")[0] == "跑る𠮟"


def test_sentences_split_after_terminators_outside_quotes():
    assert split_sentences("あ。い！う？え") == ["あ。", "い！", "う？", "え"]
    assert split_sentences("「はい。」と言った。次だ！？「ええ。そう。」") == \
        ["「はい。」と言った。", "次だ！？", "「ええ。そう。」"]
    assert split_sentences("「開いたまま。閉じない", quotes=False) == ["「開いたまま。", "閉じない"]


def test_a_long_quotation_is_split_inside_only_when_it_must_be():
    line = "「" + "あ。" * 10 + "」"
    chunks = make_chunks([line], len, budget=8, hard=12)
    assert "".join(c.text for c in chunks) == line and all(c.tokens <= 12 for c in chunks)
    chunks = make_chunks(["「はい。」と言った。いいえ。"], len, budget=10)
    assert [c.text for c in chunks] == ["「はい。」と言った。", "いいえ。"]


def test_a_line_break_inside_a_source_line_reaches_the_model_as_a_space():
    """A form feed or U+2028 inside a line made the line-count check expect 4 reply lines for a 2-line chunk:
    every try of the chunk failed and both lines came back untranslated."""
    lines = ["一行目です。\u2028二行目です。", "三行目です。\f四行目\x85五行目", "\x0c"]
    (chunk,) = make_chunks(lines, len, budget=100)
    assert chunk.text == "一行目です。 二行目です。\n三行目です。 四行目 五行目"
    assert [u.line for u in chunk.units] == [0, 1]  # the form-feed-only line is blank: copied, not sent
    assert checks("第一行。第二行。\n第三行。第四行第五行", chunk.text, "stop") == []


def test_folder_inputs_skip_outputs_and_empty_files(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("一行目です。")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "a.zh.txt").write_text("译文")
    (tmp_path / "out" / ".lab-cache").mkdir(parents=True)
    (tmp_path / "out" / "x.txt").write_text("前回の出力")
    (tmp_path / "old" / ".lab-cache").mkdir(parents=True)
    (tmp_path / "old" / "y.txt").write_text("別の出力")
    assert inputs(tmp_path, tmp_path / "out") == [tmp_path / "empty.txt", tmp_path / "a.txt"][::-1]
    docs = load(tmp_path, tmp_path / "out")
    assert [d.name for d in docs] == ["a"] and "empty.txt: empty file, skipped" in capsys.readouterr().err
    assert [d.name for d in load(tmp_path, tmp_path)] == ["a"]  # -o the input folder itself
    with pytest.raises(LabError, match="empty file"):
        load(tmp_path / "empty.txt")


def test_chunks_respect_the_budget_and_keep_lines():
    lines = ["一二三四", "", "五六七八", "九十", "ああああ。いいいい。うううう。"]
    chunks = make_chunks(lines, len, budget=8, context_lines=1)
    assert [c.text for c in chunks] == ["一二三四\n五六七八", "九十\nああああ。", "いいいい。", "うううう。"]
    assert all(c.tokens <= 8 for c in chunks)
    assert [(u.line, u.piece) for c in chunks for u in c.units] == [(0, 0), (2, 0), (3, 0), (4, 0), (4, 1), (4, 2)]
    assert chunks[1].context == ["五六七八"] and chunks[0].context == []
    # a sentence longer than the context is cut: after clause marks first, else in halves; nothing is lost
    long = make_chunks(["長い長い長い長い長い長い"], len, budget=8)
    assert [c.text for c in long] == ["長い長い長い", "長い長い長い"] and all(c.tokens <= 8 for c in long)
    assert [(u.line, u.piece) for c in long for u in c.units] == [(0, 0), (0, 1)]
    clauses = make_chunks(["雨が降り、風が吹き、雪が舞った"], len, budget=8)
    assert [c.text for c in clauses] == ["雨が降り、", "風が吹き、", "雪が舞った"]
    huge = "あ" * 5000
    pieces = fit(huge, len, 64)
    assert "".join(pieces) == huge and max(map(len, pieces)) <= 64
    assert [c.text for c in make_chunks(["長い長い長い長い長い長い。短い。"], len, 8, hard=20)] == [
        "長い長い長い長い長い長い。", "短い。"]  # over the soft budget, within the context: a chunk of its own



def test_a_huge_line_is_counted_in_pieces_and_one_over_the_limit_is_refused():
    asked: list[int] = []

    def count(text: str) -> int:  # the server's /tokenize: what it is asked to count must stay small
        asked.append(len(text))
        return len(text)
    line = "雨が降り、" * 40_000  # 200,000 characters: a paragraph with no 。
    chunks = make_chunks([line], count, budget=300, hard=400)
    assert "".join(u.text for c in chunks for u in c.units) == line and all(c.tokens <= 400 for c in chunks)
    assert max(asked) <= CHARS_PER_TOKEN * 400  # never the whole line: 100M characters took vLLM to the OOM killer
    with pytest.raises(LabError, match=f"line 2 has {MAX_LINE_CHARS + 1:,} characters"):
        make_chunks(["短い。", "あ" * (MAX_LINE_CHARS + 1)], count, budget=300)

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
    msgs = spec.messages(chunk)
    assert msgs[:2] == [{"role": "user", "content": "翻译：\n猫"}, {"role": "assistant", "content": "猫"}]
    user = msgs[-1]["content"]
    assert user.startswith("参考术语：葵→葵；城→城堡\n") and "森" not in user
    assert "上文（仅供参考，不要翻译）：\n前の行。\n" in user and user.endswith("翻译：\n葵は城を見た。")
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
    g.write_text("城\t城堡\tnote\n城\t城堡\n")  # a repeat is kept once, not sent twice
    assert load_glossary(g) == [Term("城", "城堡", "note")]
    g.write_text("城\t城堡\n葵\t葵\n城\t城池\n")  # the prompt would ask for both
    with pytest.raises(LabError, match=r"g.tsv:3: 城 -> 城池, but line 1 has 城 -> 城堡"):
        load_glossary(g)
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
    probs = checks("葵笑了。\n天空很蓝。", "魔法使いは笑った。\n空は青い。", "stop", [Term("魔法使い", "魔法师")])
    assert probs == ["glossary:魔法使い"] and failing(probs) == []  # a glossary miss only warns


def test_a_retry_is_told_what_was_wrong_where_that_can_help():
    assert japanese_left("一通目の消印是昭和。是魔法使い少年。カタカナ、の") == ["通目の", "法使い", "カタカナ"]
    assert japanese_left("全是中文。") == []
    src = "一通目の消印は昭和三十年の春だった。\n差出人の名前はなかった。"
    note = feedback(["japanese_word", "line_count"], src, "一通目の消印是昭和三十年的春。差出人的名字没有。")
    assert "「通目の」" in note and "原文有2行，译文却有1行" in note and note.endswith("只输出译文。")
    assert "长度" in feedback(["length_ratio"], src, "春。\n无。")
    for hopeless in (["loop"], ["truncated", "kana"], ["empty"], []):  # showing such a reply again would not help
        assert feedback(hopeless, src, "哈哈哈哈") is None


def test_lab_tokens_counts_a_long_text_in_pieces_cut_before_a_line(monkeypatch):
    """A 104,857,600-character chapter tokenized at once took 24 GB and the OOM killer."""
    from lab.translate import chunking
    from lab.translate.cli import _count
    monkeypatch.setattr(chunking, "MAX_LINE_CHARS", 10)
    asked = []

    def tok(text, add_special_tokens):  # a character a token, so the pieces must add up exactly
        asked.append(text)
        return {"input_ids": list(text)}
    text = "一二三\n四五六七八\n九\n十一二三四五六七\n八"
    assert _count(tok, text, "t.txt") == len(text) and "".join(asked) == text
    assert len(asked) > 1 and all(len(a) <= 11 and (a.endswith("\n") or a is asked[-1]) for a in asked)
    with pytest.raises(LabError, match=r"t.txt: line 2 has 11 characters, over the 10 of one line"):
        _count(tok, "短い\n" + "長" * 11, "t.txt")


def test_eval_refuses_a_line_too_long_to_score(tmp_path, monkeypatch):
    """chrF counts a line's character n-grams: one 20,000,000-character line takes gigabytes."""
    from lab.translate import chunking
    from lab.translate import eval as ev
    monkeypatch.setattr(chunking, "MAX_LINE_CHARS", 10)
    (tmp_path / "h.txt").write_text("猫がいる\n" + "猫" * 11 + "\n", encoding="utf-8")
    (tmp_path / "r.txt").write_text("有猫\n有猫\n", encoding="utf-8")
    with pytest.raises(LabError, match=r"h.txt: line 2 \(of those with text\) has 11 characters, over the 10"):
        ev.evaluate(tmp_path / "h.txt", tmp_path / "r.txt")
    (tmp_path / "h.txt").write_text("猫がいる\n猫\n", encoding="utf-8")
    assert ev.evaluate(tmp_path / "h.txt", tmp_path / "r.txt")["total"]["chrf"] >= 0


def test_partial_eval_scores_what_has_a_reference_and_nothing_is_no_error(tmp_path):
    """Notebook 04 on a reader's own texts: those with a reference are scored, the rest are not, and a folder
    with none gives chrF None instead of "translate X first" for the project's samples."""
    from lab.translate import eval as ev
    hyp, ref = tmp_path / "hyp", tmp_path / "ref"
    hyp.mkdir()
    ref.mkdir()
    (hyp / "a.zh.txt").write_text("有一只猫\n", encoding="utf-8")
    (hyp / "mine.zh.txt").write_text("我的\n", encoding="utf-8")
    (ref / "a.txt").write_text("有一只猫\n", encoding="utf-8")
    (ref / "c.txt").write_text("没有翻译\n", encoding="utf-8")
    with pytest.raises(LabError, match=r"c.zh.txt is missing: translate c first"):
        ev.evaluate(hyp, ref)
    got = ev.evaluate(hyp, ref, partial=True)
    assert [r["doc"] for r in got["rows"]] == ["a"] and got["total"]["chrf"] == 100
    (ref / "a.txt").unlink()
    assert ev.evaluate(hyp, ref, partial=True)["total"] == {"doc": "ALL", "chrf": None, "bleu": None,
                                                           "untranslated_lines": 0}
    assert ev.evaluate(hyp, tmp_path / "none", partial=True)["rows"] == []


def test_a_cache_record_removed_during_the_run_is_not_cached_any_more(tmp_path):
    """The output folder deleted mid-run: the next identical chunk was an error (`cache record ... does not
    exist`) and the run stopped; now it is translated again and the run finishes."""
    from lab.translate.cache import ChunkCache
    cache = ChunkCache(tmp_path / "out")
    cache.put("doc", "駅に着いた。", ["到了车站。"], {}, "fp")
    assert cache.get("doc", "駅に着いた。", "fp") == ["到了车站。"]
    shutil.rmtree(tmp_path / "out")
    assert cache.get("doc", "駅に着いた。", "fp") is None
    cache.put("doc", "駅に着いた。", ["到了车站。"], {}, "fp")  # written again where it was
    assert cache.get("doc", "駅に着いた。", "fp") == ["到了车站。"] and cache.count() == 1
