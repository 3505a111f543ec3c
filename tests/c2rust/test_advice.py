"""The cheat sheet by C construct and the advice by rustc error code (lab/c2rust/advice.py)."""

import re

from lab.c2rust.advice import hints_for


def test_the_cheat_sheet_holds_only_the_constructs_the_program_uses():
    assert hints_for('int main(void) { puts("hi"); return 0; }') == ""  # hello world gets no sheet
    sheet = hints_for('int main(int argc, char **argv) { printf("%08x\\n", (unsigned)atoi(argv[1])); }')
    assert sheet.startswith("C to Rust, by construct:") and "argc/argv" in sheet and "printf" in sheet
    assert "atoi" in sheet and "usize" in sheet
    assert "malloc" not in hints_for('int main(void) { int n; scanf("%d", &n); printf("%d", n); }')
    tree = "struct tree {\n  int key;\n  struct tree *left, *right;\n};\nint main(void) { return 0; }\n"
    assert "points to its own type" in hints_for(tree) and "C globals" not in hints_for(tree)
    assert not re.search(r"Node \{ \w+,", hints_for(tree))  # no field shorthand: the 1.5B copied it verbatim
    flat = "struct point { int x; int y; };\nstatic int area(struct point p);\nint main(void) { return 0; }\n"
    assert "points to its own type" not in hints_for(flat) and "C globals" not in hints_for(flat)
    for g in ("static const char *p;\n", "int counter = 0;\n", "unsigned long table[64];\n", "char *names[8];\n"):
        assert "C globals" in hints_for(g + "int main(void) { return counter; }\n"), g
    local = "int main(void) {\n    int counter = 0;\n    return counter;\n}\n"
    assert "C globals" not in hints_for(local)
    assert "C truth values" in hints_for("int main(void) { int v = 4; return !(v & (v - 1)); }")
    assert "C truth values" not in hints_for('int main(void) { puts("Hello!"); return 1 != 2; }')
    assert "no ?: operator" in hints_for("int main(int c, char **v) { return c > 1 ? 0 : 1; }")
    assert "no ?: operator" not in hints_for('int main(void) { puts("what? no: never"); return 0; }')
    assert "no ?: operator" in hints_for('int main(int c, char **v) { printf(c > 1 ? "%d" : "-%d", c); }')
    assert "no ?: operator" not in hints_for("int main(void) { int c = getc(stdin); return c == '?' || c == ':'; }")
    eof = hints_for("int main(void) { int c; while ((c = getchar()) != EOF) putchar(toupper(c)); }")
    assert "read_to_end" in eof and "to_ascii_uppercase" in eof and "putchar" in eof
    stars = hints_for('int main(void) { int v; while (scanf("%d", &v) == 1) putchar(\'*\'); }')
    assert "putchar" in stars and "read_to_end" not in stars  # numbers, read as text: no bytes to split
    assert "read_to_end" not in hints_for('int main(void) { printf("%d", 1); }')
    for loop in ("for (i = 0; i < n;) i = j;", "for (;;) break;", "for (size_t i = 0; i < n; ) { i += 2; }"):
        assert "is a `while` loop in Rust" in hints_for(f"int main(void) {{ {loop} }}"), loop
    assert "`while` loop" not in hints_for("int main(void) { for (int i = 0; i < f(n, 2); i++) g(i); }")
    assert "printf" in hints_for('int main(void) { printf("see http://x/%d\\n", 1); }')  # no comment in a string


def test_the_worked_example_is_a_faithful_translation_that_passes_its_own_tests():
    """The few-shot example teaches by imitation: its Rust must pass, in the sandbox, the tests its C passes."""
    from lab.c2rust.advice import EXAMPLE_C, EXAMPLE_RUST, EXAMPLE_TESTS
    from lab.c2rust.harness import check_source
    c, rust = check_source(EXAMPLE_C, EXAMPLE_TESTS, "c"), check_source(EXAMPLE_RUST, EXAMPLE_TESTS)
    assert c.ok and rust.ok, (c.summary(), rust.summary())
    assert {t.exit_code for t in EXAMPLE_TESTS} == {0, 1, 2}  # C's return codes, shown by example
    assert "unsafe" not in EXAMPLE_RUST and "extern" not in EXAMPLE_RUST


