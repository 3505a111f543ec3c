"""Headless runs with papermill and the journal rebuilt from them."""

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from helpers import ROOT, lab

from lab import LabError, journal, pidfile, runner


def test_resolve_names():
    assert runner.resolve(["00"])[0].name == "00_environment.ipynb"
    assert runner.resolve(["01_serving.ipynb"])[0].name == "01_serving.ipynb"
    with pytest.raises(LabError, match="no notebook '99_nope'; choose from: 00_environment"):
        runner.resolve(["99_nope"])


def _notebook(path: Path, fail: bool) -> Path:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("profile = 'tiny'  # profile\nvalue = 2  # a number")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), p,
                nbformat.v4.new_code_cell("from lab import journal\njournal.record('answer', value * 21)"),
                nbformat.v4.new_code_cell("raise ValueError('boom on purpose')" if fail else "print('fine')")]
    nbformat.write(nb, path)
    return path


def test_failing_cell_is_named_output_kept_and_journal_built(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_JOURNAL", str(tmp_path / "journal"))
    good, bad = _notebook(tmp_path / "90_good.ipynb", False), _notebook(tmp_path / "91_bad.ipynb", True)
    run_dir, ok = runner.run([str(good), str(bad)], "tiny", {"value": 5}, share_server=False,
                             runs_dir=tmp_path / "runs")
    assert not ok
    meta = json.loads((run_dir / "run.json").read_text())
    assert [n["status"] for n in meta["notebooks"]] == ["ok", "failed"]
    err = meta["notebooks"][1]["error"]
    assert "cell [4] `raise ValueError('boom on purpose')`" in err and "ValueError: boom on purpose" in err
    assert (run_dir / "91_bad.ipynb").exists()  # partial output kept
    assert journal.records_of(run_dir / "90_good.ipynb")[0]["value"] == 105  # -p value reached the notebook
    entry = (tmp_path / "journal" / "runs" / run_dir.name / "README.md").read_text()
    assert "| 91_bad | failed |" in entry and "boom on purpose" in entry and "| answer | 105 |" in entry


def test_resume_keeps_the_notebooks_that_passed_and_reruns_the_rest_in_the_same_run(tmp_path, monkeypatch, capsys):
    """`lab run --resume RUN` after a failure (or a kill): the passed notebook is not executed again, the failed
    one runs in the same folder with the run's own parameters, and the journal entry shows the whole run."""
    monkeypatch.setenv("LAB_JOURNAL", str(tmp_path / "journal"))
    good = _notebook(tmp_path / "90_good.ipynb", False)
    flaky = tmp_path / "91_flaky.ipynb"
    nb = nbformat.read(good, as_version=4)
    nb.cells[-1].source = f"assert os.path.exists({str(tmp_path / 'flag')!r}), 'no flag yet'"
    nb.cells.insert(2, nbformat.v4.new_code_cell("import os"))
    nbformat.write(nb, flaky)
    args = ([str(good), str(flaky)], "tiny")
    run_dir, ok = runner.run(*args, {"value": 5}, share_server=False, runs_dir=tmp_path / "runs")
    assert not ok
    first = (run_dir / "90_good.ipynb").stat().st_mtime_ns
    with pytest.raises(LabError, match=rf"--resume {run_dir}: that run was made with parameters \{{'value': 5\}}"):
        runner.run(*args, {"value": 6}, share_server=False, runs_dir=tmp_path / "runs", resume=run_dir)
    with pytest.raises(LabError, match="that run used profile 'tiny', not 'smollm2-135m'"):
        runner.run(args[0], "smollm2-135m", share_server=False, runs_dir=tmp_path / "runs", resume=run_dir)
    with pytest.raises(LabError, match="--resume nope: no run folder with a run.json there"):
        runner.run(*args, share_server=False, runs_dir=tmp_path / "runs", resume="nope")
    (tmp_path / "flag").touch()
    capsys.readouterr()
    again, ok = runner.run(None, None, None, share_server=False, runs_dir=tmp_path / "runs",
                           resume=run_dir.name)  # by id; notebooks, profile and parameters are the run's
    assert ok and again == run_dir and list((tmp_path / "runs").iterdir()) == [run_dir]
    assert "[1/2] 90_good ok (kept from the run being resumed)" in capsys.readouterr().out
    assert (run_dir / "90_good.ipynb").stat().st_mtime_ns == first  # not executed again
    meta = json.loads((run_dir / "run.json").read_text())
    assert [(n["name"], n["status"]) for n in meta["notebooks"]] == [("90_good", "ok"), ("91_flaky", "ok")]
    assert meta["parameters"] == {"value": 5} and len(meta["resumed"]) == 1 and meta["ended"]
    assert journal.records_of(run_dir / "91_flaky.ipynb")[0]["value"] == 105  # the run's -p value again
    entry = (tmp_path / "journal" / "runs" / run_dir.name / "README.md").read_text()
    assert "| 91_flaky | ok |" in entry and "| 90_good | ok |" in entry
    meta.update(ended=None, owner_proc=pidfile.me())  # as a run still going records itself
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(LabError, match=f"that run is still going \\(pid {os.getpid()}\\)"):
        runner.run(*args, share_server=False, runs_dir=tmp_path / "runs", resume=run_dir)


def test_resume_by_a_relative_path_runs_in_that_folder(tmp_path, monkeypatch):
    """`lab run --resume runs/ID`, typed from the checkout: papermill runs notebooks from their own folder, where
    the relative path named another (the kernel could not bind its sockets: "Kernel died")."""
    monkeypatch.setenv("LAB_JOURNAL", str(tmp_path / "journal"))
    (tmp_path / "nbs").mkdir()
    flaky = _notebook(tmp_path / "nbs" / "91_flaky.ipynb", False)
    nb = nbformat.read(flaky, as_version=4)
    nb.cells[-1].source = (f"import os\njournal.record('run_dir', os.environ['LAB_RUN_DIR'])\n"
                           f"assert os.path.exists({str(tmp_path / 'flag')!r}), 'no flag yet'")
    nbformat.write(nb, flaky)
    run_dir, ok = runner.run([str(flaky)], "tiny", share_server=False, runs_dir=tmp_path / "runs")
    assert not ok
    (tmp_path / "flag").touch()
    monkeypatch.chdir(tmp_path)
    again, ok = runner.run(None, None, None, share_server=False, runs_dir=tmp_path / "runs",
                           resume=f"runs/{run_dir.name}")
    assert ok and again == run_dir
    assert journal.records_of(run_dir / "91_flaky.ipynb")[1]["value"] == str(run_dir)
    assert sorted(p.name for p in (tmp_path / "nbs").iterdir()) == ["91_flaky.ipynb"]  # nothing made beside it


def test_kernels_see_the_working_folders_profiles_and_folders(tmp_path, monkeypatch):
    """A profile of ./lab.toml and a relative LAB_LOGS mean in a notebook what they mean where `lab run` was
    typed (the kernel runs from the notebook's folder: "unknown profile", and logs/ beside the notebook)."""
    monkeypatch.setenv("LAB_JOURNAL", str(tmp_path / "journal"))
    monkeypatch.delenv("LAB_PROFILES", raising=False)
    (tmp_path / "nbs").mkdir()
    (tmp_path / "work").mkdir()
    tiny = (ROOT / "lab" / "profiles.toml").read_text().split("[smollm2-135m]")[0]
    (tmp_path / "work" / "lab.toml").write_text(tiny.replace("[tiny", "[mine").replace("port = 8011", "port = 8029"))
    nb = _notebook(tmp_path / "nbs" / "92_where.ipynb", False)
    book = nbformat.read(nb, as_version=4)
    book.cells[-1].source = ("from lab import config, paths\njournal.record('profile', config.load('mine').name)\n"
                             "journal.record('logs', str(paths.logs()))")
    nbformat.write(book, nb)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("LAB_LOGS", "mylogs")
    run_dir, ok = runner.run([str(nb)], "mine", share_server=False, runs_dir=tmp_path / "runs")
    rec = {r["key"]: r["value"] for r in journal.records_of(run_dir / "92_where.ipynb")}
    assert ok and rec["profile"] == "mine" and rec["logs"] == str(tmp_path / "work" / "mylogs")
    assert "LAB_RUN_CWD" not in os.environ  # the run's settings are undone when it ends


def test_journal_rebuild_is_byte_identical_and_keeps_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_JOURNAL", str(tmp_path / "journal"))
    nb = _notebook(tmp_path / "90_good.ipynb", False)
    runs = tmp_path / "runs"
    run_dir, ok = runner.run([str(nb)], "tiny", share_server=False, runs_dir=runs)
    assert ok
    jdir = tmp_path / "journal"

    def snapshot():
        return {p.relative_to(jdir): p.read_bytes() for p in sorted(jdir.rglob("*")) if p.is_file()}
    first = snapshot()
    journal.build(runs, jdir)
    assert snapshot() == first
    shutil.rmtree(runs)  # a fresh clone has no runs/: entries must survive a rebuild
    journal.build(runs, jdir)
    assert snapshot() == first
    assert f"[{run_dir.name}]" in (jdir / "README.md").read_text()


def test_figures_reach_the_journal(tmp_path):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("profile = 'tiny'  # p")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nfrom lab import journal\n"
        "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\njournal.record_figure('curve', fig)")]
    nbformat.write(nb, tmp_path / "92_fig.ipynb")
    run_dir, ok = runner.run([str(tmp_path / "92_fig.ipynb")], "tiny", share_server=False,
                             runs_dir=tmp_path / "runs", build_journal=False)
    entry = journal.write_entry(run_dir, tmp_path / "j")
    png = entry / "figures" / "92_fig-curve.png"
    assert ok and png.read_bytes()[:4] == b"\x89PNG"
    assert "![curve](figures/92_fig-curve.png)" in (entry / "README.md").read_text()


