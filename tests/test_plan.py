"""GPU profiles without a GPU: the plan of every profile x notebook, its parameters, and reasoning replies."""

import json

import pytest
from helpers import lab

from lab import config, nbparams, plan, runner
from lab.client import Client


@pytest.mark.parametrize("name", sorted(config.available()))
def test_every_profile_plans_every_notebook_on_a_cpu_machine(name):
    prof = config.load(name, check_device=False)
    pl = plan.plan(None, name, {})
    assert [n["notebook"] for n in pl["notebooks"]] == [nb.stem for nb in runner.all_notebooks()]
    for nb in runner.all_notebooks():  # a profile parameter no notebook declares would be silently dropped
        own = set(prof.notebook_params(nb.stem))
        assert own <= nbparams.declared_parameters(nb), (name, nb.stem, own - nbparams.declared_parameters(nb))
    for n in pl["notebooks"]:
        assert n["parameters"]["profile"] == name
        for st in n["steps"]:
            assert st["model"] and st["devices"]
            if "command" in st:
                assert f"--served-model-name {prof.served_name}" in st["command"]
    assert f"nothing is started or downloaded by this plan; a cell may run {prof.cell_timeout} s" in plan.render(pl)


def test_the_plan_states_the_cell_bound_it_would_run_under():
    assert "; a cell may run 45 s (--cell-timeout)" in lab("run", "--plan", "00", "--cell-timeout", "45").stdout
    assert plan.plan(["00"], "tiny", {}, 0)["cell_timeout_s"] == 0
    assert "cells are not bounded (--cell-timeout 0)" in plan.render(plan.plan(["00"], "tiny", {}, 0))


def test_the_32b_awq_plan_uses_the_right_model_for_each_role():
    pl = {n["notebook"][:2]: n for n in plan.plan(["02", "03"], "qwen3-32b-awq", {})["notebooks"]}
    hf, offline, server = pl["02"]["steps"]
    assert hf["model"] == "Qwen/Qwen3-32B" and "no token parity" in hf["step"] and "0,1,2,3" in hf["devices"]
    assert offline["args"]["quantization"] == "awq_marlin" and offline["args"]["tensor_parallel_size"] == 4
    assert offline["args"]["enforce_eager"] is False  # the server captures CUDA graphs too
    assert server["command"].startswith("vllm serve Qwen/Qwen3-32B-AWQ") and "--tensor-parallel-size 4" in \
        server["command"]
    train, lora = pl["03"]["steps"]
    assert train["model"] == "Qwen/Qwen3-32B" and "nf4" in train["step"] and "gradient checkpointing" in train["step"]
    assert train["devices"].startswith("GPU 0 ")  # one GPU, as on a 1-GPU box
    port = config.load("qwen3-32b-awq", check_device=False).port + 1  # beside the base server's port
    assert "--enable-lora" in lora["command"] and "--max-lora-rank 16" in lora["command"] and f"--port {port}" in \
        lora["command"]
    p = pl["03"]["parameters"]
    assert p["lr"] == 0.0001 and p["epochs"] == 3 and p["scheduler"] == "cosine" and p["warmup_ratio"] == 0.1


def test_user_parameters_win_over_the_profiles_and_the_cli_plans():
    p = plan.plan(["05"], "qwen3-4b-thinking", {"rounds": 2})["notebooks"][0]["parameters"]
    assert p["rounds"] == 2 and p["max_tokens"] == 16384
    r = lab("run", "--plan", "--profile", "qwen3-4b-thinking", "01", "--json")
    pl = json.loads(r.stdout)
    assert r.returncode == 0 and pl["notebooks"][0]["parameters"]["max_tokens"] == 2048
    assert "--reasoning-parser deepseek_r1" in pl["notebooks"][0]["steps"][0]["command"]
    r = lab("run", "--plan", "--profile", "qwen3-4b", "-p", "lerning_rate=1")
    assert r.returncode == 1 and "-p lerning_rate: no selected notebook" in r.stderr


def test_reasoning_is_split_from_the_answer_as_thinking_models_reply(openai_fake):
    replies = iter([("嗯，用户要翻译。\n</think>\n\n你好。", None),       # Thinking-2507: no opening tag
                    ("\n\n你好。", "嗯，用户要翻译。"),                      # vLLM --reasoning-parser
                    ("<think>\n嗯，用户要", None)])                          # cut off while thinking
    def reply(body):
        content, reasoning = next(replies)
        return 200, ({"content": content, "reasoning": reasoning} if reasoning else content), "stop"
    c = Client(openai_fake(reply).url)
    for expected in ("你好。", "你好。", ""):
        r = c.chat("こんにちは")
        assert r.text.strip() == expected and r.reasoning.startswith("嗯，用户要")


def test_a_plan_of_a_resume_shows_that_runs_profile_parameters_and_kept_notebooks(tmp_path, monkeypatch):
    """`lab run --plan --resume RUN` planned a new run of every notebook with the default profile, and a run that
    does not exist planned fine: the plan is what the resume would do, or its error."""
    monkeypatch.setenv("LAB_RUNS", str(tmp_path))
    run = tmp_path / "20260101T000000Z-tiny"
    run.mkdir()
    meta = {"profile": "tiny", "parameters": {"max_tokens": 7}, "requested": ["00_environment", "01_serving"],
            "ended": "2026-01-01T00:05:00Z", "cell_timeout_s": 99,
            "notebooks": [{"name": "00_environment", "status": "ok"}, {"name": "01_serving", "status": "failed"}]}
    (run / "run.json").write_text(json.dumps(meta))
    (run / "00_environment.ipynb").write_text("{}")
    pl = plan.plan(None, None, {}, resume=run.name)
    assert [n["notebook"] for n in pl["notebooks"]] == ["01_serving"] and pl["kept"] == ["00_environment"]
    assert pl["notebooks"][0]["parameters"]["max_tokens"] == 7 and pl["cell_timeout_s"] == 99
    assert f"resumes {run}: kept (passed there): 00_environment" in plan.render(pl)
    r = lab("run", "--plan", "--resume", "nope", env={"LAB_RUNS": str(tmp_path)})
    assert r.returncode == 1 and r.stderr.startswith("error: --resume nope: no run folder with a run.json there")
