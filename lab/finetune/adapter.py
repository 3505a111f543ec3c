"""A trained LoRA adapter served by vLLM beside its base (--enable-lora), and the base-vs-adapter comparison."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from lab import LabError, config, serve
from lab.config import VLLM_LORA_RANKS, max_lora_rank_for
from lab.finetune.data import load_jsonl
from lab.finetune.train import chrf

__all__ = ["VLLM_LORA_RANKS", "adapter_rank", "compare", "heldout_chrf", "max_lora_rank_for", "serve_with_adapter"]


def adapter_rank(adapter: str | Path) -> int:
    """LoRA rank r of a saved adapter."""
    f = Path(adapter) / "adapter_config.json"
    if not f.exists():
        raise LabError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json)")
    return int(json.loads(f.read_text())["r"])


def serve_with_adapter(profile: str | None, name: str, adapter: str | Path, max_lora_rank: int | None = None,
                       port_offset: int = 1, timeout: float = serve.READY_TIMEOUT_S) -> serve.Server:
    """Start vLLM for the profile with --enable-lora --lora-modules NAME=PATH on the profile port + offset."""
    r = adapter_rank(adapter)
    mlr = max_lora_rank or max_lora_rank_for(r)
    if r > mlr:
        raise LabError(f"adapter rank {r} is above max_lora_rank {mlr}; use max_lora_rank >= {r}")
    if mlr not in VLLM_LORA_RANKS:
        raise LabError(f"vLLM accepts max_lora_rank in {VLLM_LORA_RANKS}, not {mlr}")
    prof = config.load(profile)
    prof = dataclasses.replace(prof, port=prof.port + port_offset, serve={
        **prof.serve, "lora_modules": {name: str(Path(adapter).resolve())}, "max_lora_rank": mlr})
    return serve.start(prof, timeout=timeout)


def compare(client: Any, prompts: list[str], adapter_name: str, max_tokens: int = 48) -> list[dict[str, str]]:
    """Greedy answers of the base and the adapter to the same prompts."""
    return [{"prompt": p, "base": client.chat(p, max_tokens=max_tokens, thinking=False).text,
             "adapter": client.chat(p, model=adapter_name, max_tokens=max_tokens, thinking=False).text}
            for p in prompts]


def heldout_chrf(client: Any, heldout: str | Path, adapter_name: str, max_tokens: int = 48) -> dict[str, Any]:
    """chrF of the served base and adapter on the held-out pairs (greedy), with every answer beside its reference."""
    recs = load_jsonl(heldout)
    refs = [m[-1]["content"] for m in recs]
    answers = compare(client, [m[-2]["content"] for m in recs], adapter_name, max_tokens)
    rows = [{"source": a["prompt"].splitlines()[-1], "reference": r, "base": a["base"], "adapter": a["adapter"]}
            for a, r in zip(answers, refs, strict=True)]
    base, tuned = chrf([x["base"] for x in rows], refs), chrf([x["adapter"] for x in rows], refs)
    return {"base": base, "adapter": tuned, "gain": round(tuned - base, 2), "rows": rows}
