"""lab.c2rust.replies: replies are kept as they come; a rerun after a stop replays them and asks for the rest."""

import json

import pytest
from helpers import ROOT, canned_chat_server

from lab import LabError, c2rust
from lab.client import Client

DATA = ROOT / "data" / "c_to_rust"


def _chats(fake):
    return [b for p, b in fake.requests if p.endswith("/chat/completions")]


def test_a_rerun_after_the_server_died_mid_program_replays_its_rounds_and_asks_for_the_rest(tmp_path, capsys):
    good = (DATA / "str_to_int" / "reference.rs").read_text()
    broken = (ROOT / "tests" / "c2rust" / "broken" / "does_not_compile.rs").read_text()
    c_file, tests = DATA / "str_to_int" / "prog.c", DATA / "str_to_int" / "tests.json"
    first = canned_chat_server(["I cannot do that.", f"```rust\n{broken}```"])  # dies in round 3
    try:
        with pytest.raises(LabError, match="engine dead"):
            c2rust.translate(c_file, tests, Client(first.url, max_retries=0), rounds=6, out=tmp_path, progress=False)
    finally:
        first.close()
    assert not (tmp_path / "str_to_int.json").exists() and len(list((tmp_path / ".replies").rglob("*.json"))) == 2
    again = canned_chat_server([f"```rust\n{good}```"])
    try:
        r = c2rust.translate(c_file, tests, Client(again.url, max_retries=0), rounds=6, out=tmp_path)
    finally:
        again.close()
    assert "[str_to_int] 2 replies an earlier run kept" in capsys.readouterr().out
    asked = _chats(again)
    assert len(asked) == 1 and asked[0]["messages"] == _chats(first)[-1]["messages"]  # round 3 only, as it was
    assert r["ok"] and r["rounds"] == 3 and r["tokens"] == 450
    log = [json.loads(x) for x in (tmp_path / "str_to_int.log.jsonl").read_text().splitlines()]
    assert [x["result"].split(":")[0] for x in log] == ["no code block", "does not compile", "4/4 cases pass"]


def test_a_damaged_kept_reply_is_asked_again(tmp_path):
    c_file, tests = DATA / "str_to_int" / "prog.c", DATA / "str_to_int" / "tests.json"
    good = (DATA / "str_to_int" / "reference.rs").read_text()
    fake = canned_chat_server([f"```rust\n{good}```", f"```rust\n{good}```"])
    try:
        c2rust.translate(c_file, tests, Client(fake.url, max_retries=0), out=tmp_path, progress=False)
        (tmp_path / "str_to_int.json").unlink()  # not finished, as after a kill
        for f in (tmp_path / ".replies").rglob("*.json"):
            f.write_text('{"text": "cut sho')
        r = c2rust.translate(c_file, tests, Client(fake.url, max_retries=0), out=tmp_path, progress=False)
    finally:
        fake.close()
    assert r["ok"] and len(_chats(fake)) == 2
