"""One holder at a time: an advisory lock (flock) on a file, released by the kernel when its process dies, so a
SIGKILLed job never leaves anything locked."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from lab import LabError

NOTE_S = 15.0  # a waiter says what it waits for this often (logs and notebooks, not only a TTY)


@contextmanager
def held(f: Path, busy: Callable[[str], str], wait_s: float = 0.0,
         waiting: Callable[[str, float], None] | None = None) -> Iterator[None]:
    """Hold f's lock. Another holder is waited for up to wait_s (waiting(holder, seconds) every NOTE_S), then
    LabError(busy(holder)); holder reads "pid N". The file is removed on release."""
    f.parent.mkdir(parents=True, exist_ok=True)
    t0, note = time.time(), NOTE_S
    while True:
        fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, f):
                break
        except BlockingIOError:
            pass
        # held by another process, or removed by its holder between our open and our lock: try again
        os.close(fd)
        waited = time.time() - t0
        if waited >= wait_s:
            raise LabError(busy(holder(f)))
        if waiting and waited > note:
            waiting(holder(f), waited)
            note += NOTE_S
        time.sleep(0.25)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
        yield
    finally:
        f.unlink(missing_ok=True)  # before unlocking: a waiter holding the old file sees it gone and reopens
        os.close(fd)


def writing(out: Path, what: str, whole: bool = False, wait_s: float = 0.0,
            say: Callable[[str], None] | None = None) -> AbstractContextManager[None]:
    """Hold an output folder's lock while a job writes it: OUT/.lab.lock, or .OUT.lock beside a folder the job
    replaces `whole`. A second job on the same folder waits up to wait_s (saying so), then is refused (two
    writers overwrote each other's outputs, and a fix made during a run was lost)."""
    out = Path(out)
    f = lock_file(out, whole)
    def waiting(who: str, t: float) -> None:
        if say:
            say(f"  waiting for another {what} ({who}) writing {out}... {t:.0f}s")
    return held(f, lambda who: f"{out} is being written by another {what} ({who}): wait for it to finish or "
                f"choose another output folder (nothing was done)", wait_s, waiting)


def refuse_if_busy(out: Path, what: str) -> None:
    """Refuse at once when another job holds an existing output folder's lock: before any slow preparation
    (reading inputs, asking a server), not after it; the lock itself is still taken by writing()."""
    if lock_file(Path(out)).exists():
        with writing(out, what):
            pass


def lock_file(out: Path, whole: bool = False) -> Path:
    """The lock of an output folder: OUT/.lab.lock, or .OUT.lock beside a folder replaced whole."""
    return out.with_name(f".{out.name}.lock") if whole else out / ".lab.lock"


def holder(f: Path) -> str:
    """Who holds f, as its holder wrote it ("pid N")."""
    try:
        return f.read_text().strip() or "pid unknown"
    except OSError:
        return "pid unknown"


def _same_file(fd: int, f: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == f.stat().st_ino
    except FileNotFoundError:
        return False
