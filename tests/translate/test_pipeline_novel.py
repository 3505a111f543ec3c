"""Real novel text against a scripted server that translates correctly: encodings, Aozora, thinking replies,
malformed replies, seeded retries with kill-and-resume, fixes and rebuild, glossary changes."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import AME_PAIRS, NOVEL, ROOT, lab, source_of

from lab import LabError
from lab.translate import PromptSpec, Settings, Term, Translator
from lab.translate.pipeline import seed_of

PREFACE = PromptSpec().preface
REFERENCE = (NOVEL / "ame.zh.txt").read_text("utf-8")


def _source(body):
    return source_of(body, PREFACE)


def _good(src):
    return "\n".join(AME_PAIRS[x] for x in src.split("\n"))  # KeyError (a 500) for anything a good model never sees


def _settings(out, urls, **kw):
    return Settings(out=Path(out), endpoints=urls if isinstance(urls, list) else [urls], timeout=10,
                    progress_every_s=kw.pop("progress_every_s", 0), chunk_tokens=kw.pop("chunk_tokens", 48), **kw)


@pytest.mark.parametrize("enc,style", [("utf-8", "think_end_only"), ("cp932", "reasoning_parser"),
                                       ("iso2022_jp", "think_end_only")])
def test_a_correct_translation_is_accepted_exactly_with_one_request_per_chunk(tmp_path, openai_fake, enc, style):
    seen = []

    def reply(body):
        seen.append(body)
        zh = _good(_source(body))
        if style == "reasoning_parser":  # vLLM --reasoning-parser: the answer in content, reasoning beside it
            return 200, {"content": "\n\n" + zh, "reasoning_content": "先读原文，再逐行翻译。"}, "stop"
        return 200, "先读原文，再逐行翻译。\n</think>\n\n" + zh, "stop"  # Thinking-2507: no opening tag
    fake = openai_fake(reply)
    src = tmp_path / "in" / "ame.txt"
    src.parent.mkdir()
    src.write_bytes((NOVEL / "ame.txt").read_text("utf-8").encode(enc))
    stats = Translator(_settings(tmp_path / "out", fake.url, concurrency=3)).run(src)
    assert (tmp_path / "out" / "ame.zh.txt").read_text("utf-8") == REFERENCE
    assert len(seen) == stats["requests"] == stats["chunks"] >= 4 and stats["retries"] == 0
    assert all("底本" not in _source(b) and "テキスト中に現れる記号" not in _source(b) for b in seen)
    log = [json.loads(x) for x in (tmp_path / "out" / "logs" / "ame.jsonl").read_text().splitlines()]
    assert all(r["reasoning"] == "先读原文，再逐行翻译。" and "</think>" not in r["response"] for r in log)
    assert not (tmp_path / "out" / "untranslated.tsv").exists()


def test_the_cli_says_what_it_read_and_did(tmp_path, openai_fake):
    fake = openai_fake(lambda body: (200, _good(_source(body)), "stop"))
    r = lab("translate", str(NOVEL / "ame.txt"), "-o", str(tmp_path / "out"), "--base-url", fake.url,
            "--chunk-tokens", "48")
    assert r.returncode == 0, r.stderr
    assert "Aozora Bunko markup detected (--no-aozora keeps it)" in r.stdout and "1 gaiji notes became" in r.stdout
    assert "every line translated" in r.stdout and "wrote ame.zh.txt" in r.stdout and "{" not in r.stdout
    assert (tmp_path / "out" / "ame.zh.txt").read_text("utf-8") == REFERENCE
    assert json.loads((tmp_path / "out" / "run.json").read_text())["untranslated_lines"] == 0


def test_replies_with_more_or_fewer_lines_are_retried_never_a_crash(tmp_path, openai_fake):
    def reply(body):
        src = _source(body)
        if body["seed"] == seed_of(src, 1):  # first attempts: an extra line, a missing line, a blank between
            return 200, {0: _good(src) + "\n（译注：这是多出来的一行）", 1: _good(src).split("\n", 1)[-1],
                         2: _good(src).replace("\n", "\n\n")}[len(src) % 3], "stop"
        return 200, _good(src), "stop"
    fake = openai_fake(reply)
    stats = Translator(_settings(tmp_path / "out", fake.url, concurrency=2)).run(NOVEL / "ame.txt")
    assert (tmp_path / "out" / "ame.zh.txt").read_text("utf-8") == REFERENCE
    assert stats["retries"] > 0 and stats["failed_units"] == 0


def _flaky(body):
    """Fails every third (chunk, attempt) by seed; answers differ by seed: unseeded retries would show."""
    src = _source(body)
    if body["seed"] % 3 == 0:
        return 200, "坏" * 40, "stop"
    time.sleep(0.05)
    return 200, "\n".join(f"{AME_PAIRS.get(x) or '译' * len(x)}{body['seed'] % 7}" for x in src.split("\n")), "stop"


def _cli(src, out, url):
    return [sys.executable, "-m", "lab.cli", "translate", str(src), "-o", str(out), "--base-url", url,
            "--chunk-tokens", "20", "--concurrency", "2", "--attempts", "4"]


def test_kill_and_resume_with_retries_is_byte_identical(tmp_path, openai_fake):
    fake = openai_fake(_flaky)
    full = subprocess.run(_cli(NOVEL / "ame.txt", tmp_path / "full", fake.url), capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert full.returncode == 0, full.stderr
    stats = json.loads((tmp_path / "full" / "run.json").read_text())
    assert stats["retries"] > 0 and stats["chunks"] >= 8
    proc = subprocess.Popen(_cli(NOVEL / "ame.txt", tmp_path / "cut", fake.url), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=ROOT, text=True)
    cache = tmp_path / "cut" / ".lab-cache"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(cache.rglob("*-*.json"))) < stats["chunks"] // 2:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(list(cache.rglob("*-*.json")))
    assert 0 < kept < stats["chunks"]
    r = subprocess.run(_cli(NOVEL / "ame.txt", tmp_path / "cut", fake.url), capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "reused" in r.stdout
    assert (tmp_path / "cut" / "ame.zh.txt").read_bytes() == (tmp_path / "full" / "ame.zh.txt").read_bytes()
    one = subprocess.run([*_cli(NOVEL / "ame.txt", tmp_path / "c1", fake.url), "--concurrency", "1"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert one.returncode == 0 and (tmp_path / "c1" / "ame.zh.txt").read_bytes() == \
        (tmp_path / "full" / "ame.zh.txt").read_bytes()


def test_fix_locks_a_line_and_rebuild_needs_no_server(tmp_path, openai_fake):
    fake = openai_fake(lambda body: (200, "" if "時計台" in _source(body) else _good(_source(body)), "stop"))
    out = tmp_path / "out"
    Translator(_settings(out, fake.url, attempts=1)).run(NOVEL / "ame.txt")
    text = (out / "ame.zh.txt").read_text("utf-8").split("\n")
    n = next(i for i, x in enumerate(text) if x.startswith("【未翻译】")) + 1
    assert (out / "untranslated.tsv").read_text("utf-8").splitlines()[1].startswith(f"ame\t{n}\t")
    fake.close()  # from here on no server exists
    r = lab("translate", "fix", str(out), "--line", str(n))
    assert r.returncode == 0 and "current: 【未翻译】" in r.stdout
    fixed = AME_PAIRS["　少女は黙って、古い時計台を見上げた……………………"]
    r = lab("translate", "fix", str(out), "--line", str(n), "--text", fixed)
    assert r.returncode == 0 and "every line translated" in r.stdout, r.stderr
    assert (out / "ame.zh.txt").read_text("utf-8") == REFERENCE and not (out / "untranslated.tsv").exists()
    (out / "ame.zh.txt").unlink()
    r = lab("translate", "rebuild", str(out), "--bilingual")
    assert r.returncode == 0 and (out / "ame.zh.txt").read_text("utf-8") == REFERENCE
    assert "> 　夜の改札に" in (out / "ame.bilingual.md").read_text("utf-8")
    r = lab("translate", "fix", str(out), "--doc", "nope", "--line", "1", "--text", "x")
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "documents: ame" in r.stderr
    for line in ("999", "31"):  # 30 lines and a final newline: no line 31 to fix (it added one)
        r = lab("translate", "fix", str(out), "--line", line, "--text", "x")
        assert r.returncode == 1 and "--line must be between 1 and 30" in r.stderr
    before = (out / ".lab-cache").rglob("fixes.json").__next__().read_bytes()
    for bad, why in (("", f"--text is empty, but line {n} of ame is not"), ("  ", "--text is empty"),
                     ("一\r二", "--text must be one line"), ("一\u2028二", "--text must be one line")):
        r = lab("translate", "fix", str(out), "--line", str(n), "--text", bad)
        assert r.returncode == 1 and r.stderr.startswith(f"error: {why}"), (bad, r.stderr)
    assert (out / ".lab-cache").rglob("fixes.json").__next__().read_bytes() == before  # nothing changed


def test_a_fix_survives_a_rerun_and_a_changed_glossary_resends_only_its_chunks(tmp_path, openai_fake):
    seen = []

    def reply(body):
        seen.append(_source(body))
        return 200, _good(_source(body)), "stop"
    fake = openai_fake(reply)
    out = tmp_path / "out"
    spec = PromptSpec(glossary=[Term("駅員", "站务员")])
    Translator(_settings(out, fake.url, spec=spec)).run(NOVEL / "ame.txt")
    lab("translate", "fix", str(out), "--line", "1", "--text", "雨夜车站")
    seen.clear()
    spec = PromptSpec(glossary=[Term("駅員", "车站工作人员"), Term("少女", "少女")])
    stats = Translator(_settings(out, fake.url, spec=spec)).run(NOVEL / "ame.txt")
    affected = [c for c in seen if "駅員" in c or "少女" in c]
    assert seen and len(affected) == len(seen) == stats["requests"] < stats["chunks"]
    assert (out / "ame.zh.txt").read_text("utf-8").split("\n")[0] == "雨夜车站"


def test_inputs_are_checked_before_anything_is_created(tmp_path, openai_fake):
    fake = openai_fake(lambda body: (200, _good(_source(body)), "stop"))
    (tmp_path / "bad.txt").write_bytes(b"\x00binary")
    with pytest.raises(LabError, match="looks binary"):
        Translator(_settings(tmp_path / "out", fake.url)).run(tmp_path / "bad.txt")
    assert not (tmp_path / "out").exists()
    r = lab("translate", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "o2"), "--base-url",
            "http://127.0.0.1:9/v1")
    assert r.returncode == 1 and "missing.txt does not exist" in r.stderr and not (tmp_path / "o2").exists()
    book = tmp_path / "book"
    book.mkdir()
    (book / "ame.txt").write_text((NOVEL / "ame.txt").read_text("utf-8"), "utf-8")
    for _ in range(2):  # -o the input folder: the second run must not read its own output
        stats = Translator(_settings(book, fake.url, epub=True)).run(book)
        assert stats["documents"] == 1
    assert sorted(p.name for p in book.glob("*.zh.*")) == ["ame.zh.txt"] and (book / "ame.epub").exists()


@pytest.mark.parametrize("cut", [{"content": None, "reasoning_content": "让我想想"}, "<think>\n让我想想"])
def test_a_model_that_thinks_unasked_gets_room_for_it(tmp_path, openai_fake, cut):
    seen = []

    def reply(body):
        seen.append(body["max_tokens"])
        if body["max_tokens"] < 1000:  # the reasoning alone fills a translation-sized budget
            return 200, cut, "length"
        return 200, "让我想想。</think>" + _good(_source(body)), "stop"
    fake = openai_fake(reply)
    stats = Translator(_settings(tmp_path / "out", fake.url, chunk_tokens=400, concurrency=1)).run(NOVEL / "ame.txt")
    assert (tmp_path / "out" / "ame.zh.txt").read_text("utf-8") == REFERENCE
    assert seen[0] < 1000 <= seen[-1] and stats["failed_units"] == 0


def test_progress_lines_come_while_a_long_chunk_is_in_flight(tmp_path, openai_fake, capsys):
    def reply(body):
        time.sleep(1.2)
        return 200, _good(_source(body)), "stop"
    fake = openai_fake(reply)
    Translator(_settings(tmp_path / "out", fake.url, chunk_tokens=400, progress_every_s=0.3)).run(NOVEL / "ame.txt")
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("translate: ")]
    assert len(lines) >= 3 and lines[0].startswith("translate: 0/1 chunks") and "eta ?" in lines[0]
    assert lines[-1].startswith("translate: 1/1 chunks (100%)") and "0 lines untranslated" in lines[-1]


def test_a_second_writer_of_an_output_folder_is_refused_and_nothing_changes(tmp_path, openai_fake):
    """Two jobs on one -o overwrote each other's outputs, and a fix made while a run went on was lost when the run
    wrote its outputs: while a job holds OUT/.lab.lock, translate, fix and rebuild there are refused at once."""
    import os

    from lab import locks
    fake = openai_fake(lambda body: (200, _good(_source(body)), "stop"))
    out = tmp_path / "out"
    Translator(_settings(out, fake.url)).run(NOVEL / "ame.txt")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    n = len(fake.requests)
    busy = f"error: {out} is being written by another lab translate (pid {os.getpid()})"
    with locks.writing(out, "lab translate"):
        for args in ([str(NOVEL / "ame.txt"), "-o", str(out), "--base-url", fake.url],
                     ["fix", str(out), "--line", "1", "--text", "改"], ["rebuild", str(out)]):
            r = lab("translate", *args)
            assert r.returncode == 1 and r.stderr.startswith(busy) and "nothing was done" in r.stderr, r.stderr
    assert len(fake.requests) == n and not (out / ".lab.lock").exists()  # refused before it tokenizes anything
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert lab("translate", "rebuild", str(out)).returncode == 0  # free again once the holder is done


def test_a_full_disk_mid_run_is_one_line_and_a_rerun_resumes_without_requests(tmp_path, openai_fake, monkeypatch):
    """ENOSPC while a document's output is written: one error naming the file and what is kept (was: a bare
    "No space left on device" and a temp file left behind); the rerun, with room again, sends nothing."""
    import errno
    import os

    from lab import paths
    from lab.translate import outputs
    fake = openai_fake(lambda body: (200, _good(_source(body)), "stop"))
    out = tmp_path / "out"
    real = paths.atomic_write

    def full(path, data, *a, **k):
        if str(path).endswith(".zh.txt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data, *a, **k)
    monkeypatch.setattr(outputs.paths, "atomic_write", full)
    with pytest.raises(LabError, match=rf"cannot write {out}/ame\.zh\.txt: No space left on device; \d+ finished "
                                       rf"pieces \(chunks or their halves\) are kept in {out}, rerun to resume "
                                       rf"once there is room"):
        Translator(_settings(out, fake.url)).run(NOVEL / "ame.txt")
    monkeypatch.setattr(outputs.paths, "atomic_write", real)
    n = sum(path.endswith("/chat/completions") for path, _ in fake.requests)
    stats = Translator(_settings(out, fake.url)).run(NOVEL / "ame.txt")
    assert sum(path.endswith("/chat/completions") for path, _ in fake.requests) == n and stats["requests"] == 0
    assert (out / "ame.zh.txt").exists()


def test_a_bare_socket_error_mid_run_is_named_a_connection_failure_not_a_write(tmp_path, openai_fake, monkeypatch):
    """OSError covers both: ConnectionResetError from below the client must not read "cannot write OUT"."""
    from lab.translate import pipeline
    fake = openai_fake(lambda body: (200, _good(_source(body)), "stop"))

    def reset(*a, **k):
        raise ConnectionResetError(104, "Connection reset by peer")
    monkeypatch.setattr(pipeline, "write_all", reset)
    out = tmp_path / "out"
    with pytest.raises(LabError, match=rf"^connection failed: \[Errno 104\] Connection reset by peer; \d+ finished "
                                       rf"pieces \(chunks or their halves\) are kept in {out}, rerun to resume$"):
        Translator(_settings(out, fake.url)).run(NOVEL / "ame.txt")
