"""lab.c2rust.tasks: the project's programs and SACToR's task formats load, with both feeds and relative samples."""

import json

import pytest
from helpers import ROOT

from lab import LabError, c2rust

DATA = ROOT / "data" / "c_to_rust"
PROGRAMS = sorted(d.name for d in DATA.iterdir() if (d / "prog.c").exists())


def _task(name):
    return DATA / name / "prog.c", DATA / name / "tests.json"


def test_there_are_eight_programs_with_tests():
    assert len(PROGRAMS) >= 8
    for name in PROGRAMS:
        assert len(c2rust.load_task(_task(name)[1]).cases) >= 3


SACTOR = ROOT / "data" / "c_to_rust_sactor"


def test_sactor_tasks_load_with_both_feeds_and_relative_samples(tmp_path):
    fib = c2rust.load_task(SACTOR / "fib" / "test_task" / "test_task.json")
    assert fib.format == "sactor-task" and len(fib.cases) == 5
    assert fib.cases[1].args == ["10"] and fib.cases[3].args == [] and fib.cases[1].stdin == ""
    stats = c2rust.load_task(SACTOR / "stats" / "test_task" / "test_task.json")
    assert stats.cases[1].args == [] and stats.cases[1].stdin == "  -5\n7   \n 0 \n"  # input + "\n", as SACToR
    bare = c2rust.load_task(SACTOR / "stats" / "test_task" / "test_samples.json", feed="stdin")
    assert bare.format == "sactor-samples" and [c.stdin for c in bare.cases] == [c.stdin for c in stats.cases]
    assert c2rust.load_task(SACTOR / "fib" / "test_task" / "test_samples.json").cases[2].args == ["92"]
    assert c2rust.normalize(" a \r\nb  \n") == "a\nb"  # lines stripped, no trailing newline
    bad = tmp_path / "test_task.json"
    for text, msg in ((json.dumps([{"command": "sactor run-tests --type bin ./s.json %t 0", "test_id": 0}]),
                       r"s\.json does not exist"),
                      (json.dumps([{"command": "sactor translate x.c", "test_id": 0}]), "only `sactor run-tests`"),
                      (json.dumps([{"command": "sactor run-tests --type lib ./s.json %t 0"}]), "only --type bin"),
                      (json.dumps([{"command": "sactor run-tests --type bin ./s.json %t 3"}]), "out of range"),
                      (json.dumps([{"command": "sactor run-tests --type bin /etc/passwd %t 0"}]),
                       "the samples file /etc/passwd is outside the program folder"),
                      (json.dumps([{"command": "sactor run-tests --type bin ../../../../../../etc/hosts %t 0"}]),
                       "outside the program folder")):
        (tmp_path / "s.json").write_text('[{"input": "1", "output": "1"}]')
        if "does not exist" in msg:
            (tmp_path / "s.json").unlink()
        bad.write_text(text)
        with pytest.raises(LabError, match=msg):
            c2rust.load_task(bad)


def test_local_headers_are_inlined_so_the_sandbox_and_the_model_see_the_whole_program(tmp_path):
    """A program with its own header failed as a bad task (the sandbox has only the one file: util.h: No such file)."""
    from lab.c2rust.tasks import c_program
    (tmp_path / "inc").mkdir()
    (tmp_path / "prog.c").write_text('#include <stdio.h>\n#include "util.h"\n#include "util.h"\n'
                                     'int main(void) { printf("%d\\n", TWICE(ADD)); return 0; }\n')
    (tmp_path / "util.h").write_text('#ifndef UTIL_H\n#define UTIL_H\n#include "inc/add.h"\n'
                                     '#define TWICE(x) ((x) * 2)\n#endif\n')
    (tmp_path / "inc" / "add.h").write_text("#define ADD 21\n")
    src = c_program(tmp_path / "prog.c")
    assert src.count("#define TWICE") == 1 and "#define ADD 21" in src and "#include <stdio.h>" in src
    assert '#include "' not in src and "util.h: inlined above" in src  # once, as its guard has it
    (tmp_path / "tests.json").write_text(json.dumps({"cases": [{"args": [], "expected_stdout": "42\n"}]}))
    (tmp_path / "ok.rs").write_text('fn main() { println!("42"); }\n')
    ref, rust = c2rust.check(tmp_path / "prog.c", tmp_path / "tests.json", tmp_path / "ok.rs")
    assert ref.ok and rust.ok
    (tmp_path / "a.h").write_text('#pragma once\n#include "b.h"\nstruct a { int x; };\n')  # each includes the other
    (tmp_path / "b.h").write_text('#pragma once\n#include "a.h"\nstruct b { int y; };\n')
    (tmp_path / "ab.c").write_text('#include "a.h"\n#include "b.h"\nint main(void) { return 0; }\n')
    ab = c_program(tmp_path / "ab.c")
    assert ab.count("struct a {") == ab.count("struct b {") == 1
    outside = tmp_path / "inc" / "up.c"  # a header above the program's folder is not read into it
    outside.write_text('#include "../util.h"\nint main(void) { return 0; }\n')
    assert c_program(outside) == outside.read_text()


