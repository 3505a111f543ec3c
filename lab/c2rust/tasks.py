"""Test tasks: the project's own JSON, SACToR's test_task.json (+ test_samples.json), or bare samples."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import LabError, jatext, paths

FEEDS = ("args", "stdin")
# Every case runs in a sandbox of its own, each round (~0.1 s with bubblewrap on 2 cores), and SACToR's tasks
# have 5-20: a 100,000-case file ran for minutes without a line of output before this bound
MAX_CASES = 1000
TASK_FILES = ("test_task/test_task.json", "test_task.json", "tests.json")  # a program folder's, first found wins
STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')  # a C string literal's body
# The data files a program's cases read (copied into every case's sandbox folder, each round): a text or two
# of input is KiB; 16 MiB keeps a folder that is no program's from being copied by the hundred
MAX_DATA_BYTES = 16 << 20
LOCAL_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"[^\n]*$', re.M)
# A definition of main at the start of a line, its type before it or on the line above (`int\nmain(void)`, K&R's
# bare `main()`): a .c file beside the program that has one is another program
MAIN = re.compile(r"^(?:[ \t]*(?:static|extern|signed|unsigned|int|void)\b[ \t*\n]*)*main[ \t]*\(", re.M)


@dataclass
class Case:
    """One run of the program: argv, stdin, and what must come out."""

    args: list[str]
    stdin: str
    expected: str
    exit_code: int | None = 0    # None: not checked (SACToR compares output only)
    sactor: bool = False         # compare normalized stdout+stderr as SACToR does, else stdout exactly


@dataclass
class Task:
    """The cases of one program and where they came from."""

    path: Path
    format: str                  # "lab", "sactor-task" or "sactor-samples"
    cases: list[Case] = field(default_factory=list)
    c_source: str = ""           # the C program, where the loop has it (exit-status feedback quotes its lines)
    files: dict[str, bytes] = field(default_factory=dict)  # data files the cases read, by path in the case folder

    def describe(self) -> str:
        """One line for logs and notebooks."""
        feeds = sorted({"stdin" if c.stdin else "args" for c in self.cases})
        return f"{self.path.name}: {len(self.cases)} cases, format {self.format}, fed by {'/'.join(feeds)}"


def normalize(text: str) -> str:
    """SACToR's output normalization: every line stripped, lines joined with \\n (no trailing newline)."""
    return "\n".join(line.strip() for line in text.splitlines())


def _sample_case(sample: Any, where: str, feed: str) -> Case:
    if not isinstance(sample, dict) or not isinstance(sample.get("input"), str) \
            or not isinstance(sample.get("output"), str):
        raise LabError(f"{where}: a test sample needs string fields \"input\" and \"output\"")
    text = sample["input"]
    # SACToR's runner: `f"{target} {input}".split()` for args; `input + "\n"` on stdin.
    if feed == "args":
        return Case(text.split(), "", sample["output"], None, True)
    return Case([], text + "\n", sample["output"], None, True)


def _samples(path: Path) -> list[Any]:
    data = paths.read_json(path, "test file")
    if not isinstance(data, list) or not data:
        raise LabError(f"{path}: expected a non-empty list of {{\"input\", \"output\"}} samples")
    return data


def _sactor_command(cmd: Any, where: str) -> tuple[str, int, str]:
    """(samples path, sample index, feed) of `sactor run-tests --type bin SAMPLES %t N [--feed-as-...]`."""
    if not isinstance(cmd, str):
        raise LabError(f"{where}: \"command\" must be a string")
    try:
        argv = shlex.split(cmd)
    except ValueError as e:
        raise LabError(f"{where}: cannot parse command ({e})") from None
    if "run-tests" not in argv:
        raise LabError(f"{where}: only `sactor run-tests` commands are supported, got {cmd!r}")
    rest = argv[argv.index("run-tests") + 1:]
    feed, positional, i = "args", [], 0  # SACToR feeds as arguments unless --feed-as-stdin
    while i < len(rest):
        a = rest[i]
        if a in ("--type", "--config", "-c"):
            if a == "--type" and i + 1 < len(rest) and rest[i + 1] != "bin":
                raise LabError(f"{where}: only --type bin tasks can be run, got --type {rest[i + 1]}")
            i += 2
            continue
        if a == "--feed-as-stdin":
            feed = "stdin"
        elif a == "--feed-as-args":
            feed = "args"
        elif not a.startswith("-"):
            positional.append(a)
        i += 1
    if len(positional) != 3 or positional[1] != "%t":
        raise LabError(f"{where}: expected `run-tests [--type bin] SAMPLES %t N`, got {cmd!r}")
    try:
        return positional[0], int(positional[2]), feed
    except ValueError:
        raise LabError(f"{where}: sample number {positional[2]!r} is not an integer") from None


