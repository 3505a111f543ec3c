"""lab.bench.engines: transformers generate on the tiny model (exact token counts, batching that changes no token),
and the choice of the fastest correct transformers configuration (synthetic runs)."""

import pytest
from helpers import base_model

from lab import LabError
from lab.bench import engines

PROMPTS = ["駅に着いた。", "What is the capital of France?", "a"]


def test_hf_generate_gives_exactly_output_len_tokens_and_batching_changes_none(tiny_model_dir):
    one = engines.hf_generate(str(tiny_model_dir), PROMPTS, batch=1, output_len=6, dtype="float32")
    three = engines.hf_generate(str(tiny_model_dir), PROMPTS, batch=3, output_len=6, dtype="float32")
    assert [len(t) for t in one["token_ids"]] == [6, 6, 6] and one["output_tokens"] == 18
    assert three["token_ids"] == one["token_ids"]  # left padding: each row continues its own prompt
    assert len(one["e2e"]) == 3 and len(set(three["e2e"])) == 1  # a batch's rows end together
    assert one["engine"] == "hf" and three["batch"] == 3 and one["wall_s"] > 0


def test_runs_in_one_process_give_what_separate_runs_give(tiny_model_dir):
    """One process for several runs (dtypes in turn, thread counts): the same tokens as a run alone, and the
    process's thread count back to its default at the end."""
    import torch
    before = torch.get_num_threads()
    runs = [{"prompts": PROMPTS, "batch": 1, "output_len": 6, "dtype": "float32", "threads": 1},
            {"prompts": PROMPTS, "batch": 1, "output_len": 6, "dtype": "bfloat16", "threads": 0},
            {"prompts": PROMPTS, "batch": 3, "output_len": 6, "dtype": "float32", "threads": 0}]
    res = engines.hf_runs(str(tiny_model_dir), runs)["runs"]
    alone = engines.hf_generate(str(tiny_model_dir), PROMPTS, batch=1, output_len=6, dtype="float32")
    assert res[0]["token_ids"] == alone["token_ids"] == res[2]["token_ids"]
    assert [r["batch"] for r in res] == [1, 1, 3] and [len(t) for t in res[1]["token_ids"]] == [6, 6, 6]
    assert torch.get_num_threads() == before


def _fake_runs(speed: dict[tuple[str, int], float], heads: dict[str, list[int]]):
    calls = []

    def one(kw):
        calls.append((kw["dtype"], kw["threads"]))
        ids = [heads[kw["dtype"]] + [0] * 24 for _ in kw["prompts"]]
        return {"token_ids": ids, "output_tokens": 32 * len(kw["prompts"]),
                "wall_s": 32 * len(kw["prompts"]) / speed[(kw["dtype"], kw["threads"])]}

    def run(func, env=None, **kw):
        assert func == "hf_runs"  # the whole grid in one process
        return {"runs": [one(r) for r in kw["runs"]]}
    return run, calls


class Prof:
    def model_path(self) -> str:
        return "/m"


@pytest.mark.parametrize("bf16_heads,best", [([1, 2, 3, 4, 5, 6, 7, 8], ("bfloat16", 2)),   # agrees: fastest wins
                                             ([1, 2, 3, 9, 9, 9, 9, 9], ("float32", 1))])  # a broken kernel loses
def test_the_best_transformers_baseline_is_the_fastest_that_agrees_with_float32(monkeypatch, bf16_heads, best):
    speed = {("float32", 2): 10.0, ("float32", 1): 11.0, ("bfloat16", 2): 30.0, ("bfloat16", 1): 20.0}
    run, calls = _fake_runs(speed, {"float32": [1, 2, 3, 4, 5, 6, 7, 8], "bfloat16": bf16_heads})
    monkeypatch.setattr(engines, "run_isolated", run)
    monkeypatch.setattr(engines.isolate, "pinned_env", lambda prof: {})
    monkeypatch.setattr(engines.os, "sched_getaffinity", lambda pid: {0, 1})
    res = engines.best_hf_b1(Prof(), ["p", "q"], output_len=32)
    assert calls == [("float32", 2), ("float32", 1), ("bfloat16", 2), ("bfloat16", 1)]  # every dtype x threads
    assert (res["best"]["dtype"], res["best"]["threads"]) == best
    assert [r["tok_s"] for r in res["configs"]] == [10.0, 11.0, 30.0, 20.0]
    assert all(r["agrees_with_float32"] for r in res["configs"] if r["dtype"] == "float32")


def test_only_the_two_engine_functions_run_isolated():
    with pytest.raises(LabError, match="unknown engine function 'os:system'"):
        engines.run_isolated("os:system")


def test_an_offline_engine_vllm_refuses_is_one_line_naming_the_profile_key(tiny_model_dir):
    """vLLM-CPU refusing to start (too little free memory for gpu_memory_utilization) was shown as "internal error
    ValueError ... (a bug in lab, not in your input)"."""
    with pytest.raises(LabError) as e:
        engines.run_isolated("vllm_generate", {"VLLM_CPU_KVCACHE_SPACE": ""}, model=str(tiny_model_dir),
                             prompts=PROMPTS, output_len=4, profile="mine",
                             engine_args={"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.999})
    msg = str(e.value)
    assert msg.startswith("vLLM's offline engine did not start: ValueError: Available memory") and "\n" not in msg
    assert "internal error" not in msg and msg.endswith("(in lab: gpu_memory_utilization in the [serve] table of "
                                                        "profile 'mine')")


@pytest.mark.parametrize("engine", ["hf_generate", "vllm_generate"])
def test_a_base_model_without_a_chat_template_is_one_line(tiny_model_dir, tmp_path, engine):
    """Every engine sends prompts as chats: a base model's tokenizer made apply_chat_template raise in the isolated
    child, an 'internal error'; vLLM's offline engine would have loaded the model first."""
    base = base_model(tiny_model_dir, tmp_path / "base")
    with pytest.raises(LabError, match=r"base: its tokenizer has no chat template \(a base model\?\); the benchmark"):
        engines.run_isolated(engine, model=str(base), prompts=PROMPTS, output_len=4,
                             **({"batch": 1} if engine == "hf_generate" else {"engine_args": {"dtype": "float32"}}))
