"""A GGUF's tensors as bf16 safetensors with its config: streamed tensor by tensor, or whole for mixtures of
experts, in transformers' own names and layouts, every shape checked against the config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lab import LabError

# Shards of at most this many bytes: the import holds one shard and one float32 tensor in memory, not the
# whole model in float32 (a 0.5B model took 5.6 GB that way, a 1.5B 14.5 GB).
SHARD_BYTES = 256 << 20
# Mixture-of-experts processors merge several GGUF tensors into one (they need the whole model at once).
_WHOLE_MODEL = ("qwen2moe", "qwen3moe", "minimax-m2", "gpt_oss", "gpt-oss")
# Sizes llama.cpp writes that transformers' GGUF config mapping (5.19) reads for some architectures only: qwen2moe's
# expert widths, qwen3's head_dim. Left out, the config keeps its class defaults (experts 1408 wide), right only
# for the one model they came from (Qwen2-57B-A14B's are 2560): set from the file wherever the config has them.
_MISSED_SIZES = {"expert_feed_forward_length": "moe_intermediate_size",
                 "expert_shared_feed_forward_length": "shared_expert_intermediate_size",
                 "attention.key_length": "head_dim"}


def _config(src: Path, arch: str) -> Any:
    """The model's config as transformers reads it from the GGUF, with the sizes it leaves out taken from the file."""
    import gguf
    from transformers import AutoConfig
    cfg = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
    fields = gguf.GGUFReader(str(src)).fields
    for key, attr in _MISSED_SIZES.items():
        f = fields.get(f"{arch}.{key}")
        if f is None or len(f.data) != 1 or not hasattr(cfg, attr):
            continue
        value = int(f.parts[f.data[0]][0])
        try:
            if getattr(cfg, attr) != value:
                setattr(cfg, attr, value)
        except AttributeError:  # computed (Falcon's head_dim is hidden / heads): the shape check judges it
            pass
    return cfg


def _as_bf16(cfg: Any) -> None:
    """The config as the imported folder states it: bf16 weights, no longer GGUF-quantized (transformers' loader
    marks it so, and save_pretrained refuses such a model)."""
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    cfg.dtype = "bfloat16"


def _mismatch(src: Path, key: str, got: tuple[int, ...], want: tuple[int, ...]) -> LabError:
    return LabError(f"{src}: tensor {key} is {list(got)} in the file, but its metadata makes the architecture want "
                    f"{list(want)}: a variant transformers' GGUF loader does not describe")