def _lab_cases(data: dict[str, Any], p: Path) -> list[Case]:
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        raise LabError(f"{p}: field 'cases' must be a non-empty list")
    out = []
    for i, c in enumerate(cases):
        if not isinstance(c, dict):
            raise LabError(f"{p}: cases[{i}] must be an object")
        args, stdin = c.get("args", []), c.get("stdin", "")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise LabError(f"{p}: cases[{i}].args must be a list of strings")
        if not isinstance(stdin, str):
            raise LabError(f"{p}: cases[{i}].stdin must be str")
        if not isinstance(c.get("expected_stdout"), str):
            raise LabError(f"{p}: cases[{i}].expected_stdout is missing or not a string")
        code = c.get("expected_exit_code", 0)
        # an exit status is one byte (exit(256) reads as 0), so a value outside 0-255 no program can meet
        if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 255:
            raise LabError(f"{p}: cases[{i}].expected_exit_code must be an int from 0 to 255, not {code!r:.40}")
        out.append(Case(args, stdin, c["expected_stdout"], code))
    return out


def load_task(path: str | Path, feed: str | None = None) -> Task:
    """Any supported task file; SACToR paths inside resolve relative to the task file; errors name file and entry."""
    task = _load_task(Path(path), feed)
    if len(task.cases) > MAX_CASES:
        raise LabError(f"{task.path}: {len(task.cases):,} cases, over the {MAX_CASES:,} a task may have (each runs "
                       f"in a sandbox of its own every round); keep a representative few")
    for i, c in enumerate(task.cases):
        if any("\0" in a for a in c.args):
            # execve cannot pass a NUL byte: the check would die in the sandbox, not report
            raise LabError(f"{task.path}: case {i}: an argument holds a NUL byte, which no program can receive")
    return task


def _load_task(p: Path, feed: str | None) -> Task:
    data = paths.read_json(p, "test file")
    if isinstance(data, dict):
        return Task(p, "lab", _lab_cases(data, p))
    if not isinstance(data, list) or not data:
        raise LabError(f"{p}: expected {{\"cases\": [...]}}, a SACToR test_task.json list or a test_samples.json list")
    if all(isinstance(x, dict) and "command" in x for x in data):
        loaded: dict[Path, list[Any]] = {}
        cases = []
        home = p.parent.parent.resolve()  # the program folder (test_task/ is inside it)
        for k, entry in enumerate(data):
            where = f"{p}: entry {k} (test_id {entry.get('test_id', '?')})"
            rel, n, f = _sactor_command(entry["command"], where)
            sp = Path(rel) if Path(rel).is_absolute() else (p.parent / rel)
            if sp not in loaded:
                if not sp.resolve().is_relative_to(home):
                    # a task file from elsewhere must not read the machine's files into reports and prompts
                    raise LabError(f"{where}: the samples file {rel} is outside the program folder {home}; keep "
                                   f"it beside the task file")
                loaded[sp] = _samples(sp)
            if not 0 <= n < len(loaded[sp]):
                raise LabError(f"{where}: sample {n} is out of range (the samples file has {len(loaded[sp])})")
            cases.append(_sample_case(loaded[sp][n], f"{sp}: sample {n}", feed or f))
        return Task(p, "sactor-task", cases)
    feed = feed or "args"
    if feed not in FEEDS:
        raise LabError(f"feed must be one of {FEEDS}, got {feed!r}")
    return Task(p, "sactor-samples", [_sample_case(s, f"{p}: sample {i}", feed) for i, s in enumerate(data)])


