"""lab.c2rust.loop, batches: rounds counted, bad programs passed over, reruns reuse finished ones, one writer per
folder."""

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import ROOT, FakeServer, canned_chat_server

from lab import LabError, c2rust
from lab.client import Client

DATA = ROOT / "data" / "c_to_rust"
BROKEN = ROOT / "tests" / "c2rust" / "broken"


def _task(name):
    return DATA / name / "prog.c", DATA / name / "tests.json"


def test_feedback_loop_counts_rounds_and_recovers(tmp_path):
    good = (DATA / "str_to_int" / "reference.rs").read_text()
    broken = (BROKEN / "does_not_compile.rs").read_text()
    fake = canned_chat_server(["I cannot do that.", f"```rust\n{broken}```", f"```rust\n{good}```"])
    try:
        client = Client(fake.url, max_retries=0)
        c_file, tests = _task("str_to_int")
        r = c2rust.translate(c_file, tests, client, rounds=6, out=tmp_path)
    finally:
        fake.close()
    assert r["ok"] and r["rounds"] == 3 and r["passed"] == r["total"] == 4 and r["tokens"] == 450
    assert r["unsafe"] == 0
    asks = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    assert "no ```rust code block" in asks[1]["messages"][-1]["content"]  # the no-code round was fed back
    assert "does not compile" in asks[2]["messages"][-1]["content"] and "E0308" in asks[2]["messages"][-1]["content"]
    log = [json.loads(x) for x in (tmp_path / "str_to_int.log.jsonl").read_text().splitlines()]
    assert [x["result"] for x in log][0] == "no code block" and log[-1]["result"] == "4/4 cases pass"
    assert (tmp_path / "str_to_int.rs").read_text() == good


def test_batch_goes_on_past_bad_programs_and_a_rerun_reuses_finished_ones(tmp_path):
    progs = tmp_path / "progs"
    shutil.copytree(DATA / "str_to_int", progs / "str_to_int")
    (progs / "latin1").mkdir()
    (progs / "latin1" / "prog.c").write_bytes(b"/* caf\xe9 */ int main(void) { return 0; }\n")
    (progs / "latin1" / "tests.json").write_text('{"cases": [{"args": [], "expected_stdout": ""}]}')
    (progs / "badjson").mkdir()
    (progs / "badjson" / "prog.c").write_text("int main(void) { return 0; }\n")
    (progs / "badjson" / "tests.json").write_text('{"cases": [')
    good = (DATA / "str_to_int" / "reference.rs").read_text()
    out = tmp_path / "out"
    fake = canned_chat_server([f"```rust\n{good}```"] * 2)

    def asked():
        return len([p for p, _ in fake.requests if p.endswith("/chat/completions")])
    try:
        res = c2rust.batch(progs, Client(fake.url, max_retries=0), out=out, progress=False)
        first = asked()
        again = c2rust.batch(progs, Client(fake.url, max_retries=0), out=out, progress=False)
        second = asked() - first
        changed = c2rust.batch(progs, Client(fake.url, max_retries=0), out=out, progress=False, rounds=2)
        third = asked() - first - second
    finally:
        fake.close()
    rows = {r["program"]: r for r in res["rows"]}
    assert rows["str_to_int"]["ok"] and first == 1
    assert "latin1/prog.c:1: not UTF-8" in rows["latin1"]["stop"] and not rows["latin1"]["ok"]
    assert "badjson/tests.json: not valid JSON" in rows["badjson"]["stop"]
    assert res["mean_rounds"] == rows["str_to_int"]["rounds"] == 1  # over the programs that ran: not 1/3
    again_row = next(r for r in again["rows"] if r["program"] == "str_to_int")
    assert second == 0 and again_row.get("resumed") and again_row["ok"]
    changed_row = next(r for r in changed["rows"] if r["program"] == "str_to_int")
    # another setting: the program runs again, and its round-1 request, the same as before, gets the kept reply
    assert third == 0 and not changed_row.get("resumed") and changed_row["ok"]


