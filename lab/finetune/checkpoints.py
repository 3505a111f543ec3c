"""Fine-tune checkpoints: which run they belong to, the newest complete one, the two kept (a kill loses a tenth)."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import paths

if TYPE_CHECKING:
    from lab.finetune.train import FinetuneConfig

RESUME, BEFORE = "resume.json", "before.json"  # in the .partial folder: what run its checkpoints belong to, and
                                               # the base's evaluation (minutes on a real model) kept for a resume


def every(cfg: FinetuneConfig, steps: int) -> int:
    """Steps between checkpoints: cfg.checkpoint_steps, or a tenth of the run (a kill loses at most that)."""
    return cfg.checkpoint_steps or max(1, steps // 10)


def run_key(cfg: FinetuneConfig, *data: list[dict[str, Any]]) -> str:
    """What makes checkpoints reusable: every setting but where the result goes, and the tokenized data."""
    fields = {k: v for k, v in asdict(cfg).items() if k not in ("out", "merge", "checkpoint_steps")}
    return hashlib.sha256(json.dumps([fields, data], sort_keys=True).encode()).hexdigest()[:16]


def step_of(checkpoint: Path) -> int:
    """The step a checkpoint-N folder was saved at."""
    return int(checkpoint.name.rsplit("-", 1)[1])


def checkpoints_in(folder: Path) -> list[Path]:
    """The checkpoint-N folders of a Trainer's output folder, oldest step first."""
    return sorted((c for c in folder.glob("checkpoint-*") if c.name.rsplit("-", 1)[1].isdigit()), key=step_of)


def resumable(work: Path, key: str, say: bool) -> Path | None:
    """The newest complete checkpoint of a killed run with the same key, else None (and a clean work folder).

    Complete means trainer_state.json is there: transformers writes it last; a run killed while writing one
    left the one before it (keep_two)."""
    try:
        same = json.loads((work / RESUME).read_text()).get("key") == key
    except (OSError, ValueError, AttributeError):
        same = False
    if not same:
        if work.exists() and say:
            print(f"note: {work} holds another run's checkpoints (other settings or data); starting afresh",
                  flush=True)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        paths.atomic_write(work / RESUME, json.dumps({"key": key}))
        return None
    found = [c for c in checkpoints_in(work / "trainer") if (c / "trainer_state.json").exists()]
    if not found:
        return None
    best = found[-1]
    if say:
        print(f"resuming from step {step_of(best)} ({best})", flush=True)
    return best


def keep_two() -> Any:
    """A callback that keeps the two newest checkpoints by step: a kill while one is written leaves the one
    before. (transformers' save_total_limit orders them by mtime and warns, on every save of a fast run, that
    mtime "may not be reliable on this filesystem".)"""
    from transformers import TrainerCallback

    class KeepTwo(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            for old in checkpoints_in(Path(args.output_dir))[:-2]:
                shutil.rmtree(old, ignore_errors=True)
    return KeepTwo()
