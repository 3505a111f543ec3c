"""vLLM server lifecycle: start in its own process group, wait ready, status from the API, stop all."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab import LabError, config, paths, pidfile, procs, watch
from lab.client import root_url
from lab.pidfile import IPC_PREFIX, read_pidfile
from lab.readiness import MAX_EXTENSION, await_other, probe, wait_ready

READY_TIMEOUT_S = 600  # tiny model: ~34 s eager, ~75 s compiled; a 32B AWQ model: minutes
RELEASE_WAIT_S = 600  # letting go waits this long for a start of the same port in progress elsewhere


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((config.connect_host(host), port)) == 0


class Server:
    """A running (or reused) vLLM server for a profile."""

    def __init__(self, prof: config.Profile, pid: int | None, log: Path | None, owned: bool,
                 api_key: str | None) -> None:
        self.profile, self.pid, self.log, self.owned = prof, pid, log, owned
        self._api_key = api_key

    @property
    def base_url(self) -> str:
        return self.profile.base_url

    @property
    def api_key(self) -> str:
        """Key for clients ('EMPTY' when the server has none; the openai client needs a value)."""
        return self._api_key or "EMPTY"

    def client(self, **kw: Any):
        """A lab.client.Client bound to this server."""
        from lab.client import Client
        return Client(self.base_url, api_key=self.api_key, **kw)

    def stop(self) -> bool:
        return stop(self.profile)

    def release(self) -> str:
        return release(self.profile, started=self.owned)

    def __repr__(self) -> str:
        return f"Server({self.profile.name!r}, {self.base_url}, pid={self.pid}, owned={self.owned})"


def start(profile: str | config.Profile | None = None, api_key: str | None = None,
          timeout: float = READY_TIMEOUT_S, quiet: bool = False,
          extra_serve: dict[str, Any] | None = None, hold: bool = False) -> Server:
    """Start the profile's server, or reuse a healthy one serving the same model on its port. hold: a server
    started here belongs to this process, which releases it when done; should the process die first (SIGKILL),
    a watcher stops it (a `lab run` holds its servers so; `lab serve start` leaves them running on purpose)."""
    prof = profile if isinstance(profile, config.Profile) else config.load(profile)
    if extra_serve:
        prof = dataclasses.replace(prof, serve={**prof.serve, **extra_serve})
    api_key = api_key or config.api_key()
    say = (lambda m: None) if quiet else (lambda m: print(m, flush=True))
    # a start that waits on another (same port) waits as long as that one may: its own bound plus its stop
    with pidfile.start_lock(prof.port, say, MAX_EXTENSION * timeout + 60):
        rec = _clear_leftovers(prof, say)
        found = _reusable(prof, api_key, rec, say)
        if found is None and rec:
            ready = await_other(prof, rec, api_key, timeout, say)
            # answering: reuse it; died while we waited: its orphans (EngineCore) and IPC folder go first
            rec = _clear_leftovers(prof, say)
            found = _reusable(prof, api_key, rec, say) if ready else None
        if found is not None:
            pidfile.join(prof)
            return found
        if port_open(prof.host, prof.port):
            raise LabError(f"port {prof.port} is in use by another program; free it or set LAB_PORT")
        config.check_heads(prof, prof.tensor_parallel(), config.model_config(prof.model_path()))
        note = download_note(prof)
        if note:
            say(note)
        proc, log = _spawn(prof, api_key, say, hold)
        t0 = time.time()
        wait_ready(prof, proc, log, api_key, timeout, say)
    say(f"vLLM ready in {time.time() - t0:.1f}s (pid {proc.pid})")
    return Server(prof, proc.pid, log, True, api_key)


def release(profile: str | config.Profile | int, quiet: bool = False, started: bool | None = None) -> str:
    """Let go of a server: stop it when the caller started it (`started`; None: this process spawned it), or
    its run owns it, or its owner is gone, and no other live run uses it; hand it over to such a run instead;
    else only drop this holder from its users. Returns what happened, in words."""
    port = profile if isinstance(profile, int) else (
        profile if isinstance(profile, config.Profile) else config.load(profile, check_device=False)).port
    try:
        with pidfile.start_lock(port, lambda m: None if quiet else print(m, flush=True), RELEASE_WAIT_S):
            return _release_locked(port, quiet, started)
    except LabError as e:  # a run's end must go on (journal, other servers) even when it cannot let go
        return f"left running: {e}"


def _release_locked(port: int, quiet: bool, started: bool | None) -> str:
    """release() with the port's start lock held."""
    rec = read_pidfile(port)
    if not rec or rec.get("stale"):
        return "not running"
    proc, _run = pidfile.holder()
    here = pidfile.me()
    owner = str(rec.get("owner_proc") or "")
    live = pidfile.live_users(rec)
    users = [u for u in live if u.get("proc") != proc]
    # a kernel of a run is not its run: a shared server the runner started is the runner's to let go
    spawned = rec.get("starter") == here if started is None else started
    mine = spawned or owner == here or bool(owner and procs.gone(owner))
    if not mine:
        if proc == here and len(users) != len(live):
            pidfile.save(port, {**rec, "users": users})
        return "left running (started elsewhere: its starter stops it)"
    if users:
        heir = users[0]
        pidfile.save(port, {**rec, "owner_proc": heir["proc"], "owner": heir.get("run", ""), "users": users[1:]})
        msg = (f"left the server on port {port} running for {pidfile.label(heir)}, which uses it (and stops it "
               "when done)")
        if not quiet:
            print(msg, flush=True)
        return msg
    stop(port, quiet=quiet)
    return "stopped"


