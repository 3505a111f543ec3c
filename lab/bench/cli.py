"""`lab bench run|suite`: the engines compared, and the project's own serving benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab import options, paths
from lab.bench import report, sweeps
from lab.bench.suite import SuiteSettings
from lab.bench.suite import suite as serving_suite
from lab.measure import ratio_line

R, RT, SU = sweeps.RunSettings, sweeps.RateSettings, SuiteSettings


def add_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Register `lab bench`; returns its actions, so another stage can add its own benchmark there."""
    p = sub.add_parser("bench", help="transformers vs vLLM (offline and server): tok/s, TTFT, TPOT, roofline")
    s = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = s.add_parser("run", help="measure the engines on a seeded workload (starts the server when none runs); "
                                   "writes results.json and bench.png")
    options.profile_arg(r, "profile")
    options.add(r, "--engines", R, type=options.comma_choices(sweeps.ENGINES),
                help="comma list of hf (transformers generate), vllm (offline LLM), server (OpenAI API)")
    options.add(r, "--concurrency", R, "concurrencies", type=options.comma_ints,
                help="server concurrency sweep, comma list")
    options.add(r, "--num-prompts", R, type=options.POSITIVE_INT, help="prompts per run")
    options.add(r, "--output-len", R, type=options.checked(int, 2),
                help="tokens generated per prompt, EOS ignored")
    options.add(r, "--hf-batch", R, type=options.POSITIVE_INT, help="transformers batch size besides 1")
    options.add(r, "--hf-prompts", R, type=options.POSITIVE_INT, help="prompts for transformers (slower)")
    options.add(r, "--seed", R, type=options.SEED, help="workload seed")
    options.add(r, "--start-timeout", R, type=options.SECONDS,
                help="seconds to wait for a server this command starts (a running one is reused)")
    options.add(r, "--keep-server", R, help="leave a server this command started running")
    r.add_argument("-o", "--out", help="output folder (default: runs/bench-<UTC>)")
    r.set_defaults(func=_run)
    st = s.add_parser("suite", help="the project's serving benchmark: scaling c32/c1, lab client vs bare openai")
    options.profile_arg(st, "profile whose server is running")
    options.add(st, "--num-prompts", SU, type=options.POSITIVE_INT, help="requests per measurement")
    options.add(st, "--output-len", SU, type=options.checked(int, 2), help="tokens per request")
    options.add(st, "--concurrency", SU, type=options.POSITIVE_INT, help="high concurrency")
    options.add(st, "--repeats", SU, type=options.POSITIVE_INT,
                help="interleaved rounds; ratios use medians")
    st.add_argument("--cross-check", action="store_true", help="also run vLLM's own `vllm bench serve` interleaved "
                    "with the lab's light client on the same server and workload, and print the ratios (default: off)")
    options.add(st, "--engines", SU, help="also measure the server's batch-1 decode against the "
                "bandwidth roofline and its high concurrency against transformers at batch 1 (real models)")
    st.set_defaults(func=_suite)
    rt = s.add_parser("rate", help="Poisson arrivals at each request rate: throughput, latency, goodput under SLOs")
    options.profile_arg(rt, "profile whose server is running")
    options.add(rt, "--rates", RT, type=options.comma_rates,
                help="request rates (req/s), comma list")
    options.add(rt, "--num-prompts", RT, type=options.POSITIVE_INT, help="requests per rate")
    options.add(rt, "--output-len", RT, type=options.checked(int, 2), help="tokens per request")
    options.add(rt, "--slo-ttft-ms", RT, type=options.POSITIVE_FLOAT, help="time-to-first-token target")
    options.add(rt, "--seed", RT, type=options.SEED, help="workload and arrival-time seed")
    options.add(rt, "--slo-tpot-ms", RT, type=options.POSITIVE_FLOAT, help="time-per-output-token target")
    rt.add_argument("--sized-from", metavar="RESULTS", help="a `lab bench run` results.json (or its folder): rates "
                    f"{', '.join(f'{f:g}' for f in sweeps.SIZED_RATES)}x the capacity it measured and SLOs "
                    f"{sweeps.SIZED_TTFT:g}x its lowest-concurrency TTFT and {sweeps.SIZED_TPOT:g}x its TPOT, in "
                    "place of --rates and the SLO options (default: off)")
    rt.set_defaults(func=_rate)
    return s


def _rate(a: argparse.Namespace) -> int:
    st = options.settings(a, RT)
    if a.sized_from:
        st = sweeps.sized(sweeps.read_results(a.sized_from), st)
        print(paths.one_line(f"sized from {a.sized_from}: {report.load_line(st)}"), flush=True)
    rows = sweeps.rate_run(a.profile, st)
    options.print_rows(report.rate_table(rows))
    return 0


def _suite(a: argparse.Namespace) -> int:
    res = serving_suite(a.profile, options.settings(a, SU))
    print(json.dumps(res, indent=1))
    print(ratio_line(res, a.concurrency, 8, "lab client", "lab_vs_bare", 0.95))
    if a.cross_check:
        from lab.bench import crosscheck
        cc = crosscheck.cross_check(a.profile, concurrency=a.concurrency, output_len=a.output_len)
        print(json.dumps(cc, indent=1))
        print(crosscheck.line(cc))
    print(f"server c{a.concurrency} / c1: {res['scaling']}x (target >= 8x)")
    if a.engines:
        roof, best = res["roofline"], res["hf_b1"]["best"]
        share = ("above the ceiling: the bytes counted or the bandwidth measured is wrong"
                 if res["server_b1_above_roofline"] else f"{res['server_b1_pct_of_roofline']}% of the roofline")
        rounds = res.get("server_b1_pct_rounds")
        paired = f"; each round against its own bandwidth read: {rounds}" if rounds else ""
        print(f"server batch-1 decode: {share} (ceiling {roof['batch1_ceiling_tok_s']} tok/s, range "
              f"{roof.get('ceiling_range_tok_s')}{paired}; target >= 50%)")
        print(f"server c{a.concurrency} / transformers batch 1 ({best['dtype']}, {best['threads']} threads, "
              f"the fastest correct of {len(res['hf_b1']['configs'])}): {res['server_hi_vs_hf_b1']}x (target >= 10x)")
    return 0


def _run(a: argparse.Namespace) -> int:
    out = Path(a.out) if a.out else paths.runs() / f"bench-{paths.utc_stamp()}"
    res = sweeps.run(a.profile, options.settings(a, R), out)
    options.print_rows(report.engine_table(res))
    print("\n".join(report.roofline_lines(res)))
    if "parity" in res:
        print("parity hf vs vllm:", json.dumps(res["parity"], ensure_ascii=False))
    print(f"results: {out / 'results.json'}, plot: {out / 'bench.png'}")
    return 0