@pytest.mark.server
def test_lab_run_environment_notebook_end_to_end(tiny_server, tmp_path):
    r = lab("run", "00", env={"LAB_RUNS": str(tmp_path / "runs"), "LAB_JOURNAL": str(tmp_path / "j")})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[1/1] 00_environment ok" in r.stdout
    entry = next((tmp_path / "j" / "runs").glob("*-tiny")) / "entry.json"
    recs = {x["key"]: x["value"] for x in json.loads(entry.read_text())["records"]["00_environment"]}
    assert recs["failed_checks"] == 0 and recs["server_running"] is True
    assert os.environ.get("LAB_API_KEY") is None
    assert ROOT.joinpath("journal").resolve() != (tmp_path / "j").resolve()


@pytest.mark.server
def test_a_failing_notebook_leaves_no_server_running(tmp_path):
    """Notebook 01 starts its own server (--no-share-server) and fails after it is up: the runner stops it."""
    from helpers import free_port

    from lab import serve
    port = free_port()
    env = {"LAB_RUNS": str(tmp_path / "runs"), "LAB_JOURNAL": str(tmp_path / "j"), "LAB_PORT": str(port)}
    r = lab("run", "01", "--no-share-server", "-p", "max_tokens=100000", env=env)  # over the context: a 400
    assert r.returncode == 1 and "01_serving failed" in r.stdout and "cell [" in r.stdout
    assert "01_serving left a server running: stopped port" in r.stdout and "servers: stopped 1" in r.stdout
    rec = json.loads((next((tmp_path / "runs").glob("*-tiny")) / "run.json").read_text())
    assert rec["notebooks"][0]["stopped_servers"]
    assert serve.read_pidfile(port) is None and not serve.port_open("127.0.0.1", port)
    # (the session's end checks that no vLLM process, EngineCore included, is left anywhere)


