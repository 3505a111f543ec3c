"""Headless runs are bounded: a stuck cell fails its notebook, its kernel is stopped, runs share no sockets."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from helpers import ROOT

from lab import runner


def _notebook(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("profile = 'tiny'  # profile")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body), nbformat.v4.new_code_cell("print('after')")]
    nbformat.write(nb, path)
    return path


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_stuck_cell_fails_its_notebook_its_kernel_is_stopped_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_JOURNAL", str(tmp_path / "journal"))
    stuck = _notebook(tmp_path / "90_stuck.ipynb",
                      "import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))\ntime.sleep(600)")
    fine = _notebook(tmp_path / "91_fine.ipynb", "x = 1")
    t0 = time.time()
    run_dir, ok = runner.run([str(stuck), str(fine)], "tiny", share_server=False, runs_dir=tmp_path / "runs",
                             cell_timeout=3, build_journal=False)
    assert time.time() - t0 < 120 and not ok
    meta = json.loads((run_dir / "run.json").read_text())
    assert [n["status"] for n in meta["notebooks"]] == ["failed", "ok"] and meta["cell_timeout_s"] == 3
    err = meta["notebooks"][0]["error"]
    assert "cell [3] `import os, time`" in err and "did not finish within 3s" in err, err
    pid = int((tmp_path / "kernel.pid").read_text())
    deadline = time.time() + 15
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "the stuck notebook's kernel still runs"
    # --fail-fast stops at the stuck notebook
    run_dir, ok = runner.run([str(stuck), str(fine)], "tiny", share_server=False, runs_dir=tmp_path / "runs",
                             cell_timeout=3, fail_fast=True, build_journal=False)
    assert [n["status"] for n in json.loads((run_dir / "run.json").read_text())["notebooks"]] == ["failed"]


def test_two_runs_from_one_folder_both_finish_with_sockets_in_their_own_run_folders(tmp_path):
    nb = _notebook(tmp_path / "92_sockets.ipynb",
                   "import json\nfrom ipykernel import get_connection_file, get_connection_info\n"
                   "from lab import journal\njournal.record('ip', json.loads(get_connection_info())['ip'])\n"
                   "journal.record('file', get_connection_file())")
    short = Path(tempfile.mkdtemp(prefix="lr-"))  # pytest's own folders are too deep for a socket address
    env = {**os.environ, "LAB_RUNS": str(short / "runs"), "LAB_JOURNAL": str(tmp_path / "journal")}
    cmd = [sys.executable, "-m", "lab.cli", "run", str(nb), "--profile", "tiny", "--no-share-server",
           "--cell-timeout", "120"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = sorted((short / "runs").iterdir())
    assert len(runs) == 2
    from lab import journal
    for d in runs:
        ip, file = (r["value"] for r in journal.records_of(d / nb.name))
        assert ip == str((d / "kernels" / nb.stem).resolve()), ip  # absolute, inside this run's folder
        assert file == f"{ip}.json", file  # its connection file (the kernel's key) too, never /tmp/tmpXXXX.json
        assert not list((d / "kernels").glob(f"{nb.stem}-[0-9]"))  # the kernel's sockets are removed after
        assert not Path(file).exists()  # and so is the connection file
    assert not list(ROOT.glob("kernel-ipc-*")) and not list((ROOT / "notebooks").glob("kernel-ipc-*"))
    shutil.rmtree(short)


def test_cli_cell_timeout_option_and_profile_default():
    from lab import cli, config
    a = cli.parser().parse_args(["run", "01", "--cell-timeout", "7"])
    assert a.cell_timeout == 7
    assert cli.parser().parse_args(["run", "01"]).cell_timeout is None
    assert config.load("tiny").cell_timeout == 900 and config.load("smollm2-135m").cell_timeout == 1800


def test_sigterm_stops_the_run_its_kernel_and_keeps_what_ran(tmp_path):
    """`timeout lab run ...` or a CI cancel: SIGTERM takes the Ctrl-C path (Python's default left the kernel)."""
    import signal
    nb = _notebook(tmp_path / "93_term.ipynb",
                   f"import os, time\nopen({str(tmp_path / 'kernel.pid')!r}, 'w').write(str(os.getpid()))\n"
                   "time.sleep(600)")
    short = Path(tempfile.mkdtemp(prefix="lr-"))
    env = {**os.environ, "LAB_RUNS": str(short / "runs"), "LAB_JOURNAL": str(tmp_path / "journal")}
    p = subprocess.Popen([sys.executable, "-m", "lab.cli", "run", str(nb), "--profile", "tiny", "--no-share-server"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "kernel.pid").exists() and time.time() < deadline:
            time.sleep(0.2)
        pid = int((tmp_path / "kernel.pid").read_text())
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
        assert p.returncode != 0 and "interrupted" in out + err and "Traceback" not in err, (out, err)
        deadline = time.time() + 15
        while _alive(pid) and time.time() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), "the kernel outlived a SIGTERM of lab run"
        run_dir = next((short / "runs").iterdir())
        assert [n["status"] for n in json.loads((run_dir / "run.json").read_text())["notebooks"]] == ["interrupted"]
    finally:
        p.kill()
        shutil.rmtree(short)


def test_an_interrupted_cell_that_answers_later_prints_nothing_at_exit(caplog):
    """`timeout lab run` during notebook 04: lab run said "interrupted", then asyncio printed "Task exception was
    never retrieved" and nbclient's 130-line CellExecutionError, for the cell task the interrupt left behind."""
    import asyncio
    import gc

    from jupyter_core.utils import ensure_event_loop
    from nbclient.exceptions import CellExecutionError

    from lab import runner
    loop = ensure_event_loop()  # the loop papermill's cells run on in this thread

    async def cell(error: Exception) -> None:
        raise error

    def orphan(error: Exception) -> None:  # a task that fails with nobody awaiting it, then is collected
        task = loop.create_task(cell(error))
        loop.run_until_complete(asyncio.sleep(0.01))
        assert task.done()
        del task
        gc.collect()
    try:
        runner.quiet_orphaned_cells()
        with caplog.at_level("ERROR", logger="asyncio"):
            orphan(CellExecutionError("traceback of the interrupted cell", "LabError", "interrupted"))
            assert "never retrieved" not in caplog.text
            orphan(ValueError("a real bug"))  # anything else is still reported
            assert "never retrieved" in caplog.text and "a real bug" in caplog.text
    finally:
        loop.set_exception_handler(None)
