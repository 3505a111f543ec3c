"""lab.c2rust.cli: `check` as a person reads it (summary, the diff of each failing case) and as a script reads it
(--json: stdout is the report alone), on a real program in the sandbox; `batch`'s summary and exit status, and
its end at a SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time

from helpers import ROOT, lab, openai_fake

from lab import cli
from lab.c2rust import cli as c2rust_cli

PROG = ROOT / "data" / "c_to_rust" / "str_to_int"


def test_check_shows_the_failing_cases_diff_and_json_is_the_report_alone(tmp_path):
    wrong = tmp_path / "wrong.rs"
    good = (PROG / "reference.rs").read_text()
    assert 'println!("{}", parse(a));' in good
    wrong.write_text(good.replace('println!("{}", parse(a));', 'println!("> 0"); println!("{}", parse(a));'))
    r = lab("c2rust", "check", str(PROG / "prog.c"), str(PROG / "tests.json"), str(wrong), timeout=300)
    assert r.returncode == 1 and r.stdout.startswith("sandbox: bubblewrap"), r.stdout + r.stderr
    assert "C reference: " in r.stdout and "\nRust: " in r.stdout and "--- case 0 (wrong_output" in r.stdout
    assert "+> 0" in r.stdout  # the diff shows the extra line
    j = lab("c2rust", "check", str(PROG / "prog.c"), str(PROG / "tests.json"), str(PROG / "reference.rs"),
            "--json", timeout=300)
    rep = json.loads(j.stdout)  # nothing but the report on stdout
    assert j.returncode == 0 and rep["compiled"] and rep["passed"] == rep["total"] >= 1
    assert j.stderr.startswith("sandbox: bubblewrap")


def test_batch_prints_its_summary_and_fails_unless_every_program_passes(monkeypatch, tmp_path, capsys):
    res = {"rows": [{"program": "a", "ok": True, "compiled": True, "passed": 3, "total": 3},
                    {"program": "b", "ok": False, "compiled": False, "passed": 0, "total": 2}],
           "success_rate": 0.5, "compiled_rate": 0.5, "mean_rounds": 2.5, "tokens": 1234}
    seen = {}

    def fake_batch(folder, client, settings, out):
        seen.update(folder=folder, settings=settings, out=out)
        return res
    monkeypatch.setattr(c2rust_cli.loop, "batch", fake_batch)
    monkeypatch.setattr(c2rust_cli.options, "client", lambda a: None)
    args = ["c2rust", "batch", "progs", "--rounds", "3", "--candidates", "2", "-o", str(tmp_path / "o")]
    assert cli.main(args) == 1
    out = capsys.readouterr().out
    assert f"success 50%, compiled 50%, mean rounds 2.5, tokens 1234; reports in {tmp_path / 'o'}" in out
    assert (seen["settings"].rounds, seen["settings"].candidates, seen["folder"]) == (3, 2, "progs")
    res["success_rate"] = 1.0
    assert cli.main(args) == 0


def test_what_a_program_prints_cannot_drive_the_terminal(tmp_path):
    """A model-written program's output reaches the terminal in check's diff: ESC ] 0 ; ... BEL retitled it and
    ESC [ 2 J cleared it. Shown escaped instead."""
    rs = tmp_path / "esc.rs"
    rs.write_text('fn main() { println!("\\x1b]0;pwned\\x07\\x1b[2J42"); }\n')
    r = lab("c2rust", "check", str(PROG / "prog.c"), str(PROG / "tests.json"), str(rs), timeout=300)
    assert r.returncode == 1 and "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "+\\x1b]0;pwned\\x07\\x1b[2J42" in r.stdout


def test_sigterm_ends_a_batch_at_once_with_replies_in_flight(tmp_path):
    """Two programs await replies that never come: SIGTERM ends the command within seconds, one line, exit 143,
    and no program starts after it (its thread pool waited for every reply, then ran the rest of the batch)."""
    fake = openai_fake(lambda body: (200, None, "stop"))  # None: the server never answers
    p = subprocess.Popen([sys.executable, "-m", "lab.cli", "c2rust", "batch", str(ROOT / "data" / "c_to_rust"),
                          "--base-url", fake.url, "--concurrency", "2", "--rounds", "1", "--out", str(tmp_path / "o")],
                         cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        chats = lambda: [b for q, b in fake.requests if q.endswith("/chat/completions")]  # noqa: E731
        deadline = time.time() + 120
        while len(chats()) < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert len(chats()) == 2, p.stderr.read() if p.poll() is not None else "no two requests in 120 s"
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        assert time.monotonic() - t0 < 15 and p.returncode == 128 + signal.SIGTERM, (out, err)
        assert "interrupted (SIGTERM)" in err and "Traceback" not in err, err
        time.sleep(1)
        assert len(chats()) == 2  # nothing was asked after the signal
    finally:
        p.kill()
        fake.close()
