"""Check a program against its test task: build it, run every case sandboxed, compare as the task says."""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab import LabError, paths
from lab.c2rust import sandbox
from lab.c2rust.build import build_c, build_rust, code_only
from lab.c2rust.tasks import Case, Task, normalize, program_task
from lab.messages import strip_reasoning

CASE_CPU_S = 4        # CPU seconds per case (RLIMIT_CPU); the samples take milliseconds
CASE_WALL_S = 10.0    # wall clock per case, sandbox start-up (~20 ms) included
# said with a timeout: the 1.5B read "timeout" as slow I/O (is_vowel calling itself forever) and asked for tokio
STDIN_CLOSED = "stdin is closed after the input, so no read waits"


@dataclass
class CaseResult:
    """One test case's outcome; reason is ok, wrong_output, exit_code, timeout, output_limit or crash."""

    index: int
    passed: bool
    reason: str
    exit_code: int | None = None
    diff: str = ""
    note: str = ""      # what kind of difference it is, where a rule can tell (see output_note), or which limit
    stderr: str = ""    # the end of what a failing own-format case wrote to stderr: a panic's message and line


@dataclass
class CheckReport:
    """A program checked against its test task."""

    compiled: bool
    compile_errors: str = ""
    cases: list[CaseResult] = field(default_factory=list)
    crates: list[str] = field(default_factory=list)
    source: str = ""                  # what was built (the input plus any fixes rustc suggested)
    added_imports: list[str] = field(default_factory=list)
    applied_fixes: list[str] = field(default_factory=list)
    spliced: list[str] = field(default_factory=list)  # items a partial reply lacked, kept from the program before

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def ok(self) -> bool:
        return self.compiled and bool(self.cases) and self.passed == len(self.cases)

    def summary(self) -> str:
        """One line for humans."""
        if not self.compiled:
            return "does not compile: " + first_error(self.compile_errors)
        bad = [f"case {c.index}: {c.reason}" for c in self.cases if not c.passed]
        return f"{self.passed}/{len(self.cases)} cases pass" + (f" ({'; '.join(bad[:3])})" if bad else "")

    def to_dict(self) -> dict[str, Any]:
        return {"compiled": self.compiled, "compile_errors": self.compile_errors, "passed": self.passed,
                "total": len(self.cases), "crates": self.crates,
                "cases": [asdict(c) for c in self.cases]}


# rustc's `error[E0425]: ...` and gcc's `prog.c:3:5: error: ...` (gcc prints `In function` lines first)
ERROR_LINE = re.compile(r"^(error|.*?: (fatal )?error)(\[\w+\])?:")


# What a link failure is about: its last line (gcc's `collect2: error: ld returned 1 exit status`, rustc's
# `error: linking with `cc` failed`) names only the linker, and the model read that for an extern "C" it declared
LINK_ERROR = re.compile(r"undefined reference to |multiple definition of |undefined symbol: |duplicate symbol: ")


def first_error(output: str) -> str:
    """The first error line of compiler output (of a link failure, the symbol's line), else its first line."""
    lines = output.strip().splitlines()
    link = next((ln.strip().removeprefix("= note: ") for ln in lines if LINK_ERROR.search(ln)), None)
    return link or next((ln for ln in lines if ERROR_LINE.match(ln)), lines[0] if lines else "?")


def _diff(expected: str, actual: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "expected", "actual",
                                        n=1))[:2000]


