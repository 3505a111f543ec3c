"""C -> Rust harness on every sample (references and broken variants) and the feedback loop."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from helpers import ROOT, FakeServer, lab

from lab import LabError, c2rust
from lab.client import Client

DATA = ROOT / "data" / "c_to_rust"
PROGRAMS = sorted(d.name for d in DATA.iterdir() if (d / "prog.c").exists())
BROKEN = ROOT / "tests" / "c2rust" / "broken"


def _task(name):
    return DATA / name / "prog.c", DATA / name / "tests.json"


def test_there_are_eight_programs_with_tests():
    assert len(PROGRAMS) >= 8
    for name in PROGRAMS:
        assert len(c2rust.load_task(_task(name)[1]).cases) >= 3


@pytest.mark.parametrize("name", PROGRAMS)
def test_reference_passes_and_broken_variants_fail_for_the_right_reason(name):
    c_file, tests = _task(name)
    ref, rep = c2rust.check(c_file, tests, DATA / name / "reference.rs")
    assert ref.ok and rep.ok and rep.passed == len(rep.cases)
    cases = c2rust.load_task(tests).cases
    bad = c2rust.check_source((BROKEN / "does_not_compile.rs").read_text(), cases)
    assert not bad.compiled and "mismatched types" in bad.compile_errors and not bad.ok
    wrong = c2rust.check_source((BROKEN / "wrong_output.rs").read_text(), cases)
    assert wrong.compiled and not wrong.ok
    assert {c.reason for c in wrong.cases if not c.passed} <= {"wrong_output", "exit_code"}
    assert any(c.reason == "wrong_output" and c.diff.startswith("--- expected") for c in wrong.cases)
    code = c2rust.check_source((BROKEN / "wrong_exit_code.rs").read_text(), cases)
    assert not code.ok and all(not c.passed for c in code.cases)
    t0 = time.time()
    loop = c2rust.check_source((BROKEN / "infinite_loop.rs").read_text(), cases[:1])
    assert loop.cases[0].reason == "timeout" and time.time() - t0 < 20  # compile + the 4 s CPU limit
    huge = c2rust.check_source((BROKEN / "huge_output.rs").read_text(), cases[:1])
    assert huge.cases[0].reason == "output_limit"


MORE = ROOT / "data" / "c_to_rust_more"


@pytest.mark.parametrize("name", sorted(d.name for d in MORE.iterdir() if (d / "prog.c").exists()))
def test_the_programs_written_after_the_loop_was_tuned_have_passing_references(name):
    """data/c_to_rust_more checks the loop on programs its feedback was not tuned on: each C reference and Rust
    reference passes every case, and the cases exercise an exit status, stdin or arguments."""
    ref, rep = c2rust.check(MORE / name / "prog.c", MORE / name / "tests.json", MORE / name / "reference.rs")
    assert ref.ok and rep.ok and rep.passed == len(rep.cases) >= 4
    cases = c2rust.load_task(MORE / name / "tests.json").cases
    assert any(c.stdin for c in cases) or any(c.exit_code for c in cases)


def test_temp_dirs_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    c_file, tests = _task("str_to_int")
    c2rust.check(c_file, tests, DATA / "str_to_int" / "reference.rs")
    assert list(tmp_path.iterdir()) == []
    with c2rust.sandbox.workdir() as d:
        base = Path(d).parent
    assert not [p for p in base.iterdir() if p.name.startswith(f"lab-c2rust-{os.getpid()}-")]  # ours, not a worker's
    killed = base / "lab-c2rust-4194305-x"  # a SIGKILLed run's (pid > pid_max: dead), with a build in it
    (killed / "target").mkdir(parents=True)
    with c2rust.sandbox.workdir():
        assert not killed.exists()


def test_bad_inputs_name_the_problem(tmp_path):
    c_file, tests = _task("str_to_int")
    with pytest.raises(LabError, match="does not exist"):
        c2rust.check(tmp_path / "nope.c", tests, tmp_path / "x.rs")
    (tmp_path / "t.json").write_text('{"cases": [{"args": "42", "expected_stdout": "42\\n"}]}')
    with pytest.raises(LabError, match=r"cases\[0\]\.args must be a list of strings"):
        c2rust.load_task(tmp_path / "t.json")
    (tmp_path / "t.json").write_text('{"cases": [{"args": []}]}')
    with pytest.raises(LabError, match=r"cases\[0\]\.expected_stdout is missing"):
        c2rust.load_task(tmp_path / "t.json")
    (tmp_path / "t.json").write_text('{"cases": [{"args": ["4\\u00002"], "expected_stdout": "42\\n"}]}')
    with pytest.raises(LabError, match=r"t.json: case 0: an argument holds a NUL byte"):
        c2rust.load_task(tmp_path / "t.json")
    one = {"args": ["4"], "stdin": "", "expected_stdout": "4\n"}
    (tmp_path / "t.json").write_text(json.dumps({"cases": [one] * (c2rust.tasks.MAX_CASES + 1)}))
    with pytest.raises(LabError, match=f"t.json: {c2rust.tasks.MAX_CASES + 1:,} cases, over the"):
        c2rust.load_task(tmp_path / "t.json")
    (tmp_path / "t.json").write_text(json.dumps({"cases": [one] * c2rust.tasks.MAX_CASES}))
    assert len(c2rust.load_task(tmp_path / "t.json").cases) == c2rust.tasks.MAX_CASES
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(LabError, match="not valid JSON"):
        c2rust.load_task(tmp_path / "t.json")
    (tmp_path / "u.json").write_text("[" * 100_000 + "]" * 100_000)  # json's C parser: RecursionError
    with pytest.raises(LabError, match=r"not valid JSON \(nested too deeply"):
        c2rust.load_task(tmp_path / "u.json")
    for code in ("256", "-1", "true", "1e400"):
        case = f'{{"args": [], "expected_stdout": "", "expected_exit_code": {code}}}'
        (tmp_path / "u.json").write_text(f'{{"cases": [{case}]}}')
        with pytest.raises(LabError, match=r"cases\[0\]\.expected_exit_code must be an int from 0 to 255"):
            c2rust.load_task(tmp_path / "u.json")
    (tmp_path / "bad.c").write_text("int main( { return 0; }")
    (tmp_path / "ok.rs").write_text("fn main() {}")
    # gcc prints "In function 'main':" first; the line shown is the error itself
    with pytest.raises(LabError, match="bad task: the C reference .* fails its own tests: does not compile: "
                                       r"\S*\.c:1:\d+: error: "):
        c2rust.check(tmp_path / "bad.c", tests, tmp_path / "ok.rs")
    r = lab("c2rust", "check", str(c_file), str(tmp_path / "t.json"), str(tmp_path / "ok.rs"))
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "not valid JSON" in r.stderr
    for cmd in (["translate", str(c_file), str(tests)], ["batch", str(DATA)]):  # refused before any request
        r = lab("c2rust", *cmd, "--out", str(tmp_path / "ok.rs"), "--base-url", "http://127.0.0.1:9/v1")
        assert r.returncode == 1 and r.stderr.strip().endswith("ok.rs is a file; give a folder"), r.stderr


def test_extract_and_count():
    reply = "<think>```rust\nfn wrong() {}\n```</think>Here:\n```rust\nfn main() { unsafe { } }\n```\nDone."
    assert c2rust.extract_rust(reply) == "fn main() { unsafe { } }\n"
    assert c2rust.extract_rust("no code here") is None
    assert c2rust.count_unsafe('fn main() { unsafe {} } // unsafe\nlet s = "unsafe";') == 1


def _canned_server(replies):
    """A real local OpenAI-like server that answers chat requests with canned replies, in order."""
    it = iter(replies)

    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "canned", "object": "model", "max_model_len": 8192}]}
        if path.endswith("/tokenize"):
            return 200, {"count": sum(len(m["content"]) for m in body["messages"]) // 3}
        text = next(it)
        return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "canned",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}}
    return FakeServer(handler)


def test_feedback_loop_counts_rounds_and_recovers(tmp_path):
    good = (DATA / "str_to_int" / "reference.rs").read_text()
    broken = (BROKEN / "does_not_compile.rs").read_text()
    fake = _canned_server(["I cannot do that.", f"```rust\n{broken}```", f"```rust\n{good}```"])
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
    fake = _canned_server([f"```rust\n{good}```"] * 2)

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
    again_row = next(r for r in again["rows"] if r["program"] == "str_to_int")
    assert second == 0 and again_row.get("resumed") and again_row["ok"]
    changed_row = next(r for r in changed["rows"] if r["program"] == "str_to_int")
    assert third == 1 and not changed_row.get("resumed") and changed_row["ok"]  # another setting: asked again


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
    fake = _canned_server([bad] * 9)  # 3 programs x (round 1, round 2, and round 2's fresh translation: a repeat)
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
    import os

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
