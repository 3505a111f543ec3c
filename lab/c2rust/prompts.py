"""What the C -> Rust loop says to the model: the system prompt, the opening conversation, the feedback."""

from __future__ import annotations

import re
from pathlib import Path

from lab.c2rust.advice import (
    EXAMPLE_C,
    EXAMPLE_RUST,
    EXAMPLE_TESTS,
    error_advice,
    exit_lines,
    hints_for,
    rereads_stdin,
    unread_inputs,
)
from lab.c2rust.harness import CheckReport
from lab.c2rust.mismatch import counter_assigned, lost_widths
from lab.c2rust.tasks import Task
from lab.client import Client, context_room

SYSTEM = ("You translate C programs into Rust. Reply with one complete Rust program (edition 2021; the std library, "
          "and the `libc` crate where a direct translation needs it) in a single ```rust code block, with the same "
          "command-line arguments, stdin handling, stdout, stderr and exit codes as the C program. Translate every "
          "function's body into Rust; never declare the C functions in an `extern \"C\"` block (the C code is not "
          "linked in). Rust's `main` returns `()`: C's `return N;` from main becomes `std::process::exit(N)` "
          "where N is not 0. Translate faithfully, statement by statement: keep every function, loop, condition and "
          "calculation, print exactly what each printf prints, and never swap the C logic for a library shortcut.")
EXTERN_C = re.compile(r'extern\s+"C"\s*\{[^}]*\bfn\b')  # an extern block declaring functions: links to C
IDIOMATIC = ("Rewrite this working Rust program idiomatically: no `unsafe` (it is compiled with -F unsafe_code), no "
             "raw pointers, no libc; use ownership, slices, iterators and Option/Result. Behaviour must stay "
             "identical. Reply with one ```rust code block.")
# Said where a quoted exit line tests argc: told to exit(1) where C returns `argc > 1 ? 0 : 1`, the 1.5B wrote
# `if args.is_empty() { std::process::exit(1); }`, which never fires (args holds the program name).
ARGC_NOTE = (" C's argc is `std::env::args().len()`, the program name included: with no arguments it is 1, never "
             "0, so `argc < 2` is `args.len() < 2`.")
STDIN_NOTE = ("Your program reads all of stdin more than once (read_to_string/read_to_end called again, or in a "
              "loop): the first read takes everything and every later one gets an empty string. Read stdin once at "
              "the start, then take what each C scanf reads from one iterator (`let mut it = "
              "input.split_whitespace();`, `it.next()`).\n")
FEEDBACK_CASES = 3     # failing cases shown to the model, first ones first
EXAMPLE_CASES = 2      # test runs shown with the C program: the exact output format, by example


