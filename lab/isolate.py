"""GPU memory has one owner at a time: heavy work in a process of its own, pinned, never beside a server."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from lab import LabError, config, crash, paths, pidfile, procs

ALLOWED = ("lab.finetune.train:train_dict", "lab.bench.engines:hf_generate", "lab.bench.engines:hf_runs",
           "lab.bench.engines:vllm_generate")


def pinned_env(prof: config.Profile, gpus: int = 1) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES for work on `gpus` GPUs of a CUDA profile: the first ones visible, so a 4-GPU box
    trains exactly as a 1-GPU box (no 4x batch on GPU 0 under 4-bit, no DataParallel without it); {} on CPU."""
    if prof.device != "cuda":
        return {}
    seen = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [x.strip() for x in seen.split(",") if x.strip()] if seen else [str(i) for i in range(max(1, gpus))]
    return {"CUDA_VISIBLE_DEVICES": ",".join(ids[:gpus])}


def servers_in_the_way(prof: config.Profile, running: dict[int, str]) -> list[int]:
    """Ports of running lab servers (port -> profile name) that hold GPU memory work on `prof` needs."""
    if prof.device != "cuda":
        return []  # on CPU a server and transformers share RAM: slower, not an out-of-memory failure
    out = []
    for port, name in sorted(running.items()):
        try:
            device = config.load(name, check_device=False).device
        except LabError:
            device = "cuda"  # a profile we cannot read any more: assume the worst
        if device == "cuda":
            out.append(port)
    return out


def running_servers() -> dict[int, str]:
    """Port -> profile name of every lab server with a live process on this machine."""
    return {port: str(rec.get("profile", "?")) for port, rec in pidfile.live_servers().items()}


def require_gpu_free(prof: config.Profile, what: str) -> None:
    """One line and no start when a server holds the GPUs `what` (transformers, offline vLLM, training) needs."""
    ports = servers_in_the_way(prof, running_servers())
    if ports:
        stop = " && ".join(f"lab serve stop --port {p}" for p in ports)
        raise LabError(f"{what} needs the GPU memory that the vLLM server on port {ports[0]} holds "
                       f"(gpu_memory_utilization reserves it up front): stop it first (`{stop}`)")


TMP_PREFIX = "lab-isolate-"


def run(target: str, kwargs: dict[str, Any], env: dict[str, str] | None = None, timeout: float | None = None,
        quiet: bool = False) -> dict[str, Any]:
    """target(**kwargs) in a fresh Python process that owns its memory and its process group; its output
    streams through as it comes (progress in notebooks and logs); returns the dict it returned."""
    if target not in ALLOWED:
        raise LabError(f"unknown isolated function {target!r}")
    procs.remove_left_behind(Path(tempfile.gettempdir()), TMP_PREFIX)  # of a SIGKILLed `lab run`
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-") as tmp:
        res_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "lab.isolate", target, json.dumps(kwargs), str(res_file)]
        # tqdm bars (weights loading, 272 lines per model) would drown the work's own progress lines
        # VLLM_RPC_BASE_PATH: the offline engine's ZMQ sockets go in this folder, removed with it (vLLM leaves
        # them in /tmp otherwise: 700+ after a few days of tests)
        child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "VLLM_RPC_BASE_PATH": tmp,
                     PARENT: str(os.getpid()), **(env or {})}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env,
                                start_new_session=True)  # its own group: nothing it starts outlives it
        tail: list[str] = []

        def pump() -> None:  # in a thread, so the timeout below holds even while the child prints nothing
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(line.rstrip())
                del tail[:-20]
                if not quiet and not line.startswith("error: "):  # the error is raised below: said once
                    print(line, end="", flush=True)
        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
            reader.join(timeout=10)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            procs.stop_group(proc.pid, grace=5)
            raise LabError(f"{target} stopped (interrupted or over {timeout} s); its process group is gone") from None
        finally:
            if proc.poll() is None or procs.group_pids(proc.pid):
                procs.stop_group(proc.pid, grace=5)  # e.g. an offline vLLM EngineCore left behind
        if proc.returncode != 0 or not res_file.exists():
            last = next((t for t in reversed(tail) if t.startswith("error: ")), None)
            raise LabError(last.removeprefix("error: ") if last else
                           f"{target} failed (exit {proc.returncode}); last output:\n" + "\n".join(tail[-8:]))
        return json.loads(res_file.read_text("utf-8"))


PARENT = "LAB_ISOLATE_PARENT"


def die_with_parent(parent: int) -> None:
    """Take this process group down when `parent` dies, SIGKILL included: a training child in a session of its
    own went on for minutes after its `lab finetune` was killed, holding the output's lock (Linux prctl)."""
    import ctypes
    import signal
    me = os.getpid()

    def on_term(*_: Any) -> None:
        if os.getpid() != me:  # a forked worker inherited this handler: die as it would have
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        os.killpg(os.getpgrp(), signal.SIGKILL)  # the whole group: an offline EngineCore too
    signal.signal(signal.SIGTERM, on_term)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the parent's own finally still stops the group whenever it lives to run it
    if os.getppid() != parent:  # it died before prctl: no signal will come
        os.killpg(os.getpgrp(), signal.SIGKILL)


def _main(argv: list[str]) -> int:
    target, kwargs, res_file = argv
    if os.environ.get(PARENT, "").isdigit():
        die_with_parent(int(os.environ[PARENT]))
    module, func = target.split(":")
    try:
        res = getattr(importlib.import_module(module), func)(**json.loads(kwargs))
    except LabError as e:
        print(paths.one_line(f"error: {e}"), flush=True)
        return 1
    except Exception as e:  # a bug: the parent shows this one line, the traceback stays in logs/
        if crash.wanted():
            raise
        return crash.report(e, [target])
    paths.atomic_write(Path(res_file), json.dumps(res, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
