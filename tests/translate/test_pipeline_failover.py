"""Failover never changes the output: one of two servers SIGKILLed early, midway or late gives the bytes of a
one-server run, and a request lost in flight is re-sent with its own seed and attempt (no attempt is used up).

The servers are tests/fake_openai.py processes: deterministic in (source, seed, temperature), which no real
model on a busy CPU guarantees, so any difference is the client's doing."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import ROOT, free_port

from lab.translate import PromptSpec, Settings, Translator

PREFACE = "把下面的日语翻译成中文。"
KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"


def _text(n: int) -> str:
    """n lines of kana sentences, some repeated (a novel repeats short lines: はい。, 「……」)."""
    lines = []
    for i in range(n):
        if i % 17 == 5:
            lines.append("はい。")
        else:
            lines.append("".join(KANA[(i * 7 + k * 3) % len(KANA)] for k in range(8 + i % 23)) + "。")
    return "\n".join(lines) + "\n"


class Fake:
    def __init__(self, tmp: Path, name: str) -> None:
        self.port, self.log = free_port(), tmp / f"{name}.jsonl"
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_openai.py"), str(self.port),
                                      str(self.log), "0.03"], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def requests(self) -> list[dict]:
        return [json.loads(x) for x in self.log.read_text().splitlines()] if self.log.exists() else []


def _run(out: Path, doc: Path, urls: list[str]) -> dict:
    s = Settings(out=out, endpoints=urls, spec=PromptSpec(preface=PREFACE), concurrency=8, chunk_tokens=60,
                 timeout=10, retries=1, progress_every_s=0,
                 split_at_once=False)  # the fake's one fault is a dropped line: retried whole, seeded retries are
    return Translator(s).run(doc)       # exercised across the failover too


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("failover")
    doc = tmp / "novel.txt"
    doc.write_text(_text(400), encoding="utf-8")
    fake = Fake(tmp, "solo")
    try:
        stats = _run(tmp / "one", doc, [fake.url])
    finally:
        fake.kill()
    assert stats["retries"] > 0 and stats["splits"] > 0  # the ladder is exercised
    return doc, (tmp / "one" / "novel.zh.txt").read_bytes(), fake.requests(), stats


@pytest.mark.parametrize("when", [0.05, 0.5, 0.9])
def test_a_server_killed_mid_run_leaves_the_output_unchanged(reference, tmp_path, when):
    doc, expected, solo_requests, solo_stats = reference
    a, b = Fake(tmp_path, "a"), Fake(tmp_path, "b")
    cache = tmp_path / "two" / ".lab-cache"
    target = max(1, int(when * len(solo_requests)))

    def killer() -> None:  # after `when` of the one-server run's requests have been answered
        while len(a.requests()) + len(b.requests()) < target:
            time.sleep(0.002)
        b.kill()
    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        _run(tmp_path / "two", doc, [b.url, a.url])
    finally:
        t.join(timeout=30)
        a.kill()
        if b.proc.poll() is None:
            b.kill()
    assert b.proc.returncode == -signal.SIGKILL and cache.exists()
    assert (tmp_path / "two" / "novel.zh.txt").read_bytes() == expected
    # the same (source, seed, temperature) requests as the one-server run, no other: a request lost with the
    # killed server is re-sent as it was (same seed, same attempt), no attempt is used up. (Counts may differ:
    # the killed server may have answered a request the client never received, and a repeated line may be
    # asked twice when both copies are in flight at once.)
    def asked(reqs: list[dict]) -> set[str]:
        return {json.dumps(r, sort_keys=True) for r in reqs}
    assert asked(a.requests() + b.requests()) == asked(solo_requests)
    assert a.requests() and b.requests()  # both served a share before the kill


def test_rejections_count_each_check_and_what_the_ladder_rescued(tmp_path):
    from helpers import openai_fake, source_of

    from lab.translate import rejections

    def reply(body):  # attempt 1 (temperature 0) answers in kana, a retry in Chinese
        src = source_of(body, PREFACE)
        n = len([x for x in src.splitlines() if x.strip()])
        return (200, "\n".join(["かなのまま"] * n) if body["temperature"] == 0 else "\n".join(["译文译文"] * n), "stop")
    fake = openai_fake(reply)
    doc = tmp_path / "d.txt"
    doc.write_text("駅に着いた。\n雨が降る。\n", encoding="utf-8")
    try:
        stats = Translator(Settings(out=tmp_path / "o", endpoints=[fake.url], spec=PromptSpec(preface=PREFACE),
                                    progress_every_s=0)).run(doc)
    finally:
        fake.close()
    assert stats["rejected"] == {"kana": stats["retries"]} and stats["rescued_by_retry"] >= 1
    rows = rejections(stats)
    assert rows[0] == {"rejected because": "kana", "replies": stats["retries"]}
    assert rows[-1]["replies"] == f"{stats['rescued_by_retry']} / 0 chunks"
