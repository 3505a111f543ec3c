"""The translation pipeline: retry/split/mark-failed, faults (500s, hangs, truncation), resume after SIGKILL."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, Trickle, lab, openai_fake, source_of

from lab import LabError
from lab.translate import (
    FAILED_MARK,
    PromptSpec,
    Settings,
    Translator,
    chunk_budget,
    load_glossary,
    terms_in,
)

PREFACE = "把下面的日语翻译成中文。"
SAMPLES = ROOT / "data" / "translation"


def _source_of(body):
    return source_of(body, PREFACE)


def _zh(line):
    return "译" * max(2, len(line) * 2 // 3)  # passes the length, kana and line checks


def _settings(out, url, **kw):
    kw.setdefault("attempts", 2)
    return Settings(out=Path(out), endpoints=[url], concurrency=kw.pop("concurrency", 2), timeout=kw.pop("timeout", 5),
                    progress_every_s=kw.pop("progress_every_s", 0), **kw)


def _doc(tmp_path, lines):
    f = tmp_path / "in.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f


def test_retry_then_split_then_mark_failed(tmp_path):
    seen = []

    def reply(body):
        seen.append(body)
        src = _source_of(body)
        if "\n" in src:
            return 200, "哈哈" * 30, "stop"  # a loop: fails, is retried, then the chunk is split
        if "失敗" in src:
            return 200, "", "stop"  # always empty: this line ends up marked, never dropped
        return 200, _zh(src), "stop"
    fake = openai_fake(reply)
    try:
        doc = _doc(tmp_path, ["一行目です。", "", "二行目は失敗する。", "三行目です。"])
        stats = Translator(_settings(tmp_path / "out", fake.url)).run(doc)
        out = (tmp_path / "out" / "in.zh.txt").read_text().split("\n")
        assert out == [_zh("一行目です。"), "", f"{FAILED_MARK}二行目は失敗する。", _zh("三行目です。"), ""]
        assert stats["splits"] >= 1 and stats["retries"] >= 2 and stats["failed_units"] == 1
        assert stats["failed"] == [{"doc": "in", "chunks": [0]}]
        retry = [b for b in seen if b.get("frequency_penalty", 0) > 0]
        assert retry and retry[0]["temperature"] > 0  # the retry changed sampling
        assert all(b["chat_template_kwargs"] == {"enable_thinking": False} for b in seen)
        n = len(seen)
        again = Translator(_settings(tmp_path / "out", fake.url)).run(doc)
        assert again["requests"] == len(seen) - n == 2  # only the failed line is tried again (2 attempts)
    finally:
        fake.close()


@pytest.mark.parametrize("at_once", [True, False])
def test_a_wrong_line_count_splits_at_once_when_asked(tmp_path, at_once):
    """Retrying a whole chunk whose reply merged lines rarely helps (the 0.5B: 26 of 309 such chunks rescued by
    a retry): --split-at-once sends its halves after the first such reply; other problems are retried."""
    seen = []

    def reply(body):
        src = _source_of(body)
        seen.append(src)
        if "\n" in src:
            return 200, "甲乙丙丁戊己庚辛", "stop"  # two lines merged into one (and nothing else wrong)
        if src == "二行目は空。" and seen.count(src) == 1:
            return 200, "", "stop"  # one empty reply: retried, also at once
        return 200, _zh(src), "stop"
    fake = openai_fake(reply)
    try:
        doc = _doc(tmp_path, ["一行目です。", "二行目は空。"])
        stats = Translator(_settings(tmp_path / "out", fake.url, attempts=3, split_at_once=at_once)).run(doc)
        assert (tmp_path / "out" / "in.zh.txt").read_text() == f"{_zh('一行目です。')}\n{_zh('二行目は空。')}\n"
        whole = sum("\n" in x for x in seen)
        assert whole == (1 if at_once else 3) and stats["splits"] == 1
        assert stats["requests"] == whole + 3 and stats["rescued_by_retry"] == 1
    finally:
        fake.close()


@pytest.mark.parametrize("on", [True, False])
def test_a_retry_shows_the_rejected_reply_and_what_was_wrong(tmp_path, on):
    seen = []

    def reply(body):  # keeps the Japanese word until it is told about it, as the 0.5B did
        seen.append(body["messages"])
        told = len(body["messages"]) > 1 and "「通目の」" in body["messages"][-1]["content"]
        return 200, "第一封的邮戳是春天。" if told else "一通目の消印是春天。", "stop"
    fake = openai_fake(reply)
    try:
        stats = Translator(_settings(tmp_path / "out", fake.url, feedback=on, split=False)).run(
            _doc(tmp_path, ["一通目の消印は春だった。"]))
        # the retry asks for Chinese only (the reply kept Japanese), and with feedback shows what it kept
        asked = [{"role": "user", "content": seen[0][0]["content"].replace("\n", "（只输出中文译文。）\n", 1)}]
        assert len(seen) == 2 and seen[1][:1] == asked
        if on:
            assert seen[1][-2:][0] == {"role": "assistant", "content": "一通目の消印是春天。"}
            assert stats["rescued_by_retry"] == 1 and stats["failed_units"] == 0
            assert (tmp_path / "out" / "in.zh.txt").read_text() == "第一封的邮戳是春天。\n"
        else:  # sampling and the note alone: the same prompt plus the note
            assert seen[1] == asked and stats["failed_units"] == 1
    finally:
        fake.close()


def test_feedback_is_left_out_where_the_context_has_no_room_for_it(tmp_path):
    seen = []

    def reply(body):
        seen.append(body["messages"])
        return 200, "一通目の消印是春天。" * 3, "stop"
    fake = openai_fake(reply, max_model_len=150)  # the fake counts characters as tokens
    try:
        s = _settings(tmp_path / "out", fake.url, feedback=True, split=False)
        Translator(s).run(_doc(tmp_path, ["一通目の消印は春だった。"]))
        assert len(seen) == 2 and len(seen[1]) == 1  # no feedback turns: the note only
        assert seen[1][0]["content"].startswith(PREFACE + "（只输出中文译文。）")
    finally:
        fake.close()


def test_a_long_reasoning_does_not_crowd_out_the_feedback(tmp_path):
    """Only the answer goes back in the feedback turn, so only its size counts: a 600-token think block (the
    server's completion count) must not make the retry leave the feedback out."""
    seen = []

    def reply(body):
        seen.append(body["messages"])
        return 200, {"content": "一通目の消印是春天。", "reasoning_content": "想" * 600}, "stop"
    fake = openai_fake(reply, max_model_len=900)  # the fake counts characters as tokens
    try:
        s = _settings(tmp_path / "out", fake.url, feedback=True, split=False, thinking=True)
        Translator(s).run(_doc(tmp_path, ["一通目の消印は春だった。"]))
        assert len(seen) == 2 and seen[1][-2] == {"role": "assistant", "content": "一通目の消印是春天。"}
    finally:
        fake.close()


def test_truncated_answers_are_retried_then_marked(tmp_path):
    fake = openai_fake(lambda body: (200, _zh(_source_of(body)), "length"))
    try:
        stats = Translator(_settings(tmp_path / "out", fake.url, split=False)).run(_doc(tmp_path, ["一行目です。"]))
        assert stats["requests"] == 2 and stats["failed_units"] == 1
        log = [json.loads(x) for x in (tmp_path / "out" / "logs" / "in.jsonl").read_text().splitlines()]
        assert [x["problems"] for x in log] == [["truncated"], ["truncated"]]
    finally:
        fake.close()


def test_server_errors_stop_cleanly_and_a_rerun_resumes(tmp_path):
    state = {"ok": 2}

    def reply(body):
        if state["ok"] > 0:
            state["ok"] -= 1
            return 200, _zh(_source_of(body)), "stop"
        return state.get("code", 500), "engine died", None
    fake = openai_fake(reply)
    lines = [f"{i}行目です。" for i in range(6)]
    try:
        s = _settings(tmp_path / "out", fake.url, concurrency=1, chunk_tokens=8, retries=1)
        msg = r"failed after 1 retries \(InternalServerError\); 2 finished pieces \(chunks or their halves\) are kept"
        with pytest.raises(LabError, match=msg):
            Translator(s).run(_doc(tmp_path, lines))
        state["ok"] = 100
        s = _settings(tmp_path / "out", fake.url, concurrency=1, chunk_tokens=8)
        stats = Translator(s).run(tmp_path / "in.txt")
        assert stats["reused"] == 2 and stats["requests"] == 4
        state.update(ok=0, code=400)  # a 4xx mid-run: the server's own words, and what is kept
        with pytest.raises(LabError, match=r"rejected the request \(400\): engine died; 0 finished pieces "
                                             r"\(chunks or their halves\) are kept"):
            Translator(_settings(tmp_path / "out2", fake.url, concurrency=1, chunk_tokens=8)).run(tmp_path / "in.txt")
        assert not (tmp_path / "out2" / "in.zh.txt").exists()
        assert (tmp_path / "out" / "in.zh.txt").read_text().split("\n")[:6] == [_zh(x) for x in lines]
    finally:
        fake.close()


def test_a_hanging_server_times_out(tmp_path):
    fake = openai_fake(lambda body: (200, None, None))
    try:
        t0 = time.time()
        with pytest.raises(LabError, match="APITimeoutError"):
            Translator(_settings(tmp_path / "out", fake.url, timeout=1, retries=0)).run(_doc(tmp_path, ["一行目。"]))
        assert time.time() - t0 < 15
    finally:
        fake.close()


def _pieces(body):
    return [_zh(ln) + "\n" for ln in _source_of(body).split("\n") if ln]


def test_a_reply_longer_than_the_timeout_is_kept_while_its_tokens_arrive(tmp_path):
    """--timeout bounds the wait for each token, not the whole reply: a 2-core CPU's 26-line chunk took 225 s
    on the 1.5B, and a 120 s bound on the whole request threw that work away and sent it again."""
    lines = ["一行目。", "二行目。", "三行目。", "四行目。"]
    srv = Trickle(_pieces, gap=0.7)  # 5 events, 3.5 s for the reply; each within the 1.5 s timeout
    try:
        t0 = time.time()
        Translator(_settings(tmp_path / "out", srv.url, timeout=1.5, retries=0)).run(_doc(tmp_path, lines))
        assert time.time() - t0 > 3  # the reply took longer than the timeout, and was kept
        assert (tmp_path / "out" / "in.zh.txt").read_text().split("\n")[:4] == [_zh(x) for x in lines]
        assert len(srv.bodies) == 1
    finally:
        srv.close()


def test_progress_counts_a_reply_while_it_is_written(tmp_path, capsys):
    """tok/s read 0 until a chunk finished: minutes on a 2-core CPU where the 1.5B writes a 26-line chunk."""
    zh = "她在雨中的车站抬头看着旧钟，静静地等待开往远方小镇的最后一班列车。\n"
    srv = Trickle(lambda body: list(zh), gap=0.05)  # one piece per character, 1.7 s in all
    try:
        line = "雨の駅で、彼女は古い時計を見上げて、遠い町へ向かう最後の列車を静かに待っていた。"
        Translator(_settings(tmp_path / "out", srv.url, progress_every_s=0.3)).run(_doc(tmp_path, [line]))
    finally:
        srv.close()
    assert (tmp_path / "out" / "in.zh.txt").read_text("utf-8").split("\n")[0] == zh.strip()
    rates = [int(re.search(r"(\d+) tok/s", x)[1]) for x in capsys.readouterr().out.splitlines()
             if x.startswith("translate: 0/1 chunks (0%), reused 0, 1 requests, 0 retries")]
    assert rates and max(rates) > 0, rates


def test_a_reply_that_stops_mid_stream_is_sent_again_unchanged(tmp_path):
    lines = ["一行目。", "二行目。"]
    srv = Trickle(_pieces, gap=0.05, stall=(0,))  # the first reply stops after one token
    try:
        t0 = time.time()
        Translator(_settings(tmp_path / "out", srv.url, timeout=1, retries=1)).run(_doc(tmp_path, lines))
        assert time.time() - t0 < 10
        assert (tmp_path / "out" / "in.zh.txt").read_text().split("\n")[:2] == [_zh(x) for x in lines]
        assert len(srv.bodies) == 2 and srv.bodies[0] == srv.bodies[1]  # same seed, same attempt: same reply
        log = [json.loads(x) for x in (tmp_path / "out" / "logs" / "in.jsonl").read_text().splitlines()]
        assert [r["attempt"] for r in log] == [1]  # a lost reply is no attempt of the ladder
    finally:
        srv.close()
    srv = Trickle(_pieces, gap=0.05, stall=(0, 1, 2))  # it never finishes: one line, within the bound
    try:
        t0 = time.time()
        with pytest.raises(LabError, match="APITimeoutError"):
            Translator(_settings(tmp_path / "out2", srv.url, timeout=1, retries=1)).run(_doc(tmp_path, lines))
        assert time.time() - t0 < 15
    finally:
        srv.close()


def test_rps_paces_starts_but_never_delays_the_first(tmp_path):
    starts = []

    def reply(body):
        starts.append(time.monotonic())
        return 200, _zh(_source_of(body)), "stop"
    fake = openai_fake(reply)
    try:  # one request every ~30 years: the only chunk still goes at once (it used to wait 1/rps from boot)
        t0 = time.monotonic()
        s = _settings(tmp_path / "slow", fake.url, rps=1e-9, timeout=5)
        stats = Translator(s).run(_doc(tmp_path, ["一行目です。"]))
        assert stats["requests"] == 1 and starts[0] - t0 < 10
        starts.clear()  # 4 one-line chunks at 5 starts a second, and more workers than chunks
        lines = [f"{i}行目です。" for i in range(4)]
        Translator(_settings(tmp_path / "paced", fake.url, rps=5, chunk_tokens=8, concurrency=1_000_000)).run(
            _doc(tmp_path, lines))
        assert len(starts) == 4 and min(b - a for a, b in zip(starts, starts[1:], strict=False)) >= 0.15
        assert (tmp_path / "paced" / "in.zh.txt").read_text().split("\n")[:4] == [_zh(x) for x in lines]
    finally:
        fake.close()


def test_locked_corrections_survive_new_settings(tmp_path):
    fake = openai_fake(lambda body: (200, _zh(_source_of(body)), "stop"))
    try:
        doc = _doc(tmp_path, ["一行目です。"])
        Translator(_settings(tmp_path / "out", fake.url)).run(doc)
        f = next((tmp_path / "out" / ".lab-cache" / "in").glob("*-*.json"))
        rec = json.loads(f.read_text())
        rec.update(locked=True, lines=["人工修改的译文"])
        f.write_text(json.dumps(rec, ensure_ascii=False))
        s = _settings(tmp_path / "out", fake.url, spec=PromptSpec(preface=PREFACE, context_lines=2))
        stats = Translator(s).run(doc)
        assert stats["requests"] == 0 and (tmp_path / "out" / "in.zh.txt").read_text() == "人工修改的译文\n"
    finally:
        fake.close()


def test_a_windows_file_gets_its_translation_back_with_its_own_line_ends(tmp_path):
    """A CRLF source came back LF: a diff against the source's layout showed every line changed."""
    from lab.translate.outputs import rebuild
    fake = openai_fake(lambda body: (200, _zh(_source_of(body)), "stop"))
    try:
        src = tmp_path / "win.txt"
        src.write_bytes("一行目です。\r\n\r\n二行目です。\r\n".encode("cp932"))
        Translator(_settings(tmp_path / "out", fake.url)).run(src)
        out = (tmp_path / "out" / "win.zh.txt").read_bytes().decode()
        assert out.count("\r\n") == 3 and "\n" not in out.replace("\r\n", "")
        rebuild(tmp_path / "out")
        assert (tmp_path / "out" / "win.zh.txt").read_bytes().decode() == out
        Translator(_settings(tmp_path / "unix", fake.url)).run(_doc(tmp_path, ["一行目です。"]))
        assert (tmp_path / "unix" / "in.zh.txt").read_bytes().count(b"\r") == 0
    finally:
        fake.close()


def test_broken_cache_files(tmp_path):
    """An empty cache file (an OS crash before the data reached disk) is re-translated; a hand edit
    that broke the JSON stops the run with the file's name instead of being silently replaced."""
    fake = openai_fake(lambda body: (200, _zh(_source_of(body)), "stop"))
    try:
        doc = _doc(tmp_path, ["一行目です。", "二行目です。"])
        s = _settings(tmp_path / "out", fake.url, spec=PromptSpec(preface=PREFACE), chunk_tokens=8)
        first = Translator(s).run(doc)
        files = sorted((tmp_path / "out" / ".lab-cache" / "in").glob("*-*.json"))
        assert first["requests"] == len(files) == 2
        files[0].write_text("")
        again = Translator(s).run(doc)
        assert again["requests"] == 1 and again["reused"] == 1 and json.loads(files[0].read_text())["lines"]
        files[1].write_text('{"source": "二行目です。", "lines": ["改"], "locked": true')  # missing brace
        with pytest.raises(LabError, match=rf"{files[1].name}: not valid JSON .*delete the file"):
            Translator(s).run(doc)
    finally:
        fake.close()


def test_a_long_sentence_may_use_the_whole_context_without_context_lines(tmp_path):
    """Without --context, one sentence may take all the source room; with context, 2/3 of it (a longer one is
    cut into pieces that fit)."""
    fake = openai_fake(lambda body: (200, "译", "stop"), max_model_len=600)  # the fake counts characters
    try:
        t = Translator(_settings(tmp_path / "o", fake.url, spec=PromptSpec(preface=PREFACE), chunk_tokens=20))
        t.prepare(_doc(tmp_path, ["短い。"]))  # sets the prompt's overhead, line-count note included
        hard = chunk_budget(600, t.overhead, 10**9)
        doc = _doc(tmp_path, ["あ" * (hard - 2) + "。"])  # over 2/3 of the room, within all of it
        assert [len(c.units) for d in t.prepare(doc) for c in d.chunks] == [1]
        t2 = Translator(_settings(tmp_path / "o", fake.url, spec=PromptSpec(preface=PREFACE, context_lines=1),
                                  chunk_tokens=20))
        pieces = [u.text for d in t2.prepare(doc) for c in d.chunks for u in c.units]  # cut to fit 2/3 of it
        assert len(pieces) == 2 and "".join(pieces) == "あ" * (hard - 2) + "。"
    finally:
        fake.close()


def test_a_big_glossary_costs_only_the_terms_a_text_uses(tmp_path):
    """A translator's 20,000-entry glossary on a 600-token model: each prompt carries the terms in its chunk,
    and the budget counts the document's terms, not the whole file (it refused every text before)."""
    seen = []

    def reply(body):
        seen.append(body["messages"][-1]["content"])
        return 200, "译" * 4, "stop"
    fake = openai_fake(reply, max_model_len=600)  # the fake counts characters
    gl = tmp_path / "big.tsv"
    gl.write_text("猫\t猫咪\n" + "".join(f"語{i}\t词{i}\n" for i in range(20000)), encoding="utf-8")
    try:
        spec = PromptSpec(preface=PREFACE, glossary=load_glossary(gl))
        doc = _doc(tmp_path, ["猫がいる。", "犬もいる。"])
        stats = Translator(_settings(tmp_path / "o", fake.url, spec=spec)).run(doc)
        assert stats["failed_units"] == 0 and seen[0].startswith("参考术语：猫→猫咪\n")
        # A novel's many names: all its terms are far over the context, each chunk's fit beside it
        names = _doc(tmp_path, [f"語{i}が来た。" for i in range(1000, 1080)])
        seen.clear()
        stats = Translator(_settings(tmp_path / "o3", fake.url, spec=spec)).run(names)
        assert stats["failed_units"] == 0 and len(seen) == stats["requests"] > 1
        for prompt in seen:  # each carries the terms of its own lines, and fits the context with its output
            head, text = prompt.split("\n", 1)
            assert head.removeprefix("参考术语：").split("；") == [f"{t.source}→{t.target}"
                                                              for t in terms_in(text, spec.glossary)]
            source = source_of({"messages": [{"role": "user", "content": prompt}]}, PREFACE)
            assert len(prompt) + 1.5 * len(source.replace("\n", "")) <= 600  # in characters
        crowded = _doc(tmp_path, ["".join(f"語{i}" for i in range(150))])  # its own terms fill the context
        with pytest.raises(LabError, match=r"in.txt: line 1: its glossary terms fill the model's context"):
            Translator(_settings(tmp_path / "o2", fake.url, spec=spec)).run(crowded)
    finally:
        fake.close()


def test_context_is_the_previous_source_lines(tmp_path):
    """--context K: the prompt shows the previous K source lines (never their translations, which would
    make the prompt depend on which chunk finished first)."""
    seen = []

    def reply(body):
        seen.append(body["messages"][-1]["content"])
        src = source_of(body, PREFACE)
        return 200, "\n".join(f"译{i}" + "译" * len(x) for i, x in enumerate(src.splitlines())), "stop"
    fake = openai_fake(reply)
    try:
        doc = _doc(tmp_path, ["一行目です。", "二行目です。", "三行目です。", "四行目です。"])
        s = _settings(tmp_path / "out", fake.url, concurrency=1, chunk_tokens=20,
                      spec=PromptSpec(preface=PREFACE, context_lines=1))
        Translator(s).run(doc)
        assert len(seen) == 2  # two chunks of two lines each
        assert "上文（仅供参考，不要翻译）：\n二行目です。\n" in seen[1] and "译0" not in seen[1]
    finally:
        fake.close()


def test_bad_inputs(tmp_path):
    fake = openai_fake(lambda body: (200, "x", "stop"), max_model_len=40)
    try:
        with pytest.raises(LabError, match=r"context \(40 tokens\) is too small"):
            Translator(_settings(tmp_path / "o", fake.url)).run(_doc(tmp_path, ["一行目です。"]))
        (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02")
        with pytest.raises(LabError, match="bin.txt: looks binary"):
            Translator(_settings(tmp_path / "o", fake.url)).prepare(tmp_path / "bin.txt")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        if os.geteuid() != 0:  # root writes anywhere; the check still runs for users
            with pytest.raises(LabError, match="is not writable"):
                Translator(_settings(ro / "out", fake.url)).run(tmp_path / "in.txt")
        (tmp_path / "afile").write_text("kept")
        with pytest.raises(LabError, match="afile is a file; give a folder"):
            Translator(_settings(tmp_path / "afile", fake.url)).run(_doc(tmp_path, ["一行目です。"]))
        assert (tmp_path / "afile").read_text() == "kept"
    finally:
        fake.close()
    r = lab("translate", str(SAMPLES / "ja"), "-o", str(tmp_path / "x"), "--base-url", "http://127.0.0.1:9/v1")
    assert r.returncode == 1 and "no server answers at http://127.0.0.1:9/v1" in r.stderr
    (tmp_path / "g.tsv").write_text("城 城堡\n")
    r = lab("translate", str(SAMPLES / "ja"), "-o", str(tmp_path / "x"), "--glossary", str(tmp_path / "g.tsv"))
    assert r.returncode == 1 and "g.tsv:1: expected" in r.stderr
    r = lab("translate", str(tmp_path / "nothing.txt"), "-o", str(tmp_path / "x"), "--base-url", "http://127.0.0.1:9/v1")
    assert r.returncode == 1 and r.stderr.startswith("error: ")


def test_inputs_with_names_too_long_for_their_outputs_are_translated_under_shortened_names(tmp_path, capsys):
    """A 250-byte file name has no room for .zh.txt, nor a nested path of long folder names once joined by __:
    the outputs get a shortened name (said), a rerun finds them, and eval finds the translation by it."""
    from lab.translate import evaluate, sources
    fake = openai_fake(lambda body: (200, _zh(_source_of(body)), "stop"))
    src = tmp_path / "in"
    deep = src / ("長い題名の小説" * 6) / ("第一巻" * 10)
    deep.mkdir(parents=True)
    (deep / "本文.txt").write_text("駅に着いた。\n", encoding="utf-8")
    (src / ("あ" * 82 + ".txt")).write_text("雨が降る。\n", encoding="utf-8")
    try:
        docs = sources.load(src)
        assert all(len(f"{d.name}.bilingual.md".encode()) < 255 for d in docs)
        assert all(any("output name shortened to" in n for n in d.notes) for d in docs)
        s = _settings(tmp_path / "out", fake.url, bilingual=True)
        stats = Translator(s).run(src)
        again = Translator(s).run(src)
    finally:
        fake.close()
    assert stats["outputs"] and again["reused"] == 2 and again["requests"] == 0
    written = sorted(p.name for p in (tmp_path / "out").glob("*.zh.txt"))
    assert len(written) == 2 and {f"{d.name}.zh.txt" for d in docs} == set(written)
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / ("あ" * 82 + ".txt")).write_text(_zh("雨が降る。") + "\n", encoding="utf-8")
    assert evaluate(tmp_path / "out", ref)["total"]["chrf"] == 100


@pytest.mark.server
def test_real_run_on_the_samples(tiny_server, tmp_path):
    s = _settings(tmp_path / "out", tiny_server.base_url, concurrency=8, bilingual=True, epub=True,
                  spec=PromptSpec(preface=PREFACE, glossary=load_glossary(SAMPLES / "glossary.tsv")))
    stats = Translator(s).run(SAMPLES / "ja")
    assert stats["documents"] == 3 and stats["model"] == "tiny-qwen3"
    for name in ("eki", "mise", "shiro"):
        src = (SAMPLES / "ja" / f"{name}.txt").read_text().split("\n")
        out = (tmp_path / "out" / f"{name}.zh.txt").read_text().split("\n")
        assert len(out) == len(src)
        assert [i for i, x in enumerate(out) if not x] == [i for i, x in enumerate(src) if not x]
    # The toy memorized eki's sentences: through chunking, checks and splits they come out exact, each on its own
    # line. How well it memorized depends on the host's float arithmetic: 8 of 8 lines on earlier hosts, 6 of 8 on
    # 2026-12-06's (a 2-line piece came back as two other memorized lines, kept with a glossary warning), so half
    # is asked. A pipeline that shifts or drops lines gets next to none.
    got = (tmp_path / "out" / "eki.zh.txt").read_text().splitlines()
    ref = (SAMPLES / "zh" / "eki.txt").read_text().splitlines()
    exact = sum(a == b for a, b in zip(got, ref, strict=True) if b)
    assert exact >= len([r for r in ref if r]) / 2, (exact, got)
    assert (tmp_path / "out" / "eki.bilingual.md").read_text().startswith("# eki\n\n> 春の朝")
    with zipfile.ZipFile(tmp_path / "out" / "book.epub") as z:
        assert z.read("mimetype") == b"application/epub+zip" and any("chap_000" in n for n in z.namelist())
    log = [json.loads(x) for x in (tmp_path / "out" / "logs" / "eki.jsonl").read_text().splitlines()]
    assert log and all({"chunk", "attempt", "usage", "problems", "messages", "response"} <= set(x) for x in log)


def _cli(out, extra=()):
    return [sys.executable, "-m", "lab.cli", "translate", str(SAMPLES / "ja"), "-o", str(out), "--concurrency", "1",
            "--attempts", "1", "--no-split", "--chunk-tokens", "24", "--no-text-logs", *extra]


@pytest.mark.server
def test_sigkill_half_way_then_resume_is_byte_identical(tiny_server, tmp_path):
    full = subprocess.run(_cli(tmp_path / "full"), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert full.returncode == 0, full.stderr
    total = json.loads((tmp_path / "full" / "run.json").read_text())["chunks"]
    assert total >= 10
    proc = subprocess.Popen(_cli(tmp_path / "cut"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    cache = tmp_path / "cut" / ".lab-cache"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache.rglob("*-*.json"))) < total // 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cached = len(list(cache.rglob("*-*.json")))
    assert 0 < cached < total
    r = subprocess.run(_cli(tmp_path / "cut"), capture_output=True, text=True, cwd=ROOT, timeout=300)
    stats = json.loads((tmp_path / "cut" / "run.json").read_text())
    # failed chunks are not cached, so "not yet cached" includes them
    assert stats["requests"] == total - cached and stats["reused"] == cached
    assert f"reused {cached} of {total} chunks" in r.stdout
    for name in ("eki", "mise", "shiro"):
        assert (tmp_path / "cut" / f"{name}.zh.txt").read_bytes() == (tmp_path / "full" / f"{name}.zh.txt").read_bytes()
    log = (tmp_path / "cut" / "logs" / "eki.jsonl").read_text()
    assert "messages" not in log and "春の朝" not in log  # --no-text-logs


@pytest.mark.server
def test_two_real_servers_one_killed_mid_run(tiny_server, tmp_path, monkeypatch):
    """--base-url twice: SIGKILL one server's whole process group half way; the other carries the run and
    the output equals a one-server run."""
    from helpers import free_port

    from lab import procs, serve
    monkeypatch.setenv("LAB_PORT", str(free_port()))  # the second server's; both runs name their URLs
    # the one-server run goes on while the second server starts (~40 s on 2 cores: one after the other took longer)
    one = subprocess.Popen(_cli(tmp_path / "one", ("--concurrency", "8", "--base-url", tiny_server.base_url)),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        second = serve.start("tiny", quiet=True)
        # warmed up: a cold server's first answers are slow, and once the whole paced run ended (24 requests,
        # 0 retries) before its first answer let the kill below happen (2026-12-07, a fresh-clone run)
        second.client().chat("駅に着いた。", max_tokens=4)
        _, one_err = one.communicate(timeout=300)
        assert one.returncode == 0, one_err
        total = json.loads((tmp_path / "one" / "run.json").read_text())["chunks"]
        urls = ("--base-url", second.base_url, "--base-url", tiny_server.base_url)
        # --rps 2: the 24 chunks take ~12 s, so the kill below lands mid-run; unpaced, the toy finished them all
        # before it once (1 failure in 3 fresh-clone runs), and at --rps 6 (~4 s) once on a slow AVX2 host
        # (2026-12-04: 24 requests, 0 retries), and no request was left to fail over
        proc = subprocess.Popen(_cli(tmp_path / "two", ("--concurrency", "8", "--rps", "2", *urls)),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
        cache, logs = tmp_path / "two" / ".lab-cache", tmp_path / "two" / "logs"

        def second_served() -> bool:  # a fresh server answers its first requests slower than the warm one
            return any(second.base_url in f.read_text() for f in logs.glob("*.jsonl")) if logs.exists() else False
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and (len(list(cache.rglob("*-*.json"))) < total // 3
                                                                  or not second_served()):
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before the kill: nothing was left to fail over"
        os.killpg(second.pid, signal.SIGKILL)  # the server, its EngineCore and workers, at once
        out, err = proc.communicate(timeout=300)
    finally:
        one.kill()
        serve.stop("tiny", quiet=True)
    assert procs.group_pids(second.pid) == []
    assert proc.returncode == 0, err
    assert f"endpoint {second.base_url} failed" in out and "carry on" in out
    for name in ("eki", "mise", "shiro"):
        assert (tmp_path / "two" / f"{name}.zh.txt").read_bytes() == (tmp_path / "one" / f"{name}.zh.txt").read_bytes()
    log = [json.loads(x) for f in sorted((tmp_path / "two" / "logs").glob("*.jsonl"))
           for x in f.read_text().splitlines()]
    assert {r["endpoint"] for r in log} == {second.base_url, tiny_server.base_url}  # both served a share


def test_a_long_document_says_what_it_waits_for_while_it_is_counted(tmp_path, capsys, monkeypatch):
    """Chunking asks the server to count each line: ~5 s for 200,000 characters, and it was silent."""
    import lab.translate.pipeline as pipeline
    monkeypatch.setattr(pipeline, "LONG_TEXT", 10)
    fake = openai_fake(lambda body: (200, "译", "stop"))
    try:
        s = Settings(out=tmp_path / "o", endpoints=[fake.url], progress_every_s=10)
        Translator(s).prepare(_doc(tmp_path, ["猫がいる。", "犬もいる、鳥もいる。"]))
        assert "translate: counting in's 17 characters on the server" in capsys.readouterr().out
        Translator(s).prepare(_doc(tmp_path, ["猫。"]))  # short: nothing said
        assert "counting" not in capsys.readouterr().out
    finally:
        fake.close()
