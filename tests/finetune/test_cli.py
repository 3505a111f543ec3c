"""lab.finetune.cli: the options reach FinetuneConfig (given ones only; the rest keep the dataclass defaults), a
rank vLLM could not serve is refused before training, and the summary lines (synthetic training results)."""

import pytest

from lab import cli
from lab.finetune import cli as ft_cli
from lab.finetune.train import FinetuneConfig

RESULT = {"first_loss": 7.6, "last_loss": 3.1, "heldout_loss": {"before": 7.4, "after": 3.5},
          "chrf": {"before": 2.0, "after": 11.5}, "adapter": "/o/adapter", "samples": []}


@pytest.fixture
def trained(monkeypatch):
    got = {}

    def fake_train(cfg, profile):
        got.update(cfg=cfg, profile=profile)
        return RESULT
    monkeypatch.setattr(ft_cli, "train_isolated", fake_train)
    return got


def test_given_options_reach_the_config_and_the_rest_keep_their_defaults(trained, tmp_path, capsys):
    assert cli.main(["finetune", "--profile", "tiny", "--out", str(tmp_path / "o"), "--r", "16", "--no-4bit",
                     "--target-modules", "q_proj,v_proj", "--epochs", "2", "--scheduler", "cosine"]) == 0
    cfg = trained["cfg"]
    assert (cfg.r, cfg.four_bit, cfg.target_modules, cfg.epochs, cfg.scheduler) == (16, False, ["q_proj", "v_proj"],
                                                                                   2.0, "cosine")
    assert (cfg.alpha, cfg.lr, cfg.steps, cfg.batch_size) == (FinetuneConfig.alpha, FinetuneConfig.lr,
                                                              FinetuneConfig.steps, FinetuneConfig.batch_size)
    assert cfg.out == str(tmp_path / "o") and cfg.train.endswith("data/finetune/train.jsonl")
    assert capsys.readouterr().out.splitlines() == [
        "loss 7.6 -> 3.1; held-out loss 7.4 -> 3.5; chrF 2.0 -> 11.5", "adapter: /o/adapter"]


def test_a_rank_above_what_vllm_is_told_to_load_is_refused_before_training(trained, capsys):
    assert cli.main(["finetune", "--r", "16", "--serve", "x", "--max-lora-rank", "8"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: --r 16 is above --max-lora-rank 8: vLLM could not load the adapter"]
    assert not trained  # nothing trained
