"""Build C references (gcc) and Rust translations: plain rustc, or cargo offline when crates are used.

Crates come from a local directory source (Debian's librust-*-dev packages put them in
/usr/share/cargo/registry; override with $LAB_CARGO_REGISTRY): crates.io is not reachable here. One
shared cargo target folder means libc is compiled once (~4 s), then each build takes ~1 s.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab import LabError, paths

COMPILE_TIMEOUT_S = 180
ERROR_LINES = 30         # compiler lines kept for the report and the feedback prompt
REGISTRY = "/usr/share/cargo/registry"
_BUILTIN = {"std", "core", "alloc", "crate", "self", "super", "proc_macro", "test"}


@dataclass
class Build:
    """A compiled program, or why not."""

    ok: bool
    errors: str = ""
    binary: Path | None = None
    crates: tuple[str, ...] = ()


def registry() -> Path:
    """The local crate folder cargo builds against."""
    return Path(os.environ.get("LAB_CARGO_REGISTRY", REGISTRY))


def available_crates() -> dict[str, str]:
    """name -> version of every crate in the local registry (newest version wins)."""
    out: dict[str, str] = {}
    if registry().is_dir():
        for d in sorted(registry().iterdir()):
            m = re.fullmatch(r"(.+)-(\d+\.\d+\.\d+.*)", d.name)
            if m and (d / "Cargo.toml").exists():
                out[m.group(1).replace("-", "_")] = m.group(2)
    return out


def crates_used(source: str) -> list[str]:
    """External crates a Rust source names (`extern crate x`, `use x::`, `x::` paths of known crates)."""
    code = re.sub(r"//[^\n]*|/\*.*?\*/|\"(\\.|[^\"\\])*\"", "", source, flags=re.S)
    named = set(re.findall(r"\bextern\s+crate\s+(\w+)", code)) | set(re.findall(r"\buse\s+(\w+)\s*::", code))
    named |= {c for c in available_crates() if re.search(rf"\b{c}::", code)}
    # `use Color::*` names a local enum, not a crate
    local = set(re.findall(r"\b(?:mod|enum|struct|trait|type|union)\s+(\w+)", code))
    return sorted(named - _BUILTIN - local)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[bool, str]:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S,
                           env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return False, f"compiler timed out after {COMPILE_TIMEOUT_S}s"
    except FileNotFoundError as e:
        raise LabError(f"{e.filename} not found: install it (apt install gcc rustc cargo) or rustup") from None
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.lstrip().startswith(
        ("Compiling ", "Finished ", "Blocking ", "Checking "))]
    return r.returncode == 0, "\n".join(lines[:ERROR_LINES])


def tool(name: str) -> str:
    """Path of rustc/cargo/gcc, or one clear line on how to install it."""
    path = shutil.which(name) or str(Path.home() / ".cargo" / "bin" / name)
    if not Path(path).exists():
        raise LabError(f"{name} not found: install Rust and gcc with your package manager (apt install rustc "
                       f"cargo gcc) or rustup")
    return path


def build_c(source: str, work: Path) -> Build:
    """gcc -O1 in `work`."""
    (work / "prog.c").write_text(source)
    ok, err = _run([tool("gcc"), "-O1", "-o", "prog", "prog.c", "-lm"], work)
    return Build(ok, err, work / "prog" if ok else None)


def _cargo_home() -> Path:
    """A CARGO_HOME whose config replaces crates.io with the local directory source (nothing is fetched)."""
    home = paths.cache() / "cargo"
    cfg = home / "config.toml"
    text = (f'[source.crates-io]\nreplace-with = "local"\n\n[source.local]\ndirectory = "{registry()}"\n\n'
            f'[net]\noffline = true\n')
    if not cfg.exists() or cfg.read_text() != text:
        paths.atomic_write(cfg, text)
    return home


def _cargo_project(source: str, crates: list[str], folder: Path) -> tuple[str, dict[str, str]]:
    """A cargo project for `source` in folder/cargo: (package name, environment for cargo)."""
    have = available_crates()
    name = "prog_" + hashlib.sha256(source.encode()).hexdigest()[:12]  # unique in the shared target folder
    proj = folder / "cargo"
    (proj / "src").mkdir(parents=True, exist_ok=True)
    deps = "".join(f'{c} = "{have[c]}"\n' for c in crates)
    (proj / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                     f'[dependencies]\n{deps}')
    (proj / "src" / "main.rs").write_text(source)
    # shared target folder: dependencies compile once
    return name, {"CARGO_HOME": str(_cargo_home()), "CARGO_TARGET_DIR": str(paths.cache() / "cargo-target")}


def build_rust(source: str, work: Path, forbid_unsafe: bool = False) -> Build:
    """rustc for std-only sources; cargo --offline with the needed crates otherwise; -F unsafe_code on request."""
    crates = crates_used(source)
    forbid = ["-F", "unsafe_code"] if forbid_unsafe else []
    if not crates:
        (work / "main.rs").write_text(source)
        ok, err = _run([tool("rustc"), "--edition", "2021", "-O", *forbid, "-o", "prog", "main.rs"], work)
        return Build(ok, err, work / "prog" if ok else None)
    have = available_crates()
    missing = [c for c in crates if c not in have]
    if missing:
        return Build(False, f"crate(s) {', '.join(missing)} not available offline (local registry {registry()} "
                     f"has: {', '.join(sorted(have)) or 'none'}; Debian: apt install librust-<name>-dev)",
                     crates=tuple(crates))
    name, env = _cargo_project(source, crates, work)
    ok, err = _run([tool("cargo"), "rustc", "--offline", "--release", "--quiet", "--", *forbid], work / "cargo", env)
    release = Path(env["CARGO_TARGET_DIR"]) / "release"
    binary = None
    if ok and (release / name).exists():
        binary = work / "prog"
        shutil.copy2(release / name, binary)
    for f in release.glob(f"{name}*"):  # our own outputs only; shared deps stay
        f.unlink(missing_ok=True)
    return Build(ok and binary is not None, err, binary, tuple(crates))


def clippy_warnings(source: str) -> int | None:
    """Clippy warnings of a program (clippy-driver, or `cargo clippy` when it uses crates); None without clippy."""
    crates = crates_used(source)
    with tempfile.TemporaryDirectory(prefix="lab-clippy-") as tmp:
        work = Path(tmp)
        if not crates:
            driver = shutil.which("clippy-driver") or str(Path.home() / ".cargo" / "bin" / "clippy-driver")
            if not Path(driver).exists():
                return None
            (work / "main.rs").write_text(source)
            r = subprocess.run([driver, "--edition", "2021", "-o", "prog", "main.rs"], cwd=work,
                               capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
            return _count_warnings(r.stderr)
        if any(c not in available_crates() for c in crates):
            return None
        _, env = _cargo_project(source, crates, work)
        r = subprocess.run([tool("cargo"), "clippy", "--offline", "--release"], cwd=work / "cargo",
                           capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, env={**os.environ, **env})
        return _count_warnings(r.stderr) if r.returncode == 0 else None


def _count_warnings(stderr: str) -> int:
    return len(re.findall(r"^warning: (?!\d+ warnings? emitted|.*generated \d+ warning)", stderr, flags=re.M))
