"""What a training run shows: the loss curve, the loss trend in one line, the before/after table."""

from __future__ import annotations

from typing import Any


def loss_trend(history: list[dict[str, float]], share: float = 0.25) -> str:
    """Mean training loss of the first and the last `share` of the steps, and the change in words: one step's loss
    swings with its batch (the 1.5B's went 0.45 -> 0.88 between its first and last step while held-out loss fell),
    so single steps say little."""
    if not history:
        return "no steps logged"
    k = max(1, round(len(history) * share))
    first = sum(h["loss"] for h in history[:k]) / k
    last = sum(h["loss"] for h in history[-k:]) / k
    change = abs(1 - last / first) if first else 0.0
    word = "lower" if last < first else "higher" if last > first else "unchanged"
    return f"{first:.3f} -> {last:.3f} (mean of the first and last {k} of {len(history)} steps: {change:.0%} {word})"


def before_after(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Held-out loss and chrF before and after training, as rows."""
    return [{"metric": "held-out loss", "before": res["heldout_loss"]["before"], "after": res["heldout_loss"]["after"]},
            {"metric": "chrF (greedy)", "before": res["chrf"]["before"], "after": res["chrf"]["after"]}]


def loss_plot(history: list[dict[str, float]], title: str) -> Any:
    """Training loss by step."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history])
    ax.set(xlabel="step", ylabel="training loss", title=title)
    return fig
