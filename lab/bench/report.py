"""What a benchmark shows, once for the CLI and notebook 02: the engine and rate tables, the roofline's lines,
the cross-check's record."""

from __future__ import annotations

from typing import Any


def engine_table(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per engine and concurrency of `bench.run`'s result: throughput, p50 latencies, share of the ceiling
    ("above" where a decode beat it: then no share over 100% is shown)."""
    return [{"engine": r["engine"], "concurrency": r["concurrency"], "tok_s": r["output_tok_s"],
             "ttft_p50_ms": r.get("ttft_ms", {}).get("p50"), "tpot_p50_ms": r.get("tpot_ms", {}).get("p50"),
             "e2e_p99_ms": r.get("e2e_ms", {}).get("p99"),
             "pct_ceiling": "above" if r.get("above_ceiling") else r.get("pct_of_ceiling")} for r in res["runs"]]


def rate_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per request rate of a rate sweep: throughput, p50 latencies, goodput under the SLOs."""
    return [{"req_s": r["request_rate"], "tok_s": r["output_tok_s"], "ttft_p50_ms": r["ttft_ms"]["p50"],
             "tpot_p50_ms": r["tpot_ms"]["p50"], "goodput_req_s": r["goodput_req_s"],
             "within_slo_pct": r["met_slo_pct"]} for r in rows]


def load_line(st: Any) -> str:
    """The rates and service levels a rate sweep runs with (sized or given), as the CLI and notebook 02 print them."""
    return (f"rates {', '.join(f'{r:g}' for r in st.rates)} req/s, TTFT <= {st.slo_ttft_ms:g} ms, "
            f"TPOT <= {st.slo_tpot_ms:g} ms")


def roofline_lines(res: dict[str, Any]) -> list[str]:
    """How the batch-1 ceiling was computed, and a warning when a measured decode beat it."""
    roof = res["roofline"]
    lines = [f"ceiling {roof['batch1_ceiling_tok_s']} tok/s = {roof['bandwidth_gbs']} GB/s "
             f"({roof['bandwidth_source']}) / {roof['step_bytes'] / 1e6:.0f} MB a step "
             f"({roof['weight_bytes'] / 1e6:.0f} MB weights + KV of {roof['context_tokens']} tokens); "
             f"bandwidth range gives {roof.get('ceiling_range_tok_s')}"]
    first = res.get("roofline_offline")
    if first:
        lines.append(f"the server's rows use the bandwidth read beside it; transformers and the offline engine "
                     f"the read before them: {first['bandwidth_gbs']} GB/s, ceiling {first['batch1_ceiling_tok_s']} "
                     "tok/s")
    if any(r.get("above_ceiling") for r in res["runs"]):
        lines.append("a measured decode beat the ceiling: the bytes counted or the bandwidth measured is wrong, "
                     "so no share over 100% is printed")
    return lines


def cross_check_record(cc: dict[str, Any]) -> dict[str, Any]:
    """The cross-check's medians, ratios, client CPU cost and token counts, as the journal keeps them."""
    med = cc["median"]
    return {"lab_tok_s": med["lab_tok_s"], "vllm_bench_tok_s": med["vllm_tok_s"],
            "throughput_ratio": cc["throughput_ratio"], "tpot_ratio": cc["tpot_ratio"],
            "client_cpu_ms_per_1k_tokens": {"lab": med["lab_cpu_ms_per_1k"], "vllm_bench": med["vllm_cpu_ms_per_1k"]},
            "tokens": cc["tokens"]}