def test_exit_lines_finds_main_returns_and_exits_with_that_status_only():
    from lab.c2rust.advice import exit_lines
    src = ('int f(void) { return 1; }\n'               # a helper's return ends nothing
           '/* return 1; */\n'                         # nor does a comment
           'int main(int c, char **v) { printf("}"); if (c < 2) { return 1; }\n'  # a "}" in a string closes nothing
           '  if (c > 5) exit(EXIT_FAILURE);\n'
           '  return c > 3 ? 2 : 0; }\n'
           'int g(void) { exit(1); }\n')                # exit() ends the program from anywhere
    assert exit_lines(src, 1, most=5) == ['line 3: int main(int c, char **v) { printf("}"); if (c < 2) { return 1; }',
                                          "line 4: if (c > 5) exit(EXIT_FAILURE);", "line 6: int g(void) { exit(1); }"]
    assert exit_lines(src, 2) == ["line 5: return c > 3 ? 2 : 0; }"]
    assert exit_lines(src, 0) == ["line 5: return c > 3 ? 2 : 0; }"]
    assert exit_lines("int main(void) { return -1; }", 255) == ["line 1: int main(void) { return -1; }"]
    assert exit_lines("int main(void) { return x1 + 10; }", 1) == []  # 1 inside a name or a number is not 1


def test_a_program_that_reads_all_of_stdin_more_than_once_is_recognised():
    from lab.c2rust.advice import rereads_stdin
    head = "use std::io::Read;\nfn main() {\n    let mut s = String::new();\n"
    twice = head + "    std::io::stdin().read_to_string(&mut s).unwrap();\n    let mut t = String::new();\n" \
        "    std::io::stdin().read_to_end(&mut t).unwrap();\n}\n"
    in_loop = head + "    for _ in 0..3 {\n        std::io::stdin().lock().read_to_string(&mut s).unwrap();\n    }\n}\n"
    once = head + "    std::io::stdin().read_to_string(&mut s).unwrap();\n    for w in s.split_whitespace() {\n" \
        "        println!(\"{}\", w);\n    }\n}\n"
    assert rereads_stdin(twice) and rereads_stdin(in_loop)
    assert not rereads_stdin(once)
    assert not rereads_stdin(once.replace("for w", '// read_to_string(x) again\n    println!(".read_to_end(");\n'
                                                   "    for w"))  # comments and strings are no calls
    files = "use std::io::Read;\nfn main() {\n    for p in [\"a\", \"b\"] {\n        let mut s = String::new();\n" \
        "        std::fs::File::open(p).unwrap().read_to_string(&mut s).unwrap();\n    }\n}\n"
    assert not rereads_stdin(files)  # files, not stdin


def test_a_crate_the_offline_registry_lacks_is_answered_with_std_alone():
    """The 1.5B, shown only the build's line (which ends with apt advice for the user), replied in prose
    `cargo install tokio` and spent its last round: the feedback now says to write it with std."""
    from pathlib import Path

    from lab.c2rust.advice import NO_CRATE, error_advice
    from lab.c2rust.harness import check_source
    from lab.c2rust.prompts import feedback
    from lab.c2rust.tasks import Case, Task

    cases = [Case(args=[], stdin="", expected="")]
    rep = check_source("use tokio::time::Duration;\nfn main() { let _ = Duration::from_secs(1); }", cases)
    assert not rep.compiled and "tokio" in rep.compile_errors
    text = feedback(rep, Task(Path("t.json"), "lab", cases))
    assert NO_CRATE in text and text.index("tokio") < text.index(NO_CRATE) < text.index("Fix it.")
    assert error_advice("error[E0433]: failed to resolve: use of undeclared crate or module `foo`") != NO_CRATE


def test_unclosed_comments_and_unfinished_headers_end_where_the_compiler_would_stop_reading():
    """The searches are bounded (an unclosed /* runs to the end, a struct body or a return is looked at for 4,000
    characters): unbounded, files of thousands of them were searched once per start, for minutes."""
    from lab.c2rust.advice import blanked, block_ends, exit_lines

    def block_end(code: str, start: int) -> int:  # a brace counter from `start`, one block at a time
        depth, end = 1, start
        while end < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[end], 0)
            end += 1
        return end
    assert blanked('int x; /* open "q" \n return 1;') == "int x; " + " " * 12 + "\n" + " " * 10
    code = "fn f() { for a in b { {} } loop { } } fn g() { while x {"
    ends = block_ends(code)
    assert all(ends[m.end()] == block_end(code, m.end()) for m in re.finditer(r"\{", code))
    assert ends[code.index("{") + 1] == code.index(" fn g")  # the whole of f; g's blocks run to the end
    long_body = "struct node {\n" + "  int f%d;\n" * 300 + "  struct node *next;\n};\nint main(void) { return 0; }\n"
    assert "points to its own type" in hints_for(long_body)  # 3,000 characters of fields: within the bound
    assert exit_lines("int main(int argc, char **argv) {\n  if (argc < 2) return 3;\n  return 0;\n}\n", 3) == \
        ["line 2: if (argc < 2) return 3;"]
