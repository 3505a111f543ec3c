"""The embedded tiny model: deterministic build, loads in transformers, chats, stops at EOS."""

import json

import pytest
from helpers import lab

from lab import LabError, tiny


def test_two_builds_are_byte_identical(tmp_path):
    a = tiny.build(tmp_path / "a", steps=15, progress=False)
    b = tiny.build(tmp_path / "b", steps=15, progress=False)
    da, db = tiny.digest(a), tiny.digest(b)
    assert "model.safetensors" in da and "tokenizer.json" in da
    assert da == db
    c = tiny.build(tmp_path / "c", steps=16, progress=False)  # the check can fail: one more step differs
    assert tiny.digest(c)["model.safetensors"] != da["model.safetensors"]


def test_architecture_fits_vllm_cpu(tiny_model_dir):
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert cfg["architectures"] == ["Qwen3ForCausalLM"]
    assert cfg["head_dim"] == 64  # the CPU attention kernel rejects 16
    tok = json.loads((tiny_model_dir / "tokenizer.json").read_text())
    assert tok["model"]["type"] == "BPE" and tok["pre_tokenizer"]["type"] == "ByteLevel"


def test_greedy_chat_answers_and_stops(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    msgs = [{"role": "user", "content": f"{tiny.INSTRUCTION}\n私は日本語を勉強しています。"}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, enable_thinking=False,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    assert tok.decode(ids[0]).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=40, do_sample=False)
    new = out[0, ids.shape[1]:].tolist()
    assert tok.eos_token_id in new, "greedy output must stop at <|im_end|>"
    text = tok.decode(new[:new.index(tok.eos_token_id)])
    assert text == "我正在学习日语。"  # a corpus pair it was trained on


def test_template_drops_earlier_think_blocks(tiny_model_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "a"},
                                    {"role": "assistant", "content": "<think>\nplan\n</think>\n\nb"},
                                    {"role": "user", "content": "c"}], tokenize=False)
    assert "plan" not in text and "<|im_start|>assistant\nb<|im_end|>" in text


def test_misaligned_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "ja.txt").write_text("a\nb\n")
    (tmp_path / "zh.txt").write_text("a\n")
    with pytest.raises(LabError, match="ja.txt has 2 lines but zh.txt has 1"):
        tiny.chat_pairs(tmp_path)


def test_a_build_into_a_folder_of_other_files_is_refused_before_training(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    r = lab("tiny", "build", "--out", str(keep))
    assert r.returncode == 1 and r.stderr.startswith("error: --out") and "holds notes.txt" in r.stderr, r.stderr
    assert (keep / "notes.txt").read_text() == "precious"


def test_a_second_build_of_one_folder_waits_for_the_first_and_reuses_its_model(tmp_path, tiny_model_dir):
    """`make test` and `make run` started together both built the toy: the second removed the first's folder
    while a server loaded from it. Now it waits for the lock (saying so), then reuses what the first built."""
    import shutil
    import subprocess
    import sys
    import time

    from helpers import ROOT

    from lab import locks
    out = tmp_path / "tiny"
    with locks.writing(out, "lab tiny build", whole=True):
        p = subprocess.Popen([sys.executable, "-c", f"from lab import tiny; tiny.build({str(out)!r}, steps=15)"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(4)
        assert p.poll() is None and not out.exists()  # waiting, nothing built or removed
        shutil.copytree(tiny_model_dir, out)  # the first builder finishes
    said = p.communicate(timeout=120)[0]
    assert p.returncode == 0 and "tiny build: step" not in said, said  # reused, not trained again
    assert tiny.digest(out) == tiny.digest(tiny_model_dir) and not list(tmp_path.glob(".*lock"))
