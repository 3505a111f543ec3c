"""lab.c2rust.tasks: the project's programs and SACToR's task formats load, with both feeds and relative samples."""

import json

import pytest
from helpers import ROOT

from lab import LabError, c2rust

DATA = ROOT / "data" / "c_to_rust"
PROGRAMS = sorted(d.name for d in DATA.iterdir() if (d / "prog.c").exists())


def _task(name):
    return DATA / name / "prog.c", DATA / name / "tests.json"


def test_there_are_eight_programs_with_tests():
    assert len(PROGRAMS) >= 8
    for name in PROGRAMS:
        assert len(c2rust.load_task(_task(name)[1]).cases) >= 3


SACTOR = ROOT / "data" / "c_to_rust_sactor"


def test_sactor_tasks_load_with_both_feeds_and_relative_samples(tmp_path):
    fib = c2rust.load_task(SACTOR / "fib" / "test_task" / "test_task.json")
    assert fib.format == "sactor-task" and len(fib.cases) == 5
    assert fib.cases[1].args == ["10"] and fib.cases[3].args == [] and fib.cases[1].stdin == ""
    stats = c2rust.load_task(SACTOR / "stats" / "test_task" / "test_task.json")
    assert stats.cases[1].args == [] and stats.cases[1].stdin == "  -5\n7   \n 0 \n"  # input + "\n", as SACToR
    bare = c2rust.load_task(SACTOR / "stats" / "test_task" / "test_samples.json", feed="stdin")
    assert bare.format == "sactor-samples" and [c.stdin for c in bare.cases] == [c.stdin for c in stats.cases]
    assert c2rust.load_task(SACTOR / "fib" / "test_task" / "test_samples.json").cases[2].args == ["92"]
    assert c2rust.normalize(" a \r\nb  \n") == "a\nb"  # lines stripped, no trailing newline
    bad = tmp_path / "test_task.json"
    for text, msg in ((json.dumps([{"command": "sactor run-tests --type bin ./s.json %t 0", "test_id": 0}]),
                       r"s\.json does not exist"),
                      (json.dumps([{"command": "sactor translate x.c", "test_id": 0}]), "only `sactor run-tests`"),
                      (json.dumps([{"command": "sactor run-tests --type lib ./s.json %t 0"}]), "only --type bin"),
                      (json.dumps([{"command": "sactor run-tests --type bin ./s.json %t 3"}]), "out of range"),
                      (json.dumps([{"command": "sactor run-tests --type bin /etc/passwd %t 0"}]),
                       "the samples file /etc/passwd is outside the program folder"),
                      (json.dumps([{"command": "sactor run-tests --type bin ../../../../../../etc/hosts %t 0"}]),
                       "outside the program folder")):
        (tmp_path / "s.json").write_text('[{"input": "1", "output": "1"}]')
        if "does not exist" in msg:
            (tmp_path / "s.json").unlink()
        bad.write_text(text)
        with pytest.raises(LabError, match=msg):
            c2rust.load_task(bad)
