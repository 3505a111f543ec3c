"""lab/watch.py: a run's server is let go when the run dies, never while the run or another user lives."""

import json
import subprocess
import sys
import time
import types

from lab import paths, pidfile, procs, serve, watch


def _server_record(port: int, owner: str, users: list | None = None) -> subprocess.Popen:
    """A live process recorded as a lab server of `port` (what read_pidfile trusts: its own session)."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    paths.atomic_write(pidfile.path_of(port), json.dumps(
        {"pid": p.pid, "pgid": p.pid, "sid": p.pid, "start_ticks": procs.start_ticks(p.pid), "port": port,
         "log": "", "started": time.time(), "owner_proc": owner, "users": users or []}))
    return p


def test_a_dead_owners_server_is_released_and_the_watch_ends_with_it(monkeypatch):
    port, released = 47001, []
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    p = _server_record(port, f"{gone.pid}:1")

    def release(prt, quiet=False, started=None):
        released.append((prt, started))
        serve.stop(prt, quiet=True)
        return "stopped"
    monkeypatch.setattr(serve, "release", release)
    assert watch.watch(port, p.pid, poll=0.05) == "server gone"
    assert released == [(port, False)] and p.wait(timeout=10) is not None


def test_a_server_whose_run_lives_or_that_another_run_uses_is_left_alone(monkeypatch):
    port = 47002
    monkeypatch.setattr(serve, "release", lambda *a, **k: (_ for _ in ()).throw(AssertionError("released")))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for owner, users in ((pidfile.me(), []), (f"{gone.pid}:1", [{"proc": pidfile.me(), "run": ""}])):
        p = _server_record(port, owner, users)
        polls: list[float] = []

        def sleep(s: float, p: subprocess.Popen = p, polls: list = polls) -> None:
            polls.append(s)
            if len(polls) == 4:
                p.kill()  # the server dies by itself after four polls: only then may the watch end
        monkeypatch.setattr(watch, "time", types.SimpleNamespace(sleep=sleep))
        assert watch.watch(port, p.pid, poll=0.01) == "server gone"
        assert len(polls) >= 4
        p.wait()
        pidfile.path_of(port).unlink(missing_ok=True)


def test_a_replaced_or_missing_record_ends_the_watch_at_once():
    assert watch.watch(47003, 12345, poll=0.01) == "server gone"
    p = _server_record(47004, pidfile.me())
    try:
        assert watch.watch(47004, p.pid + 1, poll=0.01) == "server gone"  # another server on that port now
    finally:
        p.kill()
        p.wait()
        pidfile.path_of(47004).unlink(missing_ok=True)