def c_program(c_file: str | Path) -> str:
    """A C program as one text: each `#include "x.h"` that names a file in the program's folder is put in its
    place, the first time only (as its guard or `#pragma once` would have it; headers that include each other
    end there), and the .c file of each header it includes (util.c of util.h, without a main) follows as one
    translation unit (calc.c linked alone failed with `undefined reference to add`; a stray old.c with no
    header of its own stays out), so the model, the key and the sandbox, which sees only the one file, all
    have the whole program; other includes are left to the compiler."""
    c_file = Path(c_file)
    root, done = c_file.parent.resolve(), {c_file.resolve()}

    def expand(path: Path, text: str) -> str:
        def one(m: re.Match[str]) -> str:
            f = (path.parent / m.group(1)).resolve()
            if not f.is_relative_to(root) or not f.is_file():
                return m.group(0)
            if f in done:
                return f"/* {m.group(1)}: inlined above */"
            done.add(f)
            body = expand(f, jatext.read_text(f, "C header"))
            return f"/* {m.group(1)}, inlined */\n{body}\n/* end of {m.group(1)} */"
        return LOCAL_INCLUDE.sub(one, text)
    text = expand(c_file, jatext.read_text(c_file, "C program"))
    while units := [f for f in sorted(c_file.parent.glob("*.c")) if f.resolve() not in done and f.is_file()
                    and f.with_suffix(".h").resolve() in done]:  # util.c of an included util.h, and what it includes
        for f in units:
            done.add(f.resolve())
            unit = jatext.read_text(f, "C file")
            if not MAIN.search(unit):
                text += f"\n/* {f.name}, a file of the program */\n{expand(f, unit)}\n/* end of {f.name} */\n"
    return text


def why_not_program(folder: Path) -> str | None:
    """Why a folder with C files or a task file is no program (find_program's rules); None when it is one or
    holds neither (a folder of notes)."""
    cs = sorted(f.name for f in folder.glob("*.c"))
    has_task = any((folder / t).exists() for t in TASK_FILES)
    if find_program(folder) or not (cs or has_task):
        return None
    if not cs:
        return "a task file but no .c file"
    if not has_task:
        return f"{', '.join(cs[:3])} but no test_task/test_task.json or tests.json"
    return (f"{len(cs)} .c files ({', '.join(cs[:3])}), none named {folder.name}.c or prog.c, and not one alone "
            f"defines main")


def find_program(folder: Path) -> tuple[Path, Path] | None:
    """(C file, task file) of a program folder: NAME/NAME.c, prog.c, its single .c or the one .c of several that
    defines main (the others are files of the program); SACToR's test_task/ or tests.json."""
    cs = sorted(folder.glob("*.c"))
    named = [f for f in (folder / f"{folder.name}.c", folder / "prog.c") if f.exists()]
    mains = [f for f in cs if MAIN.search(jatext.read_text(f, "C file"))] if len(cs) > 1 and not named else []
    c = named[0] if named else cs[0] if len(cs) == 1 else mains[0] if len(mains) == 1 else None
    tasks = [folder / t for t in TASK_FILES if (folder / t).exists()]
    return (c, tasks[0]) if c and tasks else None


def program_task(c_file: str | Path, tests: str | Path, feed: str | None = None) -> Task:
    """The task of a C program as the loop and `check` run it: its cases, the program as one text (c_program)
    and the data files its cases read (data_files)."""
    source = c_program(c_file)  # the program's own errors first
    task = load_task(tests, feed)
    task.c_source = source
    task.files = data_files(Path(c_file), task)
    return task


def data_files(c_file: Path, task: Task) -> dict[str, bytes]:
    """Files of the program's folder that a case names as an argument, or its C source (task.c_source) as a
    string literal (`fopen("input.txt")`): each case's sandbox folder gets a copy, as the program found them
    beside it (a line counter given `data.txt` read nothing there). Nothing outside the folder; 16 MiB in all."""
    root = c_file.parent.resolve()
    names = {a for c in task.cases for a in c.args} | set(STRING.findall(task.c_source))
    found: dict[str, Path] = {}
    for name in sorted(n for n in names if n and "\0" not in n and not n.startswith("/") and len(n) < 4096):
        try:
            f = (root / name).resolve()
        except (OSError, RuntimeError):  # RuntimeError: a link loop
            continue
        if f.is_relative_to(root) and f != root and f.is_file():
            found[str(f.relative_to(root))] = f
    total = sum(f.stat().st_size for f in found.values())
    if total > MAX_DATA_BYTES:
        raise LabError(f"{c_file.parent}: the files its cases read ({', '.join(list(found)[:3])}) are "
                       f"{total / 2**20:.0f} MiB, over {MAX_DATA_BYTES >> 20} MiB (each case gets a copy)")
    return {n: paths.read_bytes(f, "data file") for n, f in found.items()}