def output_note(expected: str, actual: str) -> str:
    """The kinds of a wrong output, where rules can name them: a small model reads "extra empty lines" where it
    misses the same fact in a diff (the 1.5B kept println!("...\\n") with a padded width for three rounds)."""
    exp, act = expected.splitlines(), actual.splitlines()
    if not actual.strip():
        return f"it printed nothing; {len(exp)} line(s) were expected"
    blank_e, blank_a = sum(not x.strip() for x in exp), sum(not x.strip() for x in act)
    if actual.rstrip() == expected.rstrip() and blank_a == blank_e:
        return "only the whitespace or newlines at the very end differ"
    notes = []
    if blank_a > blank_e:
        notes.append("extra empty lines: println! already ends each line, so a \\n inside it makes one more")
    elif blank_a < blank_e:
        notes.append("empty lines are missing")
    e2, a2 = [x for x in exp if x.strip()], [x for x in act if x.strip()]
    if a2 != e2:
        if "".join(actual.split()) == "".join(expected.split()):
            notes.append("the right characters with other spacing or padding: copy C's format exactly (a width "
                         "like {:5} only where C has one)")
        elif sorted(a2) == sorted(e2):
            notes.append("the right lines in another order")
        elif len(a2) < len(e2) and e2[:len(a2)] == a2:
            notes.append(f"the first {len(a2)} line(s) are right, then the output stops")
        elif not e2:
            notes.append("the C program prints nothing to stdout here: its messages go to stderr (eprintln!)")
        elif len(a2) > len(e2) and (extra := _unmatched(e2, a2)):  # gcd's pairs read with step 1, not i += 2
            notes.append(f"every expected line is there, plus {len(extra)} the C program does not print (first: "
                         f"{extra[0][:80]!r}): check the loop's bounds and step against C's")
        elif len(a2) < len(e2) and _unmatched(a2, e2):
            notes.append(f"{len(e2) - len(a2)} expected line(s) are missing, the others are right: check the "
                         "loop's bounds and conditions against C's")
        else:
            return ""  # a difference in content: the diff says it better than a rule
    return "; ".join(notes)


def stderr_tail(err: bytes, lines: int = 4, chars: int = 400) -> str:
    """The last lines of a run's stderr: where a Rust program panicked and why (an unwrap on a parse error is the
    commonest way a translation fails a case that C passes), which a diff of stdout cannot show."""
    text = err.decode("utf-8", "replace").strip()
    return "\n".join(text.splitlines()[-lines:])[-chars:] if text else ""


def _unmatched(short: list[str], long: list[str]) -> list[str]:
    """The lines of long that short leaves out when short is long with some lines removed (in order); [] when it
    is not."""
    out, i = [], 0
    for x in long:
        if i < len(short) and x == short[i]:
            i += 1
        else:
            out.append(x)
    return out if i == len(short) else []


def judge(case: Case, index: int, out: sandbox.Outcome) -> CaseResult:
    """Compare one run with its case: SACToR cases by normalized stdout+stderr, own cases by stdout and exit code."""
    code = out.code
    if out.timed_out:
        return CaseResult(index, False, "timeout", None, note=f"killed after {CASE_WALL_S:.0f}s wall clock "
                          f"without finishing ({STDIN_CLOSED})")
    if code == -25 or max(len(out.stdout), len(out.stderr)) >= sandbox.OUTPUT_BYTES:  # SIGXFSZ: past the cap
        return CaseResult(index, False, "output_limit", code,
                          note=f"output reached the {sandbox.OUTPUT_BYTES}-byte cap")
    if code in (-24, -9):  # SIGXCPU, or SIGKILL at the hard CPU limit
        return CaseResult(index, False, "timeout", code, note=f"{CASE_CPU_S}s of CPU without finishing: a loop "
                          f"whose condition never turns false, or a function that calls itself without end "
                          f"({STDIN_CLOSED})")
    if code is not None and code < 0:
        return CaseResult(index, False, "crash", code, note=f"killed by signal {-code}",
                          stderr=stderr_tail(out.stderr))
    if case.sactor:
        actual = normalize(out.stdout.decode("utf-8", "replace") + out.stderr.decode("utf-8", "replace"))
        expected = normalize(case.expected)
        if actual != expected:
            return CaseResult(index, False, "wrong_output", code, _diff(expected, actual),
                              output_note(expected, actual))
        return CaseResult(index, True, "ok", code)
    text = out.stdout.decode("utf-8", "replace")
    if text != case.expected:
        return CaseResult(index, False, "wrong_output", code, _diff(case.expected, text),
                          output_note(case.expected, text), stderr_tail(out.stderr))
    if case.exit_code is not None and code != case.exit_code:
        return CaseResult(index, False, "exit_code", code, f"exit {code}, expected {case.exit_code}",
                          f"the output is right but the exit status is {code}, not {case.exit_code}: end with "
                          f"std::process::exit({case.exit_code}) where the C program returns it from main",
                          stderr_tail(out.stderr))
    return CaseResult(index, True, "ok", code)


