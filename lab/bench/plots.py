"""Benchmark figures: throughput per engine, server latency percentiles against concurrency, goodput per rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(res: dict[str, Any], out: Path | None = None) -> Any:
    """Two panels: output tok/s vs concurrency per engine; server E2E/TTFT percentiles vs concurrency."""
    import matplotlib
    if out is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in res["runs"]:
        groups.setdefault(r["engine"].split(" ")[0], []).append(r)
    for name, rows in groups.items():
        rows = sorted(rows, key=lambda r: r["concurrency"])
        a.plot([r["concurrency"] for r in rows], [r["output_tok_s"] for r in rows], "o-", label=name)
    a.set(xscale="log", yscale="log", xlabel="concurrency / batch", ylabel="output tokens/s",
          title=f"throughput ({res['served_name']})")
    a.legend()
    srv = sorted([r for r in res["runs"] if r["engine"] == "server"], key=lambda r: r["concurrency"])
    if srv:
        xs = [r["concurrency"] for r in srv]
        for key, style in (("ttft_ms", "s--"), ("e2e_ms", "o-")):
            b.plot(xs, [r[key]["p50"] for r in srv], style, label=f"{key[:-3]} p50")
            b.fill_between(xs, [r[key]["p50"] for r in srv], [r[key]["p99"] for r in srv], alpha=0.2,
                           label=f"{key[:-3]} p50..p99")
        b.set(xscale="log", xlabel="concurrency", ylabel="ms", title="server latency")
        b.legend(fontsize=8)
    fig.tight_layout()
    if out is not None:
        fig.savefig(Path(out) / "bench.png", dpi=80, metadata={"Software": None})
    return fig


def goodput_plot(rows: list[dict[str, Any]], slo_ttft_ms: float, slo_tpot_ms: float) -> Any:
    """Goodput (requests/s within both service levels) against the offered Poisson rate."""
    import matplotlib.pyplot as plt
    rates = [r["request_rate"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(rates, [r["goodput_req_s"] for r in rows], "o-", label="goodput (within SLO)")
    ax.plot(rates, rates, ":", color="grey", label="offered load")
    ax.set(xlabel="request rate (req/s, Poisson)", ylabel="req/s",
           title=f"goodput at TTFT <= {slo_ttft_ms:g} ms, TPOT <= {slo_tpot_ms:g} ms")
    ax.legend()
    return fig
