"""What a batch run shows: one row per program (the CLI's table and the journal's) and the cases-passed chart."""

from __future__ import annotations

from typing import Any

COLUMNS = ("program", "task", "ok", "compiled", "passed", "total", "rounds", "tokens", "unsafe", "stop")


def table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The summary columns of each program's result, in COLUMNS order."""
    return [{k: r.get(k) for k in COLUMNS} for r in rows]


def passed_plot(rows: list[dict[str, Any]], model: str, rounds: int) -> Any:
    """Bar chart: the share of its test cases each program passes (0 for a bad task)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar([r["program"] for r in rows], [r.get("passed", 0) / r["total"] if r.get("total") else 0 for r in rows])
    ax.set(ylim=(0, 1), ylabel="cases passed", title=f"C -> Rust with {model} ({rounds} rounds)")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