def convert(src: Path, out: Path, arch: str) -> None:
    """The GGUF (of architecture `arch`) as bf16 safetensors with config, generation config, tokenizer and chat
    template in `out`."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    out.mkdir(parents=True, exist_ok=True)
    try:  # first: a GGUF without a tokenizer is refused before minutes of weights
        AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name).save_pretrained(out)
    except (ValueError, KeyError, OSError) as e:  # no tokenizer.ggml.* fields, or a kind transformers lacks
        raise LabError(f"{src}: no usable tokenizer in this GGUF ({' '.join(str(e).split())[:160]}); a model "
                       f"without its tokenizer cannot be served") from None
    if arch in _WHOLE_MODEL:
        _convert_whole(src, out, arch)
    else:
        _convert_streaming(src, out, arch)


def _convert_streaming(src: Path, out: Path, arch: str) -> None:
    """Tensor by tensor: dequantize, transformers' own per-architecture fix-ups and names, cast, write."""
    import gguf
    import numpy as np
    import torch
    from gguf import dequantize
    from transformers import AutoModelForCausalLM, GenerationConfig
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS,
        TensorProcessor,
        get_gguf_hf_weights_map,
        load_gguf_checkpoint,
    )

    cfg = _config(src, arch)
    gguf_config = load_gguf_checkpoint(str(src), return_tensors=False)["config"]  # what the processors read
    reader = gguf.GGUFReader(str(src))
    names = [t.name for t in reader.tensors]
    # an output head of its own (Qwen2.5-Coder-0.5B's) must not be replaced by the tied embeddings
    cfg.tie_word_embeddings = "output.weight" not in names
    _as_bf16(cfg)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(cfg)
    cfg.architectures = [type(skeleton).__name__]
    processor = TENSOR_PROCESSORS.get(arch, TensorProcessor)(config=gguf_config)
    mapping = get_gguf_hf_weights_map(skeleton, processor)
    shapes = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    expected = set(shapes) - ({"lm_head.weight"} if cfg.tie_word_embeddings else set())
    shards = _Shards(out)
    for i, t in enumerate(reader.tensors, 1):
        # some processors store a tensor under its final name themselves (GPT-2's output.weight -> lm_head.weight)
        direct: dict[str, dict[str, Any]] = {"tensors": {}}
        res = processor.process(weights=dequantize(t.data, t.tensor_type), name=t.name, tensor_key_mapping=mapping,
                                parsed_parameters=direct)
        found = [(mapping[res.name], res.weights)] if res.name in mapping else []
        for key, w in [*found, *direct["tensors"].items()]:  # float32; a view of the read-only file if unquantized
            w = w.numpy() if isinstance(w, torch.Tensor) else w
            if key in shapes and tuple(w.shape) != shapes[key]:  # vLLM would refuse the folder minutes later
                raise _mismatch(src, key, tuple(w.shape), shapes[key])
            # contiguous: GPT-2's processor hands back transposed views, which safetensors refuses to write
            shards.add(key, torch.from_numpy(w if w.flags.writeable else np.array(w)).to(torch.bfloat16).contiguous())
        del res, direct, found
        if i % max(1, len(names) // 5) == 0:
            print(f"import: {i}/{len(names)} tensors", flush=True)
    missing = sorted(expected - set(shards.shard_of))
    if missing:
        raise LabError(f"{src}: weights do not match the architecture (missing {missing[:3]})")
    shards.close()
    cfg.save_pretrained(out)
    GenerationConfig.from_model_config(cfg).save_pretrained(out)


class _Shards:
    """Safetensors shards of at most SHARD_BYTES written as tensors arrive; only the one being filled is held."""

    def __init__(self, out: Path) -> None:
        self.out, self.shard, self.shard_of = out, {}, {}  # shard_of: tensor name -> its shard's number
        self.n, self.size, self.total = 1, 0, 0

    def add(self, key: str, tensor: Any) -> None:
        if self.size and self.size + tensor.nbytes > SHARD_BYTES:
            self._save()
            self.shard, self.size, self.n = {}, 0, self.n + 1
        self.shard[key], self.shard_of[key] = tensor, self.n
        self.size += tensor.nbytes
        self.total += tensor.nbytes

    def _save(self) -> None:
        from safetensors.torch import save_file
        save_file(self.shard, str(self.out / f"part-{self.n:05d}.safetensors"), metadata={"format": "pt"})

    def close(self) -> None:
        """The last shard, then Hugging Face's names: model.safetensors alone, else model-0000i-of-0000n plus the
        index (total_size: the tensors' bytes)."""
        import json
        self._save()
        out, n = self.out, self.n
        if n == 1:
            os.replace(out / "part-00001.safetensors", out / "model.safetensors")
            return
        name = {i: f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)}
        for i in name:
            os.replace(out / f"part-{i:05d}.safetensors", out / name[i])
        weight_map = {k: name[i] for k, i in sorted(self.shard_of.items())}
        (out / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": self.total}, "weight_map": weight_map}, indent=2) + "\n")


def _convert_whole(src: Path, out: Path, arch: str) -> None:
    """transformers' own loader, the whole model in float32 at once (mixture-of-experts GGUFs)."""
    import torch
    from transformers import AutoModelForCausalLM
    # The GGUF loader dequantizes to plain nn.Linear weights but marks the model as GGUF-quantized, which
    # save_pretrained refuses: copy the weights into a fresh model of the same config instead.
    cfg = _config(src, arch)
    # the loader puts the file's tensors in place without checking their shapes against the config
    loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, config=cfg, dtype=torch.float32)
    _as_bf16(cfg)
    fresh = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    state = {k: v.to(torch.bfloat16) for k, v in loaded.state_dict().items()}
    for k, v in fresh.state_dict().items():
        if k in state and state[k].shape != v.shape:
            raise _mismatch(src, k, tuple(state[k].shape), tuple(v.shape))
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    if [m for m in missing if "lm_head" not in m] or unexpected:  # lm_head may be tied to the embeddings
        raise LabError(f"{src}: weights do not match the architecture (missing {missing[:3]}, "
                       f"unexpected {unexpected[:3]})")
    fresh.save_pretrained(out)
