"""The README's command table, environment list and exit codes, checked against the real parser and code."""

import argparse
import contextlib
import io
import re
from pathlib import Path

import pytest

from lab import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    acts = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(acts[0]._name_parser_map) if acts else {}


def _table_commands() -> list[list[str]]:
    """`lab A B` of every command-table row (each `/`-separated form), words up to the first option/argument."""
    section = README.split("## The `lab` command", 1)[1].split("\n\n", 2)[1]
    out = []
    for line in section.splitlines():
        cell = line.replace("\\|", "/").split(" | ")[0]
        for form in re.findall(r"`lab ([a-z0-9 -]+)", cell):
            words = [w for w in form.split() if re.fullmatch(r"[a-z][a-z0-9-]*", w)]
            out.append(words)
    return out


def test_every_command_in_the_readme_table_parses_and_every_command_is_in_it():
    top = _subparsers(cli.parser())
    rows = _table_commands()
    assert len(rows) > 15
    for words in rows:
        sub = top.get(words[0])
        assert sub is not None, f"README names `lab {words[0]}`, the parser has no such command"
        if len(words) > 1:
            assert words[1] in _subparsers(sub), f"README names `lab {' '.join(words[:2])}`, the parser has not it"
    named = {w[0] for w in rows}
    assert set(top) <= named, f"commands missing from the README table: {sorted(set(top) - named)}"
    for cmd in ("serve", "bench", "c2rust", "model"):
        actions = set(_subparsers(top[cmd]))
        section = README.split("## The `lab` command", 1)[1].split("\n\n", 2)[1]
        rows_of = " ".join(line for line in section.splitlines() if f"`lab {cmd} " in line)
        missing = [a for a in actions if not re.search(rf"\b{re.escape(a)}\b", rows_of)]
        assert not missing, f"`lab {cmd}` actions missing from the README table: {missing}"


def _env_in_code() -> set[str]:
    names = set()
    for f in (ROOT / "lab").rglob("*.py"):
        names |= set(re.findall(r"""environ(?:\.get)?\s*[\[(]\s*["'](LAB_[A-Z_]+)""", f.read_text("utf-8")))
        names |= set(re.findall(r"""getenv\(\s*["'](LAB_[A-Z_]+)""", f.read_text("utf-8")))
    from lab import config
    names |= set(config.ENV_OVERRIDES)
    return names


def test_the_environment_list_matches_the_code_and_lab_help():
    code = _env_in_code()
    para = README.split("Environment overrides:", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"LAB_[A-Z_]+", para))
    assert code - documented == set(), f"read by the code, missing from the README's list: {code - documented}"
    helped = set(re.findall(r"LAB_[A-Z_]+", cli.parser().description))
    # set by `lab run` / a c2rust-only folder
    internal = {"LAB_RUN_DIR", "LAB_RUN_OWNER", "LAB_RUN_CWD", "LAB_CARGO_REGISTRY"}
    assert code - internal - helped == set(), f"missing from `lab --help`: {code - internal - helped}"


def _exit(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue()


@pytest.mark.parametrize("argv", [["translate", "run", "x", "-o", "y", "--concurrency", "0"],
                                  ["translate", "run", "x", "-o", "y", "--timeout", "0"],
                                  ["translate", "run", "x", "-o", "y", "--temperature", "-1"],
                                  ["bench", "rate", "--rates", "0"], ["bench", "run", "--engines", "foo"],
                                  ["bench", "run", "--concurrency", "1,,2"]])
def test_values_that_make_no_sense_exit_2_as_the_readme_says(argv):
    assert "refused by the parser (exit 2)" in README
    code, err = _exit(argv)
    assert code == 2 and "error:" in err and "Traceback" not in err, (argv, code, err)


def test_a_user_error_exits_1_with_one_error_line(tmp_path):
    assert "User errors print one `error:` line and exit 1" in README
    code, err = _exit(["translate", "eval", str(tmp_path / "missing.txt"), str(tmp_path / "ref.txt")])
    assert code == 1 and err.count("error:") == 1, err
