"""`lab bench run|suite`: the engines compared, and the project's own serving benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab import options, paths
from lab.bench import sweeps
from lab.bench.suite import suite as serving_suite
from lab.measure import ratio_line


def add_commands(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Register `lab bench`; returns its actions, so another stage can add its own benchmark there."""
    p = sub.add_parser("bench", help="transformers vs vLLM (offline and server): tok/s, TTFT, TPOT, roofline")
    s = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = s.add_parser("run", help="measure the engines on a seeded workload; writes results.json and bench.png")
    r.add_argument("--profile", help="profile (default: $LAB_PROFILE or tiny)")
    options.add(r, "--engines", sweeps.run, type=lambda t: tuple(x.strip() for x in t.split(",") if x.strip()),
                help="comma list of hf (transformers generate), vllm (offline LLM), server (OpenAI API)")
    options.add(r, "--concurrency", sweeps.run, "concurrencies", type=options.comma_ints,
                help="server concurrency sweep, comma list")
    options.add(r, "--num-prompts", sweeps.run, type=options.POSITIVE_INT, help="prompts per run")
    options.add(r, "--output-len", sweeps.run, type=options.checked(int, 2),
                help="tokens generated per prompt, EOS ignored")
    options.add(r, "--hf-batch", sweeps.run, type=options.POSITIVE_INT, help="transformers batch size besides 1")
    options.add(r, "--hf-prompts", sweeps.run, type=options.POSITIVE_INT, help="prompts for transformers (slower)")
    options.add(r, "--seed", sweeps.run, help="workload seed")
    r.add_argument("--out", help="output folder (default: runs/bench-<UTC>)")
    r.set_defaults(func=_run)
    st = s.add_parser("suite", help="the project's serving benchmark: scaling c32/c1, lab client vs bare openai")
    st.add_argument("--profile", help="profile whose server is running")
    options.add(st, "--num-prompts", serving_suite, type=options.POSITIVE_INT, help="requests per measurement")
    options.add(st, "--output-len", serving_suite, type=options.checked(int, 2), help="tokens per request")
    options.add(st, "--concurrency", serving_suite, type=options.POSITIVE_INT, help="high concurrency")
    options.add(st, "--repeats", serving_suite, type=options.POSITIVE_INT,
                help="interleaved rounds; ratios use medians")
    st.set_defaults(func=_suite)
    return s


def _suite(a: argparse.Namespace) -> int:
    res = serving_suite(a.profile, a.num_prompts, a.output_len, a.concurrency, a.repeats)
    print(json.dumps(res, indent=1))
    print(ratio_line(res, a.concurrency, 8, "lab client", "lab_vs_bare", 0.95))
    return 0


def _run(a: argparse.Namespace) -> int:
    out = Path(a.out) if a.out else paths.runs() / f"bench-{paths.utc_stamp()}"
    res = sweeps.run(a.profile, a.engines, tuple(a.concurrencies), a.num_prompts, a.output_len, a.hf_batch,
                     a.hf_prompts, a.seed, out)
    options.print_rows([{"engine": r["engine"], "conc": r["concurrency"], "tok/s": r["output_tok_s"],
                         "% ceiling": r["pct_of_ceiling"]} for r in res["runs"]])
    if "parity" in res:
        print("parity hf vs vllm:", json.dumps(res["parity"], ensure_ascii=False))
    print(f"results: {out / 'results.json'}, plot: {out / 'bench.png'}")
    return 0
