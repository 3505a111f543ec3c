"""QLoRA: masking, data errors, the real 4-bit load, real training steps, the adapter served by vLLM."""

import json
import os

import pytest
from helpers import ROOT, lab

from lab import LabError, finetune, procs

DATA = ROOT / "data" / "finetune"


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_loss_only_on_the_assistant_answer(tok):
    msgs = finetune.load_jsonl(DATA / "train.jsonl")[0]
    enc = finetune.encode(tok, msgs)
    ids, labels = enc["input_ids"], enc["labels"]
    assert len(ids) == len(labels)
    k = next(i for i, x in enumerate(labels) if x != finetune.IGNORE)
    assert all(x == finetune.IGNORE for x in labels[:k])
    assert tok.decode(ids[:k]).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # as served
    assert tok.decode(labels[k:]) == msgs[-1]["content"] + "<|im_end|>\n"
    b = finetune.collate([enc, finetune.encode(tok, finetune.load_jsonl(DATA / "train.jsonl")[1])], tok.pad_token_id)
    short = int(b["attention_mask"].sum(1).min())
    assert b["labels"][b["attention_mask"] == 0].eq(finetune.IGNORE).all() and short < b["input_ids"].shape[1]


def test_a_thinking_only_template_trains_the_answer_after_a_closed_think_block(tiny_model_dir):
    """Qwen3 Thinking-2507's template opens <think> in the prompt whatever enable_thinking says."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                         "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}")
    msgs = finetune.load_jsonl(DATA / "train.jsonl")[0]
    enc = finetune.encode(tok, msgs)
    k = next(i for i, x in enumerate(enc["labels"]) if x != finetune.IGNORE)
    assert tok.decode(enc["input_ids"][:k]).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert tok.decode(enc["labels"][k:]) == msgs[-1]["content"] + "<|im_end|>\n"


def test_control_token_spellings_in_a_record_train_as_text_not_as_turn_ends(tok):
    """A pair quoting "<|im_end|>" would otherwise end the turn mid-text and teach the model to stop there."""
    quoted = [{"role": "user", "content": "翻訳して: 彼は「<|im_end|>」と書いた。"},
              {"role": "assistant", "content": "他写下了“<|im_end|>”。<|im_start|>user"}]
    plain = [{"role": "user", "content": "翻訳して: 彼は「」と書いた。"},
             {"role": "assistant", "content": "他写下了“”。"}]
    end, start = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|im_start|>")
    enc, ref = finetune.encode(tok, quoted), finetune.encode(tok, plain)
    for key in ("input_ids", "labels"):
        assert [enc[key].count(t) for t in (end, start)] == [ref[key].count(t) for t in (end, start)]
    k = next(i for i, x in enumerate(enc["labels"]) if x != finetune.IGNORE)
    assert tok.decode(enc["labels"][k:]).replace("\u2060", "") == quoted[-1]["content"] + "<|im_end|>\n"


def test_steps_come_from_the_data_size_when_epochs_are_set():
    cfg = finetune.FinetuneConfig("m", "t", "h", "o", steps=120, epochs=3, batch_size=4)
    assert finetune.train.__module__ and finetune.steps_for(cfg, 24) == 18
    assert finetune.steps_for(finetune.FinetuneConfig("m", "t", "h", "o", steps=120), 24) == 120


def test_dataset_errors_name_file_and_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n{oops\n')
    with pytest.raises(LabError, match=r"d.jsonl:2: malformed JSON"):
        finetune.load_jsonl(f)
    f.write_text('{"messages": [{"role": "user", "content": "a"}]}\n')
    with pytest.raises(LabError, match=r"d.jsonl:1: the record has no final assistant turn"):
        finetune.load_jsonl(f)
    f.write_text("\n\n")
    with pytest.raises(LabError, match="empty dataset"):
        finetune.load_jsonl(f)
    with pytest.raises(LabError, match="does not exist"):
        finetune.load_jsonl(tmp_path / "none.jsonl")
    f.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": 5}]}\n')
    with pytest.raises(LabError, match=r"d.jsonl:1: every message's role and content must be strings"):
        finetune.load_jsonl(f)
    f.write_text('{"messages": [{"role": "human", "content": "a"}, {"role": "assistant", "content": "b"}]}\n')
    with pytest.raises(LabError, match=r"d.jsonl:1: unknown role 'human' \(roles: assistant, system, tool, user\)"):
        finetune.load_jsonl(f)
    from lab.finetune.data import MAX_MESSAGE_CHARS  # 20M characters took 10.7 GB to tokenize, 100M the OOM killer
    f.write_text(json.dumps({"messages": [{"role": "user", "content": "猫" * (MAX_MESSAGE_CHARS + 1)},
                                          {"role": "assistant", "content": "b"}]}) + "\n")
    with pytest.raises(LabError, match=f"d.jsonl:1: a message of {MAX_MESSAGE_CHARS + 1:,} characters, over the"):
        finetune.load_jsonl(f)


def test_held_out_prompts_that_are_also_training_prompts_are_counted():
    """The same prompt with any answer counts (the model saw the question); spaces around a turn do not hide it."""
    from lab.finetune.data import leaked

    def rec(*turns: str) -> list[dict[str, str]]:
        roles = ("system", "user", "assistant")[-len(turns):]
        return [{"role": r, "content": c} for r, c in zip(roles, turns, strict=True)]
    train = [rec("猫です。", "是猫。"), rec("sys", "犬です。", "是狗。")]
    assert leaked(train, [rec("鳥です。", "是鸟。"), rec("犬です。", "是狗。")]) == 0  # no system turn
    assert leaked(train, [rec(" 猫です。\n", "猫。"), rec("sys", "犬です。", "狗")]) == 2
    assert leaked(train, []) == 0


def test_a_record_whose_prompt_fills_max_len_is_skipped_with_a_warning(tok, capsys):
    """Truncated to max_len with no answer token left, it would train nothing and score a nan loss."""
    from lab.finetune.train import answered
    short = [{"role": "user", "content": "猫"}, {"role": "assistant", "content": "猫"}]
    long = [{"role": "user", "content": "猫" * 400}, {"role": "assistant", "content": "犬"}]
    data, recs = answered(tok, [long, short], 64, "t.jsonl")
    assert recs == [short] and len(data) == 1 and any(x != finetune.IGNORE for x in data[0]["labels"])
    assert "warning: t.jsonl: record(s) 1 skipped: the prompt alone fills --max-len 64" in capsys.readouterr().err
    with pytest.raises(LabError, match="t.jsonl: no record keeps an answer token within --max-len 64"):
        answered(tok, [long], 64, "t.jsonl")


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


def _cfg(tiny_model_dir, out, **kw):
    return finetune.FinetuneConfig(model=str(tiny_model_dir), train=str(DATA / "train.jsonl"),
                                   heldout=str(DATA / "heldout.jsonl"), out=str(out), eval_max_new_tokens=8, **kw)


def test_bad_target_module_keeps_previous_output(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "ft"
    out.mkdir()
    (out / "result.json").write_text("{}")  # an earlier run's output
    (out / "keep.txt").write_text("previous run")
    with pytest.raises(LabError, match=r"target module\(s\) \['attn_proj'\] not in the model; available: down_proj"):
        finetune.train(_cfg(tiny_model_dir, out, target_modules=["q_proj", "attn_proj"], steps=2))
    with pytest.raises(LabError, match=r"target module\(s\) none not in the model; available: down_proj"):
        finetune.train(_cfg(tiny_model_dir, out, target_modules=[], steps=2))
    assert (out / "keep.txt").read_text() == "previous run" and list(tmp_path.iterdir()) == [out]
    assert f"note: {out} holds an earlier run's adapter; this run replaces it when it finishes" in \
        capsys.readouterr().out


def test_real_training_steps_save_an_adapter(tiny_model_dir, tmp_path):
    (tmp_path / "ft.partial4000000" / "trainer").mkdir(parents=True)  # of a run SIGKILLed before publishing
    res = finetune.train(_cfg(tiny_model_dir, tmp_path / "ft", steps=12, merge=True), progress=False)
    assert [h["step"] for h in res["history"]] == list(range(1, 13))
    assert res["last_loss"] < res["first_loss"]
    assert res["heldout_loss"]["after"] < res["heldout_loss"]["before"]
    assert 0 < res["memory"]["params_trainable"] < res["memory"]["params_total"]
    saved = tmp_path / "ft" / "adapter"
    assert json.loads((saved / "adapter_config.json").read_text())["r"] == 8
    assert (saved / "adapter_model.safetensors").exists() and (saved / "tokenizer.json").exists()
    assert json.loads((tmp_path / "ft" / "result.json").read_text())["config"]["four_bit"] is True
    assert not list(tmp_path.glob("ft.partial*"))
    from transformers import AutoModelForCausalLM
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "ft" / "merged")  # --merge: a plain model
    assert sum(p.numel() for p in merged.parameters()) == res["memory"]["params_total"]


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


def test_an_output_folder_that_is_not_a_fine_tunes_is_refused_before_training(tmp_path):
    from lab.finetune.train import check_out
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    with pytest.raises(LabError, match=r"--out .*keep holds notes.txt, not an earlier fine-tune.s output"):
        check_out(keep)
    (tmp_path / "f").write_text("x")
    with pytest.raises(LabError, match="is a file"):
        check_out(tmp_path / "f")
    check_out(tmp_path / "new")  # missing: fine
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty")
    (tmp_path / "earlier" / "adapter").mkdir(parents=True)
    (tmp_path / "earlier" / "result.json").write_text("{}")
    check_out(tmp_path / "earlier")  # an earlier run's output is what a rerun replaces
    r = lab("finetune", "--out", str(keep), "--steps", "1")
    assert r.returncode == 1 and r.stderr.count("error:") == 1 and "nothing was done" in r.stderr
    assert (keep / "notes.txt").read_text() == "precious"


def test_a_second_fine_tune_into_one_folder_is_refused(tmp_path):
    """Two runs on one --out each replaced the folder at their end: the last rename won, silently."""
    import os

    from lab import locks
    with locks.writing(tmp_path / "ft", "lab finetune", whole=True):
        r = lab("finetune", "--out", str(tmp_path / "ft"), "--steps", "1")
    assert r.returncode == 1 and r.stderr.count("error:") == 1, r.stderr
    assert f"is being written by another lab finetune (pid {os.getpid()})" in r.stderr
    assert not (tmp_path / "ft").exists()


def test_a_killed_fine_tune_resumes_from_its_checkpoint_to_the_same_adapter(tmp_path):
    """SIGKILL halfway, rerun with the same --out: it resumes (not restarts) and ends byte-identical to a run
    that was never stopped (optimizer, schedule, data order and dropout RNG come back with the checkpoint)."""
    import signal
    import subprocess
    import sys
    import time

    from helpers import ROOT
    args = ["--steps", "200", "--checkpoint-steps", "20"]
    whole = lab("finetune", "--out", str(tmp_path / "whole"), *args)
    assert whole.returncode == 0, whole.stderr
    p = subprocess.Popen([sys.executable, "-m", "lab.cli", "finetune", "--out", str(tmp_path / "k"), *args],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    half = tmp_path / "k.partial" / "trainer" / "checkpoint-100" / "trainer_state.json"
    t0 = time.time()
    while not half.exists() and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert half.exists() and not (tmp_path / "k").exists(), "killed before it finished"
    # the two newest are kept: older ones are rotated out (checkpoint-60 may linger when the kill lands between
    # the Trainer's save of 100 and its rotation, as one CI run caught it)
    steps = sorted(int(c.name.split("-")[1]) for c in half.parent.parent.glob("checkpoint-*"))
    assert steps and steps[0] >= 60 and len(steps) <= 3, steps
    # the training child (a session of its own, holding the lock) dies with its killed parent
    t0 = time.time()
    while _trainers_of(tmp_path / "k") and time.time() - t0 < 10:
        time.sleep(0.1)
    assert not _trainers_of(tmp_path / "k")
    again = lab("finetune", "--out", str(tmp_path / "k"), *args)
    assert again.returncode == 0 and "resuming from step 1" in again.stdout, again.stdout + again.stderr
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("whole", "k"))
    assert b["resumed_at_step"] >= 100 and a["history"] == b["history"] and len(b["history"]) == 200
    assert (a["heldout_loss"], a["chrf"]) == (b["heldout_loss"], b["chrf"])
    adapter = "adapter/adapter_model.safetensors"
    assert (tmp_path / "whole" / adapter).read_bytes() == (tmp_path / "k" / adapter).read_bytes()
    assert not (tmp_path / "k.partial").exists() and not (tmp_path / "k" / "trainer").exists()


def _trainers_of(out) -> list[int]:
    """Pids of live isolated training processes writing `out`."""
    from pathlib import Path
    found = []
    for d in Path("/proc").iterdir():
        try:
            cmd = (d / "cmdline").read_bytes().decode(errors="replace")
            if d.name.isdigit() and "lab.isolate" in cmd and str(out) in cmd and procs.alive(int(d.name)):
                found.append(int(d.name))
        except OSError:
            continue
    return found


def test_a_full_disk_at_a_checkpoint_is_one_line_and_the_rerun_resumes_from_the_one_before(tiny_model_dir, tmp_path,
                                                                                          monkeypatch):
    import errno

    from transformers import Trainer
    real, calls = Trainer._save_checkpoint, []

    def full(self, *a, **k):
        calls.append(self.state.global_step)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "ft.partial" / "x"))
        return real(self, *a, **k)
    monkeypatch.setattr(Trainer, "_save_checkpoint", full)
    cfg = _cfg(tiny_model_dir, tmp_path / "ft", steps=20, checkpoint_steps=5)
    with pytest.raises(LabError, match=rf"cannot write {tmp_path}/ft.partial/x: No space left on device; the "
                                       rf"checkpoints in {tmp_path}/ft.partial are kept: rerun with --out "):
        finetune.train(cfg, progress=False)
    monkeypatch.setattr(Trainer, "_save_checkpoint", real)
    res = finetune.train(cfg, progress=False)
    assert calls == [5, 10] and res["resumed_at_step"] == 5 and len(res["history"]) == 20
