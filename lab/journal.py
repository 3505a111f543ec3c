"""The learning log: notebooks record() values; `lab journal build` turns runs/ into journal/."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from lab import paths, procs

MIME = "application/vnd.lab.record+json"


def journal_dir() -> Path:
    """Where the journal lives: $LAB_JOURNAL, else <root>/journal."""
    return Path(os.environ.get("LAB_JOURNAL", paths.root() / "journal"))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a pandas DataFrame
        return value.to_dict(orient="records")
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):  # numpy/torch scalar
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _plain(key: str, value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return f"{key}:\n" + _table(value)
    return f"{key}: {value}"


def record(key: str, value: Any, note: str = "") -> Any:
    """Record a value (number, text, dict, list of row dicts) in the executed notebook for the journal."""
    from IPython.display import display

    payload = {"key": key, "value": _jsonable(value), "note": note}
    v = payload["value"]
    if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
        # notebooks are saved with sorted keys: keep the column order explicitly
        payload["columns"] = list(dict.fromkeys(c for r in v for c in r))
    display({MIME: payload, "text/plain": _plain(key, v)}, raw=True)
    return value


def record_figure(key: str, fig: Any, note: str = "") -> None:
    """Record a matplotlib figure (PNG) for the journal and show it."""
    from IPython.display import display

    buf = io.BytesIO()
    # Fixed metadata: matplotlib otherwise stamps its version and time into the PNG.
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight", metadata={"Software": None})
    png = base64.b64encode(buf.getvalue()).decode()
    display({MIME: {"key": key, "figure": True, "note": note}, "image/png": png,
             "text/plain": f"<figure {key}>"}, raw=True)


def records_of(nb_path: Path) -> list[dict[str, Any]]:
    """Records (and figures as base64 PNG) found in an executed notebook, in cell order."""
    nb = paths.parse_json(Path(nb_path).read_text("utf-8"))
    out = []
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if MIME in data:
                rec = data[MIME]
                if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
                    # one hand-edited or foreign output must not cost the run its entry (it did: KeyError)
                    paths.warn(f"journal: {nb_path}: a record without a name is left out")
                    continue
                rec = dict(rec)
                if rec.get("figure"):
                    rec["png"] = data.get("image/png", "")
                out.append(rec)
    return out


def _cell(v: Any) -> str:
    """A value on one line of a Markdown table: model output holds |, CR (a row ends at a bare CR too) and LF."""
    s = json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)
    return s.replace("|", "\\|").replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def _code(v: Any) -> str:
    """A value as inline code whose own backticks cannot close it early (CommonMark: a longer fence)."""
    s = _cell(v)
    fence = "`" * (max((len(m) for m in re.findall(r"`+", s)), default=0) + 1)
    return f"{fence} {s} {fence}" if fence != "`" else f"`{s}`"


def _table(rows: list[dict[str, Any]], cols: list[str] | None = None) -> str:
    cols = cols or list(dict.fromkeys(c for r in rows for c in r))
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _entry_markdown(run: dict[str, Any], sections: list[tuple[str, list[dict[str, Any]]]]) -> str:
    env = run.get("env", {})
    dirty = " (dirty)" if env.get("git_dirty") else ""
    lines = [f"# Run {run['id']}", "",
             f"- date (UTC): {run.get('started', '?')} to {run.get('ended', '?')}",
             f"- profile: `{run.get('profile')}`, model: `{run.get('model')}`",
             f"- git: `{env.get('git_commit', 'unknown')}`{dirty}",
             f"- device: {env.get('device', '?')}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in sorted(env.get("versions", {}).items())),
             ]
    if run.get("parameters"):
        lines.append(f"- parameters: `{json.dumps(run['parameters'], ensure_ascii=False, sort_keys=True)}`")
    if run.get("profile") == "tiny":
        lines.append("- note: the tiny profile is a 0.5 M-parameter toy; its numbers exercise the pipeline, "
                     "they say nothing about translation quality")
    lines += ["", "| notebook | status | duration (s) |", "|---|---|---|"]
    for nb in run.get("notebooks", []):
        lines.append(f"| {_cell(nb['name'])} | {_cell(nb['status'])} | {_cell(nb.get('duration_s', ''))} |")
    lines.append("")
    for name, recs in sections:
        nb = next((n for n in run.get("notebooks", []) if safe_name(str(n["name"])) == name), {})
        lines += [f"## {name}", ""]
        if nb.get("error"):
            lines += [f"**failed**: {nb['error']}", ""]
        scalars = [r for r in recs if not r.get("figure") and not isinstance(r.get("value"), (list, dict))]
        if scalars:
            lines += ["| key | value |", "|---|---|"]
            lines += [f"| {_cell(r['key'])} | {_cell(r.get('value'))} |" for r in scalars]
            lines.append("")
        for r in recs:
            if r.get("figure"):
                lines += [f"![{r['key']}](figures/{name}-{safe_name(str(r['key']))}.png)", ""]
            elif isinstance(r.get("value"), list) and r["value"] and all(isinstance(x, dict) for x in r["value"]):
                cols = r.get("columns")
                lines += [f"**{r['key']}**", "", _table(r["value"], cols if isinstance(cols, list) else None)]
            elif isinstance(r.get("value"), (list, dict)):
                lines += [f"**{r['key']}**: {_code(r['value'])}", ""]
            if r.get("note"):
                lines += [f"> {r['key']}: {r['note']}", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_entry(run_dir: Path, jdir: Path | None = None) -> Path | None:
    """Write (or rewrite) the journal entry of one finished run folder; None if it has not ended."""
    jdir = jdir or journal_dir()
    meta_f = Path(run_dir) / "run.json"
    if not meta_f.exists():
        return None
    run = paths.parse_json(meta_f.read_text("utf-8"))
    if not isinstance(run, dict):
        return None
    if not run.get("ended"):
        if not procs.gone(str(run.get("owner_proc") or "")):
            return None  # still going (or from before owners were recorded)
        # its `lab run` was SIGKILLed: the notebooks it finished are kept, the one in flight is named
        run["ended"] = "killed"
        for nb in run.get("notebooks", []):
            if nb.get("status") == "running":
                nb["status"] = "killed"
    # Names from the file become paths: the entry is named by its run folder, never by the file's "id", and
    # notebook and record names are cleaned (a copied runs/ folder with "id": "../../x" wrote outside journal/)
    run["id"] = Path(run_dir).name
    entry = jdir / "runs" / run["id"]
    sections = []
    for nb in run.get("notebooks", []):
        name = safe_name(str(nb["name"]))
        f = Path(run_dir) / f"{name}.ipynb"
        try:
            found = records_of(f) if f.exists() else []
        except (OSError, ValueError, AttributeError, TypeError) as e:
            # papermill rewrites the notebook after every cell, in place: a kill mid-write leaves it cut short;
            # the run keeps its entry and its other notebooks, this one shows no records
            _skipped(f, e)
            found = []
        recs = []
        for r in found:
            if r.get("figure") and r.get("png"):
                try:
                    png = base64.b64decode(r["png"], validate=True)
                except (ValueError, TypeError):  # a damaged figure is left out, not the run
                    paths.warn(f"journal: {f}: figure {r['key']!r} is not base64 PNG; left out")
                    continue
                paths.atomic_write(entry / "figures" / f"{name}-{safe_name(str(r['key']))}.png", png)
            recs.append(r)
        sections.append((name, recs))
    summary = {k: run.get(k) for k in ("id", "started", "ended", "profile", "model", "parameters", "env")}
    summary["notebooks"] = run.get("notebooks", [])
    summary["records"] = {name: [{k: v for k, v in r.items() if k != "png"} for r in recs]
                          for name, recs in sections}
    page = _entry_markdown(run, sections)  # first: a run that cannot be shown leaves no entry.json behind
    paths.atomic_write(entry / "entry.json", json.dumps(summary, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    paths.atomic_write(entry / "README.md", page)
    return entry


def safe_name(name: str) -> str:
    """`name` as one file name: no separators, no leading dot ("../../etc/x" -> "etc_x")."""
    return re.sub(r"[^\w.-]+", "_", name).lstrip("._") or "_"


def _skipped(f: Path, e: BaseException) -> None:
    """A run or entry the journal cannot read is left out with one warning line; the others are built."""
    why = f"not valid JSON ({e.msg}, line {e.lineno})" if isinstance(e, json.JSONDecodeError) else \
        f"{type(e).__name__}: {e}"
    paths.warn(f"journal: skipped {f}: {why}")  # a run's name may be anything


def build(runs_dir: Path | None = None, jdir: Path | None = None) -> Path:
    """Rebuild journal/ from runs/: entries for finished runs, index of all entries (kept ones too)."""
    runs_dir, jdir = Path(runs_dir or paths.runs()), Path(jdir or journal_dir())
    if runs_dir.is_dir():
        for d in sorted(runs_dir.iterdir()):
            if d.is_dir():
                try:
                    write_entry(d, jdir)
                except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:  # one broken run
                    _skipped(d / "run.json", e)
    entries = []
    for f in sorted((jdir / "runs").glob("*/entry.json")):
        try:
            entry = paths.parse_json(f.read_text("utf-8"))
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise ValueError("no run id in it")
        except (OSError, ValueError) as e:
            _skipped(f, e)
            continue
        entries.append(entry)
    entries.sort(key=lambda e: e["id"], reverse=True)
    lines = ["# Lab journal", "",
             "Rebuilt by `lab journal build` from the executed notebooks in `runs/`; newest run first.",
             "Each entry keeps what its notebooks recorded; entries stay when `runs/` is gone.", "",
             "| run | profile | model | notebooks | git |", "|---|---|---|---|---|"]
    for e in entries:
        try:  # an entry.json edited by hand: skipped with a warning, like a broken run.json
            ok = sum(n["status"] == "ok" for n in e["notebooks"])
            env = e.get("env") or {}
            git = str(env.get("git_commit", "?"))[:10] + ("*" if env.get("git_dirty") else "")
            lines.append(f"| [{e['id']}](runs/{e['id']}/README.md) | {e['profile']} | {e['model']} | "
                         f"{ok}/{len(e['notebooks'])} ok | {git} |")
        except (KeyError, TypeError, AttributeError) as err:
            _skipped(jdir / "runs" / e["id"] / "entry.json", err)
    paths.atomic_write(jdir / "README.md", "\n".join(lines) + "\n")
    return jdir
