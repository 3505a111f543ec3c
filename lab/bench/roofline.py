"""The batch-1 decode ceiling: memory bandwidth (GPU data sheet or measured CPU copy) / weight bytes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from lab import doctor

# Peak memory bandwidth (GB/s) by GPU name fragment, from the vendors' data sheets.
# Data-sheet memory bandwidth by a fragment of the NVML name; the first match wins, so specific
# names come first. NVML calls the H100 SXM "NVIDIA H100 80GB HBM3" (seen on a lent H100).
GPU_BANDWIDTH_GBS = {"H200": 4800, "H100 SXM": 3350, "H100 80GB HBM3": 3350, "H100 NVL": 3900, "H100": 2000,
                     "A100-SXM4-80GB": 2039, "A100 80GB PCIe": 1935, "A100": 1555,
                     "RTX 6000 Ada": 960, "L40S": 864, "L40": 864, "RTX 4090": 1008, "RTX A6000": 768,
                     "A10": 600, "L4": 300, "T4": 320, "V100": 900}


def cpu_bandwidth_gbs(mb: int = 256, repeats: int = 3) -> float:
    """Measured copy bandwidth (read + write bytes / s) of this CPU, best of a few runs."""
    src = np.ones(mb * 2**20 // 8)
    dst = np.empty_like(src)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = max(best, 2 * src.nbytes / (time.perf_counter() - t))
    return round(best / 1e9, 1)


def gpu_bandwidth_gbs(name: str) -> float | None:
    """Data-sheet bandwidth of a GPU by its NVML name, None when the table does not know it."""
    return next((float(bw) for frag, bw in GPU_BANDWIDTH_GBS.items() if frag.lower() in name.lower()), None)


def bandwidth_gbs() -> tuple[float, str]:
    """Memory bandwidth of the device that runs decode: GPU table by name, else measured CPU copy."""
    devs = doctor.gpus().get("devices") or []
    if devs:
        name = devs[0]["name"]
        bw = gpu_bandwidth_gbs(name)
        if bw:
            return bw, f"{name} (data sheet)"
        return cpu_bandwidth_gbs(), f"{name} not in table; CPU copy measured instead"
    return cpu_bandwidth_gbs(), "CPU copy bandwidth (measured)"


def weight_bytes(model: str, tp: int = 1, fallback_gb: float = 0.0, serve_dtype: str = "auto") -> int:
    """Bytes of weights each GPU reads per decode step: the safetensors of a folder, else the Hub cache's
    index (metadata total_size), else the profile's size_gb; x2 when 16-bit files are served as float32;
    divided by the tensor-parallel size (each GPU holds and reads its shard, in parallel). 0 when unknown."""
    p = Path(model)
    total = sum(f.stat().st_size for f in p.glob("*.safetensors")) if p.is_dir() else _cached_total(model)
    total = total or int(fallback_gb * 1e9)
    if serve_dtype == "float32":
        from lab import config
        stored = (config.model_config(model) or {})
        if str(stored.get("dtype") or stored.get("torch_dtype")) in ("bfloat16", "float16"):
            total *= 2
    return total // max(1, tp)


def _cached_total(model: str) -> int:
    try:
        from huggingface_hub import try_to_load_from_cache
        index = try_to_load_from_cache(model, "model.safetensors.index.json")
        if isinstance(index, str):
            import json
            return int(json.loads(Path(index).read_text())["metadata"]["total_size"])
        single = try_to_load_from_cache(model, "model.safetensors")
        return Path(single).stat().st_size if isinstance(single, str) else 0
    except Exception:  # not a Hub id, or an index without metadata
        return 0


def roofline(wbytes: int, bw_gbs: float) -> dict[str, Any]:
    """Batch-1 decode ceiling: every step reads all weights once, so steps/s <= bandwidth / weight bytes."""
    ceiling = bw_gbs * 1e9 / wbytes if wbytes else None
    return {"weight_bytes": wbytes, "bandwidth_gbs": bw_gbs,
            "batch1_ceiling_tok_s": round(ceiling, 1) if ceiling else None}


def pct_of_ceiling(tok_s: float, concurrency: int, roof: dict[str, Any]) -> float | None:
    """Decode steps/s (tok/s per sequence in flight) as a percentage of the batch-1 ceiling."""
    c = roof.get("batch1_ceiling_tok_s")
    return round(100 * tok_s / max(concurrency, 1) / c, 2) if c else None
