"""SACToR interop: the [VLLM] block of a sactor.toml pointed at a running `lab serve`."""

from __future__ import annotations

from pathlib import Path

from lab import LabError, paths
from lab.client import Client

MARK = "# written by `lab c2rust sactor-config`"


def sactor_config(client: Client, temperature: float = 0.0) -> str:
    """TOML for SACToR's VLLM backend: model from /v1/models, max_tokens half of the server's max_model_len."""
    key = client.api_key
    return (f'{MARK} for {client.base_url}\n'
            f'[general]\nllm = "VLLM"\n\n[VLLM]\nbase_url = "{client.base_url}"\napi_key = "{key}"\n'
            f'model = "{client.model}"\n'
            f'max_tokens = {client.max_model_len // 2}  # half the context: the rest holds the prompt\n'
            f'temperature = {temperature}\n')


def write(text: str, dest: str | Path) -> Path:
    """Write the config readable by its owner only, from its first byte (it may hold the API key); a file this
    command did not write is kept: a sactor.toml holds SACToR's other sections too."""
    dest = Path(dest)
    if dest.exists() and not paths.read_text(dest, "config").startswith(MARK):
        raise LabError(f"{dest} exists and was not written by this command (its other sections would be lost): "
                       f"print the block without -o and paste it in, or name a new file")
    paths.atomic_write(dest, text, mode=0o600)  # the rename keeps the new file's mode, also over an old file
    return dest
