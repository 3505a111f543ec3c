"""QLoRA training: 4-bit nf4 base, LoRA, transformers Trainer, before/after eval, saved adapter."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab import LabError, config, locks, paths, procs
from lab.finetune import checkpoints
from lab.finetune.base import DEFAULT_TARGETS, compute_dtype, count_params, linear_names, load_base, target_modules
from lab.finetune.data import IGNORE, collate, encode, leaked, load_jsonl
from lab.measure import peak_memory
from lab.messages import WORD_JOINER, defused, need_chat_template

# said, not left to a library default: torch warns that checkpointing without use_reentrant "will raise an
# exception" in a later release and recommends False, which also needs no input that requires grad
CHECKPOINTING = {"use_reentrant": False}


@dataclass
class FinetuneConfig:
    """Everything that defines a run; saved next to the adapter."""

    model: str
    train: str
    heldout: str
    out: str
    four_bit: bool = True          # QLoRA: nf4 + double quant; False = plain LoRA on a bf16 base
    dtype: str = "auto"            # compute: auto = bfloat16 on CUDA and on CPUs with bf16 in hardware, else float32
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    steps: int = 120
    epochs: float = 0.0            # > 0: steps = ceil(epochs x pairs / (batch x accum)), from the data size
    lr: float = 3e-3               # tiny model: loss 7.6 -> ~3 in 120 steps; real 0.5B-8B models want ~2e-4
    warmup_ratio: float = 0.0      # share of steps with a rising rate (real models: ~0.1)
    scheduler: str = "constant"    # transformers lr_scheduler_type: constant (toy), cosine (real models)
    batch_size: int = 8
    grad_accum: int = 1
    gradient_checkpointing: bool = False
    max_len: int = 256
    seed: int = 0
    eval_max_new_tokens: int = 48
    merge: bool = False
    checkpoint_steps: int = 0      # a resumable checkpoint every N steps; 0: every tenth of the steps

    @classmethod
    def for_profile(cls, profile: str | None = None, data: str | Path | None = None, out: str | Path | None = None,
                    **overrides: Any) -> FinetuneConfig:
        """The profile's training base (its train_model, else its model), data/finetune/{train,heldout}.jsonl,
        runs/finetune-<UTC>/ out."""
        from lab import config
        folder = Path(data) if data else paths.data() / "finetune"
        if not folder.is_dir():
            raise LabError(f"--data {folder}: {'not a folder' if folder.exists() else 'does not exist'}; give a "
                           f"folder with train.jsonl and heldout.jsonl")
        return cls(model=config.load(profile, check_device=False).role("train"), train=str(folder / "train.jsonl"),
                   heldout=str(folder / "heldout.jsonl"),
                   out=str(out or paths.runs() / f"finetune-{paths.utc_stamp()}"), **overrides)


def heldout_loss(model: Any, data: list[dict[str, list[int]]], pad_id: int) -> float:
    """Mean loss over the assistant tokens of a dataset."""
    import torch
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), 8):
            b = collate(data[i:i + 8], pad_id)
            b = {k: v.to(model.device) for k, v in b.items()}
            n = int((b["labels"][:, 1:] != IGNORE).sum())
            total += float(model(**b).loss) * n
            count += n
    return total / max(count, 1)


def generate(model: Any, tok: Any, records: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
    """Greedy answers to each record's prompt (its final assistant turn removed)."""
    import torch
    model.eval()
    outs = []
    for msgs in records:
        prompt = tok.apply_chat_template(defused(msgs[:-1]), tokenize=False, add_generation_prompt=True,
                                         enable_thinking=False)
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        outs.append(answer.replace(WORD_JOINER, "").strip())  # as the client reads a served reply
    return outs


def chrf(hyps: list[str], refs: list[str]) -> float:
    """Corpus chrF (sacrebleu), the usual character-level score for Chinese."""
    import sacrebleu
    return round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2)


