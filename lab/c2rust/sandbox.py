"""Run model-written code contained, its compilation included: bubblewrap namespaces plus prlimit limits.

Both the compilers (gcc, rustc, cargo, clippy: `include_str!`, `include!`, `#[path]`, `env!` and build
scripts run at compile time) and the compiled test programs go through `run`. Layers, each used where the
machine has it (`protections()` says which are active):
- bubblewrap: only /usr (and the /lib links) visible read-only, plus the toolchain folders a build names
  (a rustup sysroot, a crate registry), a private /tmp as $HOME, the case's own folder writable, no
  network, a new PID namespace (nothing outlives the case), die-with-parent, and an empty environment
  but for what the command needs (no API key or token of the caller's reaches the code).
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

from lab import procs

MEMORY_BYTES = 1 << 30   # address space per case: test programs need a few MB; 2 GB allocations must fail
OUTPUT_BYTES = 256 * 1024  # per output file (stdout, stderr): more is a print loop
PROCESSES = 32           # a fork bomb stops here (per case: each case has its own uid, see case_uid)
OPEN_FILES = 64
PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Limits:
    """prlimit values for one contained command."""

    memory: int = MEMORY_BYTES     # address space, bytes
    file_size: int = OUTPUT_BYTES  # any file it writes: caps stdout/stderr (and a compiler's outputs)
    processes: int = PROCESSES     # processes and threads of its uid
    open_files: int = OPEN_FILES


RUN = Limits()
# Compilers: rustc -O reserved ~1.3 GB of address space and ran 10+ threads on a 200-line program; a
# release binary is 0.4-4 MB and cargo's target folder for libc ~30 MB. Their stderr is read up to
# OUTPUT_BYTES only.
BUILD = Limits(memory=4 << 30, file_size=256 << 20, processes=256, open_files=1024)
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
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"] \
        if uid is not None else []


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


WORK_PREFIX = "lab-c2rust-"


def workdir() -> tempfile.TemporaryDirectory:
    """A temporary folder the sandboxed user can reach: under /tmp/lab-sandbox-UID (mode 711) when cases drop
    to their own uid (a private $TMPDIR such as pytest's would hide it), else in the usual temp folder."""
    # the pid in the name lets the next run remove what a SIGKILLed one left (a cargo target: ~20 MB a case)
    prefix = f"{WORK_PREFIX}{os.getpid()}-"
    if not _can_drop():
        procs.remove_left_behind(Path(tempfile.gettempdir()), WORK_PREFIX)
        return tempfile.TemporaryDirectory(prefix=prefix)
    base = Path("/tmp") / f"lab-sandbox-{os.getuid()}"
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)
    procs.remove_left_behind(base, WORK_PREFIX)
    tmp = tempfile.TemporaryDirectory(prefix=prefix, dir=base)
    Path(tmp.name).chmod(0o711)
    return tmp