def test_a_program_of_several_c_files_is_one_text_and_builds(tmp_path):
    """util.c beside calc.c: the reference was linked without it (`undefined reference to add`, shown as
    collect2's `ld returned 1 exit status`). A .c file with its own main is another program, and one whose
    header the program does not include is no part of it: both left out."""
    from lab.c2rust.harness import first_error
    from lab.c2rust.tasks import c_program, find_program
    calc = tmp_path / "calc"
    calc.mkdir()
    (calc / "main.c").write_text('#include <stdio.h>\n#include "util.h"\n'
                                 'int main(int argc, char **argv) { printf("%d\\n", add(2, 3)); return 0; }\n')
    (calc / "util.h").write_text("#ifndef UTIL_H\n#define UTIL_H\nint add(int a, int b);\n#endif\n")
    (calc / "util.c").write_text('#include "util.h"\nint add(int a, int b) { return a + b; }\n')
    (calc / "gen.c").write_text("static int\nmain(void) { return 0; }\n")  # a tool beside it: not the program
    (calc / "tests.json").write_text(json.dumps({"cases": [{"args": [], "expected_stdout": "5\n"}]}))
    assert find_program(calc) is None  # two mains: which one is the program is not guessed
    (calc / "gen.c").write_text("int add(int a, int b) { return a - b; }\n")  # an old copy, no header of its own
    assert find_program(calc) == (calc / "main.c", calc / "tests.json")  # the one .c that defines main
    src = c_program(calc / "main.c")
    assert src.index("int add(int a, int b);") < src.index("int main") < src.index("return a + b;")
    assert "return a - b" not in src and "util.h: inlined above" in src
    (tmp_path / "ok.rs").write_text('fn main() { println!("5"); }\n')
    ref, rust = c2rust.check(calc / "main.c", calc / "tests.json", tmp_path / "ok.rs")
    assert ref.ok and rust.ok
    link = "/usr/bin/ld: /tmp/cc.o: in function `main':\nprog.c:(.text+0x1a): undefined reference to `add'\n" \
           "collect2: error: ld returned 1 exit status"
    assert first_error(link) == "prog.c:(.text+0x1a): undefined reference to `add'"
    assert first_error("error: linking with `cc` failed: exit status: 1\n  |\n  = note: rust-lld: error: undefined "
                       "symbol: add") == "rust-lld: error: undefined symbol: add"


def test_a_program_saved_in_cp932_is_read_and_its_japanese_output_checked_as_utf8(tmp_path):
    """Visual Studio on Japanese Windows saves C in CP932: `lab c2rust` refused it as "not UTF-8 text". Read as
    text, its header and its string literals reach the model and the sandbox as UTF-8, so the program prints
    what a tests.json (UTF-8, as JSON is) expects."""
    from lab.c2rust.tasks import c_program
    prog = tmp_path / "sum"
    prog.mkdir()
    (prog / "sum.h").write_bytes("/* 合計を返す */\nstatic int sum(int a, int b) { return a + b; }\n".encode("cp932"))
    (prog / "prog.c").write_bytes('#include <stdio.h>\n#include "sum.h"\n// 表示する\n'
                                  'int main(void) { printf("合計 %d\\n", sum(2, 3)); return 0; }\n'.encode("cp932"))
    (prog / "tests.json").write_text(json.dumps({"cases": [{"args": [], "expected_stdout": "合計 5\n"}]},
                                                ensure_ascii=False), encoding="utf-8")
    src = c_program(prog / "prog.c")
    assert "合計を返す" in src and "// 表示する" in src
    (tmp_path / "ok.rs").write_text('fn main() { println!("合計 {}", 5); }\n', encoding="utf-8")
    ref, rust = c2rust.check(prog / "prog.c", prog / "tests.json", tmp_path / "ok.rs")
    assert ref.ok and rust.ok


