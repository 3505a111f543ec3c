"""What the C -> Rust loop tells the model (lab/c2rust/prompts.py): the system prompt and the feedback."""

from pathlib import Path

from lab.c2rust.harness import check_source
from lab.c2rust.tasks import Case, Task

MISMATCH = 'fn main() {\n    let x: i32 = "a";\n    println!("{}", x);\n}\n'
EXTERN = ('extern "C" {\n    fn reverse(s: *mut u8);\n}\nfn main() {\n    let mut b = *b"ab\\0";\n'
          '    unsafe { reverse(b.as_mut_ptr()) };\n}\n')


def test_an_extern_c_link_to_the_original_is_refused_in_the_prompt_and_named_in_feedback():
    from lab.c2rust.prompts import SYSTEM, feedback
    assert 'extern \\"C\\"' not in SYSTEM and 'never declare the C functions in an `extern "C"` block' in SYSTEM
    rep = check_source(EXTERN, [Case(args=[], stdin="", expected="")])
    assert not rep.compiled  # `reverse` is declared, never defined: the link fails
    note = feedback(rep, Task(path=Path("t.json"), format="lab"))
    assert note.startswith('Do not declare C functions in an `extern "C"` block')
    plain = check_source(MISMATCH, [Case(args=[], stdin="", expected="")])
    assert "extern" not in feedback(plain, Task(path=Path("t.json"), format="lab"))


def test_compile_feedback_advises_on_the_error_codes_it_shows():
    from lab.c2rust.advice import error_advice
    from lab.c2rust.prompts import feedback
    errs = ("error[E0382]: borrow of moved value: `head`\n --> a.rs:9\nerror[E0502]: cannot borrow `v` as mutable\n"
            "error[E0382]: use of moved value\nerror[E0506]: cannot assign\nerror[E0308]: mismatched types\n"
            "error[E0599]: no method named `foo`\n")
    advice = error_advice(errs).splitlines()
    assert [a.split(" ")[0] for a in advice] == ["E0382", "E0499/E0502", "E0308"]  # distinct, in order, at most 3
    assert error_advice("error[E0999]: something new\nerror: aborting") == ""
    rep = check_source('fn main() { println!("{:2d}", 7); }', [Case(args=[], stdin="", expected=" 7\n")])
    assert "unknown format trait `d`" in rep.compile_errors  # rustc's words, which carry no error code
    assert error_advice(rep.compile_errors).startswith("Rust format specs have no type letter: C's %5d is {:5}")
    rep = check_source("fn main() { let v = vec![1]; let w = v; println!(\"{:?} {:?}\", v, w); }",
                       [Case(args=[], stdin="", expected="")])
    text = feedback(rep, Task(Path("t.json"), "lab", [Case(args=[], stdin="", expected="")]))
    assert "error[E0382]" in text and "E0382 (use of moved value)" in text
    assert text.index("error[E0382]") < text.index("E0382 (use of moved value)") < text.index("Fix it.")


def test_a_wrong_output_is_named_by_its_kind_in_the_feedback():
    from lab.c2rust.harness import output_note
    from lab.c2rust.prompts import feedback
    both = output_note("olleh (5)\ncba (3)\n", "olleh (    5)\n\ncba (  3)\n\n")
    assert "extra empty lines" in both and "spacing or padding" in both
    assert output_note("a\nb\n", "b\na\n") == "the right lines in another order"
    assert output_note("a\nb\n", "a\n") == "the first 1 line(s) are right, then the output stops"
    assert output_note("a\nb\n", "") == "it printed nothing; 2 line(s) were expected"
    assert output_note("a\nb\n", "a\nc\n") == ""  # other content: the diff says it, no rule guesses
    case = Case(args=["hello"], stdin="", expected="olleh (5)\n")
    rep = check_source('fn main() { println!("olleh (5)\\n"); }', [case])
    assert rep.cases[0].reason == "wrong_output" and "extra empty lines" in rep.cases[0].note
    text = feedback(rep, Task(Path("t.json"), "lab", [case]))
    assert "wrong_output (extra empty lines: println! already ends each line" in text and "```diff" in text
    rep = check_source('fn main() { println!("olleh (5)"); }', [Case(["x"], "", "olleh (5)\n", exit_code=1)])
    assert rep.cases[0].reason == "exit_code" and "std::process::exit(1)" in rep.cases[0].note


def test_a_panic_reaches_the_feedback_with_its_message():
    """A Rust translation that unwraps a parse C never fails on (atoi("-1") vs "-1".parse::<u8>()) prints nothing;
    the stdout diff cannot say why, the panic's line on stderr does."""
    from lab.c2rust.prompts import feedback
    case = Case(args=["-1"], stdin="", expected="ok\n")
    src = 'fn main() { let k: u8 = std::env::args().nth(1).unwrap().parse().unwrap(); println!("ok {}", k); }'
    rep = check_source(src, [case])
    c = rep.cases[0]
    assert c.reason == "wrong_output" and "panicked" in c.stderr and "ParseIntError" in c.stderr, c
    text = feedback(rep, Task(Path("t.json"), "lab", [case]))
    assert f"it wrote to stderr (exit status {c.exit_code}):\n```\n" in text and "InvalidDigit" in text
    rep = check_source('fn main() { println!("ok"); }', [case])
    assert rep.cases[0].passed and rep.cases[0].stderr == ""


