"""The hardware query, on its own (config, doctor and bench need it; none imports another for it)."""

from __future__ import annotations

import os
from typing import Any


def gpus() -> dict[str, Any]:
    """NVIDIA driver, CUDA driver version and each GPU's name and memory via NVML ({} when none)."""
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception as e:  # no driver, no library: the CPU path
        return {"error": f"{type(e).__name__}: {e}"}
    try:
        drv = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        devs = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            name = pynvml.nvmlDeviceGetName(h)
            devs.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                         "memory_total_gb": round(mem.total / 2**30, 1),
                         "memory_used_gb": round(mem.used / 2**30, 1)})
        return {"driver": drv.decode() if isinstance(drv, bytes) else drv,
                "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}", "devices": devs}
    finally:
        pynvml.nvmlShutdown()


def gpu_count() -> int:
    """Number of NVIDIA GPUs NVML sees (0 when no driver), without importing torch."""
    return len(gpus().get("devices") or [])


# Flags of CPUs that compute bf16 in hardware (x86: AVX512-BF16, AMX; Arm: the BF16 extension). Without them
# PyTorch emulates bf16: a QLoRA step of SmolLM2-135M took 75-85 s under bf16 autocast on a 2-core AVX2 EPYC
# (Zen 3) against 3.4 s in float32 (2026-12-04).
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (or `cpuinfo`): x86 `flags`, Arm `Features`; empty if unreadable."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 natively, from /proc/cpuinfo's flags (or `cpuinfo`); False where unreadable."""
    return bool(BF16_FLAGS & cpu_flags(cpuinfo))


# A profile's serve dtype that lab resolves before vLLM sees it: bfloat16 where it is computed in hardware (CUDA,
# or a CPU with BF16_FLAGS), float32 on other CPUs. On a 2-core AVX2 EPYC (2026-12-05, Qwen2.5-Coder-0.5B, 16
# prompts x 32 tokens) emulated bf16 served c1 6.6 tok/s (TTFT 2.65 s) and c16 7.7; float32 11.3 and 39.5.
AUTO_BF16 = "auto-bf16"


def resolve_dtype(dtype: str, device: str = "cpu", cpuinfo: str | None = None) -> str:
    """`dtype`, with AUTO_BF16 resolved for `device` on this machine (or the CPU that `cpuinfo` describes)."""
    if dtype != AUTO_BF16:
        return dtype
    return "bfloat16" if device != "cpu" or cpu_bf16(cpuinfo) else "float32"


def cpu_vector_isa(cpuinfo: str | None = None) -> str:
    """The widest vector instruction set vLLM-CPU and PyTorch use here: AVX-512, AVX2, SVE, NEON or "none found"."""
    flags = cpu_flags(cpuinfo)
    for isa, flag in (("AVX-512", "avx512f"), ("AVX2", "avx2"), ("SVE", "sve"), ("NEON", "asimd")):
        if flag in flags:
            return isa
    return "none found"


def server_threads(env: dict[str, str] | None = None, cores: int | None = None) -> int:
    """Threads a vllm-cpu server decodes with: its VLLM_CPU_OMP_THREADS_BIND cores, else (auto) the `cores` we
    may use (our affinity) less VLLM_CPU_NUM_OF_RESERVED_CPU (vLLM 0.32 reserves 1 for its front end when unset:
    on 2 cores the worker gets 1)."""
    env = env or {}
    bind = env.get("VLLM_CPU_OMP_THREADS_BIND", "auto")
    if bind not in ("auto", "all", "nobind", ""):
        bound = 0
        for part in bind.split("|")[0].split(","):
            lo, _, hi = part.partition("-")
            bound += int(hi or lo) - int(lo) + 1 if lo.isdigit() and (hi or lo).isdigit() else 0
        if bound:
            return bound
    cores = cores or len(os.sched_getaffinity(0))
    if bind == "auto":
        return max(1, cores - int(env.get("VLLM_CPU_NUM_OF_RESERVED_CPU", "1") or 1))
    return cores


def memory_gib(meminfo: str | None = None) -> tuple[float, float]:
    """(total, available) RAM in GiB from /proc/meminfo; (0, 0) where there is none."""
    if meminfo is None:
        try:
            with open("/proc/meminfo") as f:
                meminfo = f.read()
        except OSError:
            return 0.0, 0.0
    kib = {k: int(v.split()[0]) for k, _, v in (ln.partition(":") for ln in meminfo.splitlines()) if v.strip()}
    return kib.get("MemTotal", 0) / 2**20, kib.get("MemAvailable", 0) / 2**20
