"""lab.journal: rebuilt byte-identical from what runs recorded; a killed run's notebooks and a malformed record cost
only themselves."""

import json
import os
import shutil

import nbformat
from helpers import tiny_notebook

from lab import journal, runner


def test_journal_rebuild_is_byte_identical_and_keeps_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_JOURNAL", str(tmp_path / "journal"))
    nb = tiny_notebook(tmp_path / "90_good.ipynb", False)
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


def test_a_notebook_cut_short_costs_only_its_own_records(tmp_path, capsys):
    """papermill rewrites an executed notebook in place after each cell: a kill mid-write left it cut short, and
    the whole run lost its entry under a warning that blamed run.json."""
    run = tmp_path / "runs" / "20260108T000000Z-tiny"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"id": run.name, "profile": "tiny", "model": "m", "started": "s",
                                              "ended": "e", "notebooks": [{"name": "01_serving", "status": "ok"},
                                                                          {"name": "02_a|b", "status": "ok"}]}))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "display_data", data={journal.MIME: {"key": "kept", "value": 7}})])]
    nbformat.write(nb, run / "01_serving.ipynb")
    (run / "02_a_b.ipynb").write_text(nbformat.writes(nb)[:40])
    journal.build(tmp_path / "runs", tmp_path / "j")
    page = (tmp_path / "j" / "runs" / run.name / "README.md").read_text()
    assert "| kept | 7 |" in page and "| 02_a\\|b | ok |" in page
    err = capsys.readouterr().err
    assert f"skipped {run / '02_a_b.ipynb'}: not valid JSON" in err and "run.json" not in err


def test_model_text_in_a_journal_table_or_code_span_stays_in_its_cell():
    """A side-by-side row holds what a model wrote: a bare CR ended the Markdown row, a backtick the code span."""
    from lab.journal import _code, _table
    md = _table([{"source|col": "a\rb|c", "zh": "一\r\n二\n三"}])
    assert md.splitlines() == ["| source\\|col | zh |", "|---|---|", "| a b\\|c | 一 二 三 |"]
    assert _code({"k": "a`b"}) == '`` {"k": "a`b"} ``' and _code("x") == "`x`"
