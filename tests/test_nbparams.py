"""lab.nbparams: -p/-f parsing, declared parameters and defaults, values checked by kind."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import lab

from lab import LabError, nbparams, paths, runner


def test_parse_param():
    assert nbparams.parse_param("n=3") == ("n", 3)
    assert nbparams.parse_param("name=abc") == ("name", "abc")
    assert nbparams.parse_param("xs=[1, 2]") == ("xs", [1, 2])
    for bad in ("noequals", "1x=2", "a b=1", "x=[1,"):
        with pytest.raises(LabError, match="malformed -p"):
            nbparams.parse_param(bad)


def test_a_profile_given_as_a_parameter_is_refused_for_the_option():
    """-p profile=X gave the notebooks X while the run's server, folder and journal were the --profile's."""
    with pytest.raises(LabError, match=r"^-p profile=smollm2-135m: choose the profile with --profile"):
        nbparams.check_params(runner.resolve(["00"]), {"profile": "smollm2-135m"})


def test_declared_parameters():
    assert nbparams.declared_parameters(runner.resolve(["01"])[0]) >= {"profile", "interactive", "concurrency"}
    assert "interactive" not in nbparams.declared_parameters(runner.resolve(["00"])[0])


@pytest.mark.parametrize("given,msg", [("concurrency=lots", "expected an integer .* got 'lots'"),
                                       ("concurrency=2.5", "expected an integer"),
                                       ("interactive=1", "expected true or false"),
                                       ("prompt=5", "expected a string")])
def test_a_parameter_of_another_kind_than_the_notebooks_default_is_refused_first(given, msg):
    """Refused before any notebook starts, not in a cell minutes later."""
    r = lab("run", "01", "--plan", "-p", given)
    assert r.returncode == 1 and re.match(f"error: -p {given.split('=')[0]}: {msg}", r.stderr), r.stderr
    defaults = nbparams.parameter_defaults(runner.resolve(["02"])[0])
    assert defaults["concurrencies"] == [1, 2, 4, 8, 16, 32] and defaults["cross_check"] is True
    nbparams.check_kind("lr", 1, 0.003, "-p")  # an int where a float is expected is fine


@pytest.mark.parametrize("given,msg", [("concurrency=-1", "expected a number > 0 (the notebook's default is 16)"),
                                       ("max_tokens=0", "expected a number > 0"),
                                       ("start_timeout=-5.5", "expected an integer")])
def test_a_count_or_bound_below_its_range_is_refused_at_the_plan(given, msg):
    r = lab("run", "01", "--plan", "-p", given)
    assert r.returncode == 1 and r.stderr.startswith(f"error: -p {given.split('=')[0]}: {msg}"), r.stderr
    assert r.stderr.count("\n") == 1
    for name, value, default in (("epochs", -1, 0), ("lr", 0.0, 0.003), ("concurrencies[0]", 0, 1)):
        with pytest.raises(LabError, match=f"-p {re.escape(name)}: expected a number"):
            nbparams.check_kind(name, value, default, "-p")
    with pytest.raises(LabError, match=r"-p concurrencies\[1\]: expected an integer, as every item"):
        nbparams.check_kind("concurrencies", [1, -4], [1, 2], "-p")
    for name, value, default in (("epochs", 0, 0), ("slo_ttft_ms", 0.0, 0.0), ("lr", 1e-9, 0.003), ("n", 1, 8)):
        nbparams.check_kind(name, value, default, "-p")  # within range: 0 where the default is 0


def test_params_file_errors(tmp_path):
    with pytest.raises(LabError, match="does not exist"):
        nbparams.load_params_file(tmp_path / "x.yaml")
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(LabError, match="expected a mapping"):
        nbparams.load_params_file(tmp_path / "bad.yaml")


def test_numbers_in_e_notation_are_floats(tmp_path):
    """PyYAML reads 2e-4 as text: `-p lr=2e-4` sent the string "2e-4" to notebook 03's optimizer."""
    assert nbparams.parse_param("lr=2e-4") == ("lr", 0.0002)
    assert nbparams.parse_param("x=[1E3, .5e1]") == ("x", [1000.0, 5.0])
    assert nbparams.parse_param("tag=e5") == ("tag", "e5")
    (tmp_path / "p.yaml").write_text("lr: 3e-4\nname: 1e5x\n")
    assert nbparams.load_params_file(tmp_path / "p.yaml") == {"lr": 0.0003, "name": "1e5x"}
    r = lab("run", "03", "--plan", "-p", "lr=2e-4")
    assert r.returncode == 0 and "lr=0.0002" in r.stdout, r.stdout + r.stderr


def test_aliases_are_refused_before_they_expand(tmp_path):
    """Nine nested aliases in a 1 KB file are 9^9 values: a plan took 2.8 GB and 70 s, a run pasted them."""
    nest = ["&a [1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [f"&{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in
                                                 zip("abcdefg", "bcdefgh", strict=True)]
    (tmp_path / "bomb.yaml").write_text(f"concurrencies: [{', '.join(nest)}, [{', '.join(['*h'] * 9)}]]\n")
    with pytest.raises(LabError, match=r"bomb.yaml:1: invalid YAML: aliases \(\*name\) are not accepted"):
        nbparams.load_params_file(tmp_path / "bomb.yaml")
    with pytest.raises(LabError, match=r"malformed -p .*ComposerError"):
        nbparams.parse_param("xs=[&a 1, *a]")
    assert nbparams.parse_param("xs=[&a 1, 2]") == ("xs", [1, 2])  # an anchor alone expands nothing


def test_yaml_and_toml_nested_too_deeply_are_one_line(tmp_path, monkeypatch):
    """PyYAML's composer and tomllib recurse: 100,000 `[` were an internal error with a crash file."""
    from lab import config
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "p.yaml").write_text(f"a: {deep}\n")
    with pytest.raises(LabError, match=r"p.yaml: invalid YAML: nested too deeply"):
        nbparams.load_params_file(tmp_path / "p.yaml")
    with pytest.raises(LabError, match=r"malformed -p 'xs=\[\[.*': value nested too deeply"):
        nbparams.parse_param(f"xs={deep}")
    (tmp_path / "lab.toml").write_text(f"[tiny]\nport = {deep}\n")
    monkeypatch.setenv("LAB_PROFILES", str(tmp_path / "lab.toml"))
    with pytest.raises(LabError, match=r"lab.toml: invalid TOML: nested too deeply"):
        config.load("tiny")


