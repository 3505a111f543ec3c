"""Build the embedded tiny Qwen3 model from data/corpus, deterministically, in seconds."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from lab import LabError, locks, paths, procs

BUILD_VERSION = 1  # bump when the recipe changes so cached builds are rebuilt
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# Qwen-style chat template; like Qwen3 it drops earlier turns' <think> blocks and, with
# enable_thinking=False, opens an empty think block so the model answers directly.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- set content = message['content'] %}"
    "{%- if message['role'] == 'assistant' and '</think>' in content %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)
# head_dim 64: vLLM's CPU attention kernel rejects 16. 2 layers x 128 hidden keeps the
# model ~0.35 M parameters plus embeddings, so a build takes seconds on 2 cores.
ARCH = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=64,
            max_position_embeddings=4096, rope_theta=10000.0, tie_word_embeddings=True)
VOCAB_SIZE = 640
TRAIN = dict(steps=600, batch=16, seq_len=128, lr=3e-3, seed=0)
INSTRUCTION = "把下面的日语翻译成中文。"


def default_dir() -> Path:
    """Cache folder for the current corpus and recipe (a changed corpus gets a new build)."""
    return paths.cache() / "models" / f"tiny-qwen3-{fingerprint()[:12]}"


def fingerprint(corpus: Path | None = None) -> str:
    """Hash of the corpus files and the recipe: the identity of a build."""
    corpus = corpus or paths.data() / "corpus"
    h = hashlib.sha256(json.dumps([BUILD_VERSION, ARCH, VOCAB_SIZE, TRAIN]).encode())
    for f in sorted(corpus.glob("*.txt")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def chat_pairs(corpus: Path) -> list[tuple[str, str]]:
    """Line-aligned ja.txt / zh.txt pairs used as translation chat examples."""
    ja = (corpus / "ja.txt").read_text("utf-8").splitlines()
    zh = (corpus / "zh.txt").read_text("utf-8").splitlines()
    if len(ja) != len(zh):
        raise LabError(f"{corpus}/ja.txt has {len(ja)} lines but zh.txt has {len(zh)}: they must align")
    return [(a, b) for a, b in zip(ja, zh, strict=True) if a.strip() and b.strip()]


def _documents(corpus: Path) -> list[str]:
    files = sorted(corpus.glob("*.txt"))
    if not files:
        raise LabError(f"no .txt files in {corpus}: the tiny model is trained on them")
    docs = [f.read_text("utf-8") for f in files]
    for ja, zh in chat_pairs(corpus):
        docs.append(f"<|im_start|>user\n{INSTRUCTION}\n{ja}<|im_end|>\n"
                    f"<|im_start|>assistant\n<think>\n\n</think>\n\n{zh}<|im_end|>\n")
    return docs


def _train_tokenizer(docs: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(docs, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token=None)
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = ARCH["max_position_embeddings"]
    return fast


BUILD_WAIT_S = 900  # a second build waits this long for the first (~1-3 min on 2 cores, longer under load)


def build(out: Path | None = None, force: bool = False, steps: int | None = None,
          progress: bool = True) -> Path:
    """Build (or reuse) the tiny model; returns its folder in Hugging Face format."""
    out = Path(out) if out else default_dir()
    if (out / "model.safetensors").exists() and not force:
        return out
    paths.check_replaceable(out, ("lab_build.json", "model.safetensors"), "tiny build")  # replaced whole below
    say = (lambda m: print(m, flush=True)) if progress else None
    # `make test` and `make run` started together both build: the second waits, then reuses the first's model
    # (two builders removed each other's folder while a server loaded from it); a build takes ~1-3 min
    with locks.writing(out, "lab tiny build", whole=True, wait_s=BUILD_WAIT_S, say=say):
        if (out / "model.safetensors").exists() and not force:
            return out
        return _build(out, steps, progress)


def _build(out: Path, steps: int | None, progress: bool) -> Path:
    """build() with the folder's lock held."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    corpus = paths.data() / "corpus"
    t0 = time.time()
    torch.manual_seed(TRAIN["seed"])
    # One thread makes the float sums identical on every machine: two builds, same bytes.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        docs = _documents(corpus)
        tok = _train_tokenizer(docs)
        ids = []
        for d in docs:
            ids += tok(d)["input_ids"] + [tok.pad_token_id]
        data = torch.tensor(ids, dtype=torch.long)
        cfg = Qwen3Config(vocab_size=len(tok), bos_token_id=None, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, torch_dtype="float32", **ARCH)
        model = Qwen3ForCausalLM(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"], weight_decay=0.0)
        gen = torch.Generator().manual_seed(TRAIN["seed"])
        n_steps = steps or TRAIN["steps"]
        L, B = TRAIN["seq_len"], TRAIN["batch"]
        model.train()
        for step in range(n_steps):
            starts = torch.randint(0, len(data) - L - 1, (B,), generator=gen)
            batch = torch.stack([data[s:s + L] for s in starts])
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            if progress and (step % 100 == 0 or step == n_steps - 1):
                print(f"tiny build: step {step + 1}/{n_steps} loss {loss.item():.3f} "
                      f"({time.time() - t0:.0f}s)", flush=True)
        model.eval()
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        procs.remove_left_behind(out.parent, out.name + ".tmp")  # of a build SIGKILLed while saving
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        GenerationConfig(eos_token_id=[tok.eos_token_id, tok.pad_token_id],
                         pad_token_id=tok.pad_token_id).save_pretrained(tmp)
        (tmp / "lab_build.json").write_text(json.dumps(
            {"fingerprint": fingerprint(corpus), "steps": n_steps, "final_loss": round(loss.item(), 4)},
            indent=1, sort_keys=True) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)  # a half-built model never sits where a loader looks
    finally:
        torch.set_num_threads(threads)
    if progress:
        print(f"tiny build: saved {out} in {time.time() - t0:.1f}s", flush=True)
    return out


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file in a build, to compare two builds."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).iterdir()) if p.is_file()}