def _layout(work: Path, readable: tuple[Path, ...] = (), env: dict[str, str] | None = None,
            userns: bool = True) -> list[str]:
    """bwrap arguments: the system read-only (plus `readable` folders), only the case's folder writable, a
    private /tmp home, and an environment of PATH, HOME, LANG and `env` only."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        p = Path("/") / name
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.exists():
            args += ["--ro-bind", str(p), str(p)]
    # /etc: only the loader's cache and the alternatives links (cc -> gcc); no passwd, shadow, hosts...
    args += ["--perms", "0755", "--dir", "/etc", "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
             "--ro-bind-try", "/etc/alternatives", "/etc/alternatives", "--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--tmpfs", "/tmp"]
    made: set[Path] = {Path("/tmp")}
    for r in (Path(x).resolve() for x in readable):
        if not r.is_relative_to("/usr"):
            args += [*_parents(r, made), "--ro-bind", str(r), str(r)]
    work = Path(work).resolve()
    args += [*_parents(work, made), "--bind", str(work), str(work), "--chdir", str(work), "--clearenv"]
    for k, v in _environment(env).items():
        args += ["--setenv", k, v]
    # without a user namespace (root dropping to a case uid inside) every other namespace, one by one
    unshare = ["--unshare-all"] if userns else ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                                                 "--unshare-cgroup-try"]
    return args + [*unshare, "--die-with-parent", "--new-session"]


def _parents(path: Path, made: set[Path]) -> list[str]:
    """bwrap arguments making the missing parents of a mount point passable (bwrap makes them mode 700, which
    the case's uid cannot pass when root dropped to it inside)."""
    args = []
    for up in reversed(path.parents[:-1]):
        if up not in made:
            made.add(up)
            args += ["--perms", "0755", "--dir", str(up)]
    return args


def _environment(extra: dict[str, str] | None) -> dict[str, str]:
    """All a contained command sees of the environment: nothing of the caller's but these."""
    return {"PATH": PATH, "HOME": "/tmp", "LANG": "C.UTF-8", **(extra or {})}


def command(argv: list[str], work: Path, cpu_s: int, uid: int | None = None, limits: Limits = RUN,
            readable: tuple[Path, ...] = (), env: dict[str, str] | None = None) -> list[str]:
    """The full wrapped command line for argv run inside `work`, as `uid` when given (see case_uid).

    As root, bubblewrap runs first (it can still read a toolchain under /root) without a user namespace,
    and drops to the case's uid inside; otherwise it runs as the caller in a user namespace of its own."""
    drop = _drop_to(uid)
    # a user's count includes their other processes
    procs = limits.processes if drop else _user_processes() + limits.processes
    lim = ["prlimit", f"--as={limits.memory}", f"--cpu={cpu_s}", f"--fsize={limits.file_size}",
           f"--nofile={limits.open_files}", f"--nproc={procs}", "--core=0", "--"] if protections()["limits"] else []
    bw = _bwrap()
    if bw:
        return [bw, *_layout(work, readable, env, userns=not drop), "--", *drop, *lim, *argv]
    return [*drop, *lim, *(["unshare", "-n"] if protections()["no_network"] else []), *argv]


def _give(work: Path, uid: int) -> None:
    """The case's folder and everything in it to the case's uid (it may write there, nowhere else)."""
    os.chown(work, uid, uid)
    for d, dirs, files in os.walk(work):
        for n in dirs + files:
            os.chown(os.path.join(d, n), uid, uid, follow_symlinks=False)


def run(argv: list[str], work: Path, stdin: str = "", cpu_s: int = 4, wall_s: float = 10.0, limits: Limits = RUN,
        readable: tuple[Path, ...] = (), env: dict[str, str] | None = None) -> Outcome:
    """Run argv contained, in `work`; stdout/stderr go to capped files there; the whole group is killed on timeout.

    readable: folders outside /usr the command may read (a toolchain); env: variables it gets besides
    PATH, HOME and LANG (without bubblewrap too: the caller's environment never passes)."""
    work = Path(work)
    uid = case_uid()
    if uid is not None:
        _give(work, uid)
    out, err, inp = work / ".stdout", work / ".stderr", work / ".stdin"
    inp.write_text(stdin)
    with open(inp, "rb") as fi, open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(command(argv, work, cpu_s, uid, limits, readable, env), stdin=fi, stdout=fo,
                                stderr=fe, cwd=work, env=_environment(env),
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
    res = Outcome(code, _head(out, limits.file_size), _head(err, limits.file_size), timed_out)
    for f in (out, err, inp):
        f.unlink(missing_ok=True)
    return res


def _head(f: Path, cap: int) -> bytes:
    """At most `cap` bytes of a file (never more than OUTPUT_BYTES: a compiler may write 256 MiB of errors)."""
    with open(f, "rb") as fh:
        return fh.read(min(cap, OUTPUT_BYTES))


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the case's process group (bwrap's PID namespace takes every descendant with it) and reap."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.time() + 5
    while proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
