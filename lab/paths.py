"""Where the workbook keeps things: repo root, data, runs, logs and the model cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def root() -> Path:
    """The project root: $LAB_ROOT, else the checkout that holds this package, else the cwd."""
    if os.environ.get("LAB_ROOT"):
        return Path(os.environ["LAB_ROOT"]).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "data").is_dir():
        return here
    return Path.cwd().resolve()


def workdir() -> Path:
    """The folder the user works in: where `lab run` was started ($LAB_RUN_CWD in its kernels, which papermill
    runs from notebooks/), else the cwd."""
    return Path(os.environ.get("LAB_RUN_CWD") or Path.cwd()).absolute()


# Variables that name a file or folder. `lab run` hands them to its kernels absolute: papermill runs each
# notebook from notebooks/, where LAB_LOGS=logs named another folder than the user's (a second pid file, a
# second server on a busy port), and where ./lab.toml and a checkout-less root() were not the user's.
PATH_VARS = ("LAB_CACHE", "LAB_RUNS", "LAB_LOGS", "LAB_JOURNAL", "LAB_FIND_LINKS", "LAB_PROFILES",
             "LAB_CARGO_REGISTRY")


def kernel_env() -> dict[str, str]:
    """What a `lab run` kernel needs to see the user's folders: root, working folder, and each path variable
    set (LAB_MODEL where it names an existing path), made absolute against the working folder."""
    env = {"LAB_ROOT": str(root()), "LAB_RUN_CWD": str(workdir())}
    for k in PATH_VARS:
        v = os.environ.get(k, "")
        if v and "://" not in v:  # --find-links may be a URL
            env[k] = str(Path(v).expanduser().absolute())
    model = os.environ.get("LAB_MODEL", "")
    if model and Path(model).expanduser().exists():  # else a profile's alias or a hub id
        env["LAB_MODEL"] = str(Path(model).expanduser().absolute())
    return env


def data() -> Path:
    """Sample inputs shipped with the project."""
    return root() / "data"


def runs() -> Path:
    """Executed notebooks and run artefacts (ignored by git)."""
    return Path(os.environ.get("LAB_RUNS", root() / "runs"))


def run_dir(sub: str = "") -> Path:
    """Where a notebook writes its artefacts: the `lab run` folder ($LAB_RUN_DIR), else runs/adhoc."""
    base = Path(os.environ["LAB_RUN_DIR"]) if os.environ.get("LAB_RUN_DIR") else runs() / "adhoc"
    return base / sub if sub else base


def logs() -> Path:
    """Server logs and pid files (ignored by git)."""
    return Path(os.environ.get("LAB_LOGS", root() / "logs"))


def cache() -> Path:
    """Built artefacts such as the tiny model; $LAB_CACHE, else ~/.cache/lab."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lab"
    return Path(os.environ.get("LAB_CACHE", default))


