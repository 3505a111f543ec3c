"""Fine-tune checkpoints: a resume reuses only a complete checkpoint of the same run."""

import json

from lab.finetune.checkpoints import RESUME, every, resumable, run_key
from lab.finetune.train import FinetuneConfig


def test_checkpoints_of_other_settings_or_half_written_are_never_resumed(tmp_path, capsys):
    work = tmp_path / "ft.partial"
    (work / "trainer" / "checkpoint-40").mkdir(parents=True)
    (work / "trainer" / "checkpoint-40" / "trainer_state.json").write_text("{}")
    (work / "trainer" / "checkpoint-60").mkdir()  # killed while writing: no trainer_state.json yet
    (work / RESUME).write_text(json.dumps({"key": "k1"}))
    assert resumable(work, "k1", say=True).name == "checkpoint-40"
    assert "resuming from step 40" in capsys.readouterr().out
    assert resumable(work, "k2", say=True) is None  # other settings or data: start afresh
    assert "another run's checkpoints" in capsys.readouterr().out
    assert [f.name for f in work.iterdir()] == [RESUME] and json.loads((work / RESUME).read_text()) == {"key": "k2"}
    (work / RESUME).write_text("not json")
    assert resumable(work, "k2", say=False) is None and json.loads((work / RESUME).read_text()) == {"key": "k2"}


def test_the_run_key_ignores_where_the_result_goes_and_checkpoints_come_every_tenth():
    cfg = FinetuneConfig(model="m", train="t.jsonl", heldout="h.jsonl", out="a")
    data = [{"input_ids": [1, 2], "labels": [-100, 2]}]
    moved = FinetuneConfig(model="m", train="t.jsonl", heldout="h.jsonl", out="b", merge=True, checkpoint_steps=3)
    assert run_key(cfg, data) == run_key(moved, data)
    assert run_key(cfg, data) != run_key(FinetuneConfig(model="m", train="t.jsonl", heldout="h.jsonl", out="a",
                                                        lr=cfg.lr * 2), data)
    assert run_key(cfg, data) != run_key(cfg, [{"input_ids": [1, 3], "labels": [-100, 3]}])
    assert every(cfg, 200) == 20 and every(cfg, 5) == 1 and every(moved, 200) == 3
