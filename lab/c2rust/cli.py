"""`lab c2rust check|translate|batch`: the C -> Rust harness and the translate-compile-test loop."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab import options, paths
from lab.c2rust import harness, loop


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `lab c2rust`."""
    p = sub.add_parser("c2rust", help="C -> Rust: check a translation, or translate with compile/test feedback")
    s = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ck = s.add_parser("check", help="compile RUST_FILE and run the C program's test cases")
    ck.add_argument("c_file", help="the C program (built with gcc; must pass its own tests first)")
    ck.add_argument("tests", help="test task JSON: {\"cases\": [{args, stdin, expected_stdout, expected_exit_code}]}")
    ck.add_argument("rust_file", help="the Rust translation to check")
    ck.add_argument("--json", action="store_true", help="print the full report as JSON")
    ck.set_defaults(func=_check)
    tr = s.add_parser("translate", help="translate one program, feeding compiler errors and failing tests back")
    tr.add_argument("c_file", help="the C program")
    tr.add_argument("tests", help="its test task JSON")
    tr.set_defaults(func=_translate)
    bt = s.add_parser("batch", help="translate every NAME/prog.c + NAME/tests.json below a folder")
    bt.add_argument("folder", help="folder of programs, e.g. data/c_to_rust")
    options.add(bt, "--concurrency", loop.batch, type=options.POSITIVE_INT, help="programs in flight")
    bt.set_defaults(func=_batch)
    for q in (tr, bt):
        options.endpoint_opts(q)
        options.add(q, "--rounds", loop.translate, type=options.POSITIVE_INT, help="feedback rounds per stage")
        options.add(q, "--idiomatic", loop.translate, help="then ask for idiomatic Rust (no unsafe) too")
        options.add(q, "--max-tokens", loop.translate, type=options.POSITIVE_INT, help="cap on tokens per reply")
        q.add_argument("--out", help="folder for .rs, .json reports and per-program logs "
                       "(default: runs/c2rust-<UTC>)")


def _check(a: argparse.Namespace) -> int:
    ref, rep = harness.check(a.c_file, a.tests, a.rust_file)
    print(json.dumps(rep.to_dict(), indent=1) if a.json else f"C reference: {ref.summary()}\nRust: {rep.summary()}")
    if not a.json:
        for case in rep.cases:
            if not case.passed and case.diff:
                print(f"--- case {case.index} ({case.reason})\n{case.diff}")
    return 0 if rep.ok else 1


def _out(a: argparse.Namespace) -> Path:
    return Path(a.out) if a.out else paths.runs() / f"c2rust-{paths.utc_stamp()}"


def _translate(a: argparse.Namespace) -> int:
    r = loop.translate(a.c_file, a.tests, options.client(a), a.rounds, a.idiomatic, a.max_tokens, _out(a))
    print(json.dumps(r, indent=1))
    return 0 if r["ok"] else 1


def _batch(a: argparse.Namespace) -> int:
    out = _out(a)
    res = loop.batch(a.folder, options.client(a), a.concurrency, a.rounds, a.idiomatic, a.max_tokens, out)
    options.print_rows([{k: r.get(k) for k in ("program", "ok", "compiled", "passed", "total", "rounds", "tokens",
                                                "unsafe")} for r in res["rows"]])
    print(f"success {res['success_rate']:.0%}, compiled {res['compiled_rate']:.0%}, "
          f"mean rounds {res['mean_rounds']}, tokens {res['tokens']}; reports in {out}")
    return 0 if res["success_rate"] == 1 else 1