def _progress_callback(total: int, every: int, show: bool = True):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Plain progress lines (work without a TTY: logs, notebooks): step, loss, tokens/s, ETA."""

        def __init__(self) -> None:
            self.t0 = time.time()
            self.tokens = 0
            self.first = 0  # the step a resumed run starts from: rates count the steps done here

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0, self.first = time.time(), state.global_step

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                el = time.time() - self.t0
                if show and (state.global_step % every == 0 or state.global_step == total):
                    done = max(state.global_step - self.first, 1)
                    eta = el / done * (total - state.global_step)
                    tps = self.tokens * done / total / el if el > 0 else 0  # tokens so far
                    print(f"step {state.global_step}/{total} loss {logs['loss']:.3f} {tps:,.0f} tok/s "
                          f"elapsed {el:.0f}s eta {eta:.0f}s", flush=True)
    return Progress()


def _lora_model(cfg: FinetuneConfig, dtype: str) -> tuple[Any, int, int]:
    """The base (nf4 for QLoRA) computing in `dtype` with LoRA on cfg.target_modules: (model, base parameters,
    bytes loaded)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    model = load_base(cfg.model, cfg.four_bit, dtype)
    targets = target_modules(cfg.target_modules, linear_names(model), type(model).__name__)
    n_total, loaded = count_params(model), model.get_memory_footprint()
    if cfg.four_bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=CHECKPOINTING)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=CHECKPOINTING)
    lora = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                      task_type="CAUSAL_LM")
    return get_peft_model(model, lora), n_total, loaded


def _trainer(cfg: FinetuneConfig, model: Any, train_data: list[dict[str, Any]], pad: int, steps: int, work: Path,
             cb: Any, dtype: str) -> Any:
    """A transformers Trainer for `steps` steps, checkpoints in work/trainer (the last two: a kill while one is
    written leaves the one before), our progress lines instead of its printer."""
    import torch
    from transformers import PrinterCallback, Trainer, TrainingArguments
    args = TrainingArguments(output_dir=str(work / "trainer"), max_steps=steps, learning_rate=cfg.lr,
                             per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
                             logging_steps=1, save_strategy="steps", save_steps=checkpoints.every(cfg, steps),
                             report_to=[], seed=cfg.seed,
                             bf16=dtype == "bfloat16", use_cpu=not torch.cuda.is_available(),
                             disable_tqdm=True, lr_scheduler_type=cfg.scheduler,
                             warmup_steps=round(cfg.warmup_ratio * steps),
                             gradient_checkpointing=cfg.gradient_checkpointing,
                             gradient_checkpointing_kwargs=CHECKPOINTING, remove_unused_columns=False,
                             dataloader_pin_memory=False)
    trainer = Trainer(model=model, args=args, train_dataset=train_data,
                      data_collator=lambda b: collate(b, pad), callbacks=[cb, checkpoints.keep_two()])
    trainer.remove_callback(PrinterCallback)  # its raw dicts would drown our progress lines
    cb.tokens = steps * cfg.batch_size * cfg.grad_accum * (sum(len(d["input_ids"]) for d in train_data)
                                                                 / len(train_data))
    return trainer


