"""The pipeline subcommands of `lab`: bench (more are added by their modules' issues)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC
from pathlib import Path

from lab.cli import _print_rows, command


def _ints(text: str) -> list[int]:
    from lab import LabError
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise LabError(f"expected comma-separated integers, got {text!r}") from None


@command
def bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="transformers vs vLLM (offline and server): tok/s, TTFT, TPOT, roofline")
    s = p.add_subparsers(dest="action", required=True)
    r = s.add_parser("run", help="measure the engines on a seeded workload; writes results.json and bench.png")
    r.add_argument("--profile", help="profile (default: $LAB_PROFILE or tiny)")
    r.add_argument("--engines", default="hf,vllm,server",
                   help="comma list of hf (transformers generate), vllm (offline LLM), server (OpenAI API)")
    r.add_argument("--concurrency", default="1,2,4,8,16,32", help="server concurrency sweep (default 1,2,4,8,16,32)")
    r.add_argument("--num-prompts", type=int, default=32, help="prompts per run (default 32)")
    r.add_argument("--output-len", type=int, default=64, help="tokens generated per prompt, EOS ignored (default 64)")
    r.add_argument("--hf-batch", type=int, default=8, help="transformers batch size besides batch 1 (default 8)")
    r.add_argument("--hf-prompts", type=int, default=8, help="prompts for transformers, slower (default 8)")
    r.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    r.add_argument("--out", default=None, help="output folder (default runs/bench-<UTC>)")
    st = s.add_parser("suite", help="the project's serving benchmark: scaling c32/c1, lab client vs bare openai")
    st.add_argument("--profile", help="profile whose server is running")
    st.add_argument("--num-prompts", type=int, default=64, help="requests per measurement (default 64)")
    st.add_argument("--output-len", type=int, default=128, help="tokens per request (default 128)")
    st.add_argument("--concurrency", type=int, default=32, help="high concurrency (default 32)")
    st.add_argument("--repeats", type=int, default=5, help="interleaved rounds; ratios use medians (default 5)")
    tb = s.add_parser("translate", help="translation pipeline vs a bare openai loop; concurrency 16 vs 1")
    tb.add_argument("--profile", help="profile whose server is running")
    tb.add_argument("--copies", type=int, default=8, help="copies of the sample texts (default 8: 168 chunks)")
    tb.add_argument("--chunk-tokens", type=int, default=32, help="chunk size: small makes many chunks (default 32)")
    tb.add_argument("--concurrency", type=int, default=16, help="high concurrency (default 16)")
    tb.add_argument("--repeats", type=int, default=5, help="interleaved rounds; ratios use medians (default 5)")

    def run(a: argparse.Namespace) -> int:
        from datetime import datetime

        from lab import LabError, paths
        from lab import bench as b
        for opt in ("copies", "concurrency", "repeats", "num_prompts", "output_len", "chunk_tokens"):
            if isinstance(getattr(a, opt, None), int) and getattr(a, opt) < 1:
                raise LabError(f"--{opt.replace('_', '-')} must be >= 1, got {getattr(a, opt)}")
        if a.action == "translate":
            res = b.translate_suite(a.profile, a.copies, a.chunk_tokens, a.concurrency, a.repeats)
            print(json.dumps(res, indent=1))
            print(f"scaling c{a.concurrency}/c1: {res['scaling']}x (target >= 5x); "
                  f"pipeline / bare openai loop: {res['pipeline_vs_bare']:.1%} (target >= 85%)")
            return 0
        if a.action == "suite":
            res = b.suite(a.profile, a.num_prompts, a.output_len, a.concurrency, a.repeats)
            print(json.dumps(res, indent=1))
            print(f"scaling c{a.concurrency}/c1: {res['scaling']}x (target >= 8x); "
                  f"lab client / bare openai loop: {res['lab_vs_bare']:.1%} (target >= 95%)")
            return 0
        out = Path(a.out) if a.out else paths.runs() / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        res = b.run(a.profile, tuple(x.strip() for x in a.engines.split(",")), tuple(_ints(a.concurrency)),
                    a.num_prompts, a.output_len, a.hf_batch, a.hf_prompts, a.seed, out)
        _print_rows([{"engine": r["engine"], "conc": r["concurrency"], "tok/s": r["output_tok_s"],
                      "% ceiling": r["pct_of_ceiling"]} for r in res["runs"]])
        if "parity" in res:
            print("parity hf vs vllm:", json.dumps(res["parity"], ensure_ascii=False))
        print(f"results: {out / 'results.json'}, plot: {out / 'bench.png'}")
        return 0
    p.set_defaults(func=run)


def _client(a: argparse.Namespace):
    """A client for --base-url/--model, else for the profile's running server."""
    from lab import config
    from lab.client import Client
    if getattr(a, "base_url", None):
        return Client(a.base_url, api_key=config.api_key() or "EMPTY", model=a.model)
    prof = config.load(a.profile, check_device=False)
    return Client(prof.base_url, api_key=config.api_key() or "EMPTY", model=a.model)


