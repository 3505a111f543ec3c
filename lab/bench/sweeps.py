"""transformers vs vLLM offline vs the vLLM server on one seeded workload, with roofline and parity."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import LabError, config, doctor, isolate, paths, pidfile, serve
from lab.bench import engines as eng
from lab.bench import light
from lab.bench.metrics import failures, parity, percentiles, summarize, workload
from lab.bench.plots import plot
from lab.bench.roofline import above_ceiling, for_profile, mark_ceiling, pct_of_ceiling, quiet_read, rebased
from lab.client import Client, Result

ENGINES = ("hf", "vllm", "server")


@dataclass(frozen=True)
class RunSettings:
    """What `lab bench run` measures; its options show these defaults."""

    engines: tuple[str, ...] = ENGINES
    concurrencies: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    num_prompts: int = 32
    output_len: int = 64
    hf_batch: int = 8                  # transformers batch size besides 1
    hf_prompts: int = 8                # transformers is the slow engine: fewer prompts
    seed: int = 0
    start_timeout: float = serve.READY_TIMEOUT_S
    keep_server: bool = False          # leave a server this run started running
    progress: bool = True


@dataclass(frozen=True)
class RateSettings:
    """What `lab bench rate` sweeps; its options show these defaults."""

    rates: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)
    num_prompts: int = 64
    output_len: int = 64
    slo_ttft_ms: float = 1000.0
    slo_tpot_ms: float = 100.0
    seed: int = 0


# Sized rates: multiples of the capacity the server sweep measured (its highest req/s, every slot busy). A quarter
# and a half of it show the unloaded service, twice it a queue that only grows, so the knee falls inside the sweep
# on any machine and model; fixed rates did not: at 4-32 req/s on 2 cores the 1.5B met no SLO and the toy met
# every one (2026-12-04). The lowest rate costs most: num_prompts / (capacity / 4) seconds.
SIZED_RATES = (0.25, 0.5, 1.0, 2.0)
# Sized service levels, against the server alone at its lowest concurrency: 4x its TTFT (room for a short queue),
# 2x its TPOT (a shared batch slows each sequence). The toy on 2 cores: 97, 56, 22 and 0% within them.
SIZED_TTFT, SIZED_TPOT = 4.0, 2.0
SIZED_FIELDS = ("rates", "slo_ttft_ms", "slo_tpot_ms")


def _two_digits(x: float) -> float:
    """x to two significant digits (0.5834 -> 0.58, 2456.6 -> 2500.0): a rate or SLO a reader can quote."""
    return float(f"{x:.2g}")


def _p50(row: dict[str, Any], key: str) -> Any:
    """row[key]["p50"], or None where the row has no such percentiles."""
    d = row.get(key)
    return d.get("p50") if isinstance(d, dict) else None


def sized(res: dict[str, Any], settings: RateSettings | None = None, **given: Any) -> RateSettings:
    """Rate-sweep settings: `settings` with `given` fields set, where rates and SLOs not given (or given empty or 0,
    notebook 02's defaults) are sized to the server `run` measured in `res` (SIZED_*)."""
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v or k not in SIZED_FIELDS}
    todo = [k for k in SIZED_FIELDS if k not in fixed]
    return dataclasses.replace(settings or RateSettings(), **{**(_sizes(res) if todo else {}), **fixed})


def _sizes(res: dict[str, Any]) -> dict[str, Any]:
    """Rates and SLOs from the server rows of `bench.run`'s result: capacity = its highest req/s."""
    def usable(r: Any) -> bool:  # a hand-edited or failed row is left out, not a crash
        return isinstance(r, dict) and r.get("engine") == "server" and not r.get("failed") and all(
            isinstance(v, int | float) and v > 0 for v in (r.get("req_s"), r.get("concurrency"),
                                                           _p50(r, "ttft_ms"), _p50(r, "tpot_ms")))
    srv = [r for r in res.get("runs", []) if usable(r)]
    if not srv:
        raise LabError("the results hold no server run that answered: size the rates from a `lab bench run` "
                       "whose engines include server, or give the rates and SLOs")
    low, cap = min(srv, key=lambda r: r["concurrency"]), max(r["req_s"] for r in srv)
    return {"rates": tuple(_two_digits(cap * f) for f in SIZED_RATES),
            "slo_ttft_ms": _two_digits(SIZED_TTFT * _p50(low, "ttft_ms")),
            "slo_tpot_ms": _two_digits(SIZED_TPOT * _p50(low, "tpot_ms"))}


