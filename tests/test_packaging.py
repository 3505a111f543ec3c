"""`pip install .` gives a working `lab`: the wheel holds every stage package and the shipped profiles."""

import subprocess
import sys
import sysconfig
import zipfile

import pytest
from helpers import ROOT

STAGES = ("lab.bench", "lab.finetune", "lab.translate", "lab.c2rust")


@pytest.mark.slow
def test_the_wheel_holds_and_imports_every_stage(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (whl,) = (tmp_path / "dist").glob("llm_lab_workbook-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for stage in STAGES:
        assert f"{stage.replace('.', '/')}/__init__.py" in names, stage
    assert "lab/profiles.toml" in names
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(whl)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # -S: no site processing, so the editable install of this checkout cannot answer the imports
    code = ("import importlib, lab, lab.cli; "
            f"[importlib.import_module(m) for m in {STAGES!r}]; "
            "from lab import config; assert config.load('tiny').served_name; print(lab.__file__)")
    env = {"PYTHONPATH": f"{target}:{sysconfig.get_paths()['purelib']}", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().startswith(str(target)), r.stdout
