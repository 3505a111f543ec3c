"""Static checks of notebooks and pins: no torch, no server, runs in a second."""

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_exist_and_are_numbered():
    names = [p.name for p in NOTEBOOKS]
    assert names[:2] == ["00_environment.ipynb", "01_serving.ipynb"]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = json.loads(path.read_text("utf-8"))  # valid JSON
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert cells[0]["cell_type"] == "markdown"
    first_md = "".join(cells[0]["source"])
    assert "Headless" in first_md and "lab run" in first_md and "CPU" in first_md
    assert "parameters" in code[0]["metadata"].get("tags", []), "first code cell must be tagged parameters"
    for c in code:
        assert not c.get("outputs") and c.get("execution_count") is None, "outputs must be stripped in git"
        src = "".join(c["source"])
        assert not re.search(r"^\s*[!%]pip", src, re.M), "no pip installs in notebooks"
    params = "".join(code[0]["source"]).splitlines()
    assert params and params[0].startswith("profile = ")
    for line in params:
        tree = ast.parse(line)
        assert isinstance(tree.body[0], ast.Assign), line
        ast.literal_eval(tree.body[0].value)  # literals only
        assert "  # " in line, f"parameter needs a trailing comment saying why: {line}"
        assert "=" not in line.split("  # ", 1)[1], f"papermill cannot parse '=' in a parameter comment: {line}"


def test_dependencies_have_one_source_of_truth():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["-e .[gpu]"], "environment.yml installs the GPU extra, not a copy of the pins"
    assert not {"pytest", "selenium", "nbval", "ruff"} & {str(d).split("=")[0] for d in env["dependencies"]}
    # the CPU and GPU builds of vLLM are the same release
    cpu, gpu = py["optional-dependencies"]["cpu"][0], py["optional-dependencies"]["gpu"][0]
    assert cpu.split("==")[1] == gpu.split("==")[1]
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = dict(ln.lower().replace("_", "-").split("==", 1) for ln in lines if ln and not ln.startswith("#"))
    for dep in py["dependencies"]:  # every declared dependency is pinned, inside its range
        name = re.split(r"[~=<>]", dep)[0]
        assert name in pins, f"{name} is not in constraints.txt: run `make constraints`"
    for name in ("charset-normalizer", "tqdm", "psutil"):
        assert not any(d.startswith(name) for d in py["dependencies"]), f"{name} is never imported"


# Tests named for what they check whole rather than for one module: a real model end to end, the README, the
# repository itself, the wheel, JupyterLab in a browser.
WHOLE = {"smollm2", "qwen_coder", "readme", "static", "packaging", "browser"}


def test_test_files_mirror_the_modules_they_test():
    """tests/[<stage>/]test_<module>[_<aspect>].py names lab/[<stage>/]<module>.py; a file that names no module
    is a test nobody finds from the code it checks."""
    stray = []
    for f in sorted((ROOT / "tests").rglob("test_*.py")):
        package = ROOT / "lab" / f.parent.relative_to(ROOT / "tests")
        words = f.stem.removeprefix("test_").split("_")
        names = ["_".join(words[:i]) for i in range(len(words), 0, -1)]
        if not package.is_dir() or not any((package / f"{n}.py").exists() or n in WHOLE for n in names):
            stray.append(str(f.relative_to(ROOT)))
    assert stray == []
    assert (ROOT / "lab" / "bench" / "sweeps.py").exists()  # the check looks where the modules are


def test_every_module_has_its_test_file():
    """The other way round: lab/[<stage>/]<module>.py has tests/[<stage>/]test_<module>[_<aspect>].py, so its tests
    are found where its name says (streaming, server_errors, widgets and nine more were tested only from others)."""
    missing = []
    for m in sorted((ROOT / "lab").rglob("*.py")):
        if m.stem == "__init__":
            continue
        folder = ROOT / "tests" / m.parent.relative_to(ROOT / "lab")
        if not (folder / f"test_{m.stem}.py").exists() and not any(folder.glob(f"test_{m.stem}_*.py")):
            missing.append(str(m.relative_to(ROOT)))
    assert missing == []


def test_the_suite_order_lists_name_existing_test_files():
    """conftest.py's LONGEST_FIRST and CPU_BOUND: a renamed file would silently lose its place and its lock."""
    import ast
    tree = ast.parse((ROOT / "conftest.py").read_text())
    lists = {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name) and t.id in ("LONGEST_FIRST", "CPU_BOUND")}
    assert set(lists) == {"LONGEST_FIRST", "CPU_BOUND"}
    for name, files in lists.items():
        missing = [f for f in files if not (ROOT / f).is_file()]
        assert not missing and len(set(files)) == len(files), (name, missing)
    assert set(lists["CPU_BOUND"]) <= set(lists["LONGEST_FIRST"])  # spread out among the long files