def utc_stamp(iso: bool = False) -> str:
    """Now in UTC: 20261123T164100Z for file names, or 2026-11-23T16:41:00Z (iso) for records."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y%m%dT%H%M%SZ")


def atomic_write(path: Path, data: bytes | str, durable: bool = True, mode: int = 0o666) -> None:
    """Write a file so readers see the old or the new content, never half of it (durable: fsync too); `mode`
    (less the umask, as open() does) applies from the first byte: 0o600 for a file holding a key leaves no
    moment where others may read it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # one temp file per thread of each process; its name keeps 100 bytes of the file's so that a name near the
    # file system's 255-byte limit still leaves room for the pid and thread id
    tmp = path.with_name(f".{_head(path.name, 100)}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:  # survives an OS crash, not only a killed process
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # a full disk: no half-written temp file left behind, and the error names the file
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(e.errno, e.strerror, str(path)) from None


def one_line(text: str) -> str:
    """Text for an `error:`, warning or status line: control characters (a newline or an ESC in a file name) as
    escapes, so a hostile name can neither split the line nor drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def warn(text: str) -> None:
    """One `warning:` line on stderr, flushed, control characters escaped: warnings name files, and a file's name
    may hold a newline or an ESC sequence."""
    print(one_line(f"warning: {text}"), file=sys.stderr, flush=True)


def shown(text: str) -> str:
    """Several lines of untrusted text (a model-written program's output, a source line) for the terminal: line
    breaks kept, every other control character escaped (an ESC ] 0 ; ... BEL retitled the terminal, ESC [ 2 J
    cleared it)."""
    return "\n".join(one_line(ln) for ln in text.split("\n"))


# File systems allow 255 bytes a name; an output adds at most ".bilingual.md" (13) or ".log.jsonl" (10) to a
# name it takes from its input, so names taken from inputs are kept to 200 bytes (66 kanji).
MAX_NAME_BYTES = 200


def _head(name: str, limit: int) -> str:
    """The longest start of `name` within `limit` UTF-8 bytes (never half a character)."""
    return name.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


def short_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """`name`, or when it is over `limit` UTF-8 bytes its start plus ~ and 8 hex digits of the whole name's hash:
    deterministic (a rerun finds its files) and distinct for distinct names."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return name
    return f"{_head(name, limit - 9)}~{hashlib.sha256(raw).hexdigest()[:8]}"


# The largest input file read whole: a long novel is ~2 MB of text; a task file naming /dev/zero or a 10 GB log
# must fail at once, not after the machine's memory.
MAX_INPUT_BYTES = 256 << 20


def out_dir(out: str | Path, flag: str = "--out", create: bool = True) -> Path:
    """The output folder, made now (before any work, so a bad -o costs nothing); a file or an uncreatable path is
    one LabError naming the option. create=False only checks (for a job that may still fail before any work)."""
    from lab import LabError
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LabError(f"{flag} {out} is a file; give a folder")
    if not create:
        return out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LabError(f"{flag} {out}: cannot create the folder ({e.strerror})") from None
    return out


def check_replaceable(out: Path, markers: tuple[str, ...], what: str) -> None:
    """A folder a finished job will replace whole must be missing, empty, or an earlier output of that job
    (one of `markers` inside): else one LabError, before any work (`--out .` would be deleted)."""
    from lab import LabError
    out = out_dir(out, create=False)
    if out.is_dir() and any(out.iterdir()) and not any((out / m).exists() for m in markers):
        held = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise LabError(f"--out {out} holds {held}, not an earlier {what}, and a finished run replaces the whole "
                       f"folder: choose a new folder (nothing was done)")


def inside(folder: str | Path, files: list[Path]) -> list[Path]:
    """The files that resolve inside `folder`, in order; each link that leads out of it is named in a warning and
    left out: a folder someone else packed can hold `leak.txt -> ~/.ssh/id_rsa`, whose text would go to the
    endpoint (`lab translate`, `lab c2rust batch`). Links that stay inside are followed."""
    top, kept = Path(folder).resolve(), []
    for f in files:
        if f.resolve().is_relative_to(top):
            kept.append(f)
        else:
            warn(f"{f}: a link to {f.resolve()}, outside {folder}; skipped")
    return kept


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """A regular file's bytes; missing, a folder, a device or pipe, over MAX_INPUT_BYTES or unreadable is one
    LabError naming the file."""
    import stat

    from lab import LabError
    p = Path(path)
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise LabError(f"{what} {p} is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise LabError(f"{what} {p} is not a regular file (a device, pipe or socket)")
        if st.st_size > MAX_INPUT_BYTES:
            raise LabError(f"{what} {p} is {st.st_size:,} bytes, over the {MAX_INPUT_BYTES:,}-byte limit for an "
                           f"input read whole")
        return p.read_bytes()
    except FileNotFoundError:
        raise LabError(f"{what} {p} does not exist") from None
    except OSError as e:
        raise LabError(f"{what} {p}: {e.strerror}") from None


def read_text(path: str | Path, what: str = "file") -> str:
    """A UTF-8 text file (a BOM is dropped), or UTF-16 with its BOM (Excel's "Unicode text" export of a
    glossary sheet); a missing, unreadable or undecodable file is one LabError naming the file and, for bad
    bytes, the line."""
    from lab import LabError
    p = Path(path)
    data = read_bytes(p, what)
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    try:
        text = data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as e:
        if utf16:
            raise LabError(f"{p}: starts with a UTF-16 byte-order mark but does not decode as UTF-16; save the "
                           f"{what} as UTF-8") from None
        line = data[:e.start].count(b"\n") + 1
        raise LabError(f"{p}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); save the "
                       f"{what} as UTF-8") from None
    nul = text.find("\x00")
    if nul >= 0:  # valid UTF-8, but no text format here has NUL: a binary file given by mistake
        line = text[:nul].count("\n") + 1
        raise LabError(f"{p}:{line}: a NUL byte: looks binary, not a {what} in UTF-8 text")
    return text


def parse_json(text: str | bytes) -> Any:
    """json.loads where nesting too deep to parse (100,000 `[`: RecursionError) is a ValueError like any other
    malformed JSON, so every reader's "not valid JSON" line covers it."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply to parse") from None


def read_json(path: str | Path, what: str = "file", fix: str = "") -> Any:
    """A UTF-8 JSON file, parsed; unreadable or malformed is one LabError naming the file, the place and `fix`."""
    from lab import LabError
    try:
        return parse_json(read_text(path, what))
    except ValueError as e:
        raise LabError(f"{path}: not valid JSON ({e})" + (f"; {fix}" if fix else "")) from None


def read_jsonl(path: str | Path, what: str = "file") -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line; missing file or bad JSON name file:line."""
    from lab import LabError
    p = Path(path)
    for n, line in enumerate(read_text(p, what).splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, parse_json(line)
        except ValueError as e:
            raise LabError(f"{p}:{n}: malformed JSON ({getattr(e, 'msg', e)})") from None
