"""What the model is told: errors before warnings; a repeated program is said so and the next round samples."""

from pathlib import Path

from helpers import openai_fake

from lab.c2rust.build import errors_first
from lab.c2rust.harness import check_source
from lab.c2rust.loop import translate
from lab.c2rust.tasks import Case, Task
from lab.client import Client

WARN_THEN_ERROR = 'use std::io;\nuse std::fmt;\nfn main() {\n    let x: i32 = "a";\n    println!("{}", x);\n}\n'


def test_compiler_errors_come_before_warnings():
    rep = check_source(WARN_THEN_ERROR, [Case(args=[], stdin="", expected="")])
    assert not rep.compiled
    first = rep.compile_errors.splitlines()[0]
    assert first.startswith("error[E0308]"), rep.compile_errors
    assert "warning: unused import" in rep.compile_errors  # still there, after the error
    assert rep.summary().startswith("does not compile: error[E0308]")
    lines = ["warning: unused import: `x`", " --> a.rs:1", "error[E0425]: cannot find value `y`", " --> a.rs:2",
             "warning: 1 warning emitted", "error: aborting due to 1 previous error"]
    assert errors_first(lines) == ["error[E0425]: cannot find value `y`", " --> a.rs:2",
                                   "warning: unused import: `x`", " --> a.rs:1"]


def test_a_repeated_program_is_named_and_the_next_round_samples(tmp_path):
    prog = tmp_path / "p"
    prog.mkdir()
    (prog / "p.c").write_text('#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }\n')
    (prog / "tests.json").write_text('[{"input": "", "output": "hi"}]')
    fake = openai_fake(lambda body: (200, "```rust\nfn main() { println!(\"ho\"); }\n```", "stop"))
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=3, progress=False)
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    assert len(chats) == 3 and not res["ok"]
    assert "temperature" not in chats[1] or chats[1]["temperature"] == 0.0  # round 2: greedy, first repeat unknown
    assert chats[2]["temperature"] == 0.7 and chats[2]["seed"] == 3  # round 3 follows a repeated program
    assert "same program as your previous reply" in chats[2]["messages"][-1]["content"]
    assert res["history"] == [{"round": r, "compiled": True, "ok": False} for r in (1, 2, 3)]  # compiles, prints ho


MISSING_IMPORTS = ('fn main() {\n    let a: Vec<String> = args().collect();\n    let mut out = io::stdout();\n'
                   '    out.write_all(format!("{}\\n", max(a.len(), 1)).as_bytes()).unwrap();\n}\n')


def test_the_loop_adds_the_imports_rustc_names_and_a_grader_does_not():
    cases = [Case(args=["x", "y"], stdin="", expected="3\n")]
    graded = check_source(MISSING_IMPORTS, cases)
    assert not graded.compiled and graded.added_imports == []
    fixed = check_source(MISSING_IMPORTS, cases, fix=True)
    assert fixed.compiled and fixed.passed == 1, fixed.compile_errors
    assert set(fixed.added_imports) == {"use std::env::args;", "use std::io;", "use std::cmp::max;",
                                        "use std::io::Write;"}
    assert fixed.source.startswith("use std::env::args;") or "use std::env::args;\n" in fixed.source


def test_only_single_candidate_suggestions_are_taken():
    from lab.c2rust.build import suggested_imports
    one = ("error[E0425]: cannot find function `args` in this scope\n --> main.rs:2:5\n  |\n"
           "help: consider importing this function\n  |\n1 + use std::env::args;\n  |\n")
    many = ("error[E0412]: cannot find type `HashMap` in this scope\n --> main.rs:2:5\n"
            "help: consider importing one of these structs\n  |\n1 + use std::collections::HashMap;\n  |\n"
            "1 + use std::collections::hash_map::HashMap;\n  |\n")
    assert suggested_imports(one) == ["use std::env::args;"]
    assert suggested_imports(many) == []
    assert suggested_imports(one + many) == ["use std::env::args;"]


EXTERN = ('extern "C" {\n    fn reverse(s: *mut u8);\n}\nfn main() {\n    let mut b = *b"ab\\0";\n'
          '    unsafe { reverse(b.as_mut_ptr()) };\n}\n')


