"""lab.finetune.train: the real 4-bit load, real QLoRA steps, refusals before training, a killed run resumed, a full
disk."""

import json
import os

import pytest
from helpers import ROOT, base_model, lab

from lab import LabError, finetune, procs

DATA = ROOT / "data" / "finetune"


def test_steps_come_from_the_data_size_when_epochs_are_set():
    cfg = finetune.FinetuneConfig("m", "t", "h", "o", steps=120, epochs=3, batch_size=4)
    assert finetune.train.__module__ and finetune.steps_for(cfg, 24) == 18
    assert finetune.steps_for(finetune.FinetuneConfig("m", "t", "h", "o", steps=120), 24) == 120


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


def test_a_base_model_without_a_chat_template_is_one_line_before_loading(tiny_model_dir, tmp_path):
    """A base model's tokenizer has no chat template: apply_chat_template's ValueError was an 'internal error'."""
    base = base_model(tiny_model_dir, tmp_path / "base")
    with pytest.raises(LabError, match=r"base: its tokenizer has no chat template \(a base model\?\)"):
        finetune.train(_cfg(base, tmp_path / "ft", steps=2))
    assert not (tmp_path / "ft").exists()


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


def test_gradient_checkpointing_trains_as_without_it(tiny_model_dir, tmp_path):
    """--gradient-checkpointing recomputes activations instead of keeping them, and changes no loss: the same
    seeded steps give the same history (no test ran it before)."""
    runs = [finetune.train(_cfg(tiny_model_dir, tmp_path / f"ft{gc}", steps=3, gradient_checkpointing=gc),
                           progress=False) for gc in (False, True)]
    plain, checkpointed = ([h["loss"] for h in r["history"]] for r in runs)
    assert len(plain) == 3 and checkpointed == pytest.approx(plain, rel=1e-4)


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
    data = tmp_path / "data"  # the training pairs, 3 held-out pairs: both runs' scores must still be equal
    data.mkdir()
    (data / "train.jsonl").write_bytes((DATA / "train.jsonl").read_bytes())
    (data / "heldout.jsonl").write_text("".join((DATA / "heldout.jsonl").read_text().splitlines(keepends=True)[:3]))
    args = ["--data", str(data), "--steps", "100", "--checkpoint-steps", "10"]  # 3 runs; 200 steps took 2 min
    whole = lab("finetune", "--out", str(tmp_path / "whole"), *args)
    assert whole.returncode == 0, whole.stderr
    p = subprocess.Popen([sys.executable, "-m", "lab.cli", "finetune", "--out", str(tmp_path / "k"), *args],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    half = tmp_path / "k.partial" / "trainer" / "checkpoint-50" / "trainer_state.json"
    t0 = time.time()
    while not half.exists() and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert half.exists() and not (tmp_path / "k").exists(), "killed before it finished"
    # the two newest are kept: older ones are rotated out (checkpoint-30 may linger when the kill lands between
    # the Trainer's save of 50 and its rotation, as one CI run caught it)
    steps = sorted(int(c.name.split("-")[1]) for c in half.parent.parent.glob("checkpoint-*"))
    assert steps and steps[0] >= 30 and len(steps) <= 3, steps
    # the training child (a session of its own, holding the lock) dies with its killed parent
    t0 = time.time()
    while _trainers_of(tmp_path / "k") and time.time() - t0 < 10:
        time.sleep(0.1)
    assert not _trainers_of(tmp_path / "k")
    again = lab("finetune", "--out", str(tmp_path / "k"), *args)
    assert again.returncode == 0, again.stdout + again.stderr
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("whole", "k"))
    assert f"resuming from step {b['resumed_at_step']} " in again.stdout
    assert b["resumed_at_step"] >= 50 and a["history"] == b["history"] and len(b["history"]) == 100
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
