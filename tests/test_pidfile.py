"""lab.pidfile: records lab did not write are refused, a reused pid is stale, orphans are found and stopped."""

import json
import os
import signal
import time

import pytest
from helpers import free_port, lab

from lab import paths, pidfile, procs, serve


def test_stale_pid_file_is_reported_and_removed(monkeypatch):
    port = free_port()
    monkeypatch.setenv("LAB_PORT", str(port))
    f = paths.logs() / f"vllm-{port}.json"
    paths.atomic_write(f, json.dumps({"pid": 4_000_000, "pgid": 4_000_000, "start_ticks": 1, "started": 0,
                                          "log": "x"}))
    st = serve.status("tiny")
    assert not st["running"] and st["stale_pidfile_removed"] == 4_000_000 and not f.exists()
    paths.atomic_write(f, json.dumps({"pid": 4_000_000, "pgid": 4_000_000, "start_ticks": 1, "started": 0,
                                          "log": "x"}))
    r = lab("serve", "stop", "--port", str(port))
    assert r.returncode == 0 and "nothing to stop" in r.stdout and not f.exists()


def test_a_start_after_a_killed_server_spawns_at_once_without_waiting_on_the_dead_one(monkeypatch, capsys):
    """A notebook after one whose server was SIGKILLed said "removed stale pid file" and then "the server lab
    started (pid N) is not answering yet: waiting for it" about that same gone pid."""
    port = free_port()
    monkeypatch.setenv("LAB_PORT", str(port))
    paths.atomic_write(paths.logs() / f"vllm-{port}.json", json.dumps(
        {"pid": 4_000_000, "pgid": 4_000_000, "start_ticks": 1, "started": 0, "log": "x"}))
    waited, spawned = [], []
    monkeypatch.setattr(serve, "await_other", lambda *a, **k: waited.append(a) or False)
    monkeypatch.setattr(serve.config, "check_heads", lambda *a, **k: None)

    def spawn(*a, **k):
        spawned.append(a)
        raise serve.LabError("spawn reached")
    monkeypatch.setattr(serve, "_spawn", spawn)
    with pytest.raises(serve.LabError, match="spawn reached"):
        serve.start("tiny")
    assert spawned and not waited
    out = capsys.readouterr().out
    assert "removed stale pid file" in out and "not answering" not in out


@pytest.mark.parametrize("rec", ['{"pid": 1, "pgid": 1}', '{"pid": "abc"}', "[1]", '"x"', '{"pid": 7}',
                                 '{"pid": 7, "pgid": 7, "start_ticks": true}', "{cut"])
def test_a_pid_file_lab_did_not_write_is_removed_and_nothing_is_signalled(monkeypatch, capsys, rec):
    """A hand-made record named pid 1 and was 'stopped'; a corrupt one was a traceback."""
    port = free_port()
    f = paths.logs() / f"vllm-{port}.json"
    paths.atomic_write(f, rec)
    signalled = []
    monkeypatch.setattr(procs, "stop_group", lambda pgid, grace=None: signalled.append(pgid))
    assert serve.read_pidfile(port) is None and not f.exists()
    assert "not a pid file lab wrote" in capsys.readouterr().err
    paths.atomic_write(f, rec)
    assert serve.stop(port, quiet=True) is False and signalled == []


def test_a_reused_pid_is_stale_and_its_new_owner_is_left_alone(monkeypatch):
    """The recorded pid now names another live process (other start time): neither it nor its group is ours."""
    port = free_port()
    f = paths.logs() / f"vllm-{port}.json"
    me = os.getpid()
    paths.atomic_write(f, json.dumps({"pid": me, "pgid": me, "start_ticks": procs.start_ticks(me) + 1, "log": "x"}))
    signalled = []
    monkeypatch.setattr(procs, "stop_group", lambda pgid, grace=None: signalled.append(pgid))
    assert serve.read_pidfile(port)["stale"] and not f.exists()
    paths.atomic_write(f, json.dumps({"pid": me, "pgid": me, "start_ticks": procs.start_ticks(me) + 1, "log": "x"}))
    assert serve.stop(port, quiet=True) is False and signalled == []


def test_orphans_of_a_dead_main_process_are_found_and_stopped(tmp_path, monkeypatch):
    """The mechanics without vLLM: a session leader with two children; the leader is SIGKILLed."""
    import subprocess
    import sys
    port = free_port()
    code = ("import subprocess, sys, time, signal\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"  # like EngineCore: ignores SIGTERM
            "[subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, "
            "signal.SIG_IGN); time.sleep(600)']) for _ in range(2)]\ntime.sleep(600)")
    leader = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and len(procs.group_pids(leader.pid)) < 3:
            time.sleep(0.05)
        paths.logs().mkdir(parents=True, exist_ok=True)
        (paths.logs() / f"vllm-{port}.json").write_text(json.dumps(
            {"pid": leader.pid, "pgid": leader.pid, "start_ticks": procs.start_ticks(leader.pid), "port": port,
             "log": str(tmp_path / "x.log"), "started": time.time()}))
        leader.kill()
        leader.wait()
        rec = serve.read_pidfile(port)
        assert rec and len(rec["orphans"]) == 2 and not rec.get("stale")
        monkeypatch.setattr(procs, "GRACE_S", 1.0)
        assert serve.stop(port, quiet=True) and procs.group_pids(leader.pid) == []
        assert serve.read_pidfile(port) is None
    finally:
        for p in procs.group_pids(leader.pid):
            os.kill(p, signal.SIGKILL)


def test_only_live_users_lab_wrote_keep_a_server_of_a_killed_run():
    """A user entry edited by hand ("", "abc", a number, a list for a run) never keeps a server up forever."""
    import subprocess
    import sys
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = {"proc": pidfile.me(), "run": "/runs/x"}
    bad = [{"proc": ""}, {"proc": "abc"}, {"proc": 5}, {"proc": pidfile.me(), "run": [1]}, "x",
           {"proc": f"{gone.pid}:1"}, {"proc": f"{os.getpid()}:None"}]
    rec = {"owner_proc": f"{gone.pid}:1", "users": [*bad, me]}
    assert pidfile.live_users(rec) == [me] and not pidfile.abandoned(rec)
    assert pidfile.abandoned({**rec, "users": bad}) and pidfile.abandoned({**rec, "users": "all"})
