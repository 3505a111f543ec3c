"""What the model is told: errors before warnings; a repeated program is said so and the next round samples."""

import json

from helpers import openai_fake

from lab.c2rust.build import errors_first
from lab.c2rust.harness import check_source
from lab.c2rust.loop import translate
from lab.c2rust.tasks import Case
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
    assert len(chats) == 5 and not res["ok"]  # rounds 2 and 3 repeat round 1: each asks a fresh translation too
    assert "temperature" not in chats[1] or chats[1]["temperature"] == 0.0  # round 2: greedy, first repeat unknown
    assert chats[2]["temperature"] == 0.7 and chats[2]["seed"] == 2999 and chats[2]["messages"] == chats[0]["messages"]
    assert chats[3]["temperature"] == 0.7 and chats[3]["seed"] == 3  # round 3 follows a repeated program
    assert "same program as your previous reply" in chats[3]["messages"][-1]["content"]
    assert chats[4]["seed"] == 3999 and chats[4]["messages"] == chats[0]["messages"]
    assert res["history"] == [{"round": r, "compiled": True, "ok": False} for r in (1, 2, 3)]  # compiles, prints ho


def test_a_round_of_repeats_goes_on_with_a_fresh_translation(tmp_path):
    prog = tmp_path / "p"
    prog.mkdir()
    (prog / "p.c").write_text('#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }\n')
    (prog / "tests.json").write_text('[{"input": "", "output": "hi"}]')
    ho = "```rust\nfn main() { println!(\"ho\"); }\n```"
    hi = "```rust\nfn main() { println!(\"hi\"); }\n```"
    fake = openai_fake(lambda body: (200, hi if body.get("seed") == 2999 else ho, "stop"))
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=3, progress=False,
                        out=tmp_path / "o")
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    assert len(chats) == 3 and res["ok"] and res["rounds"] == 2  # round 2's repeat was not what it spent
    log = [json.loads(ln) for ln in (tmp_path / "o" / "p.log.jsonl").read_text().splitlines()]
    assert log[1]["repeat_replaced"] is True and "repeated" not in log[1] and log[1]["ok"]


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


def _hi_task(tmp_path):
    prog = tmp_path / "p"
    prog.mkdir()
    (prog / "p.c").write_text('#include <stdio.h>\nint main(int c, char **v) { printf("hi %d\\n", c - 1); '
                              'return 0; }\n')
    (prog / "tests.json").write_text('{"cases": [{"args": ["a", "b"], "expected_stdout": "hi 2\\n"},'
                                     ' {"args": [], "expected_stdout": "hi 0\\n"}, '
                                     '{"args": ["x"], "expected_stdout": "hi 1\\n"}]}')
    return prog


GOOD_HI = 'fn main() {\n    println!("hi {}", std::env::args().count() - 1);\n}\n'


def test_candidates_are_all_checked_and_the_best_goes_on(tmp_path):
    prog = _hi_task(tmp_path)

    def reply(body):  # greedy writes a program that does not compile; only the seed-1002 sample is right
        if body.get("seed") == 1002:
            return 200, f"```rust\n{GOOD_HI}```", "stop"
        if body.get("seed"):
            return 200, '```rust\nfn main() { println!("hi"); }\n```', "stop"
        return 200, "```rust\nfn main() { let x: i32 = \"a\"; }\n```", "stop"
    fake = openai_fake(reply)
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=2, candidates=3,
                        progress=False, out=tmp_path / "out")
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    assert res["ok"] and res["rounds"] == 1 and len(chats) == 3  # one round: three replies, the third passed
    assert sorted(c.get("seed", 0) for c in chats) == [0, 1001, 1002]
    assert all(c["temperature"] == 0.7 for c in chats if c.get("seed"))
    import json
    log = json.loads((tmp_path / "out" / "p.log.jsonl").read_text().splitlines()[0])
    assert log["candidate"] == 2 and log["result"] == "3/3 cases pass"
    assert log["candidates"][0].startswith("does not compile") and log["candidates"][1].startswith("0/3")
    assert (tmp_path / "out" / "p.rs").read_text() == GOOD_HI


def test_the_first_prompt_shows_test_runs_and_later_rounds_echo_the_compiled_program(tmp_path):
    prog = _hi_task(tmp_path)
    missing = 'fn main() {\n    println!("hi {}", args().count());\n}\n'  # compiles once rustc adds the import
    fake = openai_fake(lambda body: (200, f"Here it is.\n```rust\n{missing}```\nDone.", "stop"))
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=2, progress=False)
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    first = chats[0]["messages"][1]["content"]
    assert "args ['a', 'b']: stdout 'hi 2\\n'" in first and "args []: stdout 'hi 0\\n'" in first
    assert "'x'" not in first  # two examples, not every case
    echo = chats[1]["messages"][2]
    assert echo["role"] == "assistant" and "use std::env::args;" in echo["content"]
    assert "Here it is" not in echo["content"]
    assert res["compiled"] and res["passed"] == 0  # off by one: the program's name counts


