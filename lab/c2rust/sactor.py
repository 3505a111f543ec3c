"""SACToR interop: the [VLLM] block of a sactor.toml pointed at a running `lab serve`."""

from __future__ import annotations

import os
from pathlib import Path

from lab import paths
from lab.client import Client


def sactor_config(client: Client, temperature: float = 0.0) -> str:
    """TOML for SACToR's VLLM backend: model from /v1/models, max_tokens half of the server's max_model_len."""
    key = client.api_key
    return (f'# written by `lab c2rust sactor-config` for {client.base_url}\n'
            f'[general]\nllm = "VLLM"\n\n[VLLM]\nbase_url = "{client.base_url}"\napi_key = "{key}"\n'
            f'model = "{client.model}"\n'
            f'max_tokens = {client.max_model_len // 2}  # half the context: the rest holds the prompt\n'
            f'temperature = {temperature}\n')


def write(text: str, dest: str | Path) -> Path:
    """Write the config readable by its owner only (it may hold the API key)."""
    dest = Path(dest)
    paths.atomic_write(dest, text)
    os.chmod(dest, 0o600)
    return dest
