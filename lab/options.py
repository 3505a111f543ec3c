"""Command-line pieces every stage uses: defaults read from settings, value checks, endpoints, tables."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
from collections.abc import Callable
from typing import Any

from lab import config, paths


def default_of(owner: Any, name: str) -> Any:
    """The default of a settings dataclass field or a function parameter: the one place it is defined."""
    if dataclasses.is_dataclass(owner):
        f = owner.__dataclass_fields__[name]
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        raise KeyError(f"{owner.__name__}.{name} has no default")
    p = inspect.signature(owner).parameters[name]
    if p.default is inspect.Parameter.empty:
        raise KeyError(f"{owner.__name__}({name}) has no default")
    return p.default


def given(a: argparse.Namespace, cls: type[Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of settings dataclass `cls` that parsed options of the same name set (lists become tuples for
    tuple fields), less `skip`."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.init and f.name not in skip and hasattr(a, f.name):
            v = getattr(a, f.name)
            out[f.name] = tuple(v) if isinstance(v, list) and isinstance(f.default, tuple) else v
    return out


def settings(a: argparse.Namespace, cls: type[Any], **extra: Any) -> Any:
    """The settings dataclass `cls` from parsed options (see given); `extra` sets fields no option names."""
    return cls(**{**given(a, cls), **extra})


# Every count in the workbook (prompts, rounds, steps, copies, tokens, seconds of a cell) is far below a million;
# `--num-prompts 99999999999999999999` was accepted and built prompts until the run was killed, and
# `--copies` of that size took the machine's 24 GB. A week is past any wait, and below time_t's overflow
# (a 1e300 s timeout raised OverflowError inside the socket layer).
MAX_COUNT = 1_000_000
MAX_SECONDS = 7 * 24 * 3600.0
MIN_RATE = 0.001  # requests per second: one every ~17 min; 1e-300 waited forever before its first request


def checked(kind: Callable[[str], Any], low: float | None = None, high: float | None = None,
            low_open: bool = False) -> Callable[[str], Any]:
    """An argparse type that parses `kind` and rejects values outside [low, high] (or (low, ...] with low_open);
    an integer's high defaults to MAX_COUNT."""
    if high is None and kind is int:
        high = MAX_COUNT

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(v):  # nan passes every comparison, inf is no bound (a timeout must end)
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        if low is not None and (v <= low if low_open else v < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low:g}, got {text}")
        if high is not None and v > high:
            top = f"{high:,.0f}" if float(high).is_integer() else f"{high:g}"  # 1,000,000, not 1e+06
            raise argparse.ArgumentTypeError(f"must be <= {top}, got {text}")
        return v
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


POSITIVE_INT = checked(int, 1)
NON_NEGATIVE_INT = checked(int, 0)
POSITIVE_FLOAT = checked(float, 0, low_open=True)
SECONDS = checked(float, 0, MAX_SECONDS, low_open=True)
RATE = checked(float, MIN_RATE)
SEED = checked(int, 0, 2**32 - 1)  # numpy's range; -1 or 10**20 crashed or wrapped around in one library or another


def base_url(text: str) -> str:
    """An argparse type for an endpoint: http(s)://host[:port][/path], refused before anything connects."""
    from urllib.parse import urlsplit
    try:
        u = urlsplit(text)
        u.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a URL ({e}): {text!r}") from None
    if u.scheme not in ("http", "https") or not u.hostname:
        raise argparse.ArgumentTypeError(f"expected http(s)://HOST[:PORT]/v1, got {text!r}")
    return text


def add(p: argparse.ArgumentParser, flag: str, owner: Any, name: str | None = None, help: str = "",
        **kw: Any) -> None:
    """An option whose default comes from `owner` (dataclass or function); the help states it."""
    name = name or flag.lstrip("-").replace("-", "_")
    d = default_of(owner, name)
    kw.setdefault("dest", name)
    if isinstance(d, bool) and "action" not in kw:
        kw["action"] = argparse.BooleanOptionalAction
    elif d is not None and "type" not in kw and "choices" not in kw:  # no count, bound or seed here is negative
        kw["type"] = {int: NON_NEGATIVE_INT, float: checked(float, 0)}.get(type(d), type(d))
    shown = ",".join(map(str, d)) if isinstance(d, tuple | list) else d
    p.add_argument(flag, default=d, help=f"{help} (default: {shown})", **kw)


def profile_arg(p: argparse.ArgumentParser, what: str) -> None:
    """--profile, said as `what` it names, with the default every command shares (config.default_name's)."""
    p.add_argument("--profile", type=profile_name, help=f"{what} (default: $LAB_PROFILE or tiny)")


