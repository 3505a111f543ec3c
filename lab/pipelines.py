"""The pipeline subcommands of `lab`: bench (more are added by their modules' issues)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC
from pathlib import Path

from lab.cli import _print_rows, command


def _ints(text: str) -> list[int]:
    from lab import LabError
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise LabError(f"expected comma-separated integers, got {text!r}") from None


@command
def bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="transformers vs vLLM (offline and server): tok/s, TTFT, TPOT, roofline")
    s = p.add_subparsers(dest="action", required=True)
    r = s.add_parser("run", help="measure the engines on a seeded workload; writes results.json and bench.png")
    r.add_argument("--profile", help="profile (default: $LAB_PROFILE or tiny)")
    r.add_argument("--engines", default="hf,vllm,server",
                   help="comma list of hf (transformers generate), vllm (offline LLM), server (OpenAI API)")
    r.add_argument("--concurrency", default="1,2,4,8,16,32", help="server concurrency sweep (default 1,2,4,8,16,32)")
    r.add_argument("--num-prompts", type=int, default=32, help="prompts per run (default 32)")
    r.add_argument("--output-len", type=int, default=64, help="tokens generated per prompt, EOS ignored (default 64)")
    r.add_argument("--hf-batch", type=int, default=8, help="transformers batch size besides batch 1 (default 8)")
    r.add_argument("--hf-prompts", type=int, default=8, help="prompts for transformers, slower (default 8)")
    r.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    r.add_argument("--out", default=None, help="output folder (default runs/bench-<UTC>)")
    st = s.add_parser("suite", help="the project's serving benchmark: scaling c32/c1, lab client vs bare openai")
    st.add_argument("--profile", help="profile whose server is running")
    st.add_argument("--num-prompts", type=int, default=64, help="requests per measurement (default 64)")
    st.add_argument("--output-len", type=int, default=128, help="tokens per request (default 128)")
    st.add_argument("--concurrency", type=int, default=32, help="high concurrency (default 32)")

    def run(a: argparse.Namespace) -> int:
        from datetime import datetime

        from lab import bench as b
        from lab import paths
        if a.action == "suite":
            res = b.suite(a.profile, a.num_prompts, a.output_len, a.concurrency)
            print(json.dumps(res, indent=1))
            print(f"scaling c{a.concurrency}/c1: {res['scaling']}x (target >= 8x); "
                  f"lab client / bare openai loop: {res['lab_vs_bare']:.1%} (target >= 95%)")
            return 0
        out = Path(a.out) if a.out else paths.runs() / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        res = b.run(a.profile, tuple(x.strip() for x in a.engines.split(",")), tuple(_ints(a.concurrency)),
                    a.num_prompts, a.output_len, a.hf_batch, a.hf_prompts, a.seed, out)
        _print_rows([{"engine": r["engine"], "conc": r["concurrency"], "tok/s": r["output_tok_s"],
                      "% ceiling": r["pct_of_ceiling"]} for r in res["runs"]])
        if "parity" in res:
            print("parity hf vs vllm:", json.dumps(res["parity"], ensure_ascii=False))
        print(f"results: {out / 'results.json'}, plot: {out / 'bench.png'}")
        return 0
    p.set_defaults(func=run)
