"""lab.locks: one holder at a time, a waiter says what it waits for, and a SIGKILLed holder frees the lock."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from lab import LabError, locks

# A holder in a process of its own: takes the lock, says so, then sleeps until it is killed.
HOLDER = """
import sys, time
from pathlib import Path
from lab import locks
with locks.writing(Path(sys.argv[1]), "test job"):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """A separate process holding tmp_path/out's lock; killed (SIGKILL) by the test or at teardown."""
    out = tmp_path / "out"
    out.mkdir()
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    yield out, p
    p.kill()
    p.wait(timeout=10)


def test_a_second_writer_is_refused_with_the_holders_pid_and_nothing_is_run(holder):
    out, p = holder
    ran = []
    with pytest.raises(LabError, match=rf"being written by another test job \(pid {p.pid}\).*nothing was done"):
        with locks.writing(out, "test job"):
            ran.append(1)
    assert ran == [] and locks.lock_file(out).exists()
    with pytest.raises(LabError, match="another lab translate"):
        locks.refuse_if_busy(out, "lab translate")


def test_a_sigkilled_holder_leaves_nothing_locked(holder):
    out, p = holder
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    assert locks.lock_file(out).exists()  # the file stays behind; the kernel dropped the flock with the process
    locks.refuse_if_busy(out, "test job")
    with locks.writing(out, "test job"):
        assert locks.holder(locks.lock_file(out)) == f"pid {os.getpid()}"
    assert not locks.lock_file(out).exists()


def test_a_waiter_says_what_it_waits_for_and_gets_the_lock_when_it_is_freed(holder, monkeypatch):
    out, p = holder
    monkeypatch.setattr(locks, "NOTE_S", 0.3)
    said: list[str] = []
    threading.Timer(1.5, p.kill).start()
    t0 = time.time()
    with locks.writing(out, "test job", wait_s=30, say=said.append):
        waited = time.time() - t0
    assert 1.0 < waited < 10
    assert said and all(f"waiting for another test job (pid {p.pid}) writing {out}" in s for s in said)


def test_a_wait_has_a_bound(holder):
    out, p = holder
    t0 = time.time()
    with pytest.raises(LabError, match="being written"):
        with locks.writing(out, "test job", wait_s=0.6):
            pass
    assert 0.5 < time.time() - t0 < 5 and p.poll() is None


def test_a_folder_replaced_whole_is_locked_beside_it(tmp_path):
    out = tmp_path / "adapter"
    with locks.writing(out, "lab finetune", whole=True):
        assert (tmp_path / ".adapter.lock").exists() and not out.exists()
    assert not (tmp_path / ".adapter.lock").exists()