def _endpoint_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", help="use this profile's running server (default: $LAB_PROFILE or tiny)")
    p.add_argument("--base-url", help="any OpenAI-compatible endpoint instead, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", help="served model name (default: the server's first model)")


@command
def c2rust(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("c2rust", help="C -> Rust: check a translation, or translate with compile/test feedback")
    s = p.add_subparsers(dest="action", required=True)
    ck = s.add_parser("check", help="compile RUST_FILE with rustc and run the C program's test cases")
    ck.add_argument("c_file", help="the C program (built with gcc; must pass its own tests first)")
    ck.add_argument("tests", help="test task JSON: {\"cases\": [{args, stdin, expected_stdout, expected_exit_code}]}")
    ck.add_argument("rust_file", help="the Rust translation to check")
    ck.add_argument("--json", action="store_true", help="print the full report as JSON")
    tr = s.add_parser("translate", help="translate one program, feeding compiler errors and failing tests back")
    tr.add_argument("c_file", help="the C program")
    tr.add_argument("tests", help="its test task JSON")
    bt = s.add_parser("batch", help="translate every NAME/prog.c + NAME/tests.json below a folder")
    bt.add_argument("folder", help="folder of programs, e.g. data/c_to_rust")
    bt.add_argument("--concurrency", type=int, default=4, help="programs in flight (default 4)")
    for q in (tr, bt):
        _endpoint_opts(q)
        q.add_argument("--rounds", type=int, default=6, help="feedback rounds per stage (default 6, as SACToR)")
        q.add_argument("--idiomatic", action="store_true", help="then ask for idiomatic Rust (no unsafe) too")
        q.add_argument("--max-tokens", type=int, default=4096, help="cap on tokens per reply (default 4096)")
        q.add_argument("--out", help="folder for .rs, .json reports and per-program logs (default runs/c2rust-<UTC>)")

    def run(a: argparse.Namespace) -> int:
        from datetime import UTC, datetime

        from lab import c2rust as c
        from lab import c2rust_loop as loop
        from lab import paths
        if a.action == "check":
            ref, rep = c.check(a.c_file, a.tests, a.rust_file)
            print(json.dumps(rep.to_dict(), indent=1) if a.json else f"C reference: {ref.summary()}\n"
                  f"Rust: {rep.summary()}")
            if not a.json:
                for case in rep.cases:
                    if not case.passed and case.diff:
                        print(f"--- case {case.index} ({case.reason})\n{case.diff}")
            return 0 if rep.ok else 1
        out = Path(a.out) if a.out else paths.runs() / f"c2rust-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        client = _client(a)
        if a.action == "translate":
            r = loop.translate(a.c_file, a.tests, client, a.rounds, a.idiomatic, a.max_tokens, out)
            print(json.dumps(r, indent=1))
            return 0 if r["ok"] else 1
        res = loop.batch(a.folder, client, a.concurrency, a.rounds, a.idiomatic, a.max_tokens, out)
        _print_rows([{k: r.get(k) for k in ("program", "ok", "compiled", "passed", "total", "rounds", "tokens",
                                             "unsafe")} for r in res["rows"]])
        print(f"success {res['success_rate']:.0%}, compiled {res['compiled_rate']:.0%}, "
              f"mean rounds {res['mean_rounds']}, tokens {res['tokens']}; reports in {out}")
        return 0
    p.set_defaults(func=run)


@command
def finetune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="QLoRA: 4-bit base + LoRA on chat JSONL, eval before/after, save adapter")
    p.add_argument("--profile", help="profile whose model is the base (default: $LAB_PROFILE or tiny)")
    p.add_argument("--data", default="data/finetune", help="folder with train.jsonl and heldout.jsonl")
    p.add_argument("--out", help="output folder (default runs/finetune-<UTC>); replaced only when training ends")
    p.add_argument("--no-4bit", dest="four_bit", action="store_false", help="plain LoRA on a bf16 base instead")
    p.add_argument("--r", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--alpha", type=int, default=16, help="LoRA alpha (default 16)")
    p.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    p.add_argument("--target-modules", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                   help="comma list of linear layer names to adapt")
    p.add_argument("--steps", type=int, default=120, help="optimizer steps (default 120)")
    p.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3, for the tiny model)")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per step (default 8)")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (default 1)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for memory")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--merge", action="store_true", help="also save the adapter merged into a bf16 base")
    p.add_argument("--serve", metavar="NAME", help="then serve base + adapter with vLLM and compare answers")
    p.add_argument("--max-lora-rank", type=int, default=8, help="vLLM --max-lora-rank when serving (default 8)")

    def run(a: argparse.Namespace) -> int:
        from datetime import UTC, datetime

        from lab import config, paths, serve
        from lab import finetune as ft
        prof = config.load(a.profile, check_device=False)
        out = a.out or str(paths.runs() / f"finetune-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        if a.serve and a.r > a.max_lora_rank:
            from lab import LabError
            raise LabError(f"--r {a.r} is above --max-lora-rank {a.max_lora_rank}: vLLM could not load the adapter")
        cfg = ft.FinetuneConfig(model=prof.model_path(), train=f"{a.data}/train.jsonl",
                                heldout=f"{a.data}/heldout.jsonl", out=out, four_bit=a.four_bit, r=a.r,
                                alpha=a.alpha, dropout=a.dropout,
                                target_modules=[t.strip() for t in a.target_modules.split(",") if t.strip()],
                                steps=a.steps, lr=a.lr, batch_size=a.batch_size, grad_accum=a.grad_accum,
                                gradient_checkpointing=a.gradient_checkpointing, seed=a.seed, merge=a.merge)
        res = ft.train(cfg)
        print(f"loss {res['first_loss']} -> {res['last_loss']}; held-out loss {res['heldout_loss']['before']} -> "
              f"{res['heldout_loss']['after']}; chrF {res['chrf']['before']} -> {res['chrf']['after']}")
        print(f"adapter: {res['adapter']}")
        if a.serve:
            srv = ft.serve_with_adapter(a.profile, a.serve, res["adapter"], a.max_lora_rank)
            try:
                c = srv.client()
                for s in res["samples"][:3]:
                    base = c.chat(s["prompt"], max_tokens=48, thinking=False).text
                    tuned = c.chat(s["prompt"], model=a.serve, max_tokens=48, thinking=False).text
                    print(f"- {s['prompt'].splitlines()[-1]}\n  base:    {base}\n  adapter: {tuned}")
            finally:
                if srv.owned:
                    serve.stop(srv.profile)
        return 0
    p.set_defaults(func=run)


def _translate_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a .txt file or a folder of .txt files (UTF-8/16, Shift_JIS, EUC-JP detected)")
    p.add_argument("-o", "--out", required=True, help="output folder: NAME.zh.txt, logs/, the resume cache")
    p.add_argument("--profile", help="use this profile's server (default: $LAB_PROFILE or tiny)")
    p.add_argument("--base-url", action="append", default=[],
                   help="OpenAI-compatible endpoint instead; repeat to spread requests round robin")
    p.add_argument("--model", help="served model name (default: the server's first model)")
    p.add_argument("--glossary", help="TSV glossary: source<TAB>target[<TAB>note]")
    p.add_argument("--preface", help="instruction file (default data/translation/preface.txt)")
    p.add_argument("--fewshot", help="JSONL few-shot examples {source, target}")
    p.add_argument("--template", default="qwen", choices=["qwen", "sakura"], help="prompt template (default qwen)")
    p.add_argument("--context", type=int, default=0, help="previous source lines given as context (default 0)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--rps", type=float, help="at most this many request starts per second")
    p.add_argument("--attempts", type=int, default=3, help="tries per chunk before splitting it (default 3)")
    p.add_argument("--no-split", dest="split", action="store_false", help="mark a failing chunk failed, no split")
    p.add_argument("--chunk-tokens", type=int, default=512, help="max source tokens per chunk (default 512)")
    p.add_argument("--max-tokens", type=int, default=4096, help="cap on tokens per reply (default 4096)")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0: greedy)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    p.add_argument("--thinking", action="store_true", help="let Qwen3-style models think (off by default)")
    p.add_argument("--aozora", action="store_true", help="strip Aozora Bunko ruby 《》, ｜ and ［＃…］ notes")
    p.add_argument("--bilingual", action="store_true", help="also write NAME.bilingual.md (line-aligned)")
    p.add_argument("--epub", action="store_true", help="for a folder: also write book.epub, a chapter per file")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="reuse finished chunks from the cache (default on)")
    p.add_argument("--no-text-logs", dest="log_text", action="store_false",
                   help="keep source and target text out of logs/NAME.jsonl")