def run_cases(binary: Path, cases: list[Case], work: Path, files: dict[str, bytes] | None = None) -> list[CaseResult]:
    """Every case in its own sandboxed run (a fresh folder each, with its own copy of the data `files`, so no
    case sees another's files or what another wrote)."""
    results = []
    for i, case in enumerate(cases):
        d = work / f"case{i}"
        d.mkdir()
        exe = d / binary.name
        os.link(binary, exe)  # same folder tree: a link, not a copy per case
        for name, data in (files or {}).items():
            if (d / name) != exe:  # a `prog` left beside the C file is not the program under test
                (d / name).parent.mkdir(parents=True, exist_ok=True)
                (d / name).write_bytes(data)
        # run as ./prog from its folder: argv[0] is then the same for the C program and its translation, and
        # the same each run (a usage line printing argv[0] showed /tmp/lab-sandbox-0/lab-c2rust-PID-RANDOM/...)
        out = sandbox.run([f"./{exe.name}", *case.args], d, case.stdin, CASE_CPU_S, CASE_WALL_S)
        results.append(judge(case, i, out))
    return results


def check_source(source: str, cases: list[Case] | Task, lang: str = "rust", idiomatic: bool = False,
                 fix: bool = False) -> CheckReport:
    """Build source (rust or c) in a temporary folder, run every case, remove the folder.

    idiomatic=True compiles with `-F unsafe_code`: any `unsafe` is a compile error, not a regex count.
    fix=True applies what rustc says to change, as `cargo fix` does (the translate loop; never when grading a given
    file): the report's `source` is then what was compiled."""
    files = cases.files if isinstance(cases, Task) else {}
    cases = cases.cases if isinstance(cases, Task) else cases
    with sandbox.workdir() as tmp:
        d = Path(tmp)
        b = build_c(source, d) if lang == "c" else build_rust(source, d, forbid_unsafe=idiomatic,
                                                              fix=fix)
        built = {"crates": list(b.crates), "source": b.source or source, "added_imports": list(b.added_imports),
                 "applied_fixes": list(b.applied_fixes)}
        if not b.ok or b.binary is None:
            return CheckReport(False, b.errors, **built)
        return CheckReport(True, b.errors, run_cases(b.binary, cases, d, files), **built)


def check(c_file: str | Path, tests: str | Path, rust_file: str | Path, feed: str | None = None,
          idiomatic: bool = False) -> tuple[CheckReport, CheckReport]:
    """Check the C reference first (a failing reference is a bad task), then the Rust file."""
    task, rust_src = program_task(c_file, tests, feed), paths.read_text(rust_file, "Rust file")
    ref = check_source(task.c_source, task, "c")
    if not ref.ok:
        hint = " (a bare test_samples.json is fed as arguments unless the feed is stdin)" \
            if task.format == "sactor-samples" and feed is None else ""
        raise LabError(f"bad task: the C reference {c_file} fails its own tests: {ref.summary()}{hint}")
    return ref, check_source(rust_src, task, idiomatic=idiomatic)


def extract_rust(reply: str) -> str | None:
    """The last ```rust fenced block of a reply (reasoning removed), or None."""
    reply = strip_reasoning(reply)
    blocks = re.findall(r"```(?:rust|rs)\s*\n(.*?)```", reply, flags=re.S)
    if not blocks:
        blocks = re.findall(r"```\s*\n(.*?)```", reply, flags=re.S)
    return blocks[-1].strip() + "\n" if blocks else None


def count_unsafe(source: str) -> int:
    """Occurrences of the `unsafe` keyword outside comments and strings (reported; the gate is the compiler)."""
    return len(re.findall(r"\bunsafe\b", code_only(source)))