def read_results(path: str | Path) -> dict[str, Any]:
    """A `lab bench run` results.json (or the folder that holds one); unreadable or not such a file is one line."""
    f = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
    res = paths.read_json(f, "results file", "give the results.json `lab bench run` wrote")
    if not isinstance(res, dict) or not isinstance(res.get("runs"), list):
        raise LabError(f"{f}: not the results.json of `lab bench run` (no list of runs)")
    return res


def _failures(res: list[Result], where: str) -> str:
    """metrics.failures of one run's results."""
    errors = [r.error for r in res if r.error]
    return failures(len(errors), len(res), where, errors[0] if errors else "")


def server_sweep(client: Client, prompts: list[str], concurrencies: list[int], output_len: int,
                 progress: bool = True, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Streamed requests through the OpenAI API at each concurrency, measured by the light client (lab.bench.light:
    timestamps only, parsed after the run); one warm-up request first. Rows go into `rows` as each concurrency
    ends, so a caller keeps them when a later one fails."""
    client.chat(prompts[0], max_tokens=4)
    rows = [] if rows is None else rows
    for c in concurrencies:
        res, wall = light.run(client.base_url, client.api_key, client.model, prompts, output_len, c)
        failed = _failures(res, f"concurrency {c}")
        rows.append({"engine": "server", **summarize(res, wall, c)})
        if progress:
            print(f"  server c={c:<3} {rows[-1]['output_tok_s']:>9.1f} tok/s  "
                  f"TTFT p50 {rows[-1]['ttft_ms']['p50']:.1f} ms  TPOT p50 {rows[-1]['tpot_ms']['p50']:.2f} ms{failed}",
                  flush=True)
    return rows


def rate_sweep(client: Client, prompts: list[str], rates: list[float], output_len: int, slo_ttft_ms: float,
               slo_tpot_ms: float, seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Poisson arrivals at each request rate (no concurrency cap): throughput, latencies and goodput under
    the TTFT/TPOT service levels, as vLLM's and GuideLLM's rate sweeps report them."""
    client.chat(prompts[0], max_tokens=4)
    rows = []
    for rate in rates:
        if progress:  # a low rate is a long wait: say how long before it starts
            print(f"  rate {rate:g} req/s: {len(prompts)} requests arriving over ~{len(prompts) / rate:,.0f} s",
                  flush=True)
        res, wall = light.run(client.base_url, client.api_key, client.model, prompts, output_len, rate=rate,
                              seed=seed)
        failed = _failures(res, f"{rate:g} req/s")
        row = {"engine": "server", "request_rate": rate, **summarize(res, wall, 0),
               **light.goodput(res, wall, slo_ttft_ms, slo_tpot_ms), "slo": {"ttft_ms": slo_ttft_ms,
                                                                              "tpot_ms": slo_tpot_ms}}
        rows.append(row)
        if progress:
            print(f"  rate {rate:>6g} req/s  {row['output_tok_s']:>9.1f} tok/s  goodput {row['goodput_req_s']:.2f} "
                  f"req/s ({row['met_slo_pct']:.0f}% within SLO){failed}", flush=True)
    return rows


def ratios(runs: list[dict[str, Any]], roof: dict[str, Any]) -> dict[str, Any]:
    """The ratios notebook 02 is about: server batch-1 decode against the roofline, the highest concurrency over
    concurrency 1, and over transformers at batch 1 (in its fastest correct configuration)."""
    srv = {r["concurrency"]: r["output_tok_s"] for r in runs if r["engine"] == "server"}
    hf1 = next((r["output_tok_s"] for r in runs if r["engine"] == "hf b=1"), None)
    out: dict[str, Any] = {}
    if 1 in srv:
        out["server_c1_pct_of_roofline"] = pct_of_ceiling(srv[1], 1, roof)
        out["server_c1_above_roofline"] = above_ceiling(srv[1], 1, roof)
    if srv and len(srv) > 1 and srv.get(1):
        out[f"server_c{max(srv)}_over_c1"] = round(srv[max(srv)] / srv[1], 2)
    if srv and hf1:
        out[f"server_c{max(srv)}_over_hf_b1"] = round(srv[max(srv)] / hf1, 2)
    return out


def rate_run(profile: str | None = None, settings: RateSettings | None = None, **overrides: Any) -> list[dict]:
    """The request-rate sweep of the profile's running server (`lab bench rate`)."""
    st = dataclasses.replace(settings or RateSettings(), **overrides)
    def positive(v: Any) -> bool:  # a notebook parameter may be anything: "lots" failed deep in the sweep
        return isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < float("inf")
    if not st.rates or not all(positive(r) for r in st.rates):
        raise LabError(f"--rates must be numbers > 0 req/s, got {list(st.rates)}")
    if not (positive(st.slo_ttft_ms) and positive(st.slo_tpot_ms)):
        raise LabError(f"the SLOs must be numbers > 0 ms, got TTFT {st.slo_ttft_ms!r}, TPOT {st.slo_tpot_ms!r}")
    client = config.client(profile)
    return rate_sweep(client, workload(st.num_prompts, st.seed), list(st.rates), st.output_len, st.slo_ttft_ms,
                      st.slo_tpot_ms, st.seed)


def validate(engines: list[str], concurrencies: list[int], output_len: int, max_model_len: int | None) -> None:
    """Reject bad input with one clear line."""
    bad = [e for e in engines if e not in ENGINES]
    if bad:
        raise LabError(f"unknown engine {bad[0]!r}; choose from {', '.join(ENGINES)}")
    if not concurrencies or min(concurrencies) < 1:
        raise LabError(f"concurrency must be >= 1, got {concurrencies}")
    if output_len < 2:
        raise LabError(f"output length must be >= 2 (TPOT needs two tokens), got {output_len}")
    if max_model_len and output_len >= max_model_len:
        raise LabError(f"output length {output_len} does not fit max_model_len {max_model_len}")


def _server_runs(prof: config.Profile, res: dict[str, Any], prompts: list[str], st: RunSettings,
                 out: Path | None, keep: bool) -> list[dict[str, Any]]:
    """The server sweep on the profile's server, started (or reused) here; a failed start keeps what was
    measured before it. On a CPU the bandwidth is read again beside the server, right before its batch-1 decode,
    and the server's rows are judged against that roofline (the read before transformers can be minutes old:
    on a shared 2-core VM it moved 50 -> 85 GB/s within minutes)."""
    try:
        srv = serve.start(prof, timeout=st.start_timeout, quiet=not st.progress, hold=not keep)
    except LabError as e:
        if out and res["runs"]:
            raise LabError(f"{e}; what was measured is kept in {Path(out) / 'results.json'}") from None
        raise
    res["server_started"] = srv.owned
    try:
        if prof.device != "cuda" and res["roofline"].get("bandwidth"):
            res["roofline_offline"] = res["roofline"]  # the ceiling of the transformers and offline rows
            res["roofline"] = rebased(res["roofline"], quiet_read(prof.serve.get("env")))
        rows: list[dict[str, Any]] = []
        failure: LabError | None = None
        try:
            server_sweep(srv.client(), prompts, list(st.concurrencies), st.output_len, st.progress, rows)
        except LabError as e:  # the server died mid-sweep: the concurrencies it answered are measurements
            failure = e
        mark_ceiling(rows, res["roofline"])
        if failure is None:
            return rows
        res["runs"] += rows
        if out and res["runs"]:
            _keep(res, out)
            raise LabError(f"{failure}; what was measured is kept in {Path(out) / 'results.json'}") from None
        raise failure
    finally:
        if not keep:
            serve.release(prof, quiet=True)


def _keep(res: dict[str, Any], out: Path | None) -> None:
    """results.json as it stands, after each engine: a later failure keeps what was measured."""
    if out:
        paths.atomic_write(Path(out) / "results.json", json.dumps(res, indent=1, ensure_ascii=False) + "\n")


def _free_for_offline(prof: config.Profile, st: RunSettings) -> bool:
    """Before any work: refuse a port another program holds; on a GPU stop a running lab server so transformers
    and the offline engine get its memory. Returns whether a server was running."""
    was_running = serve.status(prof)["running"]
    if "server" in st.engines and not was_running and serve.port_open(prof.host, prof.port):
        raise LabError(f"port {prof.port} is in use by another program; free it or set LAB_PORT")
    offline = "hf" in st.engines or "vllm" in st.engines
    if offline and prof.device == "cuda" and was_running:
        busy = pidfile.others(pidfile.read_pidfile(prof) or {})
        if busy:  # stopping it would fail their requests mid-run
            raise LabError(f"the {prof.name} server on port {prof.port} is in use by {pidfile.label(busy[0])}; the "
                           "offline engines need its GPU memory: wait for that run to end, or pass --engines server")
        if st.progress:
            print(f"  stopping the {prof.name} server for the offline engines; it is started again after", flush=True)
        serve.stop(prof, quiet=True)
    if offline:
        isolate.require_gpu_free(prof, "transformers and offline vLLM")
    return was_running


def _hf_runs(prof: config.Profile, res: dict[str, Any], prompts: list[str], st: RunSettings, tp: int,
             out: Path | None) -> list[list[int]]:
    """transformers at batch 1 and hf_batch, in its fastest correct dtype on a CPU; returns batch 1's tokens."""
    hf_model, model = res["hf_model"], res["model"]
    hf_dtype, hf_threads = (str(prof.serve.get("dtype", "auto")) if hf_model == model else "auto"), 0
    if prof.device == "cpu" and hf_model == model:  # the fair baseline: its fastest dtype
        pick = eng.best_hf_b1(prof, prompts[:1], min(st.output_len, 16), threads=(len(os.sched_getaffinity(0)),))
        res["hf_configs"], hf_dtype, hf_threads = pick["configs"], pick["best"]["dtype"], pick["best"]["threads"]
        if st.progress:
            print(f"  transformers runs in {hf_dtype} ({hf_threads} threads), the fastest correct of "
                  + ", ".join(f"{c['dtype']} {c['tok_s']} tok/s" for c in pick["configs"]), flush=True)
    batches = sorted({1, st.hf_batch})
    done = eng.run_isolated("hf_runs", isolate.pinned_env(prof, tp), model=hf_model,
                            runs=[{"prompts": prompts[:st.hf_prompts], "batch": b, "output_len": st.output_len,
                                   "dtype": hf_dtype, "threads": hf_threads} for b in batches])["runs"]
    for b, r in zip(batches, done, strict=True):
        row = {"engine": f"hf b={b}", "concurrency": b, "requests": st.hf_prompts, "wall_s": round(r["wall_s"], 3),
               "output_tokens": r["output_tokens"], "output_tok_s": round(r["output_tokens"] / r["wall_s"], 1),
               "dtype": hf_dtype, "e2e_ms": percentiles(r["e2e"]), "peak_rss_mb": r.get("peak_rss_mb"),
               "peak_vram_mb": r.get("peak_vram_mb")}
        res["runs"].append(row)
        if st.progress:
            print(f"  hf batch {b:<3} {row['output_tok_s']:>9.1f} tok/s", flush=True)
    _keep(res, out)
    return done[0]["token_ids"]


def _vllm_run(prof: config.Profile, res: dict[str, Any], prompts: list[str], st: RunSettings, tp: int,
              out: Path | None) -> list[list[int]]:
    """vLLM's offline engine on every prompt at once; returns its tokens for the prompts transformers ran."""
    # the server's environment too (its KV cache space, its cores): a profile that sets VLLM_CPU_KVCACHE_SPACE
    # and no gpu_memory_utilization started a server, then an offline engine that wanted 0.92 of all RAM
    r = eng.run_isolated("vllm_generate", {**config.serve_env(prof), **isolate.pinned_env(prof, tp)},
                         model=res["model"], prompts=prompts, output_len=st.output_len,
                         engine_args=config.offline_engine_args(prof), profile=prof.name)
    res["runs"].append({"engine": "vllm offline", "concurrency": len(prompts), "requests": len(prompts),
                        "wall_s": round(r["wall_s"], 3), "output_tokens": r["output_tokens"],
                        "output_tok_s": round(r["output_tokens"] / r["wall_s"], 1),
                        "peak_rss_mb": r.get("peak_rss_mb"), "peak_vram_mb": r.get("peak_vram_mb")})
    _keep(res, out)
    if st.progress:
        print(f"  vllm offline {res['runs'][-1]['output_tok_s']:>9.1f} tok/s", flush=True)
    return r["token_ids"][:st.hf_prompts]


def run(profile: str | None = None, settings: RunSettings | None = None, out: Path | None = None,
        **overrides: Any) -> dict[str, Any]:
    """The whole comparison on any profile; writes results.json (and plots) to `out` when given.

    The engines run in order, each in its own process: transformers, the offline engine, then the server,
    started here when none runs (stopped at the end unless keep_server; res["server_started"] says). On a GPU a
    running lab server is stopped first, so the offline engines get the memory, and started again after.
    `overrides` replace fields of `settings` (run(profile, engines=("server",)))."""
    st = dataclasses.replace(settings or RunSettings(), **overrides)
    st = dataclasses.replace(st, concurrencies=tuple(sorted(set(st.concurrencies))))
    prof = config.load(profile)
    validate(list(st.engines), list(st.concurrencies), st.output_len, prof.serve.get("max_model_len"))
    if out:
        out = paths.out_dir(out, create=False)  # a file named by --out fails now, not after minutes of measuring
    was_running = _free_for_offline(prof, st)  # a held port fails here, before seconds of bandwidth reads
    prompts = workload(st.num_prompts, st.seed)
    roof = for_profile(prof, prompts, st.output_len)
    tp = roof["tensor_parallel"]
    res: dict[str, Any] = {"profile": prof.name, "model": prof.model_path(), "served_name": prof.served_name,
                           "seed": st.seed, "num_prompts": st.num_prompts, "output_len": st.output_len,
                           "env": doctor.environment(), "command": shlex.join(sys.argv), "roofline": roof,
                           "runs": [], "hf_model": prof.role("hf")}  # AWQ/FP8: the unquantized base runs in hf
    tokens = {}
    if "hf" in st.engines:
        tokens["hf"] = _hf_runs(prof, res, prompts, st, tp, out)
    if "vllm" in st.engines:
        tokens["vllm"] = _vllm_run(prof, res, prompts, st, tp, out)
    mark_ceiling(res["runs"], roof)
    if "server" in st.engines:
        res["runs"] += _server_runs(prof, res, prompts, st, out, st.keep_server or was_running)
    res["ratios"] = ratios(res["runs"], res["roofline"])
    if len(tokens) == 2 and res["hf_model"] == res["model"]:  # parity means the same checkpoint
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(res["model"])
        res["parity"] = parity(tokens["hf"], tokens["vllm"], tok.decode)
    if out:
        _keep(res, out)
        plot(res, Path(out))
    return res
