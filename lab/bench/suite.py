"""The project's own serving benchmark: scaling and lab client vs a bare openai loop, in one run."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from lab import config
from lab.bench.metrics import failures, workload
from lab.bench.roofline import (
    above_ceiling,
    for_profile,
    paired_shares,
    pct_of_ceiling,
    pooled,
    quiet_read,
    share,
)
from lab.measure import bare_loop, medians


@dataclass(frozen=True)
class SuiteSettings:
    """What `lab bench suite` measures; its options show these defaults."""

    num_prompts: int = 64
    output_len: int = 128
    concurrency: int = 32
    repeats: int = 5                   # interleaved rounds; ratios use medians
    engines: bool = False              # also the roofline share and the ratio over transformers batch 1


def suite(profile: str | None = None, settings: SuiteSettings | None = None, **overrides: Any) -> dict[str, Any]:
    """The project's own serving benchmark: ratios of variants measured interleaved in one run.

    A shared 2-core VM is noisy (the same c16 loop measured 2.4k-4.6k tok/s within a minute), so
    variants run interleaved, every measurement is kept, and ratios use each variant's median of
    `repeats`. High-concurrency runs that are all slow mean the client was starved: see
    set_autogroup_nice in lab/procs.py.
    """
    st = dataclasses.replace(settings or SuiteSettings(), **overrides)
    num_prompts, output_len, concurrency, repeats = st.num_prompts, st.output_len, st.concurrency, st.repeats
    prof = config.load(profile)
    client = config.client(prof.name)
    prompts = workload(num_prompts, 1)
    client.chat(prompts[0], max_tokens=4)  # warm-up
    seen: dict[str, list[float]] = {}

    def lab_run(c: int, stream: bool = False) -> float:
        row = client.timed_batch(prompts, c, stream, max_tokens=output_len, ignore_eos=True)
        note = failures(row["failed"], row["requests"], f"concurrency {c}", server=f"the server at {client.base_url}")
        if note:
            print(f"  warning: concurrency {c}{note}", flush=True)
        return row["output_tok_s"]
    hi = f"c{concurrency}"
    bare_reqs = [([{"role": "user", "content": p}], output_len) for p in prompts]
    reads: list[dict[str, Any]] = []  # CPU bandwidth, read just before each round's batch-1 decode
    for _ in range(repeats):  # interleaved so drift in machine load hits every variant alike
        if st.engines and prof.device != "cuda":
            reads.append(quiet_read(prof.serve.get("env")))
        seen.setdefault("lab_c1", []).append(lab_run(1))
        seen.setdefault(f"lab_{hi}", []).append(lab_run(concurrency))
        seen.setdefault(f"lab_{hi}_stream", []).append(lab_run(concurrency, stream=True))
        toks, wall = asyncio.run(bare_loop(client.base_url, client.api_key, client.model, bare_reqs,
                                            concurrency, {"ignore_eos": True}))
        seen.setdefault(f"bare_openai_{hi}", []).append(toks / wall)
        print(f"  round {len(seen['lab_c1'])}/{repeats}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in seen.items())
              + " tok/s", flush=True)  # minutes of work: say how far it is
    med = medians(seen)
    res = {"tok_s_median": med, "tok_s_all": {k: [round(x, 1) for x in v] for k, v in seen.items()},
           "scaling": round(med[f"lab_{hi}"] / med["lab_c1"], 2),
           "lab_vs_bare": round(med[f"lab_{hi}"] / med[f"bare_openai_{hi}"], 3)}
    if st.engines:
        res.update(_against_engines(prof, prompts, output_len, seen["lab_c1"], med[f"lab_{hi}"], reads))
    return res


def _against_engines(prof: config.Profile, prompts: list[str], output_len: int, c1: list[float],
                     hi: float, reads: list[dict[str, Any]]) -> dict[str, Any]:
    """Server batch-1 decode as a share of the bandwidth roofline (on CPU each round's decode against the
    bandwidth read beside it, the median of those shares), and server high concurrency over the fastest correct
    transformers configuration at batch 1 (a short run: it is the slow one)."""
    from lab.bench import engines as eng
    roof = for_profile(prof, prompts, output_len, pooled(reads) if reads else None)
    hf = eng.best_hf_b1(prof, prompts[:2], min(output_len, 32))
    hf_b1 = hf["best"]["tok_s"]
    return {"roofline": roof, "hf_b1": hf, "hf_b1_tok_s": hf_b1, **b1_share(c1, roof),
            "server_hi_vs_hf_b1": round(hi / hf_b1, 1) if hf_b1 else None}


def b1_share(c1: list[float], roof: dict[str, Any]) -> dict[str, Any]:
    """The batch-1 share of the ceiling: the median of the rounds' paired shares where each round read its own
    bandwidth, else the median decode over the one ceiling; a share over 100% is "above", never a number."""
    import numpy as np  # at first use: `lab` starts without it (test_cli)
    rounds = (roof.get("bandwidth") or {}).get("rounds_gbs")
    if rounds and roof.get("step_bytes"):
        shares = paired_shares(c1, rounds, roof["step_bytes"])
        mid = float(np.median(shares))
        return {"server_b1_pct_of_roofline": share(mid), "server_b1_above_roofline": mid > 100,
                "server_b1_pct_rounds": shares}
    mid = float(np.median(c1))
    return {"server_b1_pct_of_roofline": pct_of_ceiling(mid, 1, roof),
            "server_b1_above_roofline": above_ceiling(mid, 1, roof)}