def _publish(cfg: FinetuneConfig, work: Path, result: dict[str, Any]) -> None:
    """result.json (and the merged model) into the work folder, which then replaces cfg.out in one rename."""
    shutil.rmtree(work / "trainer", ignore_errors=True)
    for f in (checkpoints.RESUME, checkpoints.BEFORE):
        (work / f).unlink(missing_ok=True)
    paths.atomic_write(work / "result.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    if cfg.merge:
        merge(cfg.model, work / "adapter", work / "merged")
    shutil.rmtree(cfg.out, ignore_errors=True)
    os.replace(work, cfg.out)  # a run that dies leaves the previous output untouched


def check_out(out: Path) -> None:
    """A finished run replaces the whole output folder: refuse, before any work, one that holds anything but an
    earlier run's output (`--out data/finetune` or `--out .` would have been deleted after training)."""
    paths.check_replaceable(out, ("result.json", "adapter"), "fine-tune's output")


def answered(tok: Any, recs: list[list[dict[str, str]]], max_len: int,
             path: str | Path) -> tuple[list[dict[str, list[int]]], list[list[dict[str, str]]]]:
    """Encoded records and the records themselves, less those whose prompt alone fills max_len (no answer token
    left to learn or score: their loss is nan); a warning names them, none left is one LabError."""
    data = [encode(tok, m, max_len) for m in recs]
    keep = [i for i, d in enumerate(data) if any(x != IGNORE for x in d["labels"])]
    if not keep:
        raise LabError(f"{path}: no record keeps an answer token within --max-len {max_len} (their prompts are "
                       f"longer); raise --max-len")
    if len(keep) < len(data):
        dropped = sorted(set(range(len(data))) - set(keep))
        paths.warn(f"{path}: record(s) {', '.join(str(i + 1) for i in dropped)} skipped: the prompt alone fills "
                   f"--max-len {max_len}")
    return [data[i] for i in keep], [recs[i] for i in keep]


def train(cfg: FinetuneConfig, progress: bool = True) -> dict[str, Any]:
    """Train, evaluate before/after, save adapter + tokenizer + config atomically under cfg.out; progress: print
    a line every tenth of the steps."""
    check_out(cfg.out)
    with locks.writing(cfg.out, "lab finetune", whole=True):  # two runs on one --out: the last rename won
        if progress and (Path(cfg.out) / "result.json").exists():  # an hour's adapter is not replaced unsaid
            print(f"note: {cfg.out} holds an earlier run's adapter; this run replaces it when it finishes (until "
                  f"then it stays; another --out keeps both)", flush=True)
        return _train(cfg, progress)


def _train(cfg: FinetuneConfig, progress: bool) -> dict[str, Any]:
    """train() with the output folder's lock held."""
    from transformers import AutoTokenizer, set_seed

    train_recs, held_recs = load_jsonl(cfg.train), load_jsonl(cfg.heldout)
    shared = leaked(train_recs, held_recs)
    if shared:  # a held-out prompt the model trained on scores memory, not translation
        paths.warn(f"{shared} of {len(held_recs)} held-out prompts in {cfg.heldout} are also in {cfg.train}; "
                   f"the held-out loss and chrF overstate what training taught")
    set_seed(cfg.seed)
    tok = AutoTokenizer.from_pretrained(config.local_or_reachable(cfg.model))
    need_chat_template(tok, cfg.model, "fine-tuning renders each record with it")  # before minutes of loading
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    if pad is None:  # batches are padded with it
        raise LabError(f"{cfg.model}: its tokenizer has neither a pad nor an end-of-text token")
    train_data, train_recs = answered(tok, train_recs, cfg.max_len, cfg.train)
    held_data, held_recs = answered(tok, held_recs, cfg.max_len, cfg.heldout)
    t_load = time.time()
    dtype = compute_dtype(cfg.dtype)
    model, n_total, loaded = _lora_model(cfg, dtype)
    steps = steps_for(cfg, len(train_data))
    procs.remove_left_behind(Path(cfg.out).parent, f"{Path(cfg.out).name}.partial")  # older runs' pid-named ones
    work = Path(str(cfg.out) + ".partial")  # one per --out: the folder lock makes this run its only user
    resume = checkpoints.resumable(work, checkpoints.run_key(cfg, train_data, held_data), progress)
    before = _base_eval(cfg, work, model, tok, held_data, held_recs, pad)
    cb = _progress_callback(steps, max(1, steps // 10), show=progress)
    trainer = _trainer(cfg, model, train_data, pad, steps, work, cb, dtype)
    if progress:
        print(f"checkpoint every {checkpoints.every(cfg, steps)} steps in {work}; if this run stops, the same "
              f"command with --out {cfg.out} resumes it", flush=True)
    t0 = time.time()
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except OSError as e:  # a full disk while a checkpoint is written: the one before it is complete
        raise LabError(f"cannot write {e.filename or work}: {e.strerror or e}; the checkpoints in {work} are kept: "
                       f"rerun with --out {cfg.out} to resume once there is room") from None
    train_s = time.time() - t0
    history = [{"step": h["step"], "loss": round(float(h["loss"]), 4)}  # the resumed run's too
               for h in trainer.state.log_history if "loss" in h]
    after = _evaluate(cfg, model, tok, held_data, held_recs, pad)
    model.save_pretrained(work / "adapter")
    tok.save_pretrained(work / "adapter")
    result = {"config": asdict(cfg), "compute_dtype": dtype, "steps": steps, "history": history,
              "train_seconds": round(train_s, 2),
              "load_seconds": round(t0 - t_load, 2), "resumed_at_step": checkpoints.step_of(resume) if resume else 0,
              "first_loss": history[0]["loss"] if history else None,
              "last_loss": history[-1]["loss"] if history else None,
              **_scores(held_recs, before, after), "memory": _memory(model, n_total, loaded)}
    _publish(cfg, work, result)
    result["adapter"] = str(Path(cfg.out) / "adapter")
    return result


def _base_eval(cfg: FinetuneConfig, work: Path, model: Any, tok: Any, held_data: list[dict[str, Any]],
               held_recs: list[list[dict[str, str]]], pad: int) -> dict[str, Any]:
    """The base's held-out loss and answers ({"loss", "gen"}), kept in work/ for a resumed run."""
    if (work / checkpoints.BEFORE).exists():  # same key: the base was evaluated before the kill
        return json.loads((work / checkpoints.BEFORE).read_text())
    before = _evaluate(cfg, model, tok, held_data, held_recs, pad)  # the LoRA B matrices are zero: the base
    paths.atomic_write(work / checkpoints.BEFORE, json.dumps(before, ensure_ascii=False))
    return before


def _evaluate(cfg: FinetuneConfig, model: Any, tok: Any, held_data: list[dict[str, Any]],
              held_recs: list[list[dict[str, str]]], pad: int) -> dict[str, Any]:
    """The model's held-out loss and greedy answers: {"loss", "gen"}."""
    return {"loss": heldout_loss(model, held_data, pad),
            "gen": generate(model, tok, held_recs, cfg.eval_max_new_tokens)}


def _scores(held_recs: list[list[dict[str, str]]], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """result.json's held-out loss, chrF and samples, before and after training."""
    refs = [m[-1]["content"] for m in held_recs]
    return {"heldout_loss": {"before": round(before["loss"], 4), "after": round(after["loss"], 4)},
            "chrf": {"before": chrf(before["gen"], refs), "after": chrf(after["gen"], refs)},
            "samples": [{"prompt": m[-2]["content"], "reference": r, "before": b, "after": a}
                        for m, r, b, a in zip(held_recs, refs, before["gen"], after["gen"], strict=True)]}


def _memory(model: Any, n_total: int, loaded: int) -> dict[str, Any]:
    """result.json's memory block: parameters, trainable share, weights as loaded and in bf16, peaks."""
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)  # LoRA A/B are never quantized
    return {"params_total": n_total, "params_trainable": n_train, "trainable_pct": round(100 * n_train / n_total, 3),
            "weights_loaded_mb": round(loaded / 2**20, 3), "weights_bf16_mb": round(n_total * 2 / 2**20, 3),
            **peak_memory()}


def steps_for(cfg: FinetuneConfig, pairs: int) -> int:
    """Optimizer steps: cfg.steps, or from epochs over `pairs` examples when cfg.epochs > 0."""
    if cfg.epochs > 0:
        return max(1, math.ceil(cfg.epochs * pairs / (cfg.batch_size * cfg.grad_accum)))
    return cfg.steps


def train_dict(**fields: Any) -> dict[str, Any]:
    """train() from FinetuneConfig fields (what lab.isolate passes to a fresh process)."""
    return train(FinetuneConfig(**fields))


def train_isolated(cfg: FinetuneConfig, profile: str | None = None) -> dict[str, Any]:
    """train() in a process of its own, pinned to one GPU on CUDA profiles: when it returns, every byte of
    the model, optimizer and PyTorch's cache is released (a vLLM server can start at 0.90 right after)."""
    from lab import isolate
    check_out(cfg.out)  # here too: one error line from this process, before a model is loaded anywhere
    load_jsonl(cfg.train), load_jsonl(cfg.heldout)  # a bad record: its line in under a second, not after ~10 s of
    # importing torch in the training process (the files are read again there: small next to a model's load)
    prof = config.load(profile, check_device=False)
    isolate.require_gpu_free(prof, "fine-tuning")
    return isolate.run("lab.finetune.train:train_dict", asdict(cfg), env=isolate.pinned_env(prof))


def merge(base: str, adapter: Path, dest: Path) -> Path:
    """Merge the adapter into a bf16 copy of the base and save it as a plain model."""
    from peft import PeftModel
    from transformers import AutoTokenizer
    model = PeftModel.from_pretrained(load_base(base, four_bit=False), str(adapter)).merge_and_unload()
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(base).save_pretrained(dest)
    return dest
