from pathlib import Path

from lab.c2rust.harness import check_source
from lab.c2rust.mismatch import SPEC, counter_assigned, lost_widths, rust_formats, rust_spec
from lab.c2rust.prompts import feedback
from lab.c2rust.tasks import Case, Task

# (printf conversion, C argument, Rust argument, what C prints)
FORMATS = [("%2d", "5", "5i32", " 5"), ("%-5d", "42", "42i32", "42   "), ("%05d", "-42", "-42i32", "-0042"),
           ("%5s", '"ab"', '"ab"', "   ab"), ("%-5s", '"ab"', '"ab"', "ab   "),
           ("%.2f", "3.14159", "3.14159f64", "3.14"),
           ("%8.3f", "2.5", "2.5f64", "   2.500"), ("%08x", "48879u", "48879u32", "0000beef"),
           ("%+d", "7", "7i32", "+7"), ("%4X", "255u", "255u32", "  FF"), ("%.3s", '"abcdef"', '"abcdef"', "abc"),
           ("%3c", "'z'", "'z'", "  z"), ("%-8.2f", "0.5", "0.5f64", "0.50    "), ("%#x", "255u", "255u32", "0xff"),
           ("%10ld", "123456789L", "123456789i64", " 123456789")]


def test_each_printf_spec_becomes_the_rust_spec_that_prints_what_c_prints():
    """The spec the note names is checked against gcc's printf and rustc's format!, each case on one line."""
    expected = "".join(f"{out}|\n" for _, _, _, out in FORMATS)
    c = "#include <stdio.h>\nint main(void) {\n" + "".join(
        f'    printf("{fmt}|\\n", {arg});\n' for fmt, arg, _, _ in FORMATS) + "    return 0;\n}\n"
    assert check_source(c, [Case([], "", expected)], lang="c").ok  # the table holds what C prints
    specs = [rust_spec(*SPEC.fullmatch(fmt).groups()) for fmt, _, _, _ in FORMATS]
    rust = "fn main() {\n" + "".join(f'    println!("{spec}|", {arg});\n'
                                     for spec, (_, _, arg, _) in zip(specs, FORMATS, strict=True)) + "}\n"
    rep = check_source(rust, [Case([], "", expected)])
    assert rep.ok, (rep.summary(), rep.compile_errors, [c.diff for c in rep.cases])
    assert rust_spec("", None, None, "d") is None and rust_spec("", "5", None, "g") is None  # plain; %g has none


def test_padding_the_rust_program_lost_is_named_by_its_c_line():
    c = ('#include <stdio.h>\n/* printf("%9d") in a comment is no format */\nint main(void) {\n    char w[16];\n'
         '    scanf("%15s", w);\n    printf("%2d-%2d |%-6s|%.1f\\n", 1, 2, w, 0.5);\n    return 0;\n}\n')
    note = lost_widths(c, 'fn main() { println!("{}-{} |{}|{}", 1, 2, "w", 0.5); }')
    assert "line 6 `printf(" in note and "%2d is {:2}, %-6s is {:<6}, %.1f is {:.1}" in note
    assert "%9d" not in note and "%15s" not in note  # a comment, and scanf's bound on a read
    assert note.count("%2d is") == 1  # once per conversion and line
    kept = 'fn main() { println!("{:>2}-{x:2} |{:<6}|{:.1}", 1, "w", 0.5, x = 2); }'
    assert lost_widths(c, kept) == ""
    assert '(in your program write "{:2}-{:2} |{:<6}|{:.1}" for "{}-{} |{}|{}")' in note  # println! took the \\n


def test_a_printf_format_becomes_rust_format_strings_without_and_with_its_specs():
    assert rust_formats("%2d-%-3s%% {x} %ld\\n") == ("{}-{}% {{x}} {}\\n", "{:2}-{:<3}% {{x}} {}\\n")
    assert rust_formats("") == ("", "")


def test_a_for_counter_assigned_in_its_body_is_named_by_its_lines():
    rust = ("fn main() {\n    let n = 5;\n    for (mut i) in 0..n {\n        let j = i + 2;\n        i = j;\n"
            "    }\n    for k in 0..n {\n        let mut k = k;\n        k += 1;\n        println!(\"{}\", k);\n    }\n"
            "    for x in 0..3 { if x == 1 { println!(\"{}\", x == 2); } }\n}\n")
    note = counter_assigned(rust)
    assert "line 5 `i = j;` changes `i`, the counter of the for loop on line 3: replace `for (mut i) in 0..n {` " \
           "with `let mut i = 0; while i < n {`" in note
    assert "`k`" not in note and "`x`" not in note  # a shadowing `let`, and a comparison, assign no counter
    assert counter_assigned("fn main() { for i in 0..3 { println!(\"{}\", i); } }") == ""


def test_the_feedback_on_wrong_output_carries_both_notes():
    """A run-length encoder as the 1.5B wrote it: its for loop ignores `i = j`, and its counts lost their width."""
    c = ('#include <stdio.h>\n#include <string.h>\nint main(int argc, char **argv) {\n    const char *s = argv[1];\n'
         '    size_t n = strlen(s);\n    for (size_t i = 0; i < n;) {\n        size_t j = i;\n'
         '        while (j < n && s[j] == s[i]) j++;\n        printf("%3zu%c", j - i, s[i]);\n        i = j;\n'
         '    }\n    putchar(\'\\n\');\n    return 0;\n}\n')
    case = Case(["aab"], "", "  2a  1b\n")
    assert check_source(c, [case], lang="c").ok
    rust = ("fn main() {\n    let s: Vec<u8> = std::env::args().nth(1).unwrap().into_bytes();\n    let n = s.len();\n"
            "    for mut i in 0..n {\n        let mut j = i;\n"
            "        while j < n && s[j] == s[i] { j += 1; }\n        print!(\"{}{}\", j - i, s[i] as char);\n"
            "        i = j;\n    }\n    println!();\n}\n")
    rep = check_source(rust, [case])
    assert rep.compiled and not rep.ok
    text = feedback(rep, Task(Path("t.json"), "lab", [case], c_source=c))
    assert "line 8 `i = j;` changes `i`" in text and "%3zu is {:3}" in text
    assert text.index("changes `i`") < text.index("0/1 tests pass")
