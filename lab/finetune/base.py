"""The base model a fine-tune adapts: its compute dtype, the 4-bit (nf4) load, its linear layers and the ones LoRA
targets."""

from __future__ import annotations

from typing import Any

from lab import LabError

# Every linear layer of a Llama, Qwen, Mistral or Gemma block. Other families name theirs otherwise (Phi-3: qkv_proj,
# gate_up_proj; GPT-2: c_attn, c_fc; StarCoder2: c_fc): left at this default, LoRA adapts their linear layers instead.
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ROUTERS = {"gate", "router"}  # a mixture of experts' router: adapting it would change which experts every token uses


def linear_names(model: Any) -> list[str]:
    """Short names of the model's linear layers (what LoRA can target)."""
    import torch
    names = set()
    for name, mod in model.named_modules():
        # Linear4bit and the like; GPT-2's Conv1D is a linear layer stored transposed, which LoRA adapts too
        if isinstance(mod, torch.nn.Linear) or type(mod).__name__.startswith("Linear") or \
                type(mod).__name__ == "Conv1D":
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names - {"lm_head"})


def target_modules(asked: list[str], avail: list[str], family: str = "the model") -> list[str]:
    """The layers LoRA adapts: `asked`, or, where the default names are not all in this model, its own linear layers
    (routers and the head left out); one line for a name asked for that it lacks."""
    if list(asked) == list(DEFAULT_TARGETS) and not set(asked) <= set(avail):
        own = [n for n in avail if n not in ROUTERS]
        if own:
            print(f"note: {family} has no {', '.join(t for t in asked if t not in avail)}; LoRA adapts its linear "
                  f"layers {', '.join(own)} (--target-modules chooses)", flush=True)
            return own
    missing = [t for t in asked if t not in avail]
    if missing or not asked:  # none: peft's NoMatchingPeftModuleError, an internal error line
        raise LabError(f"target module(s) {missing or 'none'} not in the model; available: {', '.join(avail)}")
    return list(asked)


def count_params(model: Any) -> int:
    """Parameters as in the unquantized model (a 4-bit tensor stores two weights per byte)."""
    import math
    total = 0
    for p in model.parameters():
        qs = getattr(p, "quant_state", None)
        total += math.prod(qs.shape) if qs is not None else p.numel()
    return total


def compute_dtype(dtype: str = "auto") -> str:
    """The dtype training computes in: `dtype`, or for auto bfloat16 on CUDA and on a CPU that has it in
    hardware, float32 on other CPUs (bf16 is emulated there: ~22x slower, see lab.hardware.BF16_FLAGS)."""
    if dtype != "auto":
        return dtype
    import torch

    from lab.hardware import AUTO_BF16, resolve_dtype
    return resolve_dtype(AUTO_BF16, "cuda" if torch.cuda.is_available() else "cpu")


def load_base(model: str, four_bit: bool, dtype: str = "bfloat16") -> Any:
    """The base model: nf4 4-bit with double quantization computing in `dtype` (QLoRA), or in `dtype`."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dt = getattr(torch, dtype)
    if four_bit:
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=dt)
        m = AutoModelForCausalLM.from_pretrained(model, quantization_config=q, device_map={"": device}, dtype=dt)
        if device == "cpu":
            _no_inference_repack(m)
        return m
    return AutoModelForCausalLM.from_pretrained(model, dtype=dt).to(device)


def _no_inference_repack(model: Any) -> None:
    """Keep bitsandbytes' 4-bit CPU weights in the trainable layout.

    bitsandbytes 0.50 repacks a Linear4bit's weight for AVX512-BF16 inference on its first eval
    forward on CPU and never unpacks it for training; the repacked path (gemv_4bit) has no autograd,
    so gradients stopped at every base layer. Our before-training evaluation triggered it: training
    loss went 7.6 -> 2.3 on CPU against 7.6 -> 0.05 on CUDA (H100) and with a bf16 base on CPU.
    """
    import bitsandbytes as bnb
    for mod in model.modules():
        if isinstance(mod, bnb.nn.Linear4bit) and hasattr(mod, "support_avx512bf16_for_cpu"):
            mod.support_avx512bf16_for_cpu = False
