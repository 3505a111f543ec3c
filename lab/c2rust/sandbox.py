"""Run model-written programs contained: bubblewrap namespaces plus prlimit limits, no preexec_fn.

Layers, each used where the machine has it (`protections()` says which are active):
- bubblewrap: only /usr (and the /lib links) visible read-only, a private /tmp as $HOME, the case's own
  folder writable, no network, a new PID namespace (nothing outlives the case), die-with-parent.
- prlimit: address space (default 1 GiB), CPU seconds, file size (caps the captured output), open files,
  and processes; as root the program also drops to an unprivileged uid of its own (root ignores
  RLIMIT_NPROC, and the limit counts per user: with one shared `nobody`, four concurrent cases starved
  each other with "bwrap: Can't fork").
- without bubblewrap: `unshare -n` for the network where allowed, the limits still apply.
Everything is a wrapper command in argv, so it is safe from the thread pool `c2rust batch` uses.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MEMORY_BYTES = 1 << 30   # address space per case: test programs need a few MB; 2 GB allocations must fail
OUTPUT_BYTES = 256 * 1024  # per output file (stdout, stderr): more is a print loop
PROCESSES = 32           # a fork bomb stops here (per case: each case has its own uid, see case_uid)
OPEN_FILES = 64
NOBODY = 65534
# Per-case uids as root: far above any real account (uid_t is 32-bit), unique per process and case.
CASE_UID_BASE = 1_000_000_000
_case_counter = itertools.count()


@dataclass
class Outcome:
    """What a contained run did."""

    code: int | None         # exit code, negative for a signal, None when killed at the wall clock
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


@cache
def _works(*argv: str) -> bool:
    try:
        return subprocess.run(list(argv), capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _bwrap() -> str | None:
    exe = shutil.which("bwrap")
    if exe and _works(exe, "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64",
                      "/lib64", "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
                      "--unshare-all", "--die-with-parent", "/usr/bin/true"):
        return exe
    return None


def _can_drop() -> bool:
    """True as root with setpriv: cases then run under an unprivileged uid of their own."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None and _works(
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "true")


def case_uid() -> int | None:
    """A fresh uid for one case (None when not root): RLIMIT_NPROC then counts that case's processes only."""
    if not _can_drop():
        return None
    return CASE_UID_BASE + (os.getpid() % 100_000) * 10_000 + next(_case_counter) % 10_000


def _drop_to(uid: int | None) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] if uid is not None else []


def _user_processes() -> int:
    uid, n = os.getuid(), 0
    for d in Path("/proc").iterdir():
        try:
            n += d.name.isdigit() and d.stat().st_uid == uid
        except OSError:
            pass
    return n


@cache
def protections() -> dict[str, bool]:
    """Which protections this machine gives (checked once per process)."""
    bw = _bwrap() is not None
    return {"bubblewrap": bw, "no_network": bw or _works("unshare", "-n", "true"),
            "private_filesystem": bw, "pid_namespace": bw, "limits": shutil.which("prlimit") is not None,
            "unprivileged_user": os.geteuid() != 0 or _can_drop()}


def describe() -> str:
    """One line: the active protections and, where some are missing, why."""
    p = protections()
    on = [k.replace("_", " ") for k, v in p.items() if v]
    off = [k.replace("_", " ") for k, v in p.items() if not v]
    line = f"sandbox: {', '.join(on) or 'none'}; memory {MEMORY_BYTES >> 20} MiB, output {OUTPUT_BYTES >> 10} KiB"
    return line + (f"; NOT active: {', '.join(off)} (install bubblewrap and util-linux)" if off else "")


def workdir() -> tempfile.TemporaryDirectory:
    """A temporary folder the sandboxed user can reach: under /tmp/lab-sandbox-UID (mode 711) when cases drop
    to their own uid (a private $TMPDIR such as pytest's would hide it), else in the usual temp folder."""
    if not _can_drop():
        return tempfile.TemporaryDirectory(prefix="lab-c2rust-")
    base = Path("/tmp") / f"lab-sandbox-{os.getuid()}"
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)
    tmp = tempfile.TemporaryDirectory(prefix="lab-c2rust-", dir=base)
    Path(tmp.name).chmod(0o711)
    return tmp


def _layout(work: Path) -> list[str]:
    """bwrap arguments: the system read-only, only the case's folder writable, a private /tmp home."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        p = Path("/") / name
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.exists():
            args += ["--ro-bind", str(p), str(p)]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--proc", "/proc", "--dev", "/dev",
             "--tmpfs", "/tmp", "--bind", str(work), str(work), "--chdir", str(work), "--setenv", "HOME", "/tmp",
             "--unshare-all", "--die-with-parent", "--new-session"]
    return args


def command(argv: list[str], work: Path, cpu_s: int, uid: int | None = None) -> list[str]:
    """The full wrapped command line for argv run inside `work`, as `uid` when given (see case_uid)."""
    drop = _drop_to(uid)
    procs = PROCESSES if drop else _user_processes() + PROCESSES  # a user's count includes their other processes
    limits = ["prlimit", f"--as={MEMORY_BYTES}", f"--cpu={cpu_s}", f"--fsize={OUTPUT_BYTES}",
              f"--nofile={OPEN_FILES}", f"--nproc={procs}", "--core=0", "--"] if protections()["limits"] else []
    bw = _bwrap()
    inner = [bw, *_layout(work), "--", *argv] if bw else \
        (["unshare", "-n", *argv] if protections()["no_network"] else argv)
    return [*drop, *limits, *inner]


def run(argv: list[str], work: Path, stdin: str = "", cpu_s: int = 4, wall_s: float = 10.0) -> Outcome:
    """Run argv contained, in `work`; stdout/stderr go to capped files there; the whole group is killed on timeout."""
    work = Path(work)
    uid = case_uid()
    if uid is not None:
        os.chown(work, uid, uid)
        for f in work.iterdir():
            os.chown(f, uid, uid)
    out, err, inp = work / ".stdout", work / ".stderr", work / ".stdin"
    inp.write_text(stdin)
    with open(inp, "rb") as fi, open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(command(argv, work, cpu_s, uid), stdin=fi, stdout=fo, stderr=fe, cwd=work,
                                start_new_session=True)  # own group: a timeout kills everything it started
        try:
            code: int | None = proc.wait(timeout=wall_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            code, timed_out = None, True
        finally:
            _kill_group(proc)
    if code is not None and code > 128 and _bwrap():  # bwrap reports a child killed by signal N as 128 + N
        code = -(code - 128)
    res = Outcome(code, out.read_bytes(), err.read_bytes(), timed_out)
    for f in (out, err, inp):
        f.unlink(missing_ok=True)
    return res


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the case's process group (bwrap's PID namespace takes every descendant with it) and reap."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.time() + 5
    while proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