def test_servers_of_a_killed_run_are_stopped_by_the_next_run(tmp_path):
    """A SIGKILLed `lab run` cannot stop its servers: the next run does, but never a live run's or a hand-started
    server."""
    import subprocess
    import sys

    from helpers import free_port

    from lab import paths, procs, serve
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = f"{os.getpid()}:{procs.start_ticks(os.getpid())}"
    started = {}
    for who, owner_proc in (("killed", f"{gone.pid}:1"), ("live", me), ("by hand", "")):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        port = free_port()
        paths.atomic_write(paths.logs() / f"vllm-{port}.json", json.dumps(
            {"pid": p.pid, "pgid": p.pid, "start_ticks": procs.start_ticks(p.pid), "port": port, "log": "x",
             "owner": str(tmp_path / "runs" / who), "owner_proc": owner_proc, "started": 0}))
        started[who] = (port, p)
    try:
        lines = runner._stop_abandoned()
        port, p = started["killed"]
        assert lines == [f"stopped the server on port {port} (pid {p.pid}) that run killed started: that `lab run` "
                         f"was killed before it could stop it"]
        assert not procs.group_pids(p.pid) and serve.read_pidfile(port) is None
        assert all(serve.read_pidfile(started[w][0]) for w in ("live", "by hand"))
    finally:
        for port, _p in started.values():
            serve.stop(port, quiet=True)