def nonempty(what: str) -> Callable[[str], str]:
    """An argparse type for a value that means nothing empty (an empty one used to mean the default, silently)."""
    def conv(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected {what}, got an empty one")
        return text
    conv.__name__ = "nonempty"
    return conv


profile_name = nonempty("a profile name (`lab profiles` lists them)")


def profile_opts(p: argparse.ArgumentParser, server: bool = True) -> None:
    """--profile, and with server=True --port/--host overrides."""
    profile_arg(p, "profile name, as `lab profiles` lists them")
    if server:
        p.add_argument("--port", type=checked(int, 1, 65535),
                       help="override the profile's port (same as LAB_PORT; default: the profile's)")
        p.add_argument("--host", help="override the bind address (default 127.0.0.1; same as LAB_HOST)")


def apply_overrides(a: argparse.Namespace) -> None:
    """--port/--host become LAB_PORT/LAB_HOST, so every profile load in this process sees them."""
    if getattr(a, "port", None):
        os.environ["LAB_PORT"] = str(a.port)
    if getattr(a, "host", None):
        os.environ["LAB_HOST"] = a.host


def endpoint_opts(p: argparse.ArgumentParser, several: bool = False) -> None:
    """--profile / --base-url (repeatable when `several`) / --model."""
    profile_arg(p, "use this profile's running server")
    if several:
        p.add_argument("--base-url", action="append", default=[], type=base_url,
                       help="any OpenAI-compatible endpoint instead, e.g. http://127.0.0.1:8000/v1; repeatable: "
                       "failover across them (default: the profile's server)")
    else:
        p.add_argument("--base-url", type=base_url,
                       help="any OpenAI-compatible endpoint instead, e.g. http://127.0.0.1:8000/v1 "
                       "(default: the profile's server)")
    p.add_argument("--model", type=nonempty("a served model name (`GET /v1/models` lists them)"),
                   help="served model name (default: the server's first model)")


def endpoints(a: argparse.Namespace) -> list[str]:
    """The --base-url values, else the profile's server URL."""
    urls = a.base_url if isinstance(a.base_url, list) else [a.base_url] if a.base_url else []
    return urls or [config.load(a.profile, check_device=False).base_url]


def client(a: argparse.Namespace, **kw: Any) -> Any:
    """A lab.client.Client for --base-url/--model, else for the profile's running server."""
    from lab.client import Client
    return Client(endpoints(a)[0], api_key=config.client_key(), model=a.model, **kw)


def print_rows(rows: list[dict[str, Any]]) -> None:
    """A plain aligned table (reads fine in a log and a notebook); cells are names from files (an EPUB's chapters,
    a folder's programs), so control characters are shown escaped."""
    if not rows:
        return
    cols = list(rows[0])
    # a missing value (a bad task has no rounds) shows as "-", not the word None
    cells = [{c: "-" if (v := r.get(c, "")) is None else paths.one_line(str(v)) for c in cols} for r in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in cells)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in cells:
        print("  ".join(r[c].ljust(widths[c]) for c in cols))


def comma_list(text: str, conv: Callable[[str], Any], what: str) -> list[Any]:
    """'a,b,c' -> [conv(a), conv(b), conv(c)]; an empty item ('1,,2', '1,') or a bad value is a parser error."""
    items = [x.strip() for x in text.split(",")]
    if not text.strip() or any(not x for x in items):
        raise argparse.ArgumentTypeError(f"expected a comma list of {what} with no empty item, got {text!r}")
    try:
        return [conv(x) for x in items]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"expected a comma list of {what}, got {text!r}") from None


def comma_ints(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4], every value >= 1."""
    vals = comma_list(text, int, "integers")
    if min(vals) < 1 or max(vals) > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected integers from 1 to {MAX_COUNT:,}, got {text!r}")
    return vals


def comma_rates(text: str) -> list[float]:
    """'2,4.5' -> [2.0, 4.5] requests per second, every value a finite MIN_RATE or more."""
    vals = comma_list(text, float, "numbers")
    if not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    if min(vals) < MIN_RATE:
        raise argparse.ArgumentTypeError(f"expected rates >= {MIN_RATE:g} req/s, got {text!r}")
    return vals


def comma_choices(choices: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """A parser type: a comma list whose every item is one of `choices`."""
    def parse(text: str) -> tuple[str, ...]:
        vals = comma_list(text, str, "names")
        bad = [v for v in vals if v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad[0]!r}; choose from {', '.join(choices)}")
        twice = [v for i, v in enumerate(vals) if v in vals[:i]]
        if twice:  # `server,server` measured the server twice and wrote both rows as if they were two engines
            raise argparse.ArgumentTypeError(f"{twice[0]!r} is given twice in {text!r}")
        return tuple(vals)
    return parse


class DefaultSubcommands(argparse._SubParsersAction):
    """Subcommands with a default action, put in by `route_default` where the first word names none (so
    `lab translate FILE` is `translate run FILE`)."""

    default: str = ""


def route_default(ap: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """argv with a command's default action put in where the action is left out: argparse hands options before
    the first positional to the command's own parser, so `lab translate --concurrency 4 FILE` made `4` the input
    and refused FILE. `-h` after the command still shows the command's help."""
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        return argv
    for top in (a for a in ap._actions if isinstance(a, argparse._SubParsersAction)):
        cmd = top._name_parser_map.get(argv[0])
        for act in (a for a in (cmd._actions if cmd else []) if isinstance(a, DefaultSubcommands)):
            if argv[1] not in act._name_parser_map:
                return [argv[0], act.default, *argv[1:]]
    return argv
