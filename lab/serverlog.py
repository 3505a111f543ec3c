"""A vLLM server's log: which file is a port's, and its last lines without colour codes."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

from lab import LabError, paths
from lab.pidfile import read_pidfile

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # vLLM colours its log lines when it thinks a terminal reads them


def tail(path: Path, n: int = 20) -> str:
    """Last n lines of a log file, colour codes removed."""
    try:
        with open(path, errors="replace") as f:
            return ANSI.sub("", "".join(deque(f, maxlen=n)))
    except OSError:
        return ""


def log_of(port: int | None = None) -> Path:
    """The log of the server on `port` (its pid file's, else the newest for that port), or logs/latest.log."""
    logs = paths.logs()
    if port is None:
        latest = logs / "latest.log"
        if not latest.exists():
            raise LabError(f"no server log yet ({latest} is missing): start one with `lab serve start`")
        return latest
    rec = read_pidfile(port)
    if rec and Path(rec.get("log", "")).exists():
        return Path(rec["log"])
    found = sorted(logs.glob(f"vllm-*-{port}.log"))
    if not found:
        raise LabError(f"no server log for port {port} in {logs}")
    return found[-1]


def logs_tail(n: int = 40, port: int | None = None) -> str:
    """Last lines of a server's log (see log_of)."""
    return tail(log_of(port), n)
