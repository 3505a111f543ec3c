"""A bug, not bad input: one `error:` line, the traceback kept in logs/ with every secret masked."""

from __future__ import annotations

import os
import sys
import traceback

from lab import paths

SECRET_FLAGS = ("--api-key", "--token")


def masked_argv(argv: list[str]) -> list[str]:
    """argv with the value of every secret option (`--api-key K`, `--api-key=K`) replaced by ***."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] in SECRET_FLAGS:
            out.append("***")
        else:
            flag, eq, _ = arg.partition("=")
            out.append(f"{flag}=***" if eq and flag in SECRET_FLAGS else arg)
    return out


def listed(names: list[str], most: int = 5) -> str:
    """The first `most` names and how many more: a folder of 2,000 texts made a 40 kB "wrote ..." line."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most:,} more" if len(names) > most else "")


def wanted() -> bool:
    """LAB_TRACEBACK=1/true/yes/on lets a bug's traceback through; unset, 0/false/no/off or anything else keeps the
    one line (this runs inside an exception handler, so a value nobody can read must not raise a second error)."""
    from lab import LabError, config  # here, not at import: config is heavier than this module needs otherwise
    try:
        return config.env_flag("LAB_TRACEBACK")
    except LabError:
        return False


def report(e: BaseException, argv: list[str] | None = None) -> int:
    """Print `error: internal error ...` on stderr, keep the traceback in logs/crash-*.txt; returns 1."""
    argv = sys.argv if argv is None else argv
    text = " ".join(masked_argv(argv)) + "\n" + "".join(traceback.format_exception(e))
    where = "set LAB_TRACEBACK=1 to see the traceback"
    try:
        f = paths.logs() / f"crash-{paths.utc_stamp()}-{os.getpid()}.txt"
        paths.atomic_write(f, _masked(text))
        where = f"traceback in {f}"
    except OSError:
        pass
    line = f"error: internal error {type(e).__name__}: {e} (a bug in lab, not in your input; {where})"
    print(_masked(paths.one_line(line)), file=sys.stderr, flush=True)
    return 1


def _masked(text: str) -> str:
    """`text` with the API key of this process replaced by *** (inside an exception message or a URL)."""
    for secret in {os.environ.get("LAB_API_KEY", ""), os.environ.get("VLLM_API_KEY", "")} - {""}:
        text = text.replace(secret, "***")
    return text
