"""Build C references (gcc) and Rust translations: plain rustc, or cargo offline when crates are used.

Every compiler runs inside the sandbox (lab.c2rust.sandbox), as the test programs do: code can act at
compile time (`include_str!("/etc/shadow")`, `include!`, `#[path]`, `env!`, a crate's build script), so the
compiler sees only the case's folder, the toolchain (rustup's sysroot, read-only) and the offline crate
registry, with no network, no environment of the caller's, its own uid and limits.

Crates come from a local directory source (Debian's librust-*-dev packages put them in
/usr/share/cargo/registry; override with $LAB_CARGO_REGISTRY): crates.io is not reachable here. Cargo's
home and target folder live in the case's folder, so nothing is shared between cases: a program that uses
libc compiles libc too (~3 s more).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lab import LabError
from lab.c2rust import sandbox

COMPILE_TIMEOUT_S = 180
ERROR_LINES = 30         # compiler lines kept for the report and the feedback prompt
# ... and their width: a failed link prints the linker's whole command line (`= note: "cc" "-m64" ...`, 1,500+
# characters) as one line, which took prompt room from the error's own lines
ERROR_LINE_CHARS = 300
REGISTRY = "/usr/share/cargo/registry"
MISSING_CRATE = "not available offline"  # the words of a build that names a crate the registry lacks
_BUILTIN = {"std", "core", "alloc", "crate", "self", "super", "proc_macro", "test"}


@dataclass
class Build:
    """A compiled program, or why not."""

    ok: bool
    errors: str = ""
    binary: Path | None = None
    crates: tuple[str, ...] = ()
    source: str = ""              # what was compiled (with the compiler's fixes, when asked to apply them)
    added_imports: tuple[str, ...] = ()
    applied_fixes: tuple[str, ...] = ()  # rustc's machine-applicable suggestions applied, by their help line


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


# A Rust source's comments and strings, which searches for code skip. `//[^\n]*`, not `//.*`: under re.S a line
# comment took the rest of the file; an unclosed /* runs to the end, as rustc reads it (`.*?\*/` alone searched to
# the end from every "/*")
COMMENTS_AND_STRINGS = re.compile(r"//[^\n]*|/\*.*?(?:\*/|\Z)|\"(?:\\.|[^\"\\])*\"", re.S)


def code_only(source: str) -> str:
    """`source` without its comments and string literals."""
    return COMMENTS_AND_STRINGS.sub("", source)


def crates_used(source: str) -> list[str]:
    """External crates a Rust source names (`extern crate x`, `use x::`, `x::` paths of known crates)."""
    code = code_only(source)
    named = set(re.findall(r"\bextern\s+crate\s+(\w+)", code)) | set(re.findall(r"\buse\s+(\w+)\s*::", code))
    named |= {c for c in available_crates() if re.search(rf"\b{c}::", code)}
    # `use Color::*` names a local enum, not a crate
    local = set(re.findall(r"\b(?:mod|enum|struct|trait|type|union)\s+(\w+)", code))
    return sorted(named - _BUILTIN - local)


def rendered(text: str, diags: list[dict[str, Any]] | None = None) -> str:
    """rustc's --error-format=json output as the text it would have printed (each diagnostic's `rendered`),
    the diagnostics themselves into `diags`; a line that is not a diagnostic (a linker's) is kept as it is."""
    out = []
    for ln in text.splitlines():
        try:
            d = json.loads(ln) if ln.startswith("{") else None
        except ValueError:  # the last line of output cut at the sandbox's cap
            out.append(f"(compiler output cut at {sandbox.OUTPUT_BYTES >> 10} KiB)")
            continue
        if not isinstance(d, dict):
            out.append(ln)
            continue
        if diags is not None:
            diags.append(d)
        if d.get("rendered"):
            out.append(str(d["rendered"]).rstrip("\n"))
    return "\n".join(out)


def _run(cmd: list[str], work: Path, env: dict[str, str] | None = None,
         readable: tuple[Path, ...] = (), full: list[str] | None = None,
         diags: list[dict[str, Any]] | None = None) -> tuple[bool, str]:
    """A compiler command in the sandbox, in `work`: (succeeded, its first ERROR_LINES lines of stderr); the
    whole output goes to `full` when given. With --error-format=json in `cmd` the text is the rendered one
    and the parsed diagnostics go to `diags`."""
    out = sandbox.run(cmd, work, cpu_s=COMPILE_TIMEOUT_S, wall_s=COMPILE_TIMEOUT_S, limits=sandbox.BUILD,
                      readable=readable, env=env)
    if out.timed_out:
        return False, f"compiler timed out after {COMPILE_TIMEOUT_S}s"
    text = (out.stderr + out.stdout).decode("utf-8", "replace")
    if "--error-format=json" in cmd:
        text = rendered(text, diags)
    if full is not None:
        full.append(text)
    lines = [ln if len(ln) <= ERROR_LINE_CHARS else ln[:ERROR_LINE_CHARS] + " [...]" for ln in text.splitlines()
             if ln.strip() and not ln.lstrip().startswith(
                 ("Compiling ", "Finished ", "Blocking ", "Checking ", "Locking ", "Adding "))]
    return out.code == 0, "\n".join(errors_first(lines)[:ERROR_LINES])


DIAGNOSTIC = re.compile(r"^(error|warning)(\[\w+\])?:")
SUMMARY = re.compile(r"^(warning: .*\d+ warnings? emitted|error: aborting due to|warning: `.*` \(bin .*\) generated)")


def errors_first(lines: list[str]) -> list[str]:
    """Compiler output with every error's block before any warning's (an `unused import` warning printed first
    was the line shown and pushed the error out of the first 30 lines); summary lines dropped."""
    blocks: list[list[str]] = []
    for ln in lines:
        if SUMMARY.match(ln):
            continue
        if DIAGNOSTIC.match(ln) or not blocks:
            blocks.append([ln])
        else:
            blocks[-1].append(ln)
    errors = [b for b in blocks if not b[0].startswith("warning")]
    return [ln for b in errors + [b for b in blocks if b[0].startswith("warning")] for ln in b]


def tool(name: str) -> str:
    """Path of rustc/cargo/gcc, or one clear line on how to install it."""
    path = shutil.which(name) or str(Path.home() / ".cargo" / "bin" / name)
    if not Path(path).exists():
        raise LabError(f"{name} not found: install Rust and gcc with your package manager (apt install rustc "
                       f"cargo gcc) or rustup")
    return path


@cache
def sysroot() -> Path:
    """The Rust toolchain's own folder (rustup's proxies in ~/.cargo/bin cannot run in the sandbox)."""
    try:
        r = subprocess.run([tool("rustc"), "--print", "sysroot"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise LabError("`rustc --print sysroot` did not answer within 60 s") from None
    if r.returncode != 0 or not r.stdout.strip():
        raise LabError(f"rustc does not run: {(r.stderr.strip().splitlines() or ['no output'])[-1]}")
    return Path(r.stdout.strip())


def rust_tool(name: str) -> tuple[str, tuple[Path, ...]]:
    """(the toolchain's own binary for rustc/cargo/clippy-driver, folders the sandbox must show for it)."""
    real = sysroot() / "bin" / name
    exe = str(real) if real.exists() else tool(name)
    return exe, tuple(p for p in (sysroot(), registry()) if p.is_dir())


def build_c(source: str, work: Path) -> Build:
    """gcc -O1 in `work` (sandboxed: `#include "/etc/shadow"` finds nothing)."""
    (work / "prog.c").write_text(source)
    ok, err = _run([tool("gcc"), "-O1", "-o", "prog", "prog.c", "-lm"], work)
    return Build(ok, err, work / "prog" if ok else None)


def _cargo_project(source: str, crates: list[str], folder: Path) -> tuple[str, dict[str, str]]:
    """A cargo project for `source` in folder/cargo, with its home and target folder beside it:
    (package name, environment for cargo). The home's config replaces crates.io with the local registry."""
    have = available_crates()
    name = "prog_" + hashlib.sha256(source.encode()).hexdigest()[:12]
    proj, home = folder / "cargo", folder / "cargo-home"
    (proj / "src").mkdir(parents=True, exist_ok=True)
    home.mkdir(exist_ok=True)
    deps = "".join(f'{c} = "{have[c]}"\n' for c in crates)
    (proj / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                     f'[dependencies]\n{deps}')
    (proj / "src" / "main.rs").write_text(source)
    (home / "config.toml").write_text(f'[source.crates-io]\nreplace-with = "local"\n\n[source.local]\n'
                                      f'directory = "{registry()}"\n\n[net]\noffline = true\n')
    return name, {"CARGO_HOME": str(home), "CARGO_TARGET_DIR": str(proj / "target"), "RUSTC": rust_tool("rustc")[0]}


# rustc's own suggestion for a name that is not in scope, when it names exactly one item:
#   help: consider importing this function        /  help: trait `Write` which provides `write_all` ... import it
#     |
#   1 + use std::env::args;
SUGGESTED_USE = re.compile(r"^\s*\d+\s*\+\s*(use [\w:]+(?:::\{[\w:, ]+\})?;)\s*$")
FIX_PASSES = 3


def suggested_imports(output: str) -> list[str]:
    """The `use` lines rustc suggests where a help names a single item to import (several candidates: none)."""
    found: list[str] = []
    for block in re.split(r"\n(?=(?:error|warning)(?:\[\w+\])?:)", output):
        for helper in re.split(r"\n(?=help: )", block)[1:]:
            if "import" not in helper.splitlines()[0]:
                continue
            uses = [m.group(1) for ln in helper.splitlines() if (m := SUGGESTED_USE.match(ln))]
            if len(uses) == 1 and uses[0] not in found:
                found.append(uses[0])
    return found


def unclashing(use: str, source: str) -> str:
    """`use a::Name;` as `use a::Name as _;` where another import already binds `Name`: rustc names a trait to
    import for its methods (std::io::Write for `flush`), and the 1.5B had imported std::fmt::Write (E0252)."""
    m = re.fullmatch(r"use ([\w:]+)::(\w+);", use)
    if m and re.search(rf"^\s*(?:pub\s+)?use [^;]*\b{m.group(2)}\b[^;]*;", source, re.M):
        return f"use {m.group(1)}::{m.group(2)} as _;"
    return use


def with_imports(source: str, uses: list[str]) -> str:
    """`uses` added after the inner attributes (#![...]) at the top of a source."""
    lines = source.splitlines(keepends=True)
    at = 0
    while at < len(lines) and (lines[at].startswith("#![") or not lines[at].strip()):
        at += 1
    return "".join(lines[:at]) + "".join(u + "\n" for u in uses) + "".join(lines[at:])


def machine_fixes(diagnostics: list[dict[str, Any]]) -> list[tuple[int, int, str, str]]:
    """(byte start, byte end, replacement, help) of every MachineApplicable suggestion rustc made for an error in
    main.rs, as `cargo fix` / rustfix would apply them (e.g. `mut ` before a C parameter that is assigned)."""
    edits = []

    def walk(d: dict[str, Any], msg: str) -> None:
        for sp in d.get("spans") or []:
            if (sp.get("suggestion_applicability") == "MachineApplicable" and sp.get("suggested_replacement")
                    is not None and sp.get("file_name") == "main.rs"):
                edits.append((sp["byte_start"], sp["byte_end"], sp["suggested_replacement"], msg))
        for c in d.get("children") or []:
            walk(c, c.get("message") or msg)
    for d in diagnostics:
        if d.get("level") == "error":
            walk(d, d.get("message", ""))
    return edits


def apply_fixes(source: str, edits: list[tuple[int, int, str, str]]) -> tuple[str, list[str]]:
    """`source` with the edits applied from the end (an edit overlapping one already applied is skipped);
    returns the new source and the help line of each applied edit."""
    data, done, last = source.encode(), [], None
    for start, end, text, msg in sorted(set(edits), reverse=True):
        if not 0 <= start <= end <= len(data) or (last is not None and end > last):
            continue
        data = data[:start] + text.encode() + data[end:]
        last = start
        done.append(f"{msg}: `{text.strip()}`" if text.strip() else msg)
    return data.decode("utf-8", "replace"), done[::-1]


def build_rust(source: str, work: Path, forbid_unsafe: bool = False, fix: bool = False) -> Build:
    """rustc for std-only sources; cargo --offline with the needed crates otherwise; -F unsafe_code on request.

    fix: apply what the compiler itself says to change and build again (up to FIX_PASSES times), as `cargo fix`
    does: the `use` lines its help names as the single candidate, and its MachineApplicable suggestions (rustc
    builds). A small model's most common errors then cost no round (0.5B: `use std::io` dropped while fixing
    another import; 1.5B: a C parameter assigned in the body, declared without `mut`, in 2 of 8 programs)."""
    added: list[str] = []
    applied: list[str] = []
    for _ in range(FIX_PASSES + 1):
        full: list[str] = []
        diags: list[dict[str, Any]] = []
        b = _build_rust_once(source, work, forbid_unsafe, full, diags)
        more = [u for u in suggested_imports(full[0] if full else "") if u not in added and u not in source]
        edits = machine_fixes(diags) if fix and not b.ok else []
        if b.ok or not fix or not (more or edits):
            b.added_imports, b.applied_fixes = tuple(added), tuple(applied)
            return b
        source, done = apply_fixes(source, edits)
        applied += done
        more = [u for u in more if u not in source]  # an edit may have added it already
        if more:
            more = [unclashing(u, source) for u in more]
            source = with_imports(source, more)
            added += more
    return b


def _build_rust_once(source: str, work: Path, forbid_unsafe: bool, full: list[str],
                     diags: list[dict[str, Any]] | None = None) -> Build:
    crates = crates_used(source)
    forbid = ["-F", "unsafe_code"] if forbid_unsafe else []
    if not crates:
        (work / "main.rs").write_text(source)
        rustc, readable = rust_tool("rustc")
        ok, err = _run([rustc, "--edition", "2021", "-O", *forbid, "--error-format=json", "-o", "prog", "main.rs"],
                       work, readable=readable, full=full, diags=diags)
        return Build(ok, err, work / "prog" if ok else None, source=source)
    have = available_crates()
    missing = [c for c in crates if c not in have]
    if missing:
        return Build(False, f"crate(s) {', '.join(missing)} {MISSING_CRATE} (local registry {registry()} "
                     f"has: {', '.join(sorted(have)) or 'none'}; Debian: apt install librust-<name>-dev)",
                     crates=tuple(crates), source=source)
    name, env = _cargo_project(source, crates, work)
    cargo, readable = rust_tool("cargo")
    ok, err = _run([cargo, "rustc", "--manifest-path", "cargo/Cargo.toml", "--offline", "--release", "--quiet",
                    "--", *forbid], work, env, readable, full)
    built = Path(env["CARGO_TARGET_DIR"]) / "release" / name
    binary = None
    if ok and built.exists():
        binary = work / "prog"
        shutil.copy2(built, binary)
    return Build(ok and binary is not None, err, binary, tuple(crates), source)


def clippy_warnings(source: str) -> int | None:
    """Clippy warnings of a program (clippy-driver, or `cargo clippy` when it uses crates), sandboxed like a
    build; None without clippy or when it fails."""
    crates = crates_used(source)
    if crates and any(c not in available_crates() for c in crates):
        return None
    driver, readable = rust_tool("clippy-driver")
    if not Path(driver).exists():
        return None
    full: list[str] = []
    with sandbox.workdir() as tmp:
        work = Path(tmp)
        if not crates:
            (work / "main.rs").write_text(source)
            _run([driver, "--edition", "2021", "-o", "prog", "main.rs"], work, readable=readable, full=full)
            return _count_warnings(full[0]) if full else None  # nothing when it timed out
        _, env = _cargo_project(source, crates, work)
        cargo, readable = rust_tool("cargo")
        ok, _ = _run([cargo, "clippy", "--manifest-path", "cargo/Cargo.toml", "--offline", "--release"], work,
                     {**env, "PATH": f"{sysroot() / 'bin'}:{sandbox.PATH}"}, readable, full)
        return _count_warnings(full[0]) if ok and full else None


def _count_warnings(stderr: str) -> int:
    return len(re.findall(r"^warning: (?!\d+ warnings? emitted|.*generated \d+ warning)", stderr, flags=re.M))