def test_an_exit_status_failure_quotes_the_c_lines_that_end_with_it():
    """Told only the status, the 1.5B kept a bare `return;` in Rust's main for three rounds (reverse_string's
    `return argc > 1 ? 0 : 1;`, bit_manipulation's usage check)."""
    from lab.c2rust.prompts import feedback
    c_src = ('#include <stdio.h>\nint main(int argc, char **argv) {\n    for (int i = 1; i < argc; i++) '
             'puts(argv[i]);\n    return argc > 1 ? 0 : 1;\n}\n')
    case = Case(args=[], stdin="", expected="", exit_code=1)
    rep = check_source("fn main() { for a in std::env::args().skip(1) { println!(\"{}\", a); } }", [case])
    assert rep.cases[0].reason == "exit_code"
    text = feedback(rep, Task(Path("t.json"), "lab", [case], c_source=c_src))
    assert "ends with status 1 here (line 4: return argc > 1 ? 0 : 1;)" in text
    assert "`std::process::exit(1);`" in text
    assert "with no arguments it is 1, never 0" in text  # the 1.5B then wrote `if args.is_empty() { exit(1) }`
    assert "ends with status" not in feedback(rep, Task(Path("t.json"), "lab", [case]))  # no C source: no quote


def test_a_program_that_reads_stdin_once_per_number_is_told_to_read_it_once():
    """The 1.5B's matrix read all of stdin for each number, as C's scanf reads one; every read after the first got
    "" and the program panicked on the parse."""
    from lab.c2rust.prompts import STDIN_NOTE, feedback
    case = Case(args=[], stdin="2 3\n", expected="5\n")
    per_number = ("use std::io::Read;\nfn main() {\n    let mut sum = 0i64;\n    for _ in 0..2 {\n"
                  "        let mut s = String::new();\n        std::io::stdin().read_to_string(&mut s).unwrap();\n"
                  "        sum += s.trim().parse::<i64>().unwrap_or(0);\n    }\n    println!(\"{}\", sum);\n}\n")
    rep = check_source(per_number, [case])
    assert rep.compiled and not rep.ok
    assert STDIN_NOTE in feedback(rep, Task(Path("t.json"), "lab", [case]))
    once = per_number.replace("for _ in 0..2 {\n        let mut s", "let mut s").replace(
        "        sum += s.trim().parse::<i64>().unwrap_or(0);\n    }\n",
        "    for w in s.split_whitespace() { sum += w.parse::<i64>().unwrap_or(0); }\n")
    rep = check_source(once, [case])
    assert rep.ok, rep.summary()
    bad = check_source(once.replace("println!(\"{}\", sum)", "println!(\"{}\", sum + 1)"), [case])
    assert not bad.ok and STDIN_NOTE not in feedback(bad, Task(Path("t.json"), "lab", [case]))


def test_a_program_that_ignores_an_input_the_c_program_reads_is_told_which():
    """The 1.5B's run-length encoder read stdin where the C program encodes each argument, for four rounds of
    diffs that showed the arguments; the feedback now names the input it never reads."""
    from lab.c2rust.advice import unread_inputs
    from lab.c2rust.prompts import feedback
    c_args = ('#include <stdio.h>\nint main(int argc, char **argv) {\n    for (int i = 1; i < argc; i++) '
              'printf("%s!\\n", argv[i]);\n    return 0;\n}\n')
    case = Case(args=["hi"], stdin="", expected="hi!\n")
    task = Task(Path("t.json"), "lab", [case], c_source=c_args)
    reads_stdin = ('use std::io::Read;\nfn main() {\n    let mut s = String::new();\n'
                   '    std::io::stdin().read_to_string(&mut s).unwrap();\n    print!("{}", s);\n}\n')
    rep = check_source(reads_stdin, [case])
    assert rep.compiled and not rep.ok
    text = feedback(rep, task)
    assert "never calls `std::env::args()`" in text and "The C program never reads stdin" in text
    assert text.index("never calls") < text.index("0/1 tests pass")
    reads_args = 'fn main() {\n    for a in std::env::args().skip(1) {\n        println!("{}?", a);\n    }\n}\n'
    rep = check_source(reads_args, [case])
    assert not rep.ok and "never calls" not in feedback(rep, task)  # wrong, but it reads what C reads
    c_stdin = ('#include <stdio.h>\nint main(void) {\n    int x;\n    while (scanf("%d", &x) == 1) '
               'printf("%d\\n", x);\n}\n')
    note = unread_inputs(c_stdin, 'fn main() {\n    // stdin would be read here\n    println!("1");\n}\n')
    assert note.startswith("The C program reads stdin, but your program never does")  # a comment reads nothing
    assert unread_inputs(c_stdin, "use std::io::Read;\nfn main() { let mut s = String::new(); std::io::stdin()"
                                  ".read_to_string(&mut s).unwrap(); println!(\"{}\", s); }\n") == ""
    by_lines = ("use std::io::BufRead;\nfn main() { for l in std::io::stdin().lock().lines() "
                "{ println!(\"{}\", 1); } }\n")
    assert "scanf reads whitespace-separated words, not lines" in unread_inputs(c_stdin, by_lines)
    with_fgets = c_stdin.replace("int x;", "char b[9]; fgets(b, 9, stdin); int x;")  # C reads a line itself
    assert unread_inputs(with_fgets, by_lines) == ""
    assert unread_inputs("int main(int argc, char **argv) { return 0; }", "fn main() {}") == ""  # argv unused
    assert unread_inputs('int main(void) { puts("x"); }', "fn main() {}") == ""
