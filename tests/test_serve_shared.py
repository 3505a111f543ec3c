"""Servers shared between runs: one start per port at a time, reuse registers a user, the owner's end hands a
server over instead of stopping it under a run that still uses it, and a start never spawns a second server
beside one still loading."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, free_port, lab

from lab import LabError, paths, pidfile, procs, serve, watch

# a `lab run` stand-in: starts (or reuses) the tiny profile's server, whose vLLM is replaced by the fake
# OpenAI server, listening only after LOAD_S (as vLLM's port stays closed while it loads); lets go of it when
# the test writes a line to its stdin; "nowatch" leaves out the watcher that lets go of a killed run's server
HOLDER = """
import json, os, sys
from lab import config, pidfile, serve, watch
load_s, fake = sys.argv[1], sys.argv[2]
if sys.argv[3] == "nowatch":
    watch.start = lambda *a: None
code = ("import runpy, sys, time; time.sleep(%s); sys.argv = ['fake', sys.argv[1], sys.argv[2]]; "
        "runpy.run_path(%r, run_name='__main__')" % (load_s, fake))
config.serve_command = lambda prof, *a, **k: [sys.executable, "-c", code, str(prof.port), os.devnull]
os.environ["LAB_RUN_OWNER"] = pidfile.me()  # one holder, as a `lab run` is
srv = serve.start("tiny", timeout=60)
print(json.dumps({"owned": srv.owned, "me": pidfile.me()}), flush=True)
sys.stdin.readline()
print(json.dumps({"release": serve.release("tiny")}), flush=True)
"""


@pytest.fixture
def port(monkeypatch):
    p = free_port()
    monkeypatch.setenv("LAB_PORT", str(p))
    monkeypatch.setenv("LAB_SERVED_NAME", "fake")
    yield p
    serve.stop(p, quiet=True)


def _holder(load_s: float, watch: bool = True) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(load_s), str(ROOT / "tests" / "fake_openai.py"),
                             "watch" if watch else "nowatch"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, env=dict(os.environ))


def _started(p: subprocess.Popen) -> tuple[dict, str]:
    """The holder's JSON line once its start returned, and what it printed before."""
    said = []
    for line in p.stdout:
        if line.startswith("{"):
            return json.loads(line), "".join(said)
        said.append(line)
    raise AssertionError(f"holder exited: {''.join(said)}")


def _spawned(port: int) -> dict:
    """The pid file record of the server a holder spawned, once it is written (within 30 s)."""
    deadline = time.time() + 30
    while not (rec := serve.read_pidfile(port)):
        assert time.time() < deadline, "the holder never spawned its server"
        time.sleep(0.1)
    return rec


def _release(p: subprocess.Popen) -> str:
    p.stdin.write("go\n")
    p.stdin.flush()
    out = p.communicate(timeout=60)[0]
    return json.loads(out.strip().splitlines()[-1])["release"]


def test_two_starts_seconds_apart_share_one_server_and_the_last_user_stops_it(port):
    """Was: the second start saw the first server still loading (port closed), spawned its own, overwrote the pid
    file, and the first server leaked; and the first run's end stopped the server under the second."""
    first = _holder(3.0)
    time.sleep(0.5)
    second = _holder(3.0)
    a, said_a = _started(first)
    b, said_b = _started(second)
    assert a["owned"] and not b["owned"] and "reusing server" in said_b
    assert (said_a + said_b).count("starting vLLM") == 1
    rec = serve.read_pidfile(port)
    assert rec["owner_proc"] == a["me"] and [u["proc"] for u in rec["users"]] == [b["me"]]
    r = lab("serve", "status")
    assert r.returncode == 0 and r.stdout.strip().endswith(f"; also used by process {b['me'].split(':')[0]}"), r.stdout

    how = _release(first)  # the owner is done first: the server stays for the run still using it
    assert how.startswith(f"left the server on port {port} running for process {b['me'].split(':')[0]}")
    rec = serve.read_pidfile(port)
    assert serve.port_open("127.0.0.1", port) and rec["owner_proc"] == b["me"] and rec["users"] == []
    assert _release(second) == "stopped"
    assert serve.read_pidfile(port) is None and not procs.group_pids(rec["pgid"])
    assert not list(paths.logs().glob(f"vllm-{port}.lock"))


