"""lab.finetune.adapter: a trained adapter served by vLLM beside its base."""

import pytest
from helpers import ROOT

from lab import LabError, finetune, procs

DATA = ROOT / "data" / "finetune"


def _cfg(tiny_model_dir, out, **kw):
    return finetune.FinetuneConfig(model=str(tiny_model_dir), train=str(DATA / "train.jsonl"),
                                   heldout=str(DATA / "heldout.jsonl"), out=str(out), eval_max_new_tokens=8, **kw)


@pytest.mark.server
def test_adapter_served_by_vllm_beside_the_base(tiny_model_dir, tmp_path):
    from lab import serve
    res = finetune.train(_cfg(tiny_model_dir, tmp_path / "ft", steps=40), progress=False)
    with pytest.raises(LabError, match="adapter rank 8 is above max_lora_rank 4"):
        finetune.serve_with_adapter("tiny", "ja2zh", res["adapter"], max_lora_rank=4)
    with pytest.raises(LabError, match="vLLM accepts max_lora_rank in"):
        finetune.serve_with_adapter("tiny", "ja2zh", res["adapter"], max_lora_rank=12)
    assert [finetune.max_lora_rank_for(r) for r in (1, 8, 12, 33)] == [1, 8, 16, 64]
    srv = finetune.serve_with_adapter("tiny", "ja2zh", res["adapter"])  # the smallest valid rank: 8
    try:
        c = srv.client()
        models = {m["id"]: m["parent"] for m in c.models()}
        assert models == {"tiny-qwen3": None, "ja2zh": "tiny-qwen3"}
        prompts = [s["prompt"] for s in res["samples"]]
        base = [c.chat(p, max_tokens=24, thinking=False).text for p in prompts]
        tuned = [c.chat(p, model="ja2zh", max_tokens=24, thinking=False).text for p in prompts]
        assert sum(b != t for b, t in zip(base, tuned, strict=True)) >= len(prompts) // 2
    finally:
        serve.stop(srv.profile, quiet=True)
    assert procs.group_pids(srv.pid) == []