def test_construct_hints_go_in_only_where_the_context_leaves_room(tmp_path):
    from lab.c2rust.advice import hints_for
    from lab.c2rust.prompts import SYSTEM, example_turns, first_messages
    from lab.c2rust.tasks import load_task
    prog = _hi_task(tmp_path)
    src, task = (prog / "p.c").read_text(), load_task(prog / "tests.json")
    sizes = {}
    for ctx in (9000, 3000, 1600, 1200):  # the fake counts a character as a token
        fake = openai_fake(lambda body: (200, "", "stop"), max_model_len=ctx)
        try:
            sizes[ctx] = first_messages(Client(fake.url), src, task, max_tokens=400, example=True)
        finally:
            fake.close()
    assert hints_for(src) and sizes[9000][0]["content"] == SYSTEM + "\n" + hints_for(src)
    assert [m["role"] for m in sizes[9000]] == ["system", "user", "assistant", "user"]  # the worked example
    assert sizes[9000][1:3] == example_turns() and "```rust\n" in sizes[9000][2]["content"]
    assert "for example" in sizes[9000][3]["content"] and src in sizes[9000][3]["content"]
    assert len(sizes[3000]) == 2 and sizes[3000][0] == sizes[9000][0]  # the example goes first
    assert sizes[1600][0]["content"] == SYSTEM and "for example" in sizes[1600][1]["content"]  # then the hints
    assert sizes[1200][1]["content"] == f"```c\n{src}\n```"  # then the test runs; the program always stays


def test_after_round_one_every_other_candidate_translates_afresh(tmp_path):
    prog = _hi_task(tmp_path)
    fake = openai_fake(lambda body: (200, '```rust\nfn main() { println!("hi"); }\n```', "stop"))
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=2, candidates=3, progress=False)
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    assert len(chats) == 6 and not res["ok"]
    second = {c.get("seed", 0): len(c["messages"]) for c in chats[3:]}
    assert second == {0: 4, 2001: 2, 2002: 4}  # a fresh one: system + C only


def test_an_import_whose_name_is_taken_comes_in_as_underscore():
    from lab.c2rust.build import unclashing
    taken = 'use std::fmt::Write;\nfn main() {\n    let mut s = String::new();\n    write!(s, "hi").unwrap();\n' \
            '    println!("{}", s);\n    std::io::stdout().flush().unwrap();\n}\n'
    rep = check_source(taken, [Case(args=[], stdin="", expected="hi\n")], fix=True)
    assert rep.compiled and rep.passed == 1, rep.compile_errors
    assert rep.added_imports == ["use std::io::Write as _;"] and "use std::fmt::Write;" in rep.source
    assert unclashing("use std::io::Write;", "use std::env;\n") == "use std::io::Write;"
    assert unclashing("use std::io::Write;", "use std::{fmt::Write, env};\n") == "use std::io::Write as _;"


def test_extra_or_missing_lines_and_stdout_that_c_leaves_empty_are_named():
    from lab.c2rust.harness import output_note
    gcd = output_note("gcd(17, 5) = 1\ngcd(100, 75) = 25\n", "gcd(17, 5) = 1\ngcd(5, 100) = 5\ngcd(100, 75) = 25\n")
    assert gcd.startswith("every expected line is there, plus 1 the C program does not print (first: "
                          "'gcd(5, 100) = 5')") and "step" in gcd
    assert output_note("a\nb\nc\n", "a\nc\n").startswith("1 expected line(s) are missing, the others are right")
    assert output_note("", "usage: prog N\n").startswith("the C program prints nothing to stdout here")
    assert output_note("a\nb\n", "b\nx\n") == ""  # neither within the other: the diff says it


def test_the_result_is_the_nearest_program_of_any_round_not_the_last(tmp_path):
    """Round 1 passes 1 of 3 cases, round 2 does not compile: the report and the .rs are round 1's (was: the last
    round's, so a run could end worse than it had been)."""
    prog = _hi_task(tmp_path)
    partial = 'fn main() {\n    println!("hi 2");\n}\n'

    def reply(body):
        if len(body["messages"]) <= 2:  # the opening conversation: round 1
            return 200, f"```rust\n{partial}```", "stop"
        return 200, "```rust\nfn main() { let x: i32 = \"a\"; }\n```", "stop"
    fake = openai_fake(reply)
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=2, progress=False,
                        out=tmp_path / "out")
    finally:
        fake.close()
    assert not res["ok"] and res["compiled"] and res["passed"] == 1 and res["rounds"] == 2
    assert [h["compiled"] for h in res["history"]] == [True, False]  # what each round gave stays in the history
    assert (tmp_path / "out" / "p.rs").read_text() == partial


def test_a_slow_reply_gets_waiting_lines_while_it_is_awaited(tmp_path, monkeypatch, capsys):
    """A 1.5B round is minutes on 2 cores: it used to pass without a word until the reply came."""
    import time

    from lab.c2rust import loop
    monkeypatch.setattr(loop, "HEARTBEAT_S", 0.2)
    prog = tmp_path / "p"
    prog.mkdir()
    (prog / "p.c").write_text('#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }\n')
    (prog / "tests.json").write_text('[{"input": "", "output": "hi"}]')

    def slow(body):
        time.sleep(1.5)
        return 200, '```rust\nfn main() { println!("hi"); }\n```', "stop"
    fake = openai_fake(slow)
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url, timeout=60), rounds=1)
    finally:
        fake.close()
    out = capsys.readouterr().out
    assert res["ok"] and "[p] unidiomatic round 1: waiting on the model (" in out, out
    assert "0 of 1 replies in and checked; a request fails after 60s without a token)" in out