def translate_settings(a: argparse.Namespace):
    """Settings from parsed CLI options."""
    from lab import config, paths
    from lab.prompting import PromptSpec, load_fewshot, load_glossary
    from lab.translate import Settings
    if a.base_url:
        urls = a.base_url
    else:
        urls = [config.load(a.profile, check_device=False).base_url]
    preface = Path(a.preface) if a.preface else paths.data() / "translation" / "preface.txt"
    if not preface.exists():
        from lab import LabError
        raise LabError(f"preface file {preface} does not exist")
    spec = PromptSpec(preface=preface.read_text("utf-8").strip(), template=a.template,
                      glossary=load_glossary(a.glossary), fewshot=load_fewshot(a.fewshot), context_lines=a.context)
    return Settings(out=Path(a.out), endpoints=urls, spec=spec, model=a.model, api_key=config.api_key() or "EMPTY",
                    concurrency=a.concurrency, rps=a.rps, attempts=a.attempts, split=a.split,
                    chunk_tokens=a.chunk_tokens, max_tokens=a.max_tokens, temperature=a.temperature,
                    timeout=a.timeout, thinking=a.thinking, aozora=a.aozora, bilingual=a.bilingual,
                    epub=a.epub, resume=a.resume, log_text=a.log_text)


@command
def translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="JA -> ZH translation of files or folders (resumable); "
                       "`lab translate eval HYP REF` scores")
    _translate_opts(p)

    def run(a: argparse.Namespace) -> int:
        from lab.translate import Translator
        stats = Translator(translate_settings(a)).run(a.input)
        print(json.dumps(stats, ensure_ascii=False))
        if stats["failed"]:
            print(f"{stats['failed_units']} line(s) left untranslated and marked 【未翻译】: {stats['failed']}")
        return 0
    p.set_defaults(func=run)


