"""C -> Rust: compile and test harness (sandboxed), and the SACToR-style translate-check-feedback loop."""

from __future__ import annotations

import difflib
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab import LabError

CASE_TIMEOUT_S = 4.0     # CPU seconds per case (RLIMIT_CPU), wall clock 1 s more; samples take milliseconds
OUTPUT_CAP = 256 * 1024  # bytes of stdout kept per case; more is "output limit" (a print loop)
COMPILE_TIMEOUT_S = 120
ERROR_LINES = 30         # compiler lines kept for the report and the feedback prompt


@dataclass
class CaseResult:
    """One test case's outcome; reason is ok, wrong_output, exit_code, timeout, output_limit or crash."""

    index: int
    passed: bool
    reason: str
    exit_code: int | None = None
    diff: str = ""


@dataclass
class CheckReport:
    """A program checked against its test task."""

    compiled: bool
    compile_errors: str = ""
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def ok(self) -> bool:
        return self.compiled and bool(self.cases) and self.passed == len(self.cases)

    def summary(self) -> str:
        """One line for humans."""
        if not self.compiled:
            return "does not compile: " + (self.compile_errors.strip().splitlines() or ["?"])[0]
        bad = [f"case {c.index}: {c.reason}" for c in self.cases if not c.passed]
        return f"{self.passed}/{len(self.cases)} cases pass" + (f" ({'; '.join(bad[:3])})" if bad else "")

    def to_dict(self) -> dict[str, Any]:
        return {"compiled": self.compiled, "compile_errors": self.compile_errors, "passed": self.passed,
                "total": len(self.cases), "cases": [asdict(c) for c in self.cases]}


def load_tests(path: str | Path) -> list[dict[str, Any]]:
    """Read a test task: {"cases": [{args, stdin, expected_stdout, expected_exit_code}]}; errors name the field."""
    p = Path(path)
    if not p.exists():
        raise LabError(f"test file {p} does not exist")
    try:
        data = json.loads(p.read_text("utf-8"))
    except ValueError as e:
        raise LabError(f"{p}: not valid JSON ({e})") from None
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list) or not cases:
        raise LabError(f"{p}: field 'cases' must be a non-empty list")
    for i, c in enumerate(cases):
        if not isinstance(c, dict):
            raise LabError(f"{p}: cases[{i}] must be an object")
        fields = (("args", list, []), ("stdin", str, ""), ("expected_stdout", str, None),
                  ("expected_exit_code", int, 0))
        for key, typ, default in fields:
            if key not in c:
                if default is None:
                    raise LabError(f"{p}: cases[{i}].{key} is missing")
                c[key] = default
            elif not isinstance(c[key], typ) or (key == "args" and not all(isinstance(a, str) for a in c[key])):
                raise LabError(f"{p}: cases[{i}].{key} must be {'a list of strings' if typ is list else typ.__name__}")
    return cases


def _limits(cpu_s: int) -> Any:
    def apply() -> None:  # runs in the child before exec
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        # stdout goes to a file, so this caps it: past the cap the kernel sends SIGXFSZ
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_CAP, OUTPUT_CAP))
        os.setsid()
    return apply


