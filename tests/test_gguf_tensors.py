"""lab.gguf_tensors: random two-layer models of other architectures, written as llama.cpp lays them out, import
as the models they came from; metadata that does not fit the tensors is one line."""

from pathlib import Path

import pytest

from lab import LabError, config, gguf

PROFILE = "smollm2-135m"  # its GGUF lends the tokenizer fields


# Sizes llama.cpp's converter writes whether or not transformers' config mapping reads them
_LLAMA_CPP_SIZES = {"expert_feed_forward_length": "moe_intermediate_size",
                    "expert_shared_feed_forward_length": "shared_expert_intermediate_size",
                    "attention.key_length": "head_dim", "attention.value_length": "head_dim"}


def _random_gguf(arch: str, path: Path, gguf_arch: str | None = None, lie: dict | None = None,
                 **sizes: int) -> dict:
    """A 2-layer random model of `arch` as llama.cpp lays it out (metadata `lie` overriding what it writes), with
    SmolLM2's tokenizer fields; returns the model's own state dict."""
    import gguf as gguf_pkg
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor, get_gguf_hf_weights_map
    gguf_arch = gguf_arch or arch
    cfg = AutoConfig.for_model(arch, **{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                                        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 49152,
                                        "max_position_embeddings": 1024, **sizes})
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    w = gguf_pkg.GGUFWriter(str(path), gguf_arch)
    values = {k: getattr(cfg, a, None) for k, a in {**GGUF_CONFIG_MAPPING[arch], **_LLAMA_CPP_SIZES}.items() if a}
    values["attention.key_length"] = values["attention.value_length"] = \
        getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    for key, v in {**values, **(lie or {})}.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            w.add_key_value(f"{gguf_arch}.{key}", v, gguf_pkg.GGUFValueType.FLOAT32 if isinstance(v, float) else
                            gguf_pkg.GGUFValueType.UINT32)
    for name, f in gguf_pkg.GGUFReader(str(gguf.package_file(config.load(PROFILE).model))).fields.items():
        if name.startswith("tokenizer."):
            w.add_key_value(name, f.contents(), f.types[0], sub_type=f.types[-1] if len(f.types) > 1 else None)
    state = model.state_dict()
    mapping = get_gguf_hf_weights_map(model, TENSOR_PROCESSORS.get(gguf_arch, TensorProcessor)(config=cfg.to_dict()))
    for g, h in mapping.items():
        t = state[h].float()
        if g.endswith("_exps"):  # llama.cpp keeps an MoE's gate and up experts apart; transformers fuses them
            half = t.shape[1] // 2
            t, g = (t[:, :half] if "gate" in g else t[:, half:] if "up" in g else t), g + ".weight"
        elif g.endswith("gate_inp_shexp.weight"):
            t = t.reshape(-1)
        # llama.cpp stores GPT-2's Conv1D weights as Linear ones (transformers' processor turns them back)
        transposed = arch == "gpt2" and g.rsplit(".", 2)[-2] in ("attn_qkv", "ffn_down", "ffn_up", "attn_output")
        w.add_tensor(g, (t.T if transposed and t.dim() == 2 else t).numpy().copy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return state


@pytest.mark.parametrize("arch", ["gpt2", "gemma2", "falcon"])
def test_other_architectures_import_as_transformers_own_loader_reads_them(tmp_path, arch):
    """GPT-2's processor stores output.weight itself and hands back transposed views (the streamed import lost the
    head and could not write the views); Gemma-2's shifts its norms; Falcon's head_dim is computed, not set (taking
    it from the file's key_length raised AttributeError): each as transformers' whole-file loader reads it."""
    import torch
    from transformers import AutoModelForCausalLM
    _random_gguf(arch, tmp_path / f"{arch}.gguf")
    folder = gguf.import_gguf(tmp_path / f"{arch}.gguf", dest_root=tmp_path)
    ours = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).state_dict()
    theirs = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=f"{arch}.gguf", dtype=torch.float32)
    want = {k: v.to(torch.bfloat16) for k, v in theirs.state_dict().items()}
    assert sorted(ours) == sorted(want)
    assert [k for k in want if not torch.equal(ours[k], want[k])] == []


@pytest.mark.parametrize("arch,gguf_arch,sizes", [
    ("qwen2_moe", "qwen2moe", {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
                               "shared_expert_intermediate_size": 48}),
    ("qwen3_moe", "qwen3moe", {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
                               "head_dim": 16, "norm_topk_prob": True}),
    ("qwen3", "qwen3", {"head_dim": 16}),
])
def test_sizes_transformers_does_not_read_come_from_the_file(tmp_path, arch, gguf_arch, sizes):
    """transformers' GGUF config mapping leaves out qwen2moe's expert widths and qwen3's head_dim: a MoE whose
    experts are not its class's default width crashed the import, a Qwen3 whose heads are not 128 wide imported
    into a folder nothing could load. Now the import holds the model's own weights, and answers as it does."""
    import torch
    from transformers import AutoModelForCausalLM
    state = _random_gguf(arch, tmp_path / "m.gguf", gguf_arch, **sizes)
    folder = gguf.import_gguf(tmp_path / "m.gguf", dest_root=tmp_path)
    ours = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    got = ours.state_dict()
    assert sorted(got) == sorted(state)
    assert [k for k in state if not torch.equal(got[k], state[k].to(torch.bfloat16))] == []
    original = AutoModelForCausalLM.from_config(ours.config, dtype=torch.bfloat16)
    original.load_state_dict(state)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    assert torch.equal(ours(ids).logits, original(ids).logits)


def test_metadata_that_does_not_fit_the_tensors_is_one_line(tmp_path):
    """A file whose head_dim says 32 over tensors made for 16 was written into a folder vLLM refused minutes
    later; it is one line naming the tensor and both shapes, and nothing is left behind."""
    _random_gguf("qwen3", tmp_path / "m.gguf", lie={"attention.key_length": 32}, head_dim=16)
    with pytest.raises(LabError, match=r"m.gguf: tensor model\.layers\.0\.self_attn\.q_proj\.weight is \[64, 64\] in "
                                       r"the file, but its metadata makes the architecture want \[128, 64\]"):
        gguf.import_gguf(tmp_path / "m.gguf", dest_root=tmp_path / "models")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