@command
def translate_eval(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("translate-eval", help="score translations (also `lab translate eval`): chrF, BLEU, glossary")
    e.add_argument("hyp", help="folder with NAME.zh.txt translations")
    e.add_argument("ref", help="folder with NAME.txt references")
    e.add_argument("--source", help="folder with the NAME.txt sources (for glossary adherence)")
    e.add_argument("--glossary", help="glossary TSV")

    def run(a: argparse.Namespace) -> int:
        from lab.prompting import load_glossary
        from lab.translate_eval import evaluate
        res = evaluate(a.hyp, a.ref, a.source, load_glossary(a.glossary))
        _print_rows([*res["rows"], res["total"]])
        return 0
    e.set_defaults(func=run)


@command
def tokens(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokens", help="token counts of a file or folder with the profile's tokenizer")
    p.add_argument("path", help="a text file or a folder of .txt files")
    p.add_argument("--profile", help="whose tokenizer (default: $LAB_PROFILE or tiny)")

    def run(a: argparse.Namespace) -> int:
        from transformers import AutoTokenizer

        from lab import config
        from lab.textio import inputs, read_text
        tok = AutoTokenizer.from_pretrained(config.load(a.profile, check_device=False).model_path())
        rows = []
        for f in inputs(a.path):
            text, enc = read_text(f)
            rows.append({"file": str(f), "encoding": enc, "chars": len(text),
                         "tokens": len(tok(text, add_special_tokens=False)["input_ids"])})
        rows.append({"file": "TOTAL", "encoding": "", "chars": sum(r["chars"] for r in rows),
                     "tokens": sum(r["tokens"] for r in rows)})
        _print_rows(rows)
        return 0
    p.set_defaults(func=run)
