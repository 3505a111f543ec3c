"""lab.c2rust.build: errors before warnings, rustc's imports and machine-applicable fixes (the loop's, never a
grader's), JSON diagnostics as text."""

import json

from lab.c2rust.build import errors_first
from lab.c2rust.harness import check_source
from lab.c2rust.tasks import Case

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

    from lab.c2rust.build import rendered
    d = {"level": "error", "message": "m", "rendered": "error[E0384]: m\n --> main.rs:1:1\n", "spans": []}
    diags: list = []
    text = rendered(json.dumps(d) + "\nnote: a linker line\n" + json.dumps(d)[:20], diags)
    assert text.splitlines() == ["error[E0384]: m", " --> main.rs:1:1", "note: a linker line",
                                 "(compiler output cut at 256 KiB)"]
    assert diags == [d]


def test_an_import_whose_name_is_taken_comes_in_as_underscore():
    from lab.c2rust.build import unclashing
    taken = 'use std::fmt::Write;\nfn main() {\n    let mut s = String::new();\n    write!(s, "hi").unwrap();\n' \
            '    println!("{}", s);\n    std::io::stdout().flush().unwrap();\n}\n'
    rep = check_source(taken, [Case(args=[], stdin="", expected="hi\n")], fix=True)
    assert rep.compiled and rep.passed == 1, rep.compile_errors
    assert rep.added_imports == ["use std::io::Write as _;"] and "use std::fmt::Write;" in rep.source
    assert unclashing("use std::io::Write;", "use std::env;\n") == "use std::io::Write;"
    assert unclashing("use std::io::Write;", "use std::{fmt::Write, env};\n") == "use std::io::Write as _;"
