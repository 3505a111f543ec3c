"""What the model is told beyond the C program: cheat-sheet lines by C construct, advice by rustc error code."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable

from lab.c2rust.build import MISSING_CRATE
from lab.c2rust.tasks import Case

# C -> Rust by construct, each line sent only where the C program uses its construct (and the context has room,
# `first_messages`): what the 1.5B got wrong in data/c_to_rust (usize indexes, argv[0], printf widths, pointer
# lists). Sent whole, the 0.5B copied them into hello world (stdin and stderr handles): a small model writes
# what it is shown.
HINTS: tuple[tuple[str, str], ...] = (
    (r"\bargv\b|\bargc\b",
     "- argc/argv: `let args: Vec<String> = std::env::args().collect();` args.len() is argc, args[0] the program "
     "name."),
    (r"\bunsigned\b|\blong\b|\bsize_t\b|\w\s*\[",
     "- int: i32, unsigned: u32, long: i64; array indexes and sizes: usize (`i as usize`); unsigned C arithmetic "
     "wraps (wrapping_add, wrapping_sub, wrapping_mul)."),
    (r"\b(?:atoi|atol|atoll|strto\w+|scanf|sscanf|fscanf)\b",
     "- atoi/strtol/strtoul: `s.trim().parse::<i64>().unwrap_or(0)` then cast; scanf: read all of stdin into a "
     "String once and take `split_whitespace()` tokens."),
    (r"(?#strings)%[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z)?[dixXufcs]",
     '- printf: "%d %ld %s" -> print!("{} {} {}"); "%08x" -> {:08x}; "%.2f" -> {:.2}; "%5d" -> {:5}; '
     '"%-8s" -> {:<8}.'),
    (r"(?:^|[^\w\"'!])!(?!=)\s*[\w(]",  # C's logical not (the 1.5B wrote `v & !(v - 1)` for `!(v & (v - 1))`)
     "- C truth values: `!x` on an integer is `x == 0` (Rust's `!` on integers flips every bit); `if (x)`, "
     "`while (x)` and `a && b` on integers test `!= 0`."),
    (r"\bmalloc\b|->|\]\s*\[|\bchar\s*\*",
     "- fixed arrays `long a[N][M]` -> `vec![vec![0i64; M]; N]`; structs linked by malloc'd pointers -> a Vec, or "
     "Option<Box<Node>> moved with take(); C strings -> String, or Vec<u8> for byte-level work."),
    # bounded bodies (4,000 characters) here and in EXIT: unbounded, a 400 KB file of unclosed `struct N {` took
    # 79 s to search, each match running to the end of the file, before its C was built (the resume key has it)
    (r"struct\s+(\w+)\s*\{[^}]{0,4000}?\bstruct\s+\1\s*\*",
     # no field shorthand here: the 1.5B copied `Node { value, next }` into a function without a `value` (E0425)
     "- a struct that points to its own type (list, tree): `struct Node { val: i32, next: Option<Box<Node>> }`; "
     "push `head = Some(Box::new(Node { val: x, next: head.take() }))`; walk `let mut cur = &head; while let "
     "Some(n) = cur { ...; cur = &n.next; }`; reverse by take() of each next."),
    (r"\?[^?:;\n\"]+:",  # C's conditional operator (the 1.5B kept `a[n > 10 ? 10 : n]` for four rounds)
     "- `c ? a : b` -> `if c { a } else { b }` (Rust has no ?: operator; an index becomes "
     "`a[if c { x } else { y }]`)."),
    # reading and writing bytes apart: with both in one line, a program that scanf's numbers and putchar's stars
    # read stdin into a Vec<u8> and called split_whitespace on it, four rounds of E0599 (the 1.5B, 2026-12-07)
    (r"\b(?:getchar|getc|fgetc|fgets)\b",
     "- getchar()/fgets until EOF: read all of stdin once (`let mut buf = Vec::new(); "
     "std::io::stdin().read_to_end(&mut buf).unwrap();`, `use std::io::Read;`) and loop over the bytes."),
    (r"\b(?:putchar|putc|fputc)\b",
     "- putchar(c): `print!(\"{}\", c as u8 as char)`, or collect the bytes and write them once "
     "(`std::io::stdout().write_all(&out)`, `use std::io::Write;`)."),
    # the 1.5B's run-length encoder kept `for i in 0..n { ...; i = j; }` for C's `for (i = 0; i < n;) {...; i = j;}`
    (r"\bfor\s*\([^;()]*;[^;()]*;\s*\)",
     "- a C `for` without its increment (`for (i = 0; i < n;)`), or whose body changes its counter, is a `while` "
     "loop in Rust (`let mut i = 0; while i < n { ...; i = j; }`): `for i in 0..n` ignores assignments to i. "
     "`for (;;)` is `loop`."),
    (r"\b(?:isalpha|isdigit|isspace|isalnum|isupper|islower|toupper|tolower)\b",
     "- <ctype.h> on a byte b: isalpha -> `b.is_ascii_alphabetic()`, isdigit -> `b.is_ascii_digit()`, isspace -> "
     "`b.is_ascii_whitespace()`, toupper -> `b.to_ascii_uppercase()`."),
    (r"(?m)^(?:static\s+)?(?!typedef|extern|return|struct\s+\w+\s*\{)[A-Za-z_][\w \t*]*?[\s*]\**[A-Za-z_]\w*"
     r"\s*(?:\[[^\]]*\]\s*)?(?:=[^;(]*)?;",
     "- C globals (file-scope variables): keep that state in a struct (or locals) passed as `&mut` to the "
     "functions that use it; a `static mut` needs `unsafe { }` at every use."),
)

# What the 1.5B most often failed to fix from the compiler's text alone, by error code (one line each, at most
# three codes a round, after the errors): ownership and borrows, C's untyped arithmetic and globals.
ERROR_ADVICE: dict[str, str] = {
    "E0382": "E0382 (use of moved value): borrow instead (`&x`, `.iter()`), `.clone()` it, or for an "
             "Option<Box<T>> use `.as_ref()`/`.as_mut()` to look and `.take()` to move out.",
    "E0499": "E0499/E0502 (overlapping borrows): end one borrow before the next; copy the values you need into "
             "locals first, or index with usize instead of holding references.",
    "E0308": "E0308 (mismatched types): convert explicitly with `as` (i32 as usize, u8 as char, i64 as f64); a "
             "block's value is its last expression without `;`.",
    "E0277": "E0277 (trait not implemented): slices and Vecs are indexed by usize (`v[i as usize]`); both sides of "
             "+, -, == must have one type (cast one).",
    "E0133": "E0133 (unsafe): a `static mut` may only be used inside `unsafe { }`; better, move it into a struct or "
             "a local passed as `&mut`.",
    "E0425": "E0425 (not found): declare it before use; C #define constants become `const NAME: T = ...;`, "
             "C globals a struct field or a local passed along; a struct literal `Node { x }` needs a variable x: "
             "write `Node { x: value }`.",
    "E0384": "E0384/E0596 (not mutable): declare it `let mut`, take `&mut` parameters where C writes through a "
             "pointer.",
    "E0381": "E0381 (possibly uninitialized): give the variable an initial value; C leaves it undefined, Rust "
             "does not.",
    "E0599": "E0599 (no such method): check the type (String, &str, char, Option); unwrap an Option first; "
             "integer literals need a type (`1i64.pow(2)`).",
}
ERROR_ALIASES = {"E0502": "E0499", "E0506": "E0499", "E0596": "E0384"}


# build.py's line for a crate the offline registry lacks ends with apt advice for the user; the 1.5B, shown it,
# replied `cargo install tokio` in prose and spent its last round
NO_CRATE = ("Only Rust's standard library is available (nothing can be downloaded here): write the program "
            "without that crate, with std alone.")


# Errors without a code, by their words: printf's type letters kept in Rust formats (`{:2d}`, the 1.5B's histogram)
TEXT_ADVICE: dict[str, str] = {
    "unknown format trait": "Rust format specs have no type letter: C's %5d is {:5}, %-8s {:<8}, %05.2f {:05.2}, "
                            "%x {:x}, %ld and %lu {}.",
}


def error_advice(errors: str, most: int = 3) -> str:
    """One line of advice for each of the first `most` distinct error codes rustc reported that have one (and for
    errors without a code that TEXT_ADVICE knows by their words); for a crate that is not available (rustc never
    ran), the line that says to use std alone."""
    if MISSING_CRATE in errors:
        return NO_CRATE
    seen: list[str] = []
    for code in re.findall(r"error\[(E\d{4})\]", errors):
        code = ERROR_ALIASES.get(code, code)
        if code in ERROR_ADVICE and code not in seen:
            seen.append(code)
    lines = [ERROR_ADVICE[c] for c in seen] + [text for words, text in TEXT_ADVICE.items() if words in errors]
    return "\n".join(lines[:most])


def blanked(src: str, strings: bool = True) -> str:
    """src with comments, strings and char literals blanked (`strings=False`: comments only), newlines kept (line
    numbers stay; a "}" in a printf format closes no block). One pass, so a "//" inside a string is no comment."""
    def blank(m: re.Match[str]) -> str:
        if not strings and m.group(0)[0] in "\"'":
            return m.group(0)
        return re.sub(r"[^\n]", " ", m.group(0))
    # an unclosed /* runs to the end (as gcc reads it): tried at each "/*", `.*?\*/` alone took minutes on a
    # 300 KB file of them
    return re.sub(r"/\*.*?(?:\*/|\Z)|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", blank, src, flags=re.S)


def hints_for(src: str) -> str:
    """The cheat-sheet lines for the constructs this C program uses ("" when none does)."""
    # Only printf formats look inside strings; every other construct is looked for with strings, char literals
    # and comments blanked (a comment's "->" is no pointer). Strings once became `""`, which hid the `?:` of
    # `printf(j ? " %ld" : "%ld")` in 4 of the project's 13 programs.
    code, bare = blanked(src, strings=False), blanked(src)
    lines = [text for pattern, text in HINTS if re.search(pattern, code if pattern.startswith("(?#strings)") else bare)]
    return "\n".join(["C to Rust, by construct:", *lines]) if lines else ""


EXIT = re.compile(r"\breturn\b([^;]{0,4000});|\bexit\s*\(([^;]{0,4000})\)\s*;")
NAMED_STATUS = {"EXIT_FAILURE": 1, "EXIT_SUCCESS": 0}


def _ends_with(expr: str, status: int) -> bool:
    """Whether `return expr;` / `exit(expr);` may end the program with `status`: a literal equal to it (mod 256),
    or an expression naming it (`argc > 1 ? 0 : 1`)."""
    expr = expr.strip().strip("()").strip()
    literal = NAMED_STATUS.get(expr, int(expr) if re.fullmatch(r"-?\d+", expr) else None)
    if literal is not None:
        return literal % 256 == status
    names = [str(status)] + [k for k, v in NAMED_STATUS.items() if v == status]
    return any(re.search(rf"(?<![\w.]){n}(?![\w.])", expr) for n in names)


def lines_of(src: str) -> Callable[[int], tuple[int, str]]:
    """A lookup of (1-based line number, that line's text stripped) by offset into `src`, each in O(log lines)
    (counting newlines per hit made 20,000 `exit(1);` lines take 1.5 s)."""
    starts = [0] + [m.end() for m in re.finditer("\n", src)]

    def at(offset: int) -> tuple[int, str]:
        n = bisect_right(starts, offset)
        end = starts[n] - 1 if n < len(starts) else len(src)
        return n, src[starts[n - 1]:end].strip()[:160]
    return at


def block_ends(code: str) -> dict[int, int]:
    """Where each block closes, every block in one pass (a reply of a thousand loops is not scanned a thousand
    times): the offset just after each "{" -> the offset just after its "}" (len(code) where it never closes)."""
    ends: dict[int, int] = {}
    opened: list[int] = []
    for m in re.finditer(r"[{}]", code):
        if m.group() == "{":
            opened.append(m.end())
        elif opened:
            ends[opened.pop()] = m.end()
    return ends | dict.fromkeys(opened, len(code))


READ_ALL = re.compile(r"\.read_to_(?:string|end)\s*\(")
# a loop's header up to its "{", at most 300 characters: unbounded, text of `while`s without one took each
# match to the end (quadratic; minutes on a 280 KB reply)
LOOP = re.compile(r"\b(?:for|while|loop)\b[^{;]{0,300}\{")


def rereads_stdin(rust: str) -> bool:
    """Whether a Rust program reads all of stdin more than once: two read_to_string/read_to_end calls, or one in a
    loop. Every read after the first gets "": the 1.5B's matrix read the whole input once per number (scanf by
    scanf) for two rounds beside the sheet line that says read once."""
    code = blanked(rust)
    calls = [m.start() for m in READ_ALL.finditer(code)]
    if "stdin" not in code or not calls:
        return False
    ends = block_ends(code)
    return len(calls) > 1 or any(m.end() <= calls[0] < ends[m.end()] for m in LOOP.finditer(code))


C_READS_STDIN = re.compile(r"\b(?:scanf|getchar|gets|getline)\s*\(|\bstdin\b|\bread\s*\(\s*(?:0|STDIN_FILENO)\b")
C_MAIN_PARAMS = re.compile(r"\bmain\s*\([^)]{0,1000}\)")  # bounded as EXIT
ARGS_UNREAD = ("The C program reads its command-line arguments, but your program never calls `std::env::args()`: "
               "each test gives its input as arguments (`args` above). Read them: `let args: Vec<String> = "
               "std::env::args().collect();` (args[1] is C's argv[1]).{stdin}\n")
STDIN_UNREAD = ("The C program reads stdin, but your program never does: read all of it once (`let mut input = "
                "String::new(); std::io::stdin().read_to_string(&mut input).unwrap();`, `use std::io::Read;`) and "
                "take what each C read takes from it.\n")

# The 1.5B's ring buffer read a line per command where C's scanf("%15s") reads a word, for four rounds: the tests
# give `push 1 push 2 pop` on one line (2026-12-07).
SCANF_WORDS = ("C's scanf reads whitespace-separated words, not lines: one line may hold several commands or "
               "numbers, and one number may stand on the next line. Read all of stdin once and take each word "
               "from `input.split_whitespace()` as the C program's scanf calls take them.\n")


def unread_inputs(c_src: str, rust: str) -> str:
    """A note where the Rust program ignores an input the C program reads (argv never collected, stdin never read)
    or reads by lines what C's scanf reads by words ("" otherwise). The 1.5B's run-length encoder read stdin,
    where the C program encodes each argument, for four rounds of `wrong_output` diffs that showed the arguments
    (2026-12-07)."""
    c, r = blanked(c_src), blanked(rust)
    c_args = bool(re.search(r"\bargv\b|\bargc\b", C_MAIN_PARAMS.sub("main()", c)))
    c_stdin = bool(C_READS_STDIN.search(c))
    r_args = bool(re.search(r"\bargs(?:_os)?\s*\(", r))
    r_stdin = bool(re.search(r"\bstdin\b|\bread\s*\(\s*(?:0|libc::STDIN_FILENO)\b", r))
    note = ""
    if c_args and not r_args:
        note += ARGS_UNREAD.format(stdin="" if c_stdin or not r_stdin else " The C program never reads stdin; the "
                                   "tests give nothing there.")
    if c_stdin and not r_stdin:
        note += STDIN_UNREAD
    elif re.search(r"\bscanf\s*\(", c) and not re.search(r"\b(?:fgets|getline)\s*\(", c) \
            and re.search(r"\.(?:read_line|lines)\s*\(", r):
        note += SCANF_WORDS
    return note


def exit_lines(src: str, status: int, most: int = 2) -> list[str]:
    """`line N: text` for the C lines that end the program with `status`: a `return` in main, an `exit()`
    anywhere. Told only the status, the 1.5B kept a bare `return;` in Rust's main (exit 0) for three rounds in
    reverse_string and bit_manipulation, whose usage check returns 1."""
    code = blanked(src)
    m = re.search(r"\bmain\s*\([^)]{0,1000}\)\s*\{", code)
    start = m.end() if m else len(code)
    end = block_ends(code).get(start, len(code))
    line, found = lines_of(src), []
    for hit in EXIT.finditer(code):
        returns = hit.group(1) is not None
        in_main = start <= hit.start() < end
        if _ends_with(hit.group(1) if returns else hit.group(2), status) and (in_main or not returns):
            found.append("line {}: {}".format(*line(hit.start())))
            if len(found) == most:
                break
    return found


# One worked translation, shown as an earlier turn (few-shot) before the real program when asked (--example): the
# idioms the 1.5B missed most, by example rather than by rule (argv and its count, a usage line on stderr with
# C's exit code, scanf over stdin, strtol, unsigned wrapping, printf widths and %.2f, `!x`, `?:`). Off by
# default: the 1.5B copied it (`use std::io::Read;` into programs without stdin) and passed 0 of 8 data programs
# (5/29 cases) against 1 of 8 (10/29) without it. Written for the project; a test checks that this Rust passes
# these cases against this C.
EXAMPLE_C = """\
/* Scale the numbers on stdin by the factor in argv[1]; print their count, sum, mean and a checksum. */
#include <stdio.h>
#include <stdlib.h>

