"""Headless runs: papermill executes notebooks into runs/<UTC>-<profile>/, then the journal is rebuilt."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import LabError, config, paths, pidfile, procs
from lab.kernels import kernel_manager, release_sockets, socket_prefix
from lab.nbparams import check_params, notebook_params


def notebook_dir() -> Path:
    """The numbered notebooks shipped with the project."""
    return paths.root() / "notebooks"


def all_notebooks() -> list[Path]:
    """Every numbered notebook (NN_name.ipynb) in order."""
    return sorted(notebook_dir().glob("[0-9][0-9]_*.ipynb"))


def resolve(names: list[str] | None) -> list[Path]:
    """Notebook paths from names like '01', '01_serving', '01_serving.ipynb' or a path; all when empty."""
    nbs = all_notebooks()
    if not names:
        return nbs
    out = []
    for n in names:
        p = Path(n)
        if p.suffix == ".ipynb" and p.exists():
            out.append(p.resolve())
            continue
        stem = p.name.removesuffix(".ipynb")
        match = [nb for nb in nbs if nb.stem == stem or nb.stem.split("_", 1)[0] == stem]
        if len(match) != 1:
            raise LabError(f"no notebook {n!r}; choose from: {', '.join(nb.stem for nb in nbs)}")
        out.append(match[0])
    return out


def _label(n: Any, source: str) -> str:
    """'cell [N] `first line`': N as the executed notebook shows it (its In [N] prompt, papermill's injected
    cell included)."""
    first = (source or "").strip().splitlines()[:1]
    return f"cell [{n}]" + (f" `{first[0][:60]}`" if first else "")


def _cell_label(err: Any) -> str:
    """The label of the cell a PapermillExecutionError names."""
    return _label(getattr(err, "exec_count", None) or err.cell_index, getattr(err, "source", ""))


def _live_servers() -> dict[int, tuple[int, str]]:
    """Port -> (main pid, owning run folder) of every server lab recorded that still has a live process."""
    return {port: (int(rec["pid"]), str(rec.get("owner", ""))) for port, rec in pidfile.live_servers().items()}


def _stop_abandoned() -> list[str]:
    """Stop the servers an earlier `lab run` started and could not stop (it was SIGKILLed): one line each.
    Servers of a live run beside this one, and servers started by hand, are left alone."""
    from lab import serve
    out = []
    for port, rec in pidfile.live_servers().items():
        if pidfile.abandoned(rec):
            serve.stop(port, quiet=True)
            run = Path(str(rec.get("owner") or "?")).name
            out.append(f"stopped the server on port {port} (pid {rec['pid']}) that run {run} started: that "
                       f"`lab run` was killed before it could stop it")
    return out


def _backstop(run_dir: Path, before: dict[int, tuple[int, str]], keep: set[int]) -> list[str]:
    """Stop every server a notebook of this run started and left running (it failed, was interrupted, or
    forgot), except ports in `keep`; a server of another run or of the user is never touched."""
    from lab import serve
    stopped = []
    for port, (pid, owner) in _live_servers().items():
        if port in keep or before.get(port, (None,))[0] == pid or owner != str(run_dir):
            continue
        how = serve.release(port, quiet=True, started=True)  # handed over, not stopped, while another run uses it
        if how == "stopped":
            stopped.append(f"port {port} (pid {pid})")
        else:
            print(how, flush=True)
    return stopped


def _run_env(**env: str) -> Callable[[], None]:
    """Set what the notebooks' kernels inherit; returns the undo, so that a caller in the same process (a test,
    a script) is no longer taken for the run once it ended."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)

    def undo() -> None:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return undo


def _release_held() -> None:
    """At a run's end, let go of every server it holds: its own (stopped unless another run uses it), those
    handed over to it, and those it reused (it leaves their users)."""
    from lab import serve
    me = pidfile.me()
    for port, rec in pidfile.live_servers().items():
        if rec.get("owner_proc") == me or any(u.get("proc") == me for u in pidfile.live_users(rec)):
            how = serve.release(port, quiet=True, started=False)  # the run's, not this process's (in-process runs)
            if how != "stopped" and not how.startswith("left running"):
                print(how, flush=True)


def _new_run_dir(runs: Path, profile: str) -> Path:
    """runs/<UTC second>-<profile>, with -2, -3... when another run started in the same second."""
    runs.mkdir(parents=True, exist_ok=True)
    stamp = paths.utc_stamp()
    for n in range(1, 1000):
        d = runs / (f"{stamp}-{profile}" + (f"-{n}" if n > 1 else ""))
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise LabError(f"{runs}: 999 runs started in the same second; try again")


