"""The records of the servers lab started (logs/vllm-PORT.json): read, trusted or not, orphans, removal."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from lab import config, locks, paths, procs

IPC_PREFIX = "lab-vllm-ipc-"


def path_of(prof: config.Profile | int) -> Path:
    """logs/vllm-PORT.json of a profile's port (or a port number)."""
    port = prof if isinstance(prof, int) else prof.port
    return paths.logs() / f"vllm-{port}.json"


def live_servers() -> dict[int, dict[str, Any]]:
    """Port -> pid-file record of every server lab started that still has a live process (orphans included);
    records with no live member are removed on the way (read_pidfile)."""
    out = {}
    for f in sorted(paths.logs().glob("vllm-*.json")):
        port = f.stem.removeprefix("vllm-")
        rec = read_pidfile(int(port)) if port.isdigit() else None
        if rec and not rec.get("stale"):
            out[int(port)] = rec
    return out


def forget(prof: config.Profile | int, rec: dict[str, Any] | None = None) -> None:
    """Remove a stopped server's pid file and the folder of its IPC sockets."""
    f = path_of(prof)
    if rec is None:
        try:
            rec = paths.parse_json(f.read_text())
        except (OSError, ValueError):
            rec = {}
    if not isinstance(rec, dict):
        rec = {}
    ipc = Path(str(rec.get("ipc_dir") or ""))
    if ipc.name.startswith(IPC_PREFIX) and ipc.parent == Path(tempfile.gettempdir()):  # never a path a file chose
        shutil.rmtree(ipc, ignore_errors=True)
    f.unlink(missing_ok=True)


def read_pidfile(prof: config.Profile | int) -> dict[str, Any] | None:
    """The recorded server of a port (a profile's, or the port number), or None.

    The record outlives its main process while any member of its process group or session is alive
    (vLLM's EngineCore and workers survive a SIGKILL of the API server): then it says orphans=[pids]. Only a
    record with no live member is removed (stale=True)."""
    f = path_of(prof)
    if not f.exists():
        return None
    try:
        rec = paths.parse_json(f.read_text())
    except ValueError:
        rec = None
    if not _trusted(rec):
        # lab writes pid == pgid (its own session) and the start time: anything else was edited or cut, and
        # acting on it could signal a process that is not a server (pid 1 in one hand-made file)
        paths.warn(f"ignored and removed {f}: not a pid file lab wrote")
        f.unlink(missing_ok=True)
        return None
    pid = rec["pid"]
    if procs.alive(pid):
        if procs.start_ticks(pid) == rec["start_ticks"]:
            return rec
        members = []  # the pid was reused, so its old group is empty (Linux reuses no pid a group still holds)
    else:
        members = procs.group_pids(pid)  # a group id held by live members is still the server's group
    if members:
        rec["orphans"] = members
        return rec
    forget(prof, rec)
    rec["stale"] = True
    return rec


def abandoned(rec: dict[str, Any]) -> bool:
    """A server started inside a `lab run` whose process is gone (SIGKILLed, the machine's OOM killer) and that
    no other live run uses: nobody is left to stop it. A server started by hand (no owner) is never abandoned."""
    return procs.gone(str(rec.get("owner_proc") or "")) and not live_users(rec)


def me() -> str:
    """This process as "pid:start ticks" (a name no later process can reuse)."""
    return f"{os.getpid()}:{procs.start_ticks(os.getpid())}"


def holder() -> tuple[str, str]:
    """Who holds a server this process starts or reuses: its `lab run` (the runner and its notebooks' kernels are
    one holder), else this process; and that run's folder."""
    return os.environ.get("LAB_RUN_OWNER") or me(), os.environ.get("LAB_RUN_DIR", "")


def live_users(rec: dict[str, Any]) -> list[dict[str, str]]:
    """The holders besides its owner that reused the server and still run (a gone one never stops it; an entry
    lab did not write, which could keep a server up forever, is not one)."""
    users = rec.get("users")
    return [u for u in users if _live_holder(u)] if isinstance(users, list) else []


def _live_holder(u: Any) -> bool:
    if not (isinstance(u, dict) and isinstance(u.get("proc"), str) and isinstance(u.get("run", ""), str)):
        return False
    pid, _, ticks = u["proc"].partition(":")
    return pid.isdigit() and ticks.isdigit() and not procs.gone(u["proc"])


def label(u: dict[str, str]) -> str:
    """How messages name a holder: its run's folder, else its process id."""
    return f"run {Path(u['run']).name}" if u.get("run") else f"process {u['proc'].split(':')[0]}"


def others(rec: dict[str, Any]) -> list[dict[str, str]]:
    """The live holders of a server besides this one: its owner (a `lab run` still going) and its users."""
    proc, _run = holder()
    owner = {"proc": str(rec.get("owner_proc") or ""), "run": str(rec.get("owner") or "")}
    held = [owner] if owner["proc"] and _live_holder(owner) else []
    return [u for u in held + live_users(rec) if u["proc"] != proc]


def save(prof: config.Profile | int, rec: dict[str, Any]) -> None:
    """Write a record back (atomically), without the fields read_pidfile adds."""
    keep = {k: v for k, v in rec.items() if k not in ("orphans", "stale")}
    paths.atomic_write(path_of(prof), json.dumps(keep, indent=1))


def join(prof: config.Profile) -> None:
    """Record this holder as a user of the lab-started server it reuses, so that its owner's end hands the
    server over instead of stopping it under a run still using it (called with the start lock held)."""
    rec = read_pidfile(prof)
    proc, run = holder()
    if not rec or rec.get("stale") or rec.get("owner_proc") == proc:
        return
    users = [u for u in live_users(rec) if u.get("proc") != proc]
    save(prof, {**rec, "users": [*users, {"proc": proc, "run": run}]})


def start_lock(port: int, say: Callable[[str], None], wait_s: float) -> AbstractContextManager[None]:
    """Hold logs/vllm-PORT.lock while starting, reusing or letting go of the port's server: one lab process at a
    time. Without it two `lab run`s 3 s apart both spawned vLLM (the second saw the first still loading, with
    its port closed), the second pid file overwrote the first, and the first server leaked."""
    return locks.held(
        paths.logs() / f"vllm-{port}.lock", wait_s=wait_s,
        waiting=lambda who, t: say(f"  waiting for another lab process ({who}) to finish starting the server on "
                                   f"port {port}... {t:.0f}s"),
        busy=lambda who: f"another lab process ({who}) has been starting the server on port {port} for over "
                         f"{wait_s:.0f}s; wait for it or stop it (`lab serve stop --port {port}`)")


def _trusted(rec: Any) -> bool:
    """A record as start() writes it: pid == pgid > 1 and an integer start time."""
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)
    return (isinstance(rec, dict) and whole(rec.get("pid")) and rec["pid"] > 1 and rec.get("pgid") == rec["pid"]
            and whole(rec.get("start_ticks")))
