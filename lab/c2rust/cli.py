"""`lab c2rust check|translate|batch`: the C -> Rust harness and the translate-compile-test loop."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab import options, paths
from lab.c2rust import harness, loop, report, sactor, sandbox
from lab.c2rust.tasks import FEEDS

L = loop.LoopSettings


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `lab c2rust`."""
    p = sub.add_parser("c2rust", help="C -> Rust: check a translation, or translate with compile/test feedback")
    s = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ck = s.add_parser("check", help="compile RUST_FILE and run the C program's test cases")
    ck.add_argument("c_file", help="the C program (built with gcc; must pass its own tests first)")
    ck.add_argument("tests", help="SACToR's test_task.json or test_samples.json, or the project's "
                    "{\"cases\": [{args, stdin, expected_stdout, expected_exit_code}]}")
    ck.add_argument("rust_file", help="the Rust translation to check")
    ck.add_argument("--json", action="store_true", help="print the full report as JSON")
    ck.add_argument("--idiomatic", action="store_true", help="compile with -F unsafe_code (default: off)")
    ck.set_defaults(func=_check)
    tr = s.add_parser("translate", help="translate one program, feeding compiler errors and failing tests back")
    tr.add_argument("c_file", help="the C program")
    tr.add_argument("tests", help="its test task (SACToR test_task.json / test_samples.json, or the project's)")
    tr.set_defaults(func=_translate)
    for q in (ck, tr):
        q.add_argument("--feed", choices=FEEDS, help="for a bare test_samples.json: input as argv words or on stdin "
                       "(default: args, as SACToR; a test_task.json says it per case)")
    bt = s.add_parser("batch", help="translate every program folder below a folder (NAME/NAME.c + "
                      "NAME/test_task/test_task.json, or prog.c + tests.json); exit 1 if any fails")
    bt.add_argument("folder", help="folder of programs, e.g. data/c_to_rust")
    options.add(bt, "--concurrency", L, type=options.POSITIVE_INT, help="programs in flight")
    bt.set_defaults(func=_batch)
    for q in (tr, bt):
        options.endpoint_opts(q)
        options.add(q, "--rounds", L, type=options.POSITIVE_INT, help="feedback rounds per stage")
        options.add(q, "--idiomatic", L, help="then ask for idiomatic Rust (no unsafe) too")
        options.add(q, "--max-tokens", L, type=options.POSITIVE_INT, help="cap on tokens per reply")
        options.add(q, "--candidates", L, type=options.POSITIVE_INT,
                    help="replies per round, all checked, the best goes on: the first greedy, the "
                    "rest sampled, and after round 1 every other one a fresh translation")
        options.add(q, "--example", L, help="show one worked C -> Rust translation before the program "
                    "(dropped when the context has no room; the 1.5B did worse with it)")
        q.add_argument("-o", "--out", help="folder for .rs, .json reports and per-program logs; a rerun into the same "
                       "folder reuses each program finished with the same source, tests, model, settings and prompt, "
                       "and replays the replies a stopped run kept in OUT/.replies (default: runs/c2rust-<UTC>)")
    sc = s.add_parser("sactor-config", help="print (or write) the [VLLM] block of a sactor.toml for the live server")
    options.endpoint_opts(sc)
    sc.add_argument("--temperature", type=options.checked(float, 0), default=0.0, help="(default: 0.0)")
    sc.add_argument("-o", "--out", help="write this file, mode 600 (default: print to stdout)")
    sc.set_defaults(func=_sactor_config)


def _check(a: argparse.Namespace) -> int:
    print(sandbox.describe(), file=sys.stderr if a.json else sys.stdout)  # --json: stdout is the report only
    ref, rep = harness.check(a.c_file, a.tests, a.rust_file, a.feed, a.idiomatic)
    print(json.dumps(rep.to_dict(), indent=1) if a.json else f"C reference: {ref.summary()}\nRust: {rep.summary()}")
    if not a.json:
        for case in rep.cases:
            if not case.passed and (case.diff or case.note):
                # the diff holds what a model-written program printed: shown, never able to drive the terminal
                print(paths.shown(f"--- case {case.index} ({case.reason}{': ' + case.note if case.note else ''})"
                                  + (f"\n{case.diff}" if case.diff else "")))
    return 0 if rep.ok else 1


def _out(a: argparse.Namespace) -> Path:
    return Path(a.out) if a.out else paths.runs() / f"c2rust-{paths.utc_stamp()}"


def _translate(a: argparse.Namespace) -> int:
    print(sandbox.describe(), file=sys.stderr)  # stdout is the JSON result only
    r = loop.translate(a.c_file, a.tests, options.client(a), options.settings(a, L), _out(a))
    print(json.dumps(r, indent=1))
    return 0 if r["ok"] else 1


def _batch(a: argparse.Namespace) -> int:
    out = _out(a)
    print(sandbox.describe())
    res = loop.batch(a.folder, options.client(a), options.settings(a, L), out)
    options.print_rows(report.table(res["rows"]))
    print(f"success {res['success_rate']:.0%}, compiled {res['compiled_rate']:.0%}, "
          f"mean rounds {res['mean_rounds']}, tokens {res['tokens']}; reports in {out}")
    return 0 if res["success_rate"] == 1 else 1


def _sactor_config(a: argparse.Namespace) -> int:
    text = sactor.sactor_config(options.client(a), a.temperature)
    if a.out:
        print(f"wrote {sactor.write(text, a.out)}")
    else:
        print(text, end="")
    return 0
