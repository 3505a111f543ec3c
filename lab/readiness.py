"""Is a vLLM server up: its API asked directly, and the wait for readiness, bounded by a log that stops growing."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import LabError, config, paths, pidfile, procs
from lab.client import model_entries, root_url
from lab.profile_checks import flag_hint
from lab.serverlog import cause, tail


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def probe(prof: config.Profile, api_key: str | None = None, timeout: float = 3.0) -> dict[str, Any] | None:
    """Ask the server itself: {'models': [...]} when an OpenAI API answers on the port, else None."""
    import httpx  # at first use: `lab` starts without it (test_cli)
    url = root_url(prof.base_url)
    try:
        r = httpx.get(f"{url}/v1/models", headers=_headers(api_key), timeout=timeout)
    except httpx.HTTPError:
        return None
    if r.status_code == 401:
        return {"models": [], "unauthorized": True}
    try:
        return {"models": model_entries(paths.parse_json(r.content))}
    except ValueError:  # not JSON, nested past the parser, or not a model list
        return {"models": [], "not_openai": True, "status_code": r.status_code}


class NotReady(Exception):
    """Readiness timed out: elapsed seconds, and how long the log has been silent."""


def poll_ready(prof: config.Profile, running: Callable[[], bool], log: Path, api_key: str | None, timeout: float,
                say: Any) -> bool:
    """Poll until the server lists the model (True) or its process is gone (False); NotReady past the bound."""
    t0 = time.time()
    next_note = 15.0
    grew, size = t0, 0
    while True:
        if not running():
            return False
        found = probe(prof, api_key, timeout=2.0)
        if found and prof.served_name in [m["id"] for m in found["models"]]:
            return True
        size_now = log.stat().st_size if log.exists() else 0
        if size_now != size:
            grew, size = time.time(), size_now
        elapsed = time.time() - t0
        if ready_timed_out(elapsed, time.time() - grew, timeout):
            raise NotReady(f"not ready after {elapsed:.0f}s, its log silent for {time.time() - grew:.0f}s")
        if elapsed > next_note:  # progress that shows in logs and notebooks, not only on a TTY
            say(f"  waiting for vLLM... {elapsed:.0f}s ({tail(log, 1).strip()[:100]})")
            next_note += 15.0
        time.sleep(0.5)


def wait_ready(prof: config.Profile, proc: subprocess.Popen, log: Path, api_key: str | None, timeout: float,
                say: Any) -> None:
    """Wait for the server this process spawned; stop it and raise on exit, stall, timeout or Ctrl-C."""
    try:
        if not poll_ready(prof, lambda: proc.poll() is None, log, api_key, timeout, say):
            pidfile.forget(prof)
            why = cause(log)
            raise LabError(f"vLLM exited with code {proc.returncode} during start-up: {why}{flag_hint(why, prof.name)} "
                           f"(its log: {log})")
    except NotReady as e:
        procs.stop_group(proc.pid)
        pidfile.forget(prof)
        raise LabError(f"vLLM {e} (stopped it; --timeout or the notebook's start_timeout waits longer); its last "
                       f"line: {tail(log, 1).strip() or '(none)'} (its log: {log})") from None
    except KeyboardInterrupt:
        procs.stop_group(proc.pid)
        pidfile.forget(prof)
        raise LabError("interrupted during start-up: the server was stopped, nothing left running") from None


def await_other(prof: config.Profile, rec: dict[str, Any], api_key: str | None, timeout: float, say: Any) -> bool:
    """A live server lab started on this port that does not answer yet (its starter was killed while it loaded,
    or the machine is too busy to answer in 3 s): wait for it rather than spawn a second. True once it
    answers; False when it is gone (the port is free again); an error past the readiness bound."""
    pid, ticks = rec["pid"], rec["start_ticks"]
    say(f"the server lab started on port {prof.port} (pid {pid}) is not answering yet: waiting for it")
    try:
        return poll_ready(prof, lambda: not procs.gone(f"{pid}:{ticks}"), Path(str(rec.get("log") or "")),
                           api_key, timeout, say)
    except NotReady as e:
        raise LabError(f"the server lab started on port {prof.port} (pid {pid}) is {e}; stop it with "
                       f"`lab serve stop --port {prof.port}` and start again") from None


STALL_S = 60.0          # a start whose log is silent this long after the timeout has stalled
MAX_EXTENSION = 10      # a log that keeps growing extends the timeout up to this many times


def ready_timed_out(elapsed: float, silent: float, timeout: float) -> bool:
    """Give up waiting for readiness: past the timeout with a log silent for a while (a first start of a
    32B model downloads ~19 GB and captures CUDA graphs, printing as it goes), or far past it regardless."""
    return elapsed > timeout and (silent > min(STALL_S, timeout) or elapsed > MAX_EXTENSION * timeout)