def _no_network() -> list[str]:
    """`unshare -n` (an empty network namespace) when this machine allows it, else nothing."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


_NONET: list[str] | None = None


def run_case(binary: Path, case: dict[str, Any], index: int, cwd: Path,
             timeout: float = CASE_TIMEOUT_S) -> CaseResult:
    """Run one case with CPU/wall/output limits and no network; compare stdout and exit code."""
    global _NONET
    if _NONET is None:
        _NONET = _no_network()
    (cwd / f"stdin{index}").write_text(case["stdin"])
    with open(cwd / f"stdin{index}", "rb") as fin, open(cwd / f"stdout{index}", "wb") as fout:
        proc = subprocess.Popen([*_NONET, str(binary), *case["args"]], stdin=fin, stdout=fout,
                                stderr=subprocess.DEVNULL, cwd=cwd, preexec_fn=_limits(max(1, int(timeout))))
        try:
            code = proc.wait(timeout=timeout + 1)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            return CaseResult(index, False, "timeout", None, f"killed after {timeout + 1:.0f}s wall clock")
    out = (cwd / f"stdout{index}").read_bytes()
    if code == -25 or len(out) >= OUTPUT_CAP:  # SIGXFSZ: wrote past the cap
        return CaseResult(index, False, "output_limit", code, f"stdout reached the {OUTPUT_CAP}-byte cap")
    if code in (-24, -9):  # SIGXCPU / SIGKILL from the CPU-time limit
        return CaseResult(index, False, "timeout", code, f"CPU time limit ({max(1, int(timeout))}s)")
    if code < 0:
        return CaseResult(index, False, "crash", code, f"killed by signal {-code}")
    text = out.decode("utf-8", "replace")
    if text != case["expected_stdout"]:
        diff = "".join(difflib.unified_diff(case["expected_stdout"].splitlines(True), text.splitlines(True),
                                            "expected", "actual", n=1))
        return CaseResult(index, False, "wrong_output", code, diff[:2000])
    if code != case["expected_exit_code"]:
        return CaseResult(index, False, "exit_code", code, f"exit {code}, expected {case['expected_exit_code']}")
    return CaseResult(index, True, "ok", code)


def _compile(cmd: list[str], cwd: Path) -> tuple[bool, str]:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"compiler timed out after {COMPILE_TIMEOUT_S}s"
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    return r.returncode == 0, "\n".join(lines[:ERROR_LINES])


def rustc() -> str:
    """The rustc path, or a clear error saying how to install it."""
    path = shutil.which("rustc") or str(Path.home() / ".cargo" / "bin" / "rustc")
    if not Path(path).exists():
        raise LabError("rustc not found: install Rust with your package manager (apt install rustc) or rustup")
    return path


def check_source(source: str, cases: list[dict[str, Any]], lang: str = "rust",
                 timeout: float = CASE_TIMEOUT_S) -> CheckReport:
    """Compile source (rust or c) in a temporary folder, run every case, remove the folder."""
    with tempfile.TemporaryDirectory(prefix="lab-c2rust-") as tmp:
        d = Path(tmp)
        if lang == "c":
            (d / "prog.c").write_text(source)
            ok, err = _compile(["gcc", "-O1", "-o", "prog", "prog.c"], d)
        else:
            (d / "main.rs").write_text(source)
            ok, err = _compile([rustc(), "--edition", "2021", "-o", "prog", "main.rs"], d)
        if not ok:
            return CheckReport(False, err)
        return CheckReport(True, err, [run_case(d / "prog", c, i, d, timeout) for i, c in enumerate(cases)])


def check(c_file: str | Path, tests: str | Path, rust_file: str | Path) -> tuple[CheckReport, CheckReport]:
    """Check the C reference first (a failing reference is a bad task), then the Rust file."""
    for f in (c_file, rust_file):
        if not Path(f).exists():
            raise LabError(f"{f} does not exist")
    cases = load_tests(tests)
    ref = check_source(Path(c_file).read_text(), cases, "c")
    if not ref.ok:
        raise LabError(f"bad task: the C reference {c_file} fails its own tests: {ref.summary()}")
    return ref, check_source(Path(rust_file).read_text(), cases)


def extract_rust(reply: str) -> str | None:
    """The last ```rust fenced block of a reply (a <think> block removed), or None."""
    reply = re.sub(r"<think>.*?(</think>|$)", "", reply, flags=re.S)
    blocks = re.findall(r"```(?:rust|rs)\s*\n(.*?)```", reply, flags=re.S)
    if not blocks:
        blocks = re.findall(r"```\s*\n(.*?)```", reply, flags=re.S)
    return blocks[-1].strip() + "\n" if blocks else None


def count_unsafe(source: str) -> int:
    """Occurrences of the `unsafe` keyword outside comments and strings (approximate)."""
    code = re.sub(r"//.*|/\*.*?\*/|\"(\\.|[^\"\\])*\"", "", source, flags=re.S)
    return len(re.findall(r"\bunsafe\b", code))


def clippy_warnings(source: str) -> int | None:
    """Number of clippy warnings, or None when clippy-driver is not installed."""
    driver = shutil.which("clippy-driver") or str(Path.home() / ".cargo" / "bin" / "clippy-driver")
    if not Path(driver).exists():
        return None
    with tempfile.TemporaryDirectory(prefix="lab-clippy-") as tmp:
        (Path(tmp) / "main.rs").write_text(source)
        r = subprocess.run([driver, "--edition", "2021", "-o", "prog", "main.rs"], cwd=tmp, capture_output=True,
                           text=True, timeout=COMPILE_TIMEOUT_S)
        return len(re.findall(r"^warning: (?!\d+ warnings? emitted)", r.stderr, flags=re.M))
