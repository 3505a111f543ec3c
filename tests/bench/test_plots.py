"""lab.bench.plots: what the throughput, latency and goodput figures draw, from synthetic results."""

import matplotlib

matplotlib.use("Agg")

from lab.bench.plots import goodput_plot, plot  # noqa: E402


def _lat(p50: float) -> dict:
    return {"p50": p50, "p99": 2 * p50}


RES = {"served_name": "tiny", "runs": [
    {"engine": "hf b=1", "concurrency": 1, "output_tok_s": 5.0},
    {"engine": "hf b=4", "concurrency": 4, "output_tok_s": 15.0},
    {"engine": "server", "concurrency": 8, "output_tok_s": 80.0, "ttft_ms": _lat(40), "e2e_ms": _lat(900)},
    {"engine": "server", "concurrency": 1, "output_tok_s": 12.0, "ttft_ms": _lat(20), "e2e_ms": _lat(500)}]}


def test_throughput_has_a_line_per_engine_sorted_by_concurrency(tmp_path):
    fig = plot(RES, tmp_path)
    thr, lat = fig.axes
    lines = {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in thr.get_lines()}
    assert lines == {"hf": ([1, 4], [5.0, 15.0]), "server": ([1, 8], [12.0, 80.0])}  # "hf b=N" is one engine
    assert thr.get_title() == "throughput (tiny)" and thr.get_xscale() == thr.get_yscale() == "log"
    p50 = {ln.get_label(): list(ln.get_ydata()) for ln in lat.get_lines()}
    assert p50 == {"ttft p50": [20, 40], "e2e p50": [500, 900]}
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_without_server_rows_the_latency_panel_stays_empty():
    fig = plot({"served_name": "m", "runs": RES["runs"][:2]})
    assert fig.axes[1].get_lines() == [] and len(fig.axes[0].get_lines()) == 1


def test_goodput_against_the_offered_load():
    rows = [{"request_rate": 1.0, "goodput_req_s": 1.0}, {"request_rate": 4.0, "goodput_req_s": 2.5}]
    ax = goodput_plot(rows, slo_ttft_ms=500, slo_tpot_ms=50.5).axes[0]
    good, offered = ax.get_lines()
    assert list(good.get_ydata()) == [1.0, 2.5] and list(offered.get_ydata()) == [1.0, 4.0]
    assert ax.get_title() == "goodput at TTFT <= 500 ms, TPOT <= 50.5 ms"
