"""lab.procs: a process group and its whole session stopped, liveness by start time (no pid reuse mistakes)."""

import os
import subprocess
import sys
import time

from lab import procs


def test_stop_group_stops_children_that_ignore_sigterm():
    code = ("import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
            "time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.time() + 10
    while len(procs.group_pids(p.pid)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert len(procs.group_pids(p.pid)) == 2
    t0 = time.time()
    procs.stop_group(p.pid, grace=0.5)  # SIGTERM ignored by both: SIGKILL after the grace period
    assert procs.group_pids(p.pid) == [] and time.time() - t0 < 10
    p.wait(timeout=5)
    assert not procs.alive(p.pid)


def test_alive_and_start_ticks():
    me = os.getpid()
    assert procs.alive(me) and procs.start_ticks(me) == procs.start_ticks(me) is not None
    assert procs.start_ticks(2**22 + 12345) is None and not procs.alive(2**22 + 12345)
    procs.stop_group(2**22 + 12345)  # nothing there: returns at once


def test_folders_of_gone_processes_are_removed_and_live_ones_kept(tmp_path):
    """Isolated work and fine-tuning leave PREFIX<pid> folders when SIGKILLed: the next job removes those."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for name in (f"w-{gone.pid}-abc", f"w-{os.getpid()}-abc", "w-notapid", f"x-{gone.pid}"):
        (tmp_path / name / "sub").mkdir(parents=True)
    procs.remove_left_behind(tmp_path, "w-")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"w-{os.getpid()}-abc", "w-notapid", f"x-{gone.pid}"])
