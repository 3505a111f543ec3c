"""The `lab` command: doctor, tiny, serve, run, journal and the pipelines' subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from lab import LabError

COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {}


def command(fn: Callable[[argparse._SubParsersAction], None]) -> Callable[[argparse._SubParsersAction], None]:
    """Register a function that adds one subcommand parser."""
    COMMANDS[fn.__name__] = fn
    return fn


def _profile_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", help="profile name (default: $LAB_PROFILE or 'tiny'); `lab profiles` lists them")
    p.add_argument("--port", type=int, help="override the profile's port (same as LAB_PORT)")
    p.add_argument("--host", help="override the bind address (default 127.0.0.1; same as LAB_HOST)")


def _apply_overrides(a: argparse.Namespace) -> None:
    if getattr(a, "port", None):
        os.environ["LAB_PORT"] = str(a.port)
    if getattr(a, "host", None):
        os.environ["LAB_HOST"] = a.host


def _print_rows(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))


@command
def doctor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check Python, packages, GPUs, driver, libcuda, disk, caches")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")

    def run(a: argparse.Namespace) -> int:
        from lab import doctor as d
        rows = d.checks()
        print(json.dumps(rows, indent=1)) if a.json else _print_rows(rows)
        return 1 if any(r["status"] == "fail" for r in rows) else 0
    p.set_defaults(func=run)


@command
def profiles(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profiles", help="list the known profiles (shipped and ./lab.toml)")

    def run(a: argparse.Namespace) -> int:
        from lab import config
        _print_rows([{"profile": n, "model": b.get("model"), "device": b.get("device", "cpu"),
                      "description": b.get("description", "")} for n, b in sorted(config.available().items())])
        return 0
    p.set_defaults(func=run)


@command
def tiny(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tiny", help="build or locate the embedded tiny model")
    s = p.add_subparsers(dest="action", required=True)
    b = s.add_parser("build", help="train the tokenizer and the tiny Qwen3 on data/corpus (~1 min on 2 cores)")
    b.add_argument("--force", action="store_true", help="rebuild even if a build for this corpus exists")
    b.add_argument("--out", help="output folder (default: the cache folder keyed by the corpus hash)")
    s.add_parser("path", help="print the folder of the current tiny build")

    def run(a: argparse.Namespace) -> int:
        from lab import tiny as t
        if a.action == "path":
            print(t.default_dir())
            return 0 if (t.default_dir() / "model.safetensors").exists() else 1
        print(t.build(a.out, force=a.force))
        return 0
    p.set_defaults(func=run)


@command
def serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start, inspect and stop the vLLM server of a profile")
    s = p.add_subparsers(dest="action", required=True)
    st = s.add_parser("start", help="start (or reuse) the server in the background; waits until ready")
    _profile_opts(st)
    st.add_argument("--api-key", help="require this key (prefer $LAB_API_KEY: argv is visible in `ps`)")
    st.add_argument("--timeout", type=float, default=600, help="seconds to wait for readiness (default 600)")
    for name, text in (("status", "status as the server reports it (/health, /v1/models)"),
                       ("stop", "stop the server and its whole process group")):
        sp = s.add_parser(name, help=text)
        _profile_opts(sp)
        if name == "status":
            sp.add_argument("--json", action="store_true", help="print JSON")
    lg = s.add_parser("logs", help="print the end of logs/latest.log")
    lg.add_argument("-n", type=int, default=40, help="number of lines (default 40)")

    def run(a: argparse.Namespace) -> int:
        from lab import serve as sv
        _apply_overrides(a)
        if a.action == "start":
            if a.api_key:
                os.environ["LAB_API_KEY"] = a.api_key
            srv = sv.start(a.profile, timeout=a.timeout)
            print(f"{srv.base_url} serving {srv.profile.served_name}; stop with `lab serve stop"
                  f"{' --profile ' + a.profile if a.profile else ''}`")
        elif a.action == "stop":
            sv.stop(a.profile)
        elif a.action == "logs":
            print(sv.logs_tail(a.n), end="")
        else:
            st = sv.status(a.profile)
            if a.json:
                print(json.dumps(st, indent=1))
            elif st["running"]:
                m = st["models"][0]
                print(f"running: {st['url']} model {m['id']} max_model_len {m['max_model_len']}"
                      + (f" pid {st['pid']} uptime {st['uptime_s']:.0f}s" if "pid" in st else " (not started by lab)"))
            else:
                print(f"not running on {st['url']}" + (f" ({st['error']})" if "error" in st else ""))
                if "stale_pidfile_removed" in st:
                    print(f"removed a stale pid file (pid {st['stale_pidfile_removed']} no longer exists)")
                return 3
        return 0
    p.set_defaults(func=run)


@command
def run_(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="execute notebooks headless with papermill into runs/, then rebuild the journal")
    p.add_argument("notebooks", nargs="*", help="notebooks by number or name (default: all), e.g. 00 01_serving")
    p.add_argument("--profile", help="profile for every notebook (default: $LAB_PROFILE or 'tiny')")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="notebook parameter (YAML-typed value), repeatable")
    p.add_argument("-f", "--params-file", action="append", default=[], metavar="YAML",
                   help="parameters file (papermill -f style), repeatable; -p wins")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing notebook")
    p.add_argument("--share-server", action=argparse.BooleanOptionalAction, default=None,
                   help="start one server for all notebooks (default: on for CPU profiles)")

    def run(a: argparse.Namespace) -> int:
        from lab import runner
        params: dict[str, Any] = {}
        for f in a.params_file:
            params.update(runner.load_params_file(f))
        params.update(dict(runner.parse_param(x) for x in a.param))
        run_dir, ok = runner.run(a.notebooks, a.profile, params, share_server=a.share_server, fail_fast=a.fail_fast)
        print(f"{'all notebooks ok' if ok else 'FAILED'}: executed notebooks in {run_dir}")
        return 0 if ok else 1
    p.set_defaults(func=run)


@command
def journal(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("journal", help="rebuild journal/ from the executed notebooks in runs/")
    s = p.add_subparsers(dest="action", required=True)
    s.add_parser("build", help="write one entry per finished run and the index (existing entries are kept)")

    def run(a: argparse.Namespace) -> int:
        from lab import journal as j
        print(j.build() / "README.md")
        return 0
    p.set_defaults(func=run)


def parser() -> argparse.ArgumentParser:
    """The full argument parser (every subcommand registered)."""
    from lab import pipelines  # noqa: F401  (registers the pipeline subcommands)

    ap = argparse.ArgumentParser(prog="lab", description="LLM Lab Workbook: serve, measure, fine-tune and translate "
                                 "with open LLMs. Environment: LAB_PROFILE, LAB_PORT, LAB_HOST, LAB_API_KEY, "
                                 "LAB_MODEL, LAB_CACHE, LAB_RUNS, LAB_LOGS, LAB_JOURNAL.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS.values():
        add(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear line and a non-zero exit for every user error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["translate", "eval"]:  # `lab translate eval` is `lab translate-eval`
        argv = ["translate-eval", *argv[2:]]
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopped; finished work is kept on disk", file=sys.stderr)
        return 130


if __name__ == "__main__":
    from lab.cli import main as _main  # the registered module, not this __main__ copy (pipelines import lab.cli)
    sys.exit(_main())
