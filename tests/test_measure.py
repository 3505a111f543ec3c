"""lab.measure: medians of interleaved runs, the closing ratio line, peak memory."""

from lab import measure


def test_medians_and_ratio_line():
    assert measure.medians({"a": [3.0, 1.0, 2.0], "b": [10.0, 11.0]}) == {"a": 2.0, "b": 10.5}
    line = measure.ratio_line({"scaling": 9.5, "lab_vs_bare": 0.97}, 32, 8, "lab client", "lab_vs_bare", 0.95)
    assert line == "scaling c32/c1: 9.5x (target >= 8x); lab client / bare openai loop: 97.0% (target >= 95%)"


def test_peak_memory_reports_this_process():
    m = measure.peak_memory()
    assert m["peak_rss_mb"] > 10
