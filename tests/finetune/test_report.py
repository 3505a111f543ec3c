"""lab.finetune.report: the loss trend says lower or higher from averaged steps, never from two noisy ones."""

from lab import finetune


def test_loss_trend_averages_the_ends_and_names_the_direction():
    noisy = [{"step": i + 1, "loss": v} for i, v in enumerate([2.0, 0.4, 1.8, 1.0, 0.9, 1.1, 0.5, 0.9])]
    # first vs last single step (2.0 -> 0.9) and first vs last quarter (1.2 -> 0.7): both lower here
    assert finetune.loss_trend(noisy) == ("1.200 -> 0.700 (mean of the first and last 2 of 8 steps: 42% lower)")
    rising = [{"step": 1, "loss": 0.45}, {"step": 2, "loss": 0.6}, {"step": 3, "loss": 0.88}]
    assert finetune.loss_trend(rising).endswith("96% higher)")
    assert finetune.loss_trend([]) == "no steps logged"


def test_before_after_rows_and_plot():
    res = {"heldout_loss": {"before": 0.7, "after": 0.59}, "chrf": {"before": 46.0, "after": 57.7}}
    assert finetune.before_after(res) == [{"metric": "held-out loss", "before": 0.7, "after": 0.59},
                                          {"metric": "chrF (greedy)", "before": 46.0, "after": 57.7}]
    fig = finetune.loss_plot([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}], "t")
    assert list(fig.axes[0].lines[0].get_ydata()) == [2.0, 1.0] and fig.axes[0].get_title() == "t"