def _clear_leftovers(prof: config.Profile, say: Any) -> dict[str, Any] | None:
    """The port's pid file record, after dropping a stale one and stopping the orphans of a dead server (None
    then: a stale record was waited on as a live server that was "not answering yet")."""
    rec = read_pidfile(prof)
    if rec and rec.get("stale"):
        say(f"removed stale pid file for port {prof.port} (pid {rec['pid']} is gone)")
        return None
    if rec and rec.get("orphans"):
        n = len(rec["orphans"])
        procs.stop_group(int(rec["pgid"]))
        pidfile.forget(prof)
        say(f"stopped {n} orphaned process(es) of the previous server on port {prof.port} (its main process "
            f"pid {rec['pid']} was gone; they held its memory)")
        return None
    return rec


def _reusable(prof: config.Profile, api_key: str | None, rec: dict[str, Any] | None, say: Any) -> Server | None:
    """A healthy server already serving the profile's model on its port (not owned: nobody stops it for us);
    None when the port is free; an error when it serves something else or refuses the key."""
    found = probe(prof, api_key)
    if found is None:
        return None
    ids = [m["id"] for m in found["models"]]
    if found.get("unauthorized"):
        raise LabError(f"port {prof.port} answers but rejects the API key: set LAB_API_KEY to the server's key")
    if prof.served_name in ids:
        say(f"reusing server on {prof.base_url} (model {prof.served_name})")
        live = rec and not rec.get("stale")
        return Server(prof, rec.get("pid") if live else None, Path(rec["log"]) if live else None, False, api_key)
    if ids:
        raise LabError(f"port {prof.port} already serves {', '.join(ids)}, not {prof.served_name!r}: "
                       f"stop it (`lab serve stop --port {prof.port}`) or choose another port")
    return None