unsigned checksum(const long *v, int n) {
    unsigned h = 2166136261u;
    for (int i = 0; i < n; i++) { h ^= (unsigned)v[i]; h *= 16777619u; }
    return h;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s FACTOR\\n", argv[0]); return 2; }
    long factor = strtol(argv[1], NULL, 10);
    long v[100];
    int n = 0;
    while (n < 100 && scanf("%ld", &v[n]) == 1) n++;
    if (n == 0) { printf("no numbers\\n"); return 1; }
    long sum = 0;
    for (int i = 0; i < n; i++) { v[i] *= factor; sum += v[i]; }
    printf("%d numbers, sum %ld, mean %.2f\\n", n, sum, (double)sum / n);
    printf("checksum %08x %s\\n", checksum(v, n), !(sum % 2) ? "even" : "odd");
    return 0;
}
"""
EXAMPLE_RUST = """\
use std::io::Read;
use std::process::exit;

fn checksum(v: &[i64]) -> u32 {
    let mut h: u32 = 2166136261;
    for &x in v {
        h ^= x as u32;
        h = h.wrapping_mul(16777619); // unsigned C arithmetic wraps
    }
    h
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 {
        eprintln!("usage: {} FACTOR", args[0]);
        exit(2);
    }
    let factor: i64 = args[1].trim().parse().unwrap_or(0);
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).unwrap();
    let mut v: Vec<i64> = Vec::new();
    for token in input.split_whitespace() {
        if v.len() == 100 {
            break;
        }
        match token.parse::<i64>() {
            Ok(x) => v.push(x),
            Err(_) => break, // scanf stops at the first token that is not a number
        }
    }
    let n = v.len();
    if n == 0 {
        println!("no numbers");
        exit(1);
    }
    let mut sum: i64 = 0;
    for x in v.iter_mut() {
        *x *= factor;
        sum += *x;
    }
    println!("{} numbers, sum {}, mean {:.2}", n, sum, sum as f64 / n as f64);
    println!("checksum {:08x} {}", checksum(&v), if sum % 2 == 0 { "even" } else { "odd" });
}
"""
EXAMPLE_TESTS = [Case(["3"], "1 2 3\n4\n", "4 numbers, sum 30, mean 7.50\nchecksum 037e2ef9 even\n"),
                 Case(["-2"], "7 x 9", "1 numbers, sum -14, mean -14.00\nchecksum f6f39c95 even\n"),
                 Case(["5"], "", "no numbers\n", 1),
                 Case([], "", "", 2)]