def test_two_programs_whose_reports_share_a_name_are_refused_before_any_request(tmp_path):
    progs = tmp_path / "progs"
    shutil.copytree(DATA / "str_to_int", progs / "str_to_int")  # prog.c: reports str_to_int.*
    shutil.copytree(DATA / "str_to_int", progs / "other")
    (progs / "other" / "prog.c").rename(progs / "other" / "Str_To_Int.c")  # its single .c: the same, but for case
    with pytest.raises(LabError, match=r"other/Str_To_Int.c and .*str_to_int/prog.c would both write the reports "
                                       r"of str_to_int: rename one of them; nothing was run"):
        c2rust.batch(progs, Client("http://127.0.0.1:9/v1", max_retries=0), out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_program_linked_from_outside_the_folder_is_skipped(tmp_path, capsys):
    progs = tmp_path / "progs"
    shutil.copytree(DATA / "str_to_int", progs / "str_to_int")
    (tmp_path / "private.c").write_text("int main(void) { return 0; } /* not for the endpoint */\n")
    shutil.copytree(DATA / "str_to_int", progs / "leak")
    (progs / "leak" / "prog.c").unlink()
    (progs / "leak" / "prog.c").symlink_to(tmp_path / "private.c")
    assert [c for c, _ in c2rust.programs(progs)] == [progs / "str_to_int" / "prog.c"]
    assert f"warning: {progs / 'leak' / 'prog.c'}: a link to {tmp_path / 'private.c'}, outside {progs}; skipped" \
        in capsys.readouterr().err
    (progs / "str_to_int").rename(tmp_path / "elsewhere")
    (progs / "str_to_int").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(LabError, match="no programs in"):
        c2rust.programs(progs)


def test_batch_progress_says_each_round_of_each_program_in_whole_lines(tmp_path, capsys):
    """Notebook 05 sat silent for minutes between programs; now every round prints, one whole line each, from
    programs translated side by side."""
    progs = tmp_path / "progs"
    for name in ("a", "b", "c"):
        shutil.copytree(DATA / "str_to_int", progs / name)
    bad = "```rust\nfn main() { let x: i32 = \"no\"; }\n```"
    fake = canned_chat_server([bad] * 9)  # 3 programs x (round 1, round 2, and round 2's fresh translation: a repeat)
    try:
        c2rust.batch(progs, Client(fake.url, max_retries=0), rounds=2, concurrency=3)
    finally:
        fake.close()
    lines = capsys.readouterr().out.splitlines()
    for name in ("a", "b", "c"):
        rounds = [x for x in lines if x.startswith(f"[{name}] unidiomatic round ")]
        assert [x.split(":")[0] for x in rounds] == [f"[{name}] unidiomatic round 1",
                                                     f"[{name}] unidiomatic round 2"], lines
        assert all("does not compile: error[E0308]" in x for x in rounds)
    done = sorted(x.split("] ", 1)[1] for x in lines if x[:1] == "[" and x[1].isdigit())
    assert done == [f"{n}: failed (0/4 cases, 2 rounds; still failing after 2 rounds)" for n in "abc"], lines
    assert all(x.replace("error[", "").count("[") == 1 for x in lines), lines  # no two lines run together


def test_a_failing_server_stops_the_batch_and_says_how_to_go_on(tmp_path):
    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "m", "object": "model", "max_model_len": 8192}]}
        if path.endswith("/tokenize"):
            return 200, {"count": 100}
        return 503, {"error": {"message": "engine dead", "type": "ServiceUnavailable", "code": 503}}
    fake = FakeServer(handler)
    try:
        with pytest.raises(LabError, match=r"rerun with --out .*out to go on") as e:
            c2rust.batch(DATA, Client(fake.url, max_retries=0), out=tmp_path / "out", progress=False,
                         concurrency=1)
    finally:
        fake.close()
    assert "503" in str(e.value) or "engine dead" in str(e.value)
    asked = {b["messages"][1]["content"] for p, b in fake.requests if p.endswith("/chat/completions")}
    assert len(asked) == 1  # it stopped at the first program instead of failing all eight one by one


@pytest.mark.server
def test_real_translate_round_against_tiny_server(tiny_server, tmp_path):
    c_file, tests = _task("bit_manipulation")
    r = c2rust.translate(c_file, tests, tiny_server.client(), rounds=1, max_tokens=256, out=tmp_path)
    assert r["rounds"] == 1 and r["tokens"] > 0 and r["model"] == "tiny-qwen3"
    assert r["ok"] is False  # a 0.4 M-parameter toy does not write Rust: reported, not hidden
    log = json.loads(Path(tmp_path / "bit_manipulation.log.jsonl").read_text().splitlines()[0])
    assert log["max_tokens"] == 256 and log["usage"][1] > 0


def test_a_second_batch_on_one_output_folder_is_refused_before_any_request(tmp_path):

    from lab import locks
    from lab.c2rust import loop
    fake = FakeServer(lambda path, body: (500, {"detail": "no request expected"}))
    try:
        client = Client(fake.url, model="m")
        with locks.writing(tmp_path, "lab c2rust run"):
            for go in (lambda: loop.batch(ROOT / "data" / "c_to_rust", client, out=tmp_path),
                       lambda: loop.translate(*c2rust.programs(ROOT / "data" / "c_to_rust")[0], client, out=tmp_path)):
                with pytest.raises(LabError, match=rf"{tmp_path} is being written by another lab c2rust run "
                                                   rf"\(pid {os.getpid()}\)"):
                    go()
        assert fake.requests == [] and list(tmp_path.iterdir()) == []
    finally:
        fake.close()
