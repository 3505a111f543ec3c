"""A vLLM server's log: which file is a port's, its last lines without colour codes, and why a start failed."""

from __future__ import annotations

import itertools
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


# vLLM's line prefix, "(EngineCore pid=7) ERROR 12-06 18:25:12 [core.py:1510] ", before a traceback's lines
_PREFIX = re.compile(r"^(\([\w-]+ pid=\d+\) )?([A-Z]+ [\d-]+ [\d:]+ \[[^\]]*\] )?")
_RAISED = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt): .+")
# what vLLM raises around the real error, each pointing "above" at it (a failed start-up logs 3 tracebacks)
_WRAPPERS = ("root cause above", "See stack trace", "initialization failed due to an exception in a background")


def cause(path: Path, n: int = 2000) -> str:
    """The first error a failed start raised (`ValueError: Available memory on node 0 ...`) with its indented
    detail lines (pydantic's), not the wrappers around it; else the log's last line. A start-up log is ~170 lines;
    a chained traceback shows its cause first."""
    lines = [_PREFIX.sub("", ln).rstrip() for ln in tail(path, n).splitlines()]
    for i, ln in enumerate(lines):
        if _RAISED.fullmatch(ln) and not any(w in ln for w in _WRAPPERS):
            more = list(itertools.takewhile(lambda x: x[:1].isspace() and x.strip(), lines[i + 1:i + 3]))
            return " ".join(x.strip() for x in [ln, *more])[:600]
    return next((ln.strip() for ln in reversed(lines) if ln.strip()), "(the log is empty)")


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
