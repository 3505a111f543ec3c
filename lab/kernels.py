"""Headless kernels: IPC sockets in the run's own folder, the kernel's stderr in a log file."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any


def kernel_manager(stderr_log: Path, sockets: str) -> type:
    """A kernel manager for headless runs: IPC sockets (files only this user can open, instead of TCP on
    localhost: no "TCP without encryption" warning) named by the absolute prefix `sockets` (see
    socket_prefix), and the kernel's own stderr in a log file, so its warnings, and a ZMQ traceback when a
    run is interrupted mid-cell, do not reach the terminal."""
    from jupyter_client import AsyncKernelManager
    from traitlets import default

    class Headless(AsyncKernelManager):
        transport = "ipc"

        @default("ip")
        def _headless_ip(self) -> str:
            return sockets

        @default("connection_file")
        def _headless_connection_file(self) -> str:
            # beside its sockets, not jupyter_client's /tmp/tmpXXXX.json, which a SIGKILLed run left behind
            return f"{sockets}.json"

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            stderr_log.parent.mkdir(parents=True, exist_ok=True)
            with open(stderr_log, "ab") as err:  # the child keeps its own copy of the descriptor
                kw["stderr"] = err
                await super()._async_launch_kernel(kernel_cmd, **kw)
    return Headless


# A Unix socket path holds at most 107 bytes (sun_path); jupyter_client appends "-N" to the prefix.
_SOCKET_PATH_MAX = 100


def socket_prefix(run_dir: Path, stem: str) -> str:
    """Absolute prefix of one notebook's kernel sockets, in the run's own folder.

    jupyter_client's default for IPC is the relative "kernel-ipc", numbered by the first free "-N" in the
    working folder (papermill's cwd, notebooks/): two runs of one checkout chose and bound the same files,
    and a kernel that binds a path unlinks the other run's socket, so a client could be left talking to
    a socket nobody reads. A prefix per run and notebook shares nothing. Deep folders exceed sun_path:
    then a private temporary folder (mode 700) holds them."""
    prefix = str((run_dir / "kernels" / stem).resolve())
    if len(prefix) + 3 <= _SOCKET_PATH_MAX:
        Path(prefix).parent.mkdir(parents=True, exist_ok=True)  # the connection file is written before the launch
        return prefix
    return str(Path(tempfile.mkdtemp(prefix=_TEMP_SOCKETS)) / stem[:16])


_TEMP_SOCKETS = "lab-kernel-"


def release_sockets(prefix: str) -> None:
    """Remove the temporary folder socket_prefix made for a deep run folder (nothing otherwise)."""
    folder = Path(prefix).parent
    if folder.name.startswith(_TEMP_SOCKETS) and folder.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(folder, ignore_errors=True)
