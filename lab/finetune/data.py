"""Fine-tuning data: chat JSONL records, prompts masked with the served chat template, batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab import LabError, paths
from lab.messages import defused

IGNORE = -100  # label value the loss skips (prompt tokens)
ROLES = {"system", "user", "assistant", "tool"}  # the OpenAI chat roles every chat template knows
# A message longer than this is refused: --max-len keeps only a record's first tokens anyway, and a
# 20,000,000-character message took 10.7 GB and 81 s to tokenize before it was dropped (100M: the OOM killer)
MAX_MESSAGE_CHARS = 1_000_000


def load_jsonl(path: str | Path) -> list[list[dict[str, str]]]:
    """Chat records ({"messages": [...]}) from a JSONL file; errors name file:line."""
    p = Path(path)
    out = []
    for n, rec in paths.read_jsonl(p, "dataset"):
        msgs = rec.get("messages") if isinstance(rec, dict) else None
        if not isinstance(msgs, list) or not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in msgs):
            raise LabError(f"{p}:{n}: expected {{\"messages\": [{{\"role\": ..., \"content\": ...}}, ...]}}")
        if not all(isinstance(m["role"], str) and isinstance(m["content"], str) for m in msgs):
            raise LabError(f"{p}:{n}: every message's role and content must be strings")
        longest = max((len(m["content"]) for m in msgs), default=0)
        if longest > MAX_MESSAGE_CHARS:
            raise LabError(f"{p}:{n}: a message of {longest:,} characters, over the {MAX_MESSAGE_CHARS:,} a record "
                           f"may hold (--max-len keeps only its first tokens)")
        odd = sorted({m["role"] for m in msgs} - ROLES)
        if odd:  # a chat template renders any role, so "usr" or ShareGPT's "human" would train on noise
            raise LabError(f"{p}:{n}: unknown role {odd[0]!r:.40} (roles: {', '.join(sorted(ROLES))})")
        if not msgs or msgs[-1]["role"] != "assistant" or not msgs[-1]["content"].strip():
            raise LabError(f"{p}:{n}: the record has no final assistant turn to learn")
        out.append(msgs)
    if not out:
        raise LabError(f"{p}: empty dataset")
    return out


def leaked(train: list[list[dict[str, str]]], heldout: list[list[dict[str, str]]]) -> int:
    """Held-out records whose prompt (every turn before the answer) is also a training prompt."""
    prompts = {tuple((m["role"], m["content"].strip()) for m in msgs[:-1]) for msgs in train}
    return sum(tuple((m["role"], m["content"].strip()) for m in msgs[:-1]) in prompts for msgs in heldout)


def encode(tok: Any, messages: list[dict[str, str]], max_len: int = 4096) -> dict[str, list[int]]:
    """input_ids and labels with the prompt masked: loss only on the assistant answer and its end token.

    The prompt is rendered exactly as at inference (chat template, generation prompt, thinking off), so
    the adapter learns the format it will be served with. Control-token spellings in the text are defused as
    the client defuses them at inference: a pair quoting "<|im_end|>" otherwise trains an end of turn there."""
    messages = defused(messages)
    prompt = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True,
                                     enable_thinking=False)
    if prompt.rstrip().endswith("<think>"):
        # A thinking-only template (Qwen3 Thinking-2507) opens <think> in the prompt whatever enable_thinking
        # says: close it empty, as the hybrid template does with thinking off, so the answer is not trained
        # as if it were the reasoning (the prompt part stays masked).
        prompt = prompt.rstrip() + "\n\n</think>\n\n"
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tok(messages[-1]["content"] + tok.eos_token + "\n", add_special_tokens=False)["input_ids"]
    ids = (p_ids + a_ids)[:max_len]
    labels = ([IGNORE] * len(p_ids) + a_ids)[:max_len]
    return {"input_ids": ids, "labels": labels}


def collate(batch: list[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch; padded positions are masked in attention and labels."""
    import torch
    n = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, b in enumerate(batch):
        k = len(b["input_ids"])
        ids[i, :k], labels[i, :k], mask[i, :k] = torch.tensor(b["input_ids"]), torch.tensor(b["labels"]), 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