def test_an_extern_c_link_to_the_original_is_refused_in_the_prompt_and_named_in_feedback():
    from lab.c2rust.loop import SYSTEM, feedback
    assert 'extern \\"C\\"' not in SYSTEM and 'never declare the C functions in an `extern "C"` block' in SYSTEM
    rep = check_source(EXTERN, [Case(args=[], stdin="", expected="")])
    assert not rep.compiled  # `reverse` is declared, never defined: the link fails
    note = feedback(rep, Task(path=Path("t.json"), format="lab"))
    assert note.startswith('Do not declare C functions in an `extern "C"` block')
    plain = check_source(WARN_THEN_ERROR, [Case(args=[], stdin="", expected="")])
    assert "extern" not in feedback(plain, Task(path=Path("t.json"), format="lab"))


def test_per_round_counts_each_program_at_its_latest_round():
    from lab.c2rust.loop import per_round
    rows = [{"history": [{"round": 1, "compiled": False, "ok": False}, {"round": 2, "compiled": True, "ok": True}]},
            {"history": [{"round": 1, "compiled": True, "ok": False}, {"round": 2, "compiled": True, "ok": False},
                         {"round": 3, "compiled": False, "ok": False}]},
            {"history": []}]  # no code block in any round
    assert per_round(rows, 3) == [{"round": 1, "compiled": 1, "passed": 0, "programs": 3},
                                  {"round": 2, "compiled": 2, "passed": 1, "programs": 3},
                                  {"round": 3, "compiled": 1, "passed": 1, "programs": 3}]


# C assigns to its parameters and locals freely; a translation that keeps them immutable fails with E0384, for
# which rustc suggests `mut` as a MachineApplicable fix (as `cargo fix` would apply it).
IMMUTABLE = ('fn count(n: u32) -> u32 {\n    let mut c = 0;\n    while n > 0 { c += n & 1; n >>= 1; }\n    c\n}\n'
             'fn main() {\n    let x = 7;\n    x = x + 4;\n    println!("{} ünï", count(x));\n}\n')


def test_the_loop_applies_rustcs_machine_applicable_fixes_and_a_grader_does_not():
    cases = [Case(args=[], stdin="", expected="3 ünï\n")]
    graded = check_source(IMMUTABLE, cases)
    assert not graded.compiled and "E0384" in graded.compile_errors and graded.applied_fixes == []
    assert graded.compile_errors.splitlines()[0].startswith("error[E0384]")  # the text rustc prints, not JSON
    fixed = check_source(IMMUTABLE, cases, fix=True)
    assert fixed.compiled and fixed.passed == 1, fixed.compile_errors
    assert "fn count(mut n: u32)" in fixed.source and "let mut x = 7;" in fixed.source
    assert len(fixed.applied_fixes) == 2 and all("mutable" in f for f in fixed.applied_fixes)


def test_fixes_apply_from_the_end_by_bytes_and_skip_overlaps():
    from lab.c2rust.build import apply_fixes
    src = "ünï x y"  # multibyte before the spans: offsets are bytes, as rustc gives them
    start = len("ünï ".encode())
    out, done = apply_fixes(src, [(start, start, "mut ", "make it mutable"), (start, start + 3, "q", "overlaps"),
                                  (start + 2, start + 3, "w", "other")])
    assert out == "ünï mut x w" and done == ["make it mutable: `mut`", "other: `w`"]  # the overlap is skipped
    assert apply_fixes(src, [(99, 100, "x", "out of range")]) == (src, [])


def test_json_diagnostics_become_the_text_rustc_would_print():
    import json

    from lab.c2rust.build import rendered
    d = {"level": "error", "message": "m", "rendered": "error[E0384]: m\n --> main.rs:1:1\n", "spans": []}
    diags: list = []
    text = rendered(json.dumps(d) + "\nnote: a linker line\n" + json.dumps(d)[:20], diags)
    assert text.splitlines() == ["error[E0384]: m", " --> main.rs:1:1", "note: a linker line",
                                 "(compiler output cut at 256 KiB)"]
    assert diags == [d]