def _save(run_dir: Path, meta: dict[str, Any]) -> None:
    paths.atomic_write(run_dir / "run.json", json.dumps(meta, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def _servers_line(run_dir: Path, stopped: list[str]) -> str:
    """What `lab run` stopped, and which servers are still running (its own it could not stop, or others')."""
    parts = [f"stopped {len(stopped)} server(s) notebooks left running ({', '.join(stopped)})"] if stopped else []
    for port, (pid, owner) in _live_servers().items():
        how = "it could not stop" if owner == str(run_dir) else "it did not start"
        parts.append(f"a server {how} is still running on port {port} (pid {pid}): `lab serve stop --port {port}`")
    return "servers: " + ("; ".join(parts) if parts else "none left running")


def _last_started_cell(executed: Path) -> str:
    """'cell [N] `first line`' of the last cell papermill started in an executed notebook (the one a timeout
    stopped), from the copy papermill saves as each cell starts and ends."""
    try:
        cells = paths.parse_json(executed.read_text("utf-8")).get("cells", [])
    except (OSError, ValueError):
        return "a cell"
    started = [(i, c) for i, c in enumerate(cells)
               if c.get("cell_type") == "code" and (c.get("metadata", {}).get("papermill") or {}).get("start_time")]
    if not started:
        return "a cell"
    i, c = started[-1]
    return _label(c.get("execution_count") or i, "".join(c.get("source", "")))


class _Live:
    """The notebooks' printed output, passed on as it comes: progress of long cells (training steps, translation
    chunks, C->Rust rounds) reaches a headless `lab run` log too, not only the executed notebook at the end."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def flush(self) -> None:
        self.out.flush()


def cell_limit(prof: config.Profile, given: int | None) -> int:
    """Seconds one cell may run: --cell-timeout when given (0: no limit), else the profile's cell_timeout."""
    return prof.cell_timeout if given is None else given


def execute(nb: Path, out: Path, params: dict[str, Any], cell_timeout: int, kernels: Path) -> str | None:
    """Run one notebook with papermill into `out`; None when it passed, else one line saying why.

    A cell running longer than cell_timeout seconds (0: no limit) fails the notebook; nbclient then shuts
    its kernel down (and kills it after 5 s), so nothing of it is left."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    sockets = socket_prefix(kernels.parent, nb.stem)
    km = kernel_manager(kernels / f"{nb.stem}.log", sockets)
    try:
        pm.execute_notebook(str(nb), str(out), parameters=params, kernel_name="python3", language="python",
                            progress_bar=sys.stderr.isatty(), cwd=str(nb.parent), request_save_on_cell_execute=True,
                            stdout_file=_Live(sys.stdout),
                            execution_timeout=cell_timeout or None, kernel_manager_class=km)
        return None
    except KeyboardInterrupt:
        quiet_orphaned_cells()
        raise
    except pm.PapermillExecutionError as e:
        return f"{_cell_label(e)}: {e.ename}: {str(e.evalue)[:300]}"
    except CellTimeoutError:
        return (f"{_last_started_cell(out)} did not finish within {cell_timeout}s (--cell-timeout); its kernel "
                f"was stopped")
    except DeadKernelError as e:
        return f"{_last_started_cell(out)}: the kernel died ({str(e)[:200]})"
    except Exception as e:  # bad notebook JSON, a kernel that would not start...
        return f"{type(e).__name__}: {str(e)[:300]}"
    finally:
        release_sockets(sockets)


def quiet_orphaned_cells() -> None:
    """After an interrupt, nbclient's task for the running cell is left on the loop; when the kernel then answers
    with the cell's error, nobody reads it, and asyncio printed "Task exception was never retrieved" and a
    130-line traceback after lab run's own lines (a `timeout` of lab run during notebook 04's translation)."""
    from jupyter_core.utils import ensure_event_loop
    from nbclient.exceptions import CellExecutionError

    def handler(loop: Any, context: dict[str, Any]) -> None:
        if not isinstance(context.get("exception"), CellExecutionError):  # the run has said it was interrupted
            loop.default_exception_handler(context)
    ensure_event_loop().set_exception_handler(handler)


def _run_one(nb: Path, tag: str, run_dir: Path, meta: dict[str, Any], params: dict[str, Any], limit: int,
             keep_ports: set[int]) -> dict[str, Any]:
    """Execute one notebook of a run and record it in run.json; the backstop stops what it left running."""
    before = _live_servers()
    entry: dict[str, Any] = {"name": nb.stem, "status": "running"}
    meta["notebooks"].append(entry)
    _save(run_dir, meta)
    print(f"{tag} {nb.stem} ...", flush=True)
    t0 = time.time()
    # interactive=False: widget cells answer once as text instead of waiting for a click
    try:
        error = execute(nb, run_dir / nb.name, params, limit, run_dir / "kernels")
    finally:  # the runner's backstop: what the notebook started and left running is stopped
        left = _backstop(run_dir, before, keep_ports)
        if left:
            entry["stopped_servers"] = left
            print(f"{tag} {nb.stem} left a server running: stopped {', '.join(left)}", flush=True)
    entry["status"] = "failed" if error else "ok"
    if error:
        entry["error"] = error
    entry["duration_s"] = round(time.time() - t0, 1)
    _save(run_dir, meta)
    line = f"{tag} {nb.stem} {entry['status']} in {entry['duration_s']}s"
    print(line + (f": {entry['error']}" if entry.get("error") else ""), flush=True)
    return entry


def _reopen(resume: str | Path, runs_dir: Path, profile: str | None,
            params: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The run folder `resume` names (a path, or a run id under runs/) and its run.json, checked: it has ended
    (a killed run has), and profile and parameters are the run's own (a mix would be no one run)."""
    # absolute: papermill runs each notebook from notebooks/, where a relative run folder (`--resume runs/ID`)
    # sent the kernels' log and LAB_RUN_DIR to notebooks/runs/ID and left the socket folder unmade
    run_dir = (Path(resume) if Path(resume).is_dir() else runs_dir / str(resume)).resolve()
    try:
        meta = paths.parse_json((run_dir / "run.json").read_text("utf-8"))
        if not isinstance(meta, dict) or not isinstance(meta.get("notebooks"), list):
            raise ValueError("no notebook list in it")
    except FileNotFoundError:
        raise LabError(f"--resume {resume}: no run folder with a run.json there (nor in {runs_dir})") from None
    except (OSError, ValueError) as e:
        raise LabError(f"--resume {resume}: {run_dir / 'run.json'} is unreadable ({e})") from None
    owner = str(meta.get("owner_proc") or "")
    if not meta.get("ended") and not procs.gone(owner):
        raise LabError(f"--resume {resume}: that run is still going (pid {owner.split(':')[0] or '?'}); wait for "
                       f"it to end or stop it")
    if profile and profile != meta.get("profile"):
        raise LabError(f"--resume {resume}: that run used profile {meta.get('profile')!r}, not {profile!r}")
    if params and params != meta.get("parameters"):
        raise LabError(f"--resume {resume}: that run was made with parameters {meta.get('parameters')}; resuming "
                       f"with others would mix two runs in one (leave -p/-f out to reuse its own)")
    return run_dir, meta


def resumed(resume: str | Path, runs_dir: Path, names: list[str] | None, profile: str | None,
            params: dict[str, Any] | None, cell_timeout: int | None
            ) -> tuple[tuple[Path, dict[str, Any]], list[str] | None, str | None, dict[str, Any], int | None]:
    """(run folder, run.json) of the run `resume` names, then the notebooks, profile, parameters and cell bound
    it goes on with: its own (those given must agree, see _reopen; notebooks and --cell-timeout may differ)."""
    old = _reopen(resume, runs_dir, profile, dict(params or {}))
    meta = old[1]
    return (old, names or meta.get("requested"),  # the run's own notebooks, not all of them
            meta.get("profile"), dict(meta.get("parameters") or {}),
            meta.get("cell_timeout_s") if cell_timeout is None else cell_timeout)


def kept_notebooks(run_dir: Path, meta: dict[str, Any], nbs: list[Path]) -> set[str]:
    """The notebooks of `nbs` that passed in this run and whose executed copy is still there: a resume keeps them."""
    passed = {e.get("name") for e in meta["notebooks"] if e.get("status") == "ok"}
    return {nb.stem for nb in nbs if nb.stem in passed and (run_dir / nb.name).exists()}


def _open_run(old: tuple[Path, dict[str, Any]] | None, runs: Path, prof: config.Profile, params: dict[str, Any],
              limit: int, requested: list[str]) -> tuple[Path, dict[str, Any]]:
    """A new run folder with its run.json, or the resumed one's, now owned by this process."""
    from lab import doctor
    if old:
        run_dir, meta = old
        meta.update(ended=None, owner_proc=pidfile.me())
        meta.setdefault("resumed", []).append({"at": paths.utc_stamp(iso=True),
                                               "git_commit": doctor.environment().get("git_commit")})
    else:
        run_dir = _new_run_dir(runs, prof.name)
        meta = {"id": run_dir.name, "profile": prof.name, "model": prof.served_name, "requested": requested,
                "started": paths.utc_stamp(iso=True), "ended": None, "parameters": params,
                "cell_timeout_s": limit, "env": doctor.environment(), "notebooks": [],
                # this process, so the journal can tell a killed run from one still going
                "owner_proc": pidfile.me()}
    _save(run_dir, meta)
    return run_dir, meta


def run(names: list[str] | None = None, profile: str | None = None, params: dict[str, Any] | None = None,
        share_server: bool | None = None, fail_fast: bool = False, runs_dir: Path | None = None,
        build_journal: bool = True, cell_timeout: int | None = None,
        resume: str | Path | None = None) -> tuple[Path, bool]:
    """Execute notebooks headless; returns (run folder, all ok). The journal is rebuilt even on failure.

    cell_timeout: seconds one cell may run (None: the profile's, 0: no limit). resume: an earlier run's folder
    (or id): its notebooks that passed are kept, the others run again in it, where each stage resumes its own
    work (fine-tune checkpoints, translation cache, finished C -> Rust programs)."""
    from lab import serve

    runs = Path(runs_dir or paths.runs()).resolve()
    old = None
    if resume:
        old, names, profile, params, cell_timeout = resumed(resume, runs, names, profile, params, cell_timeout)
    prof = config.load(profile)
    nbs = resolve(names)
    if not nbs:
        raise LabError(f"no notebooks found in {notebook_dir()}")
    params = dict(params or {})
    declared = check_params(nbs, params)  # before anything is created or started
    limit = cell_limit(prof, cell_timeout)
    if limit < 0:
        raise LabError(f"--cell-timeout must be 0 (no limit) or a number of seconds, got {limit}")
    requested = [nb.stem if nb.parent == notebook_dir().resolve() else str(nb) for nb in nbs]
    run_dir, meta = _open_run(old, runs, prof, params, limit, requested)
    kept = kept_notebooks(run_dir, meta, nbs)  # none in a new run
    # On CPU one server serves every notebook (saves ~35 s start-up each); on a GPU each notebook
    # manages its own so transformers and vLLM never hold VRAM at the same time.
    if share_server is None:
        share_server = prof.device == "cpu" and any(nb.stem[:2] != "00" for nb in nbs if nb.stem not in kept)
    srv = None
    for line in _stop_abandoned():
        print(line, flush=True)
    restore_env = _run_env(LAB_RUN_DIR=str(run_dir), LAB_RUN_OWNER=meta["owner_proc"], LAB_PROFILE=prof.name,
                           **paths.kernel_env())
    try:
        if share_server:
            srv = serve.start(prof)
        todo = [(nb, notebook_params(prof, nb, declared[nb], params)) for nb in nbs]
        ok = _execute_all(todo, kept, run_dir, meta, limit, {srv.profile.port} if srv is not None else set(),
                          fail_fast)
    except KeyboardInterrupt:
        ok = False
        for e in meta["notebooks"]:
            if e["status"] == "running":
                e["status"] = "interrupted"
        print(f"interrupted: executed notebooks so far are kept in {run_dir}", flush=True)
    finally:
        _release_held()
        restore_env()
        _close(run_dir, meta, build_journal)
    return run_dir, ok


def _execute_all(todo: list[tuple[Path, dict[str, Any]]], kept: set[str], run_dir: Path, meta: dict[str, Any],
                 limit: int, keep_ports: set[int], fail_fast: bool) -> bool:
    """Each notebook with its parameters in turn, those a resumed run keeps skipped; False when one failed."""
    ok = True
    for i, (nb, nb_params) in enumerate(todo, 1):
        tag = f"[{i}/{len(todo)}]"
        if nb.stem in kept:
            print(f"{tag} {nb.stem} ok (kept from the run being resumed)", flush=True)
            continue
        meta["notebooks"] = [e for e in meta["notebooks"] if e.get("name") != nb.stem]  # a resumed one's last try
        if _run_one(nb, tag, run_dir, meta, nb_params, limit, keep_ports)["status"] == "failed":
            ok = False
            if fail_fast:
                break
    return ok


def _close(run_dir: Path, meta: dict[str, Any], build_journal: bool) -> None:
    """The run's end: what was stopped and still runs, `ended` in run.json, the journal rebuilt."""
    from lab import journal
    stopped = [x for e in meta["notebooks"] for x in e.get("stopped_servers", [])]
    print(_servers_line(run_dir, stopped), flush=True)
    meta["ended"] = paths.utc_stamp(iso=True)
    _save(run_dir, meta)
    if build_journal:
        jdir = journal.build(run_dir.parent)
        print(f"journal rebuilt: {jdir / 'README.md'}", flush=True)