def test_a_folder_that_looks_like_a_program_and_is_not_is_named_not_dropped(tmp_path, capsys):
    from lab.c2rust.tasks import why_not_program
    cases = json.dumps({"cases": [{"args": [], "expected_stdout": ""}]})
    for name, files in (("two", {"a.c": "", "b.c": "", "tests.json": cases}), ("untested", {"untested.c": ""}),
                        ("noc", {"tests.json": cases}), ("notes", {"README.md": "x"}),
                        ("fine", {"fine.c": "int main(void) { return 0; }\n", "tests.json": cases})):
        (tmp_path / name).mkdir()
        for f, text in files.items():
            (tmp_path / name / f).write_text(text)
    assert why_not_program(tmp_path / "two") == ("2 .c files (a.c, b.c), none named two.c or prog.c, and not one "
                                                 "alone defines main")
    assert why_not_program(tmp_path / "untested") == "untested.c but no test_task/test_task.json or tests.json"
    assert why_not_program(tmp_path / "noc") == "a task file but no .c file"
    assert why_not_program(tmp_path / "notes") is None and why_not_program(tmp_path / "fine") is None
    assert [c.parent.name for c, _ in c2rust.programs(tmp_path)] == ["fine"]
    assert sorted(ln.split(":")[1].rsplit("/", 1)[1] for ln in capsys.readouterr().err.splitlines()) == \
        ["noc", "two", "untested"]


def test_the_files_a_program_reads_are_in_each_case_folder_and_nothing_outside(tmp_path, monkeypatch):
    """A line counter given data.txt read nothing in its sandbox folder, so its own reference "failed"."""
    from lab.c2rust import tasks
    prog = tmp_path / "lines"
    (prog / "in").mkdir(parents=True)
    (prog / "lines.c").write_text(
        '#include <stdio.h>\nint main(int argc, char **argv) {\n'
        '  FILE *f = fopen(argc > 1 ? argv[1] : "in/default.txt", "r");\n'
        '  if (!f) { perror("open"); return 1; }\n  int c, n = 0;\n  while ((c = fgetc(f)) != EOF) n += c == \'\\n\';\n'
        '  fclose(f);\n  FILE *o = fopen("in/default.txt", "a"); fputs("x\\n", o); fclose(o);\n'
        '  printf("%d\\n", n);\n  return 0;\n}\n')
    (prog / "data.txt").write_text("a\nb\nc\n")
    (prog / "in" / "default.txt").write_text("one\n")
    (tmp_path / "secret.txt").write_text("s\n")
    (prog / "leak.txt").symlink_to(tmp_path / "secret.txt")
    cases = [{"args": ["data.txt"], "expected_stdout": "3\n"}, {"args": [], "expected_stdout": "1\n"},
             {"args": [], "expected_stdout": "1\n"},  # what case 1 appended is not there: a fresh copy each
             {"args": ["../secret.txt"], "expected_stdout": "", "expected_exit_code": 1},
             {"args": ["leak.txt"], "expected_stdout": "", "expected_exit_code": 1}]
    (prog / "tests.json").write_text(json.dumps({"cases": cases}))
    task = tasks.program_task(prog / "lines.c", prog / "tests.json")
    assert task.files == {"data.txt": b"a\nb\nc\n", "in/default.txt": b"one\n"}
    (tmp_path / "r.rs").write_text(
        'fn main() {\n    let a: Vec<String> = std::env::args().collect();\n'
        '    let p = if a.len() > 1 { a[1].clone() } else { "in/default.txt".to_string() };\n'
        '    match std::fs::read_to_string(&p) {\n        Ok(s) => println!("{}", s.matches(\'\\n\').count()),\n'
        '        Err(e) => { eprintln!("open: {}", e); std::process::exit(1) }\n    }\n}\n')
    ref, rust = c2rust.check(prog / "lines.c", prog / "tests.json", tmp_path / "r.rs")
    assert ref.ok and rust.ok, (ref.summary(), rust.summary())
    assert (prog / "in" / "default.txt").read_text() == "one\n"  # the copies were written to, not the folder
    monkeypatch.setattr(tasks, "MAX_DATA_BYTES", 8)
    with pytest.raises(LabError, match=r"lines: the files its cases read \(data.txt, in/default.txt\) are 0 MiB"):
        tasks.program_task(prog / "lines.c", prog / "tests.json")
