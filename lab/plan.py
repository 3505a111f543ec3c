"""`lab run --plan`: what each notebook would get and load on a profile, computed without a GPU or a download."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from lab import config, isolate, nbparams, paths, runner

# What each notebook starts or loads, by number (the notebooks' own code is the reference; tests keep
# this in step with the parameters they declare).
STEPS = {"00": [], "01": ["server"], "02": ["hf", "vllm", "server"], "03": ["train", "lora_server"],
         "04": ["server"], "05": ["server"]}


def _gpus(env: dict[str, str], prof: config.Profile) -> str:
    if prof.device != "cuda":
        return "CPU"
    return f"GPU {env['CUDA_VISIBLE_DEVICES']} (CUDA_VISIBLE_DEVICES, own process)" if env else "all visible GPUs"


def steps(prof: config.Profile, nb: Path, params: dict[str, Any], gpus: int | None = None) -> list[dict[str, Any]]:
    """The processes a notebook starts on a profile: what model each loads, how, and on which devices."""
    tp = prof.tensor_parallel(gpus) if prof.device == "cuda" else 1
    pp = config.pipeline_parallel(prof)
    server_gpus = (f"{tp * pp} GPU(s): tensor parallel {tp}" + (f" x pipeline parallel {pp}" if pp > 1 else "")
                   if prof.device == "cuda" else "CPU")
    out: list[dict[str, Any]] = []
    wanted = STEPS.get(nb.stem[:2], ["server"])
    engines = str(params.get("engines", "hf,vllm,server")).split(",")
    for step in wanted:
        if nb.stem.startswith("02") and step in ("hf", "vllm", "server") and step not in engines:
            continue
        if step == "server":
            out.append({"step": "vLLM server", "model": prof.model_path(), "devices": server_gpus,
                        "command": shlex.join(config.serve_command(prof, gpus=gpus))})
        elif step == "lora_server":
            from dataclasses import replace
            r = int(params.get("r", 8))
            loras = {params.get("adapter_name", "ja2zh"): "<run>/finetune/adapter"}
            lp = replace(prof, port=prof.port + 1, serve={**prof.serve, "lora_modules": loras,
                                                          "max_lora_rank": config.max_lora_rank_for(r)})
            out.append({"step": "vLLM server with the adapter", "model": prof.model_path(), "devices": server_gpus,
                        "command": shlex.join(config.serve_command(lp, gpus=gpus))})
        elif step == "hf":
            model = prof.role("hf")
            note = "" if model == prof.model_path() else (" (the profile's unquantized base, not the served "
                                                          "checkpoint: no token parity is reported)")
            out.append({"step": "transformers generate" + note, "model": model,
                        "devices": _gpus(isolate.pinned_env(prof, tp), prof) + (", device_map=auto" if
                                                                                prof.device == "cuda" else "")})
        elif step == "vllm":
            out.append({"step": "vLLM offline engine", "model": prof.model_path(),
                        "devices": _gpus(isolate.pinned_env(prof, tp), prof),
                        "args": config.offline_engine_args(prof, gpus)})
        elif step == "train":
            four = params.get("four_bit", True)
            out.append({"step": f"QLoRA fine-tuning ({'nf4 4-bit' if four else 'bf16'} base"
                                + (", gradient checkpointing" if params.get("gradient_checkpointing") else "") + ")",
                        "model": prof.role("train"), "devices": _gpus(isolate.pinned_env(prof), prof)})
    return out


def plan(names: list[str] | None, profile: str | None, params: dict[str, Any],
         cell_timeout: int | None = None, resume: str | None = None) -> dict[str, Any]:
    """Every selected notebook with its parameters (profile's, then -p/-f), its steps and the bound on each cell
    (--cell-timeout, else the profile's); downloads nothing. resume: what `lab run --resume` would do with that
    run (its profile and parameters; the notebooks that passed are kept)."""
    run = None
    if resume:
        run, names, profile, params, cell_timeout = runner.resumed(resume, paths.runs().resolve(), names, profile,
                                                                   params, cell_timeout)
    with config.no_fetch():
        return _plan(names, profile, params, cell_timeout, run)


def _plan(names: list[str] | None, profile: str | None, params: dict[str, Any], cell_timeout: int | None,
          run: tuple[Path, dict[str, Any]] | None) -> dict[str, Any]:
    prof = config.load(profile, check_device=False)
    nbs = runner.resolve(names)
    kept = runner.kept_notebooks(*run, nbs) if run else set()
    nbs = [nb for nb in nbs if nb.stem not in kept]
    declared = nbparams.check_params(nbs, params)
    gpus = config.gpu_count() if prof.device == "cuda" else 0
    need = config.gpus_needed(prof, gpus or None)
    return {"profile": prof.name, "model": prof.model_path(), "served_name": prof.served_name,
            "device": prof.device, "gpus_needed": need if prof.device == "cuda" else 0, "gpus_visible": gpus,
            "tensor_parallel": prof.serve.get("tensor_parallel_size", 1),
            "cell_timeout_s": runner.cell_limit(prof, cell_timeout),
            "notebooks": [{"notebook": nb.stem, "parameters": (p := nbparams.notebook_params(prof, nb, declared[nb],
                                                                                          params)),
                           "steps": steps(prof, nb, p, gpus or None)} for nb in nbs],
            "kept": sorted(kept), **({"resume": str(run[0])} if run else {})}


def render(pl: dict[str, Any]) -> str:
    """The plan as text a person reads before renting GPUs."""
    lines = [f"plan for profile {pl['profile']}: {pl['model']} served as {pl['served_name']} on {pl['device']}"
             + (f"; needs {pl['gpus_needed']} GPU(s), {pl['gpus_visible']} visible here"
                + (" (tensor_parallel_size = auto: every visible GPU)" if pl["tensor_parallel"] == "auto" else "")
                if pl["device"] == "cuda" else ""),
             "nothing is started or downloaded by this plan; "
             + (f"a cell may run {pl['cell_timeout_s']} s (--cell-timeout)" if pl["cell_timeout_s"]
                else "cells are not bounded (--cell-timeout 0)")]
    if pl.get("resume"):
        lines.append(f"resumes {pl['resume']}: "
                     + (f"kept (passed there): {', '.join(pl['kept'])}" if pl["kept"] else "no notebook passed there"))
    for nb in pl["notebooks"]:
        lines += ["", nb["notebook"], "  parameters: " + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}"
                                                                   for k, v in nb["parameters"].items())]
        if not nb["steps"]:
            lines.append("  loads no model (environment checks)")
        for st in nb["steps"]:
            lines.append(f"  {st['step']}: {st['model']} on {st['devices']}")
            if "command" in st:
                lines.append(f"    $ {st['command']}")
            if "args" in st:
                lines.append("    vllm.LLM(" + ", ".join(f"{k}={v!r}" for k, v in st["args"].items()) + ")")
    return "\n".join(lines)
