"""Offline engines for benchmarks, each run in its own process: transformers generate, vLLM LLM.generate."""

from __future__ import annotations

import os
import time
from typing import Any

from lab import LabError, isolate, profile_checks
from lab.measure import peak_memory
from lab.messages import need_chat_template


def hf_generate(model: str, prompts: list[str], batch: int, output_len: int, dtype: str = "auto",
                threads: int = 0) -> dict[str, Any]:
    """transformers generate, greedy, exactly output_len new tokens per prompt, in batches (left padding);
    threads > 0 sets PyTorch's intra-op threads."""
    return hf_runs(model, [{"prompts": prompts, "batch": batch, "output_len": output_len, "dtype": dtype,
                            "threads": threads}])["runs"][0]


def hf_runs(model: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several hf_generate runs (prompts, batch, output_len, dtype, threads) in one process, the model loaded once
    per dtype in turn: a process a run cost ~8 s each on 2 cores (torch, transformers, the weights), four per
    `lab bench run`. Each run is timed after a one-token warm-up, so none pays for the process's first call."""
    import torch
    default_threads = torch.get_num_threads()
    tok = _tokenizer(model)
    loaded: tuple[str, Any] | None = None
    out = []
    for run in runs:
        dtype = run.get("dtype", "auto")
        if loaded is None or loaded[0] != dtype:
            loaded = None  # the previous dtype's weights go first: two copies of a large base need not fit
            loaded = (dtype, _model(model, dtype))
        torch.set_num_threads(run.get("threads") or default_threads)
        out.append(_generate(loaded[1], tok, run["prompts"], run["batch"], run["output_len"]))
    return {"runs": out}


def _tokenizer(model: str) -> Any:
    """The model's tokenizer, padding on the left (decoder-only: every row continues its own prompt)."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model)
    need_chat_template(tok, model, "the benchmark sends every prompt as a chat, as a server gets it")
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _model(model: str, dtype: str) -> Any:
    """The model in eval mode; on CUDA its weights spread over every GPU this process may use (a 32B bf16 base
    needs several)."""
    import torch
    from transformers import AutoModelForCausalLM
    torch_dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16,
                   "float16": torch.float16}[dtype]
    if torch.cuda.is_available():
        return AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, device_map="auto").eval()
    return AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).eval()


def _generate(m: Any, tok: Any, prompts: list[str], batch: int, output_len: int) -> dict[str, Any]:
    """One timed run of greedy generate over the prompts, `batch` at a time."""
    import torch
    device = str(m.device)
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts]

    def step(enc: Any, new_tokens: int) -> list[list[int]]:
        with torch.no_grad():
            # eos_token_id=None is vLLM's ignore_eos: EOS may be generated but does not stop the row
            # (min_new_tokens would instead forbid EOS and break token parity with vLLM).
            ids = m.generate(**enc, max_new_tokens=new_tokens, do_sample=False, eos_token_id=None,
                             pad_token_id=tok.pad_token_id)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return ids[:, enc["input_ids"].shape[1]:].tolist()

    def encode(chunk: list[str]) -> Any:
        return tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    step(encode(texts[:batch]), 1)  # warm-up
    token_ids: list[list[int]] = []
    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        enc = encode(texts[i:i + batch])
        tb = time.perf_counter()
        rows = step(enc, output_len)
        dt = time.perf_counter() - tb
        token_ids += rows
        lat += [dt] * len(rows)
    wall = time.perf_counter() - t0
    return {"engine": "hf", "batch": batch, "wall_s": wall, "token_ids": token_ids, "e2e": lat,
            "output_tokens": sum(len(t) for t in token_ids), **peak_memory()}


def vllm_generate(model: str, prompts: list[str], output_len: int, engine_args: dict[str, Any],
                  profile: str = "") -> dict[str, Any]:
    """vLLM offline engine (LLM.chat), greedy with ignore_eos, all prompts at once; engine_args come from
    config.offline_engine_args (the profile's parallelism, quantization, dtype and graph mode)."""
    if int(engine_args.get("tensor_parallel_size", 1)) == 1:  # in-process: no __main__ guard needed
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM, SamplingParams

    _tokenizer(model)  # a base model is one line here, not after vLLM has loaded it (LLM.chat needs a template)
    try:
        llm = LLM(model=model, **engine_args)
    except Exception as e:  # vLLM refusing the machine or the model (too little memory), not a bug in lab
        why = f"{type(e).__name__}: {e}".split("\n")[0]
        raise LabError(f"vLLM's offline engine did not start: {why}{profile_checks.flag_hint(why, profile)}") from None
    sp = SamplingParams(temperature=0.0, max_tokens=output_len, ignore_eos=True)
    msgs = [[{"role": "user", "content": p}] for p in prompts]
    t0 = time.perf_counter()
    outs = llm.chat(msgs, sp, use_tqdm=False)
    wall = time.perf_counter() - t0
    token_ids = [list(o.outputs[0].token_ids) for o in outs]
    return {"engine": "vllm", "batch": len(prompts), "wall_s": wall, "token_ids": token_ids,
            "e2e": [wall] * len(prompts), "output_tokens": sum(len(t) for t in token_ids), **peak_memory()}


AGREE_TOKENS = 8  # bf16 rounding may pick another token later on; a broken kernel differs from the start


def best_hf_b1(prof: Any, prompts: list[str], output_len: int, dtypes: tuple[str, ...] = ("float32", "bfloat16"),
               threads: tuple[int, ...] = ()) -> dict[str, Any]:
    """transformers at batch 1 in each dtype x thread count, and the fastest correct one: its first AGREE_TOKENS
    tokens of every prompt equal float32's (on CPUs without bf16 matmul kernels bf16 ran 1.1 tok/s for a 0.5B,
    a missing kernel, not what transformers can do)."""
    cores = len(os.sched_getaffinity(0))
    grid = [(d, t) for d in dtypes for t in (threads or sorted({cores, max(1, cores // 2)}, reverse=True))]
    done = run_isolated("hf_runs", isolate.pinned_env(prof), model=prof.model_path(),
                        runs=[{"prompts": prompts, "batch": 1, "output_len": output_len, "dtype": d, "threads": t}
                              for d, t in grid])["runs"]
    rows, ref = [], None
    for (dtype, t), r in zip(grid, done, strict=True):
        heads = [ids[:AGREE_TOKENS] for ids in r["token_ids"]]
        ref = ref if ref is not None or dtype != "float32" else heads
        rows.append({"dtype": dtype, "threads": t, "tok_s": round(r["output_tokens"] / r["wall_s"], 2),
                     "agrees_with_float32": ref is None or heads == ref})
    ok = [r for r in rows if r["agrees_with_float32"]] or rows
    return {"configs": rows, "best": max(ok, key=lambda r: r["tok_s"])}


def run_isolated(func: str, env: dict[str, str] | None = None, timeout: float = 1800, **kw: Any) -> dict[str, Any]:
    """Run hf_generate, hf_runs or vllm_generate in a fresh process, so memory (VRAM) is freed when it ends."""
    if func not in ("hf_generate", "hf_runs", "vllm_generate"):
        raise LabError(f"unknown engine function {func!r}")
    return isolate.run(f"lab.bench.engines:{func}", kw, env=env, timeout=timeout, quiet=True)