def test_a_killed_runs_finished_notebooks_reach_the_journal(tmp_path):
    """A SIGKILLed `lab run` never writes "ended": its finished notebooks are kept, the one in flight is named;
    a run still going is left out."""
    import subprocess
    import sys

    from lab import procs
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for name, owner in (("20260105T000000Z-tiny", f"{gone.pid}:1"),
                        ("20260106T000000Z-tiny", f"{os.getpid()}:{procs.start_ticks(os.getpid())}")):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "run.json").write_text(json.dumps(
            {"id": name, "profile": "tiny", "model": "m", "started": "s", "ended": None, "owner_proc": owner,
             "notebooks": [{"name": "01_serving", "status": "ok", "duration_s": 5},
                           {"name": "02_transformers_vs_vllm", "status": "running"}]}))
    killed = journal.write_entry(tmp_path / "runs" / "20260105T000000Z-tiny", tmp_path / "j")
    entry = json.loads((killed / "entry.json").read_text())
    assert entry["ended"] == "killed" and [n["status"] for n in entry["notebooks"]] == ["ok", "killed"]
    assert journal.write_entry(tmp_path / "runs" / "20260106T000000Z-tiny", tmp_path / "j") is None


def test_a_malformed_record_or_figure_costs_only_itself(tmp_path, capsys):
    """A hand-edited executed notebook (a record without a name, a table of mixed rows, a figure that is not
    base64) skipped the whole run, after its entry.json was written: the index linked a page that was missing."""
    run = tmp_path / "runs" / "20260107T000000Z-tiny"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"id": run.name, "profile": "tiny", "model": "m", "started": "s",
                                              "ended": "e", "notebooks": [{"name": "01_serving", "status": "ok"}]}))
    nb = nbformat.v4.new_notebook()
    outs = [{"name": "no key"}, {"key": "rows", "value": [{"a": 1}, 2], "columns": "a"},
            {"key": "fig", "figure": True}, {"key": "kept", "value": 7}]
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "display_data", data={journal.MIME: o, **({"image/png": "not base64!"} if o.get("figure") else {})})
        for o in outs])]
    nbformat.write(nb, run / "01_serving.ipynb")
    entry = journal.write_entry(run, tmp_path / "j")
    page = (entry / "README.md").read_text()
    assert "| kept | 7 |" in page and "**rows**" in page and "fig" not in page
    err = capsys.readouterr().err
    assert "a record without a name is left out" in err and "figure 'fig' is not base64 PNG" in err


def test_the_backstop_stops_only_this_runs_servers(tmp_path):
    """Two `lab run`s side by side: each stops what its own notebooks left, never the other's servers."""
    import subprocess
    import sys

    from helpers import free_port

    from lab import paths, procs, serve
    mine, theirs = tmp_path / "runs" / "mine", tmp_path / "runs" / "theirs"
    started = {}
    for owner in (mine, theirs):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        port = free_port()
        paths.logs().mkdir(parents=True, exist_ok=True)
        (paths.logs() / f"vllm-{port}.json").write_text(json.dumps(
            {"pid": p.pid, "pgid": p.pid, "start_ticks": procs.start_ticks(p.pid), "port": port, "owner": str(owner),
             "log": str(tmp_path / "x.log"), "started": 0}))
        started[owner] = (port, p)
    try:
        stopped = runner._backstop(mine, {}, set())
        assert stopped == [f"port {started[mine][0]} (pid {started[mine][1].pid})"]
        assert serve.read_pidfile(started[theirs][0]) and not procs.group_pids(started[mine][1].pid)
        line = runner._servers_line(mine, stopped)
        assert "stopped 1 server(s)" in line and f"a server it did not start is still running on port " \
            f"{started[theirs][0]}" in line
    finally:
        for port, p in started.values():
            serve.stop(port, quiet=True)
            p.wait()


def test_model_text_in_a_journal_table_or_code_span_stays_in_its_cell():
    """A side-by-side row holds what a model wrote: a bare CR ended the Markdown row, a backtick the code span."""
    from lab.journal import _code, _table
    md = _table([{"source|col": "a\rb|c", "zh": "一\r\n二\n三"}])
    assert md.splitlines() == ["| source\\|col | zh |", "|---|---|", "| a b\\|c | 一 二 三 |"]
    assert _code({"k": "a`b"}) == '`` {"k": "a`b"} ``' and _code("x") == "`x`"
