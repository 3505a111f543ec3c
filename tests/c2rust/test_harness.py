"""lab.c2rust.harness: every sample's reference passes and each broken variant fails for the right reason; bad input
is one line."""

import json
import os
import time
from pathlib import Path

import pytest
from helpers import ROOT, lab

from lab import LabError, c2rust

DATA = ROOT / "data" / "c_to_rust"
PROGRAMS = sorted(d.name for d in DATA.iterdir() if (d / "prog.c").exists())


BROKEN = ROOT / "tests" / "c2rust" / "broken"


def _task(name):
    return DATA / name / "prog.c", DATA / name / "tests.json"


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
    assert "calls itself" in loop.cases[0].note and "stdin is closed" in loop.cases[0].note  # not slow I/O
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


def test_a_program_that_prints_its_own_name_sees_the_same_one_in_c_and_rust_each_run():
    """Cases run as ./prog from their folder: a usage line with argv[0] printed the case's random sandbox path, so no
    expected output could hold it and the C reference failed its own tests."""
    from lab.c2rust.tasks import Case
    cases = [Case([], "", "usage: ./prog N\n", 2)]
    c = '#include <stdio.h>\nint main(int argc, char **argv) { printf("usage: %s N\\n", argv[0]); return 2; }\n'
    rust = 'fn main() { println!("usage: {} N", std::env::args().next().unwrap()); std::process::exit(2); }\n'
    for _ in range(2):
        assert c2rust.check_source(c, cases, lang="c").ok and c2rust.check_source(rust, cases).ok


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
    # a line comment ends at its line (under re.S, `//.*` once took the rest of the file and both unsafe blocks)
    assert c2rust.count_unsafe('// the C main\nfn main() { unsafe {} }\n/* x */ unsafe fn f() {}\n/* open') == 2


def test_extra_or_missing_lines_and_stdout_that_c_leaves_empty_are_named():
    from lab.c2rust.harness import output_note
    gcd = output_note("gcd(17, 5) = 1\ngcd(100, 75) = 25\n", "gcd(17, 5) = 1\ngcd(5, 100) = 5\ngcd(100, 75) = 25\n")
    assert gcd.startswith("every expected line is there, plus 1 the C program does not print (first: "
                          "'gcd(5, 100) = 5')") and "step" in gcd
    assert output_note("a\nb\nc\n", "a\nc\n").startswith("1 expected line(s) are missing, the others are right")
    assert output_note("", "usage: prog N\n").startswith("the C program prints nothing to stdout here")
    assert output_note("a\nb\n", "b\nx\n") == ""  # neither within the other: the diff says it