@pytest.mark.parametrize("value,msg", [([1, [2]], r"concurrencies\[1\]: expected an integer, as every item of the "
                                                  r"notebook's default \[1, 2, 4, 8, 16, 32\], got \[2\]"),
                                       ([1, 2.5], r"concurrencies\[1\]: expected an integer"),
                                       ([1, True], r"concurrencies\[1\]: expected an integer")])
def test_a_list_parameter_checks_its_items(value, msg):
    defaults = nbparams.parameter_defaults(runner.resolve(["02"])[0])
    with pytest.raises(LabError, match=msg):
        nbparams.check_kind("concurrencies", value, defaults["concurrencies"], "-p")
    nbparams.check_kind("concurrencies", [1, 64], defaults["concurrencies"], "-p")
    nbparams.check_kind("rates", [1, 2.5], defaults["rates"], "-p")  # integers are numbers, fractions too
    with pytest.raises(LabError, match=r"got \[\[0, 0, 0, 0, 0, 0, \.\.\.\], .*, \.\.\.\]$") as e:  # shortened
        nbparams.check_kind("prompt", [[0] * 10**6] * 100, "hello", "-p")
    assert len(str(e.value)) < 300


def test_a_name_in_a_notebooks_own_params_table_that_it_does_not_declare_is_refused(tmp_path, monkeypatch):
    """A misspelt `max_token` in [NAME.params.01] was dropped without a word; under "all" it may stay."""
    from lab import config
    from lab.nbparams import notebook_params, parameter_defaults
    nb = next((paths.root() / "notebooks").glob("01_*.ipynb"))
    (tmp_path / "lab.toml").write_text('[tiny.params.all]\nrounds = 2\n[tiny.params.01]\nmax_token = 32\n')
    monkeypatch.setenv("LAB_PROFILES", str(tmp_path / "lab.toml"))
    with pytest.raises(LabError, match=r"profile 'tiny': params\.01\.max_token: 01_\w+ declares no such parameter; "
                                       r"declared: .*max_tokens"):
        notebook_params(config.load("tiny"), nb, parameter_defaults(nb), {})
    (tmp_path / "lab.toml").write_text('[tiny.params.all]\nrounds = 2\n[tiny.params.01]\nmax_tokens = 32\n')
    got = notebook_params(config.load("tiny"), nb, parameter_defaults(nb), {})
    assert got["max_tokens"] == 32 and "rounds" not in got


@pytest.mark.parametrize("body,msg", [("[" * 100_000 + "]" * 100_000, "not valid JSON: nested too deeply"),
                                      ("not json", "not valid JSON"), ('{"cells": [1]}', "no list of cells"),
                                      ("[]", "no list of cells")])
def test_a_notebook_named_by_path_that_is_none_is_one_line(tmp_path, body, msg):
    """`lab run ./x.ipynb` reads the parameters cell first: a file that is no notebook was an internal error."""
    (tmp_path / "x.ipynb").write_text(body)
    with pytest.raises(LabError, match=f"x.ipynb: not a notebook \\({msg}"):
        nbparams.parameter_defaults(tmp_path / "x.ipynb")


def test_path_parameters_mean_what_they_mean_where_lab_run_was_typed(tmp_path, monkeypatch):
    """`lab run 04 -p input_dir=novel` from the folder holding novel/: the kernel, in notebooks/, gets the
    absolute path; a value only the notebook's folder resolves (the defaults' ../data/...) stays as it is."""
    (tmp_path / "novel").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAB_RUN_CWD", raising=False)
    got = nbparams.paths_from_workdir({"input_dir": "novel", "ref_dir": "../data/translation/zh",
                                       "glossary_file": "~/g.tsv", "concurrency": 4, "adapter_name": "novel"})
    assert got == {"input_dir": str(tmp_path / "novel"), "ref_dir": "../data/translation/zh",
                   "glossary_file": str(Path("~/g.tsv").expanduser()), "concurrency": 4, "adapter_name": "novel"}
    r = subprocess.run([sys.executable, "-m", "lab.cli", "run", "04", "--plan", "--json", "-p", "input_dir=novel"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert str(tmp_path / "novel") in r.stdout  # the plan shows what the notebook will get


def test_papermill_parses_every_parameter_line_of_every_notebook():
    """papermill injects only the names it can parse in the parameters cell: a comment with `=` in it ("yours:
    -p input_dir=DIR") made it drop input_dir with "Passed unknown parameter" while the run went on."""
    import papermill as pm
    for nb in runner.resolve([]):
        assert set(pm.inspect_notebook(str(nb))) == nbparams.declared_parameters(nb), nb.name
