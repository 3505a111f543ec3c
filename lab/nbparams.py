"""Notebook parameters: what a notebook declares, -p/-f values, the profile's own, each checked by kind."""

from __future__ import annotations

import re
import reprlib
from pathlib import Path
from typing import Any

import yaml

from lab import LabError, config, paths


def declared_parameters(nb: Path) -> set[str]:
    """Names assigned in the notebook's `parameters` cell (papermill warns about any other name)."""
    return set(parameter_defaults(nb))


def parameter_defaults(nb: Path) -> dict[str, Any]:
    """Name -> default of the notebook's `parameters` cell (None where the default is not a literal)."""
    import ast
    try:
        data = paths.parse_json(paths.read_text(nb, "notebook"))
    except ValueError as e:  # a notebook named by path may be anything: one line, as for any input
        raise LabError(f"{nb}: not a notebook (not valid JSON: {e})") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise LabError(f"{nb}: not a notebook (no list of cells)")
    for c in cells:
        meta = c.get("metadata")
        if isinstance(meta, dict) and "parameters" in (meta.get("tags") or []):
            try:
                tree = ast.parse("".join(c.get("source", "")))
            except SyntaxError:
                return {}
            out: dict[str, Any] = {}
            for node in tree.body:
                if isinstance(node, ast.Assign):
                    for t in node.targets:
                        if isinstance(t, ast.Name):
                            try:
                                out[t.id] = ast.literal_eval(node.value)
                            except ValueError:
                                out[t.id] = None
            return out
    return {}


# A parameter's value must have its default's kind (an int where a float is expected is fine): "lots" for
# concurrency=8 would fail the notebook minutes later, in a cell far from the -p that caused it.
_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}


def check_kind(name: str, value: Any, default: Any, where: str) -> None:
    """One LabError when `value` is not of the kind of the notebook's `default` (None default: anything)."""
    kind = type(default)
    if default is None or kind not in _KINDS:
        return
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int | float) and not isinstance(value, bool) if kind is float else
          isinstance(value, kind) and not isinstance(value, bool))
    if not ok:
        raise LabError(f"{where} {name}: expected {_KINDS[kind]} (the notebook's default is {default!r}), "
                       f"got {reprlib.repr(value)}")
    # A count, a size, a rate or a bound with a positive default is positive; one defaulting to 0 (epochs, seed,
    # an SLO where 0 means "measured") is never negative: `-p concurrency=-1` passed the plan and failed a cell
    if kind in (int, float) and (value <= 0 < default or value < 0 == default):
        raise LabError(f"{where} {name}: expected a number {'> 0' if default > 0 else '>= 0'} (the notebook's "
                       f"default is {default!r}), got {value!r}")
    items = {type(x) for x in default} if kind is list else set()
    if len(items) == 1 and items <= _KINDS.keys() - {list}:  # [1, 4, 16]: every item an integer too
        for i, x in enumerate(value):
            try:
                check_kind(f"{name}[{i}]", x, default[0], where)
            except LabError:
                raise LabError(f"{where} {name}[{i}]: expected {_KINDS[type(default[0])]}, as every item of the "
                               f"notebook's default {reprlib.repr(default)}, got {reprlib.repr(x)}") from None


class _Loader(yaml.SafeLoader):
    """YAML as people write numbers: PyYAML (YAML 1.1) reads `2e-4` as a string, so `-p lr=2e-4` passed the
    text "2e-4" to the notebook; here it is the float, as in YAML 1.2 and TOML. Aliases are refused: nine
    nested `*a` lists in a 1 KB file expand to 9^9 values (2.8 GB and 70 s for a plan; a run would paste
    them into the notebook)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted in parameters",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)[eE][-+]?\d+$"),
                              list("-+0123456789."))


def parse_param(text: str) -> tuple[str, Any]:
    """'key=value' -> (key, YAML-typed value); a clear error otherwise."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise LabError(f"malformed -p {text!r}: expected key=value with a Python identifier as key")
    try:
        return key.strip(), yaml.load(raw, _Loader) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise LabError(f"malformed -p {text[:80]!r}: value is not valid YAML ({e.__class__.__name__})") from None
    except RecursionError:  # 50,000 `[`: PyYAML's composer recurses
        raise LabError(f"malformed -p {text[:80]!r}: value nested too deeply") from None


