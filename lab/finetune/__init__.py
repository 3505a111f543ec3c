"""Stage of notebook 03: QLoRA fine-tuning (data, training, the adapter served beside the base)."""

from lab.finetune.adapter import adapter_rank, compare, heldout_chrf, max_lora_rank_for, serve_with_adapter
from lab.finetune.base import count_params, linear_names, load_base
from lab.finetune.data import IGNORE, collate, encode, load_jsonl
from lab.finetune.report import before_after, loss_plot, loss_trend
from lab.finetune.train import FinetuneConfig, chrf, merge, steps_for, train, train_isolated

__all__ = ["IGNORE", "FinetuneConfig", "adapter_rank", "before_after", "chrf", "collate", "compare", "count_params",
           "encode", "heldout_chrf", "linear_names", "load_base", "load_jsonl", "loss_plot", "loss_trend",
           "max_lora_rank_for", "merge", "serve_with_adapter", "steps_for", "train", "train_isolated"]
