"""lab.nbparams: -p/-f parsing, declared parameters and defaults, values checked by kind."""

import re

import pytest
from helpers import lab

from lab import LabError, nbparams, runner


def test_parse_param():
    assert nbparams.parse_param("n=3") == ("n", 3)
    assert nbparams.parse_param("name=abc") == ("name", "abc")
    assert nbparams.parse_param("xs=[1, 2]") == ("xs", [1, 2])
    for bad in ("noequals", "1x=2", "a b=1", "x=[1,"):
        with pytest.raises(LabError, match="malformed -p"):
            nbparams.parse_param(bad)


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
