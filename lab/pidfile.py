"""The records of the servers lab started (logs/vllm-PORT.json): read, trusted or not, orphans, removal."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lab import config, paths, procs

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
            rec = json.loads(f.read_text())
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
        rec = json.loads(f.read_text())
    except ValueError:
        rec = None
    if not _trusted(rec):
        # lab writes pid == pgid (its own session) and the start time: anything else was edited or cut, and
        # acting on it could signal a process that is not a server (pid 1 in one hand-made file)
        print(f"warning: ignored and removed {f}: not a pid file lab wrote", file=sys.stderr, flush=True)
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
    """A server started inside a `lab run` whose process is gone (SIGKILLed, the machine's OOM killer): nobody
    is left to stop it. A server started by hand (no owner) is never abandoned."""
    return procs.gone(str(rec.get("owner_proc") or ""))


def _trusted(rec: Any) -> bool:
    """A record as start() writes it: pid == pgid > 1 and an integer start time."""
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)
    return (isinstance(rec, dict) and whole(rec.get("pid")) and rec["pid"] > 1 and rec.get("pgid") == rec["pid"]
            and whole(rec.get("start_ticks")))
