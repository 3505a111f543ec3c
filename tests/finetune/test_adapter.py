"""lab.finetune.adapter: what is checked before vLLM serves a trained adapter beside its base (the serving itself:
tests/test_smollm2.py on a real model, notebook 03 on the toy)."""

import pytest
from helpers import ROOT

from lab import LabError, finetune

DATA = ROOT / "data" / "finetune"


def test_an_adapter_rank_vllm_cannot_serve_is_refused_before_a_server_starts(tiny_model_dir, tmp_path, monkeypatch):
    from lab import serve
    cfg = finetune.FinetuneConfig(model=str(tiny_model_dir), train=str(DATA / "train.jsonl"),
                                  heldout=str(DATA / "heldout.jsonl"), out=str(tmp_path / "ft"), steps=2,
                                  eval_max_new_tokens=2)
    res = finetune.train(cfg, progress=False)

    def no_start(*a, **k):
        raise AssertionError("a server was started for an adapter vLLM cannot serve")
    monkeypatch.setattr(serve, "start", no_start)
    with pytest.raises(LabError, match="adapter rank 8 is above max_lora_rank 4"):
        finetune.serve_with_adapter("tiny", "ja2zh", res["adapter"], max_lora_rank=4)
    with pytest.raises(LabError, match="vLLM accepts max_lora_rank in"):
        finetune.serve_with_adapter("tiny", "ja2zh", res["adapter"], max_lora_rank=12)
    assert [finetune.max_lora_rank_for(r) for r in (1, 8, 12, 33)] == [1, 8, 16, 64]
    with pytest.raises(AssertionError, match="a server was started"):  # the smallest valid rank (8) goes ahead
        finetune.serve_with_adapter("tiny", "ja2zh", res["adapter"])
