"""lab.runner: headless runs with papermill; a failing cell is named, resumes, the kernels' folders, servers of
killed runs."""

import json
import os

import nbformat
import pytest
from helpers import ROOT, lab, tiny_notebook

from lab import LabError, journal, pidfile, runner


def test_resolve_names():
    assert runner.resolve(["00"])[0].name == "00_environment.ipynb"
    assert runner.resolve(["01_serving.ipynb"])[0].name == "01_serving.ipynb"
    with pytest.raises(LabError, match="no notebook '99_nope'; choose from: 00_environment"):
        runner.resolve(["99_nope"])


def test_failing_cell_is_named_output_kept_and_journal_built(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_JOURNAL", str(tmp_path / "journal"))
    good, bad = tiny_notebook(tmp_path / "90_good.ipynb", False), tiny_notebook(tmp_path / "91_bad.ipynb", True)
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
    good = tiny_notebook(tmp_path / "90_good.ipynb", False)
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
    flaky = tiny_notebook(tmp_path / "nbs" / "91_flaky.ipynb", False)
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
    nb = tiny_notebook(tmp_path / "nbs" / "92_where.ipynb", False)
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