def load_params_file(path: str | Path) -> dict[str, Any]:
    """Parameters from a YAML file (papermill -f style)."""
    p = Path(path)
    text = paths.read_text(p, "parameters file")
    try:
        data = yaml.load(text, _Loader) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise LabError(f"{where}: invalid YAML: {what}") from None
    except RecursionError:
        raise LabError(f"{p}: invalid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise LabError(f"{p}: expected a mapping of parameter names to values")
    return data


PATH_SUFFIXES = ("_dir", "_file")  # the notebooks' parameters that name a file or folder (input_dir, glossary_file...)


def paths_from_workdir(params: dict[str, Any]) -> dict[str, Any]:
    """-p/-f values of path parameters as the user meant them: `~` expanded, and a relative path that exists in
    the working folder made absolute (papermill runs a notebook from notebooks/, where `-p input_dir=novel`
    named notebooks/novel); other relative values stay relative to notebooks/, as the defaults (`../data/...`)."""
    out, wd = dict(params), paths.workdir()
    for k, v in params.items():
        if k.endswith(PATH_SUFFIXES) and isinstance(v, str) and v:
            p = Path(v).expanduser()
            out[k] = str(wd / p if not p.is_absolute() and (wd / p).exists() else p)
    return out


def check_params(nbs: list[Path], params: dict[str, Any]) -> dict[Path, dict[str, Any]]:
    """Each notebook's declared parameters and defaults; an error naming the declared ones for a name none
    declares, or naming the expected kind for a value of another kind."""
    declared = {nb: parameter_defaults(nb) for nb in nbs}
    if "profile" in params:  # the notebooks would load another profile than the run's server, folder and journal
        raise LabError(f"-p profile={params['profile']}: choose the profile with --profile (or LAB_PROFILE); "
                       f"the run's server, folder and journal follow it")
    known = set().union(*declared.values()) | {"profile"}
    unknown = sorted(set(params) - known)
    if unknown:
        names = ", ".join(nb.stem for nb in nbs)
        raise LabError(f"-p {unknown[0]}: no selected notebook ({names}) declares it; declared: "
                       f"{', '.join(sorted(known))}")
    for defaults in declared.values():
        for k, v in params.items():
            if k in defaults and k != "profile":
                check_kind(k, v, defaults[k], "-p")
    return declared


def notebook_params(prof: config.Profile, nb: Path, declared: dict[str, Any],
                    params: dict[str, Any]) -> dict[str, Any]:
    """What a notebook gets: the profile, interactive=False (widgets answer once as text), the profile's own
    parameters for it, then the user's -p/-f; each only where the notebook declares it (`declared`: its
    parameters and their defaults, as check_params returns them)."""
    own = prof.notebook_params(nb.stem)
    # [NAME.params.NN] is this notebook's own table, so a name it does not declare is a typo that would be
    # dropped without a word (`max_token = 32`); "all" may hold names only some notebooks declare.
    typo = sorted(set(prof.params.get(nb.stem[:2]) or {}) - set(declared))
    if typo:
        raise LabError(f"profile {prof.name!r}: params.{nb.stem[:2]}.{typo[0]}: {nb.stem} declares no such "
                       f"parameter; declared: {', '.join(sorted(declared))}")
    for k, v in own.items():
        if k in declared:
            check_kind(k, v, declared[k], f"profile {prof.name!r}: params for {nb.stem}:")
    base = {"interactive": False, **own, **params}
    return {"profile": prof.name, **{k: v for k, v in base.items() if k in declared}}
