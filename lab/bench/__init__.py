"""Stage of notebook 02: transformers vs vLLM offline vs the vLLM server, measured like vLLM's benchmarks."""

from lab.bench.crosscheck import cross_check
from lab.bench.metrics import parity, percentiles, summarize, tpot, workload
from lab.bench.plots import goodput_plot, plot
from lab.bench.report import cross_check_record, engine_table, load_line, rate_table, roofline_lines
from lab.bench.roofline import bandwidth_gbs, gpu_bandwidth_gbs, mark_ceiling, pct_of_ceiling, roofline, weight_bytes
from lab.bench.suite import SuiteSettings, suite
from lab.bench.sweeps import (
    ENGINES,
    RateSettings,
    RunSettings,
    rate_run,
    rate_sweep,
    ratios,
    run,
    server_sweep,
    sized,
    validate,
)

__all__ = ["ENGINES", "RateSettings", "RunSettings", "SuiteSettings", "bandwidth_gbs", "cross_check",
           "cross_check_record", "engine_table", "goodput_plot", "gpu_bandwidth_gbs", "load_line", "mark_ceiling",
           "parity", "pct_of_ceiling", "percentiles", "plot", "rate_run", "rate_sweep", "rate_table", "ratios",
           "roofline", "roofline_lines", "run", "server_sweep", "sized", "suite", "summarize", "tpot", "validate",
           "weight_bytes", "workload"]