def feedback(report: CheckReport | None, task: Task, cases: int = FEEDBACK_CASES, lines: int = 30,
             repeated: bool = False, truncated: bool = False) -> str:
    """The message that tells the model what went wrong: the first compiler errors or the first failing cases."""
    if truncated and report is None:
        return ("Your reply was cut off before the code block ended. Reply with the complete program in one "
                "```rust block, shorter: no explanations.")
    if report is None:
        return "Your reply contained no ```rust code block. Reply with the complete program in one block."
    again = ("This is the same program as your previous reply; it fails the same way. Change the lines the "
             "errors point at.\n" if repeated else "")
    if EXTERN_C.search(report.source or ""):
        again += ('Do not declare C functions in an `extern "C"` block: nothing links them in. Write each one '
                  "in Rust.\n")
    if report.added_imports:
        again += f"(The imports the compiler named were added: {' '.join(report.added_imports)} Keep them.)\n"
    if report.spliced:
        again += (f"(Your reply left out {', '.join(report.spliced)}; they were kept from the program before. "
                  "Reply with the whole program.)\n")
    if report.applied_fixes:
        again += f"(The compiler's own fixes were applied: {'; '.join(report.applied_fixes[:5])}. Keep them.)\n"
    if not report.compiled:
        errs = "\n".join(report.compile_errors.splitlines()[:lines])
        advice = error_advice(report.compile_errors)
        return f"{again}The program does not compile:\n```\n{errs}\n```\n" + (f"{advice}\n" if advice else "") \
            + "Fix it."
    if rereads_stdin(report.source):
        again += STDIN_NOTE
    again += unread_inputs(task.c_source, report.source) + counter_assigned(report.source)
    if any(c.reason == "wrong_output" for c in report.cases):
        again += lost_widths(task.c_source, report.source)
    parts = []
    for c in [c for c in report.cases if not c.passed][:cases]:
        case = task.cases[c.index]
        diff = "\n".join(c.diff.splitlines()[:lines])
        ends = exit_lines(task.c_source, case.exit_code) if c.reason == "exit_code" and case.exit_code else []
        parts.append(f"- args {case.args!r}, stdin {case.stdin[:200]!r}: {c.reason}"
                     + (f" ({c.note})" if c.note else "") + (f"\n```diff\n{diff}\n```" if diff else "")
                     + (f"\nThe C program ends with status {case.exit_code} here ({'; '.join(ends)}): in Rust, "
                        f"`std::process::exit({case.exit_code});` at that point (a `return` from Rust's main exits "
                        "with 0)." + (ARGC_NOTE if any(re.search(r"\bargc\b", e) for e in ends) else "")
                        if ends else "")
                     + (f"\nit wrote to stderr (exit status {c.exit_code}):\n```\n{c.stderr}\n```" if c.stderr
                        else ""))
    return (f"{again}{report.passed}/{len(report.cases)} tests pass. Failing cases:\n" + "\n".join(parts)
            + "\nFix the program.")


def first_prompt(src: str, task: Task, examples: int = EXAMPLE_CASES) -> str:
    """The C program and its first test runs (argv, stdin, expected output): the output format by example."""
    runs = []
    for c in task.cases[:examples]:
        code = "" if c.exit_code in (0, None) else f", exit code {c.exit_code}"
        runs.append(f"- args {c.args!r}" + (f", stdin {c.stdin[:200]!r}" if c.stdin else "")
                    + f"{code}: {'output' if c.sactor else 'stdout'} {c.expected[:300]!r}")
    shown = ("\nIt is tested by running it; for example:\n" + "\n".join(runs)) if runs else ""
    return f"```c\n{src}\n```{shown}"


def example_turns() -> list[dict[str, str]]:
    """The worked translation as an earlier exchange: the user's C program and tests, the assistant's Rust."""
    shown = Task(Path("example"), "lab", EXAMPLE_TESTS)
    return [{"role": "user", "content": first_prompt(EXAMPLE_C.rstrip("\n"), shown)},
            {"role": "assistant", "content": f"```rust\n{EXAMPLE_RUST}```"}]


def first_messages(client: Client, src: str, task: Task, max_tokens: int,
                   example: bool = False) -> list[dict[str, str]]:
    """The opening conversation: system prompt, construct hints, the worked example and test runs, each dropped
    (example, then hints) while the prompt would leave less than min(max_tokens, half the context) to answer (the
    toy has 2048 tokens); the program itself always stays."""
    want = min(max_tokens, client.max_model_len // 2)
    ladder = [(True, True, EXAMPLE_CASES)] if example else []
    for shot, hints, examples in (*ladder, (False, True, EXAMPLE_CASES), (False, False, EXAMPLE_CASES),
                                  (False, False, 0)):
        sheet = hints_for(src) if hints else ""
        msgs = [{"role": "system", "content": SYSTEM + ("\n" + sheet if sheet else "")},
                *(example_turns() if shot else []),
                {"role": "user", "content": first_prompt(src, task, examples)}]
        if context_room(client.max_model_len, client.count_tokens(msgs)) >= want:
            break
    return msgs


def prompt_parts(src: str, example: bool) -> list[str]:
    """What makes the opening another question (part of a finished program's resume key): the system prompt, the
    cheat sheet for this program, the worked example where it is shown."""
    return [SYSTEM, hints_for(src), *([EXAMPLE_C, EXAMPLE_RUST] if example else [])]
