"""`lab finetune`: QLoRA on chat JSONL, eval before/after, adapter saved, optionally served beside the base."""

from __future__ import annotations

import argparse

from lab import LabError, options
from lab.finetune.adapter import VLLM_LORA_RANKS, compare, max_lora_rank_for, serve_with_adapter
from lab.finetune.train import FinetuneConfig, train_isolated

F = FinetuneConfig


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `lab finetune`."""
    p = sub.add_parser("finetune", help="QLoRA: 4-bit base + LoRA on chat JSONL, eval before/after, save adapter")
    options.profile_arg(p, "profile whose model is the base")
    p.add_argument("--data", help="folder with train.jsonl and heldout.jsonl (default: data/finetune)")
    p.add_argument("-o", "--out", help="output folder (default: runs/finetune-<UTC>); replaced only when training ends")
    options.add(p, "--4bit", F, "four_bit", help="nf4 4-bit base (QLoRA); --no-4bit: plain LoRA on a bf16 base")
    options.add(p, "--dtype", F, choices=["auto", "bfloat16", "float32"],
                help="compute dtype; auto: bfloat16 on CUDA and on CPUs with bf16 in hardware (AVX512-BF16, AMX), "
                "float32 on other CPUs, where bf16 is emulated and ~20x slower")
    options.add(p, "--r", F, type=options.POSITIVE_INT, help="LoRA rank")
    options.add(p, "--alpha", F, type=options.POSITIVE_INT, help="LoRA alpha")
    options.add(p, "--dropout", F, type=options.checked(float, 0, 0.99), help="LoRA dropout")
    options.add(p, "--target-modules", F, type=lambda t: options.comma_list(t, str, "layer names"),
                help="comma list of linear layer names to adapt (at the default, a model without these names gets its "
                "own linear layers)")
    options.add(p, "--steps", F, type=options.POSITIVE_INT, help="optimizer steps")
    options.add(p, "--epochs", F, type=options.checked(float, 0), help="when > 0, steps = epochs x pairs / batch")
    options.add(p, "--lr", F, type=options.POSITIVE_FLOAT, help="learning rate (the default suits the tiny model)")
    options.add(p, "--warmup-ratio", F, type=options.checked(float, 0, 0.9), help="share of steps warming up")
    options.add(p, "--scheduler", F, choices=["constant", "cosine", "linear"], help="learning-rate schedule")
    options.add(p, "--batch-size", F, type=options.POSITIVE_INT, help="sequences per step")
    options.add(p, "--grad-accum", F, type=options.POSITIVE_INT, help="gradient accumulation steps")
    options.add(p, "--gradient-checkpointing", F, help="trade compute for memory")
    options.add(p, "--max-len", F, type=options.checked(int, 8), help="tokens per training sequence")
    options.add(p, "--seed", F, type=options.SEED, help="random seed")
    options.add(p, "--merge", F, help="also save the adapter merged into a bf16 base")
    options.add(p, "--checkpoint-steps", F, type=options.checked(int, 0),
                help="a resumable checkpoint every N steps (0: every tenth of the steps); a stopped run resumes "
                "when rerun with the same --out and settings")
    p.add_argument("--serve", metavar="NAME", help="then serve base + adapter with vLLM under NAME and compare "
                   "answers (default: no serving)")
    p.add_argument("--max-lora-rank", type=options.POSITIVE_INT, choices=VLLM_LORA_RANKS, metavar="N",
                   help=f"vLLM --max-lora-rank when serving, one of {VLLM_LORA_RANKS} "
                   "(default: the smallest that holds --r)")
    p.set_defaults(func=_run)


def _run(a: argparse.Namespace) -> int:
    mlr = a.max_lora_rank or max_lora_rank_for(a.r)
    if a.serve and a.r > mlr:
        raise LabError(f"--r {a.r} is above --max-lora-rank {mlr}: vLLM could not load the adapter")
    cfg = F.for_profile(a.profile, a.data, a.out, **options.given(a, F, skip=("model", "train", "heldout", "out")))
    res = train_isolated(cfg, a.profile)  # its memory is gone before a server starts
    print(f"loss {res['first_loss']} -> {res['last_loss']}; held-out loss {res['heldout_loss']['before']} -> "
          f"{res['heldout_loss']['after']}; chrF {res['chrf']['before']} -> {res['chrf']['after']}")
    print(f"adapter: {res['adapter']}")
    if a.serve:
        srv = serve_with_adapter(a.profile, a.serve, res["adapter"], mlr)
        try:
            for row in compare(srv.client(), [s["prompt"] for s in res["samples"][:3]], a.serve):
                print(f"- {row['prompt'].splitlines()[-1]}\n  base:    {row['base']}\n  adapter: {row['adapter']}")
        finally:
            srv.release()
    return 0