def test_a_start_waits_for_a_server_whose_starter_was_killed_while_it_loaded(port):
    """Its starter SIGKILLed, the server loads on with its port closed: a new start waits for it and reuses it
    (no second server), it is not abandoned while that user lives, and that user's end stops it. (Without its
    watcher: with one, the server may be let go before the new start begins, which is the next test.)"""
    first = _holder(4.0, watch=False)
    _spawned(port)
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = _holder(4.0)
    b, said = _started(second)
    assert not b["owned"] and "is not answering yet: waiting for it" in said and "starting vLLM" not in said
    rec = serve.read_pidfile(port)
    assert not pidfile.abandoned(rec)  # its owner is gone, but a live run uses it
    assert _release(second) == "stopped"  # nobody else would
    assert serve.read_pidfile(port) is None and not procs.group_pids(rec["pgid"])


def test_a_start_lock_held_elsewhere_is_waited_for_with_a_bound(port, capsys):
    """The lock file names its holder; a waiter past its bound gives one line saying what it waited for."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from lab import pidfile\n"
        f"with pidfile.start_lock({port}, print, 5):\n    print('held', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LabError, match=rf"another lab process \(pid {holder.pid}\) has been starting "
                                                 rf"the server on port {port} for over 1s"):
            with pidfile.start_lock(port, print, 1.0):
                pass
    finally:
        holder.kill()
        holder.wait()
    with pidfile.start_lock(port, print, 1.0):  # a dead holder's lock is free at once
        assert Path(paths.logs() / f"vllm-{port}.lock").read_text() == f"pid {os.getpid()}\n"


PAUSING = [("profile = 'tiny'  # profile\npause = 0  # seconds between two requests", True),
           ("import time\nfrom lab import serve\nsrv = serve.start(profile, timeout=300)\n"
            "srv.client().chat('hi', max_tokens=2)\ntime.sleep(pause)\nsrv.client().chat('hi', max_tokens=2)\n"
            "print('server:', srv.release())", False)]


@pytest.mark.slow
def test_two_lab_runs_seconds_apart_share_one_real_server_and_neither_leaves_it(tmp_path, monkeypatch):
    """The fault as found: two `lab run`s 3 s apart on one profile and port, no server up. The second waits for the
    first's server and reuses it; the first ends while the second still uses it, hands it over; the second's
    end stops it. Was: a second vLLM that died on the port, and a leaked first server."""
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src, _ in PAUSING]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, tmp_path / "93_share.ipynb")
    port = free_port()
    env = {**os.environ, "LAB_PORT": str(port), "LAB_RUNS": str(tmp_path / "runs"),
           "LAB_JOURNAL": str(tmp_path / "journal")}
    env.pop("LAB_SERVED_NAME", None)
    cmd = [sys.executable, "-m", "lab.cli", "run", str(tmp_path / "93_share.ipynb"), "--profile", "tiny",
           "--cell-timeout", "300"]
    runs = [subprocess.Popen([*cmd, "-p", "pause=0"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)]
    time.sleep(3)
    runs.append(subprocess.Popen([*cmd, "-p", "pause=20"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True))
    try:
        outs = [p.communicate(timeout=600)[0] for p in runs]
    finally:
        serve.stop(port, quiet=True)
    assert [p.returncode for p in runs] == [0, 0], "\n=====\n".join(outs)
    assert "".join(outs).count("starting vLLM") == 1, outs
    assert "reusing server" in outs[1] and f"left the server on port {port} running for run " in outs[0], outs
    assert serve.read_pidfile(port) is None and not serve.port_open("127.0.0.1", port)
    # (the session's end checks that no vLLM process, EngineCore included, is left anywhere)


def test_a_server_that_dies_while_a_start_waits_leaves_no_orphan(port, monkeypatch, tmp_path, capsys):
    """The loading server's main process exits while a start waits for it, its EngineCore (here: a child that
    ignores SIGTERM) still running: the start stops that orphan before starting its own server."""
    from lab import config
    code = ("import signal, subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\ntime.sleep(2)\nsys.exit(1)")
    leader = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    paths.atomic_write(pidfile.path_of(port), json.dumps(
        {"pid": leader.pid, "pgid": leader.pid, "start_ticks": procs.start_ticks(leader.pid), "port": port,
         "log": str(tmp_path / "x.log"), "started": time.time(), "owner_proc": "", "users": []}))
    fake = ("import runpy, sys; sys.argv = ['fake', sys.argv[1], sys.argv[2]]; "
            f"runpy.run_path({str(ROOT / 'tests' / 'fake_openai.py')!r}, run_name='__main__')")
    monkeypatch.setattr(config, "serve_command", lambda prof, *a, **k: [sys.executable, "-c", fake, str(prof.port),
                                                                        os.devnull])
    monkeypatch.setattr(procs, "GRACE_S", 1.0)
    srv = serve.start("tiny", timeout=30)
    leader.wait()
    said = capsys.readouterr().out
    assert srv.owned and "is not answering yet: waiting for it" in said
    assert "stopped 1 orphaned process(es) of the previous server" in said and not procs.group_pids(leader.pid)
    assert serve.release(port) == "stopped"


def test_bench_offline_engines_refuse_to_stop_a_gpu_server_another_run_uses(port):
    """On a GPU, transformers and the offline engine need the server's memory: a server a live run still uses is
    not stopped under it (was: stopped regardless); the refusal names that run and the way round."""
    import dataclasses

    from lab import config
    from lab.bench import sweeps
    first = _holder(0.5)
    a, _ = _started(first)
    try:
        prof = dataclasses.replace(config.load("tiny", check_device=False), device="cuda")
        with pytest.raises(LabError, match=rf"the tiny server on port {port} is in use by process "
                                           rf"{a['me'].split(':')[0]}; .* or pass --engines server"):
            sweeps._free_for_offline(prof, sweeps.RunSettings(engines=("hf", "server"), progress=False))
        assert serve.port_open("127.0.0.1", port) and serve.read_pidfile(port)["owner_proc"] == a["me"]
    finally:
        assert _release(first) == "stopped"


def test_status_of_a_server_still_loading_says_starting_not_not_running(port):
    """A lab server whose port is still closed (vLLM loads for a minute or more) was reported "not running"
    (exit 3), which invites a second start; it is "starting" (exit 6) with its pid, time loading and log."""
    first = _holder(20.0)
    try:
        rec = _spawned(port)
        r = lab("serve", "status")
        assert r.returncode == 6, r.stdout + r.stderr
        assert r.stdout.startswith(f"starting on http://127.0.0.1:{port}/v1: vLLM pid {rec['pid']} has been "
                                   f"loading for ") and r.stdout.strip().endswith(f"log: {rec['log']}")
    finally:
        first.kill()
        first.wait()
    _gone(port, rec)  # its run killed, the watcher stops it
    assert lab("serve", "status").returncode == 3


def _gone(port: int, rec: dict, within: float = 20) -> None:
    """The server of `rec` is stopped, its pid file and its watcher gone, within `within` seconds."""
    deadline = time.time() + within
    while serve.read_pidfile(port) or procs.group_pids(rec["pgid"]) or _watchers(port):
        assert time.time() < deadline, f"still there after {within}s: {serve.read_pidfile(port)} {_watchers(port)}"
        time.sleep(0.2)


def _watchers(port: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"lab.watch" in cmd and str(port).encode() in cmd and procs.alive(int(d.name)):
            out.append(int(d.name))
    return out


def test_a_killed_runs_server_is_let_go_at_once_unless_another_run_uses_it(port):
    """Was: a SIGKILLed `lab run` left its server (on CUDA: the whole GPU) up until the next `lab run`. Its
    watcher stops it within a poll; one that another run uses stays up for that run, whose end stops it."""
    first = _holder(0.5)
    _started(first)
    rec = serve.read_pidfile(port)
    assert _watchers(port)
    first.send_signal(signal.SIGKILL)
    first.wait()
    _gone(port, rec)

    a, b = _holder(0.5), None
    try:
        _started(a)
        b = _holder(0.5)
        mine, _ = _started(b)
        a.send_signal(signal.SIGKILL)
        a.wait()
        time.sleep(3 * watch.POLL_S)
        rec = serve.read_pidfile(port)
        assert serve.port_open("127.0.0.1", port) and _watchers(port) and [u["proc"] for u in rec["users"]] == \
            [mine["me"]]
        assert _release(b) == "stopped"  # its owner gone, its last user stops it
        _gone(port, rec)
    finally:
        for p in (a, b):
            if p and p.poll() is None:
                p.kill()
