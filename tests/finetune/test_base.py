"""lab.finetune.base: the real 4-bit nf4 load, gradients untouched by an evaluation, and the layers LoRA targets on
the real module names of several families."""

import pytest

from lab import LabError, finetune


def test_base_loads_in_4bit_nf4(tiny_model_dir):
    import bitsandbytes as bnb
    m = finetune.load_base(str(tiny_model_dir), four_bit=True)
    q = m.model.layers[0].self_attn.q_proj
    assert isinstance(q, bnb.nn.Linear4bit)
    assert q.weight.quant_state.quant_type == "nf4" and q.weight.quant_state.nested  # double quantization
    full = finetune.load_base(str(tiny_model_dir), False)
    assert finetune.count_params(m) == sum(p.numel() for p in full.parameters())


def test_4bit_gradients_are_the_same_after_an_evaluation(tiny_model_dir):
    """An eval forward (the before-training evaluation) must not change what training computes:
    bitsandbytes repacked CPU weights for inference there, and gradients stopped at every base layer."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    def grads(evaluate_first: bool) -> dict[str, torch.Tensor]:
        m = prepare_model_for_kbit_training(finetune.load_base(str(tiny_model_dir), four_bit=True))
        torch.manual_seed(0)
        m = get_peft_model(m, LoraConfig(r=4, target_modules=["q_proj", "down_proj"], lora_dropout=0.0))
        for n, p in m.named_parameters():  # non-zero B, so gradients reach every A through the base layers
            if "lora_B" in n:
                torch.nn.init.normal_(p, std=0.5)
        ids = torch.tensor([[5, 17, 42, 99, 7, 3, 250, 31]]).to(m.device)
        if evaluate_first:
            m.eval()
            with torch.no_grad():
                m(input_ids=ids)
        m.train()
        m(input_ids=ids, labels=ids).loss.backward()
        return {n: p.grad.clone() for n, p in m.named_parameters() if p.requires_grad}
    plain, after_eval = grads(False), grads(True)
    assert plain.keys() == after_eval.keys() and any("layers.0." in n for n in plain)
    for n in plain:
        assert torch.allclose(plain[n], after_eval[n], rtol=1e-3, atol=1e-6), n


@pytest.mark.parametrize("arch,expected", [
    ("qwen3", "down_proj gate_proj k_proj o_proj q_proj up_proj v_proj"),  # the defaults, as they were
    ("phi3", "down_proj gate_up_proj o_proj qkv_proj"),
    ("gpt2", "c_attn c_fc c_proj"),  # Conv1D layers
    ("starcoder2", "c_fc c_proj k_proj o_proj q_proj v_proj"),
    ("qwen2_moe", "down_proj gate_proj k_proj o_proj q_proj up_proj v_proj"),  # its shared expert's
    ("qwen3_moe", "k_proj o_proj q_proj v_proj"),  # experts fused into 3-D weights; the router `gate` left out
])
def test_default_targets_follow_the_model_s_own_linear_layers(arch, expected, capsys):
    """The default names are Llama's: Phi-3, GPT-2 and StarCoder2 refused them all ("target module(s) [...] not in
    the model"), so the defaults left a user of another family nothing but an error line."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from lab.finetune.base import DEFAULT_TARGETS, target_modules
    cfg = AutoConfig.for_model(arch, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
                               num_key_value_heads=2, vocab_size=256, num_experts=2, pad_token_id=0)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    avail = finetune.linear_names(model)
    got = target_modules(list(DEFAULT_TARGETS), avail, type(model).__name__)
    assert " ".join(sorted(got)) == expected
    assert ("LoRA adapts its linear layers" in capsys.readouterr().out) == (arch not in ("qwen3", "qwen2_moe"))
    with pytest.raises(LabError, match=r"target module\(s\) \['q_proj', 'wq'\] not in the model"):
        target_modules(["q_proj", "wq"], [n for n in avail if n != "q_proj"])  # names asked for are never replaced