def _inductor_cache() -> str:
    """torch inductor's default cache folder (a temp-dir path: it must not move with TMPDIR)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid_{os.getuid()}"
    return str(Path(tempfile.gettempdir()) / f"torchinductor_{user}")


def _spawn(prof: config.Profile, api_key: str | None, say: Any, hold: bool = False) -> tuple[subprocess.Popen, Path]:
    """vLLM in a session of its own (stop kills EngineCore and workers with it), its log, and the pid file."""
    cmd = config.serve_command(prof)
    env = {**os.environ, **config.serve_env(prof)}
    if api_key:
        env["VLLM_API_KEY"] = api_key  # via env, not argv: vLLM logs its args and ps shows argv
    env.setdefault("PYTHONUNBUFFERED", "1")
    # vLLM's ZMQ sockets (API server <-> EngineCore) in a folder of this server's own, removed when it stops;
    # left in /tmp they pile up (700+ after a few days of tests)
    for old in Path(tempfile.gettempdir()).glob(f"{IPC_PREFIX}{prof.port}-*"):
        # a server of this port that died unstopped (SIGKILL, reboot): the port is free and we hold its start lock
        shutil.rmtree(old, ignore_errors=True)
    ipc = tempfile.mkdtemp(prefix=f"{IPC_PREFIX}{prof.port}-")
    env["VLLM_RPC_BASE_PATH"] = ipc
    # its temp files too: each start leaves a torch file store /tmp/vllm_dist_<uuid> (347 of them after two days
    # of tests); the compile cache keeps its usual place, so a restart still finds its compiled graphs
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", _inductor_cache())
    env["TMPDIR"] = ipc
    logs = paths.logs()
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"vllm-{paths.utc_stamp()}-{prof.name}-{prof.port}.log"
    with open(log, "w") as f:
        f.write(f"# lab serve start: profile {prof.name}\n# {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)  # own group: stop kills EngineCore too
    sched = None
    if prof.serve.get("autogroup_nice") is not None:
        sched = procs.set_autogroup_nice(proc.pid, prof.serve["autogroup_nice"])
        if not sched.startswith("/autogroup"):  # success reads "/autogroup-N nice 5"
            say(f"note: {sched}")
    owner = os.environ.get("LAB_RUN_OWNER") or (pidfile.me() if hold else "")
    latest = logs / "latest.log"
    latest.unlink(missing_ok=True)
    latest.symlink_to(log.name)
    paths.atomic_write(pidfile.path_of(prof), json.dumps(
        {"pid": proc.pid, "pgid": proc.pid, "sid": proc.pid, "start_ticks": procs.start_ticks(proc.pid),
         "profile": prof.name, "port": prof.port,
         # which `lab run` (if any) this server belongs to: its backstop stops only its own servers,
         # never those of a run going on beside it
         "owner": os.environ.get("LAB_RUN_DIR", ""),
         "owner_proc": owner,  # "pid:start ticks" of that `lab run` process, or of the holding process
         "starter": pidfile.me(), "users": [],  # who spawned it; other runs reusing it (see release)
         "served_name": prof.served_name, "log": str(log), "started": time.time(),
         "autogroup": sched, "ipc_dir": ipc}, indent=1))
    if owner:  # a run's or a holder's server: let go of it the moment that process dies
        watch.start(prof.port, proc.pid)
    say(f"starting vLLM ({prof.name}, {prof.served_name}) on {prof.base_url}; log: {log}")
    return proc, log


def download_note(prof: config.Profile) -> str | None:
    """What a start will download first, when the model is a Hub id missing from the local cache (size when
    the Hub answers within a few seconds); None for local folders and cached models."""
    model = prof.model_path()
    if not config.uncached_hub_id(model):
        return None
    size = ""
    try:
        from huggingface_hub import HfApi
        info = HfApi().model_info(model, files_metadata=True, timeout=5)
        total = sum(f.size or 0 for f in info.siblings or [] if f.rfilename.endswith((".safetensors", ".bin")))
        size = f" (~{total / 1e9:.1f} GB of weights)" if total else ""
    except Exception as e:  # offline machines: the start itself will say more
        size = f" (size unknown: the Hub did not answer, {type(e).__name__})"
    return (f"{model} is not in the Hugging Face cache: vLLM downloads it first{size}; the start waits while "
            f"its log grows")


def stop(profile: str | config.Profile | int | None = None, quiet: bool = False) -> bool:
    """Stop the server of a profile (or a port number): its whole process group and session, also when its
    main process is already gone; False when nothing was running."""
    if isinstance(profile, int):
        port = profile
    else:
        prof = profile if isinstance(profile, config.Profile) else config.load(profile, check_device=False)
        port = prof.port
    rec = read_pidfile(port)
    if not rec or rec.get("stale"):
        if not quiet:
            extra = " (removed a stale pid file)" if rec else ""
            print(f"no lab-managed server on port {port}{extra}; nothing to stop", flush=True)
        return False
    procs.stop_group(int(rec["pgid"]))
    pidfile.forget(port, rec)
    if not quiet:
        what = (f"{len(rec['orphans'])} orphaned process(es) of the server whose main process pid {rec['pid']} "
                f"was gone" if rec.get("orphans") else f"vLLM pid {rec['pid']}")
        print(f"stopped {what} on port {port} (process group gone, nothing left)", flush=True)
    return True


def status(profile: str | config.Profile | None = None, api_key: str | None = None) -> dict[str, Any]:
    """Server status as the server itself reports it (/health, /v1/models), plus pid and uptime."""
    import httpx  # at first use: `lab` starts without it (test_cli)
    prof = profile if isinstance(profile, config.Profile) else config.load(profile, check_device=False)
    api_key = api_key or config.api_key()
    rec = read_pidfile(prof)
    base = root_url(prof.base_url)
    try:
        healthy = httpx.get(f"{base}/health", timeout=3.0).status_code == 200
    except httpx.HTTPError:
        healthy = False
    found = probe(prof, api_key)
    st: dict[str, Any] = {"profile": prof.name, "url": prof.base_url, "healthy": healthy,
                          "models": found["models"] if found else [],
                          "running": bool(found and found["models"])}
    if found and found.get("unauthorized"):
        st.update(error="API key rejected: set LAB_API_KEY to the server's key", unauthorized=True)
    if rec and rec.get("orphans"):
        st.update(orphans=rec["orphans"], pid=rec["pid"], log=rec["log"])
    elif rec and not rec.get("stale"):
        st.update(pid=rec["pid"], uptime_s=round(time.time() - rec["started"], 1), log=rec["log"],
                  # other runs reusing it (release hands it over)
                  used_by=[pidfile.label(u) for u in pidfile.live_users(rec)])
        # a lab server whose port is still closed is loading (a minute or more): not "not running"
        st["starting"] = not found
    elif rec:
        st["stale_pidfile_removed"] = rec["pid"]
    return st


@contextmanager
def server(profile: str | config.Profile | None = None, **kw: Any) -> Iterator[Server]:
    """Context manager: start or reuse; on exit, release it (stopped only if this process started it and no
    other run uses it)."""
    srv = start(profile, **kw)
    try:
        yield srv
    finally:
        release(srv.profile, quiet=True, started=srv.owned)
