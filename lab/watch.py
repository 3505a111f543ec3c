"""A server's watcher: when the `lab run` that owns it dies (SIGKILL, the OOM killer), let go of it at once.

Without it an abandoned server held its memory (on CUDA: the whole GPU, gpu_memory_utilization 0.90) until the
next `lab run` found it. The watcher is a process of its own session, started beside each server a run
starts; it ends with the server (stopped, replaced or dead). A server another live run still uses is not
abandoned: it stays up for that run, whose end stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

POLL_S = 2.0  # how late a dead owner's server is let go: one poll, against minutes until the next `lab run`


def start(port: int, server_pid: int) -> None:
    """Watch the server `server_pid` on `port` from a detached process (it holds no terminal and no file)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_RUN_OWNER", "LAB_RUN_DIR")}  # holds nothing
    subprocess.Popen([sys.executable, "-m", "lab.watch", str(port), str(server_pid)], env=env,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def watch(port: int, server_pid: int, poll: float = POLL_S) -> str:
    """Poll the port's pid file until the server is gone; let go of it once it is abandoned. Returns why it
    stopped watching."""
    from lab import pidfile, serve
    while True:
        rec = pidfile.read_pidfile(port)
        if not rec or rec.get("stale") or rec.get("orphans") or rec.get("pid") != server_pid:
            return "server gone"  # stopped, replaced, or dead (the next start clears its orphans)
        if pidfile.abandoned(rec):
            serve.release(port, quiet=True, started=False)  # under the start lock: a run that joined meanwhile
                                                            # keeps it
        time.sleep(poll)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
