"""`lab translate [run] INPUT -o OUT`, `lab translate eval HYP REF`, `lab tokens PATH`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab import LabError, config, options, paths
from lab.measure import ratio_line
from lab.translate.pipeline import Settings, Translator
from lab.translate.prompts import PromptSpec, load_fewshot, load_glossary

S = Settings


def add_commands(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction | None = None) -> None:
    """Register `lab translate` (run, eval), `lab tokens`, and `lab bench translate` under `bench` when given."""
    p = sub.add_parser("translate", help="JA -> ZH translation of files or folders (resumable); `eval` scores",
                       description="`lab translate INPUT -o OUT [options]` translates (same as `lab translate run "
                       "...`; `lab translate run --help` lists the options); `lab translate eval HYP REF` scores.")
    s = p.add_subparsers(dest="action", required=True, metavar="ACTION", action=options.DefaultSubcommands)
    s.default = "run"
    r = s.add_parser("run", help="translate a file or folder (the default action: `lab translate INPUT -o OUT`)")
    _run_opts(r)
    r.set_defaults(func=_run)
    e = s.add_parser("eval", help="score translations: chrF, BLEU (zh tokenization), glossary adherence")
    e.add_argument("hyp", help="folder with NAME.zh.txt translations")
    e.add_argument("ref", help="folder with NAME.txt references")
    e.add_argument("--source", help="folder with the NAME.txt sources (for glossary adherence)")
    e.add_argument("--glossary", help="glossary TSV")
    e.set_defaults(func=_eval)
    t = sub.add_parser("tokens", help="token counts of a file or folder with the profile's tokenizer")
    t.add_argument("path", help="a text file or a folder of .txt files")
    t.add_argument("--profile", help="whose tokenizer (default: $LAB_PROFILE or tiny)")
    t.set_defaults(func=_tokens)
    if bench is not None:
        from lab.translate import bench as tbench
        b = bench.add_parser("translate", help="translation pipeline vs a bare openai loop; high concurrency vs 1")
        b.add_argument("--profile", help="profile whose server is running")
        options.add(b, "--copies", tbench.translate_suite, type=options.POSITIVE_INT,
                    help="copies of the sample texts (8 make 168 chunks)")
        options.add(b, "--chunk-tokens", tbench.translate_suite, type=options.POSITIVE_INT,
                    help="chunk size: small makes many chunks")
        options.add(b, "--concurrency", tbench.translate_suite, type=options.POSITIVE_INT, help="high concurrency")
        options.add(b, "--repeats", tbench.translate_suite, type=options.POSITIVE_INT,
                    help="interleaved rounds; ratios use medians")
        b.set_defaults(func=_bench)


def _run_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a .txt file or a folder of .txt files (UTF-8/16, Shift_JIS, EUC-JP detected)")
    p.add_argument("-o", "--out", required=True, help="output folder: NAME.zh.txt, logs/, the resume cache")
    options.endpoint_opts(p, several=True)
    p.add_argument("--glossary", help="TSV glossary: source<TAB>target[<TAB>note] (default: none)")
    p.add_argument("--preface", help="instruction file (default: data/translation/preface.txt)")
    p.add_argument("--fewshot", help="JSONL few-shot examples {source, target} (default: none)")
    options.add(p, "--template", PromptSpec, choices=["qwen", "sakura"], help="prompt template")
    options.add(p, "--context", PromptSpec, "context_lines", type=options.NON_NEGATIVE_INT,
                help="previous source lines given as context")
    options.add(p, "--concurrency", S, type=options.POSITIVE_INT, help="requests in flight")
    p.add_argument("--rps", type=options.POSITIVE_FLOAT, help="at most this many request starts per second "
                   "(default: no cap)")
    options.add(p, "--attempts", S, type=options.POSITIVE_INT, help="tries per chunk before splitting it")
    options.add(p, "--split", S, help="split a chunk that keeps failing (--no-split marks it failed)")
    options.add(p, "--chunk-tokens", S, type=options.POSITIVE_INT, help="max source tokens per chunk")
    options.add(p, "--max-tokens", S, type=options.POSITIVE_INT, help="cap on tokens per reply")
    options.add(p, "--temperature", S, type=options.checked(float, 0), help="sampling temperature, 0 is greedy")
    options.add(p, "--timeout", S, type=options.POSITIVE_FLOAT, help="seconds per request")
    options.add(p, "--thinking", S, help="let Qwen3-style models think")
    options.add(p, "--aozora", S, help="strip Aozora Bunko ruby 《》, ｜ and ［＃…］ notes")
    options.add(p, "--bilingual", S, help="also write NAME.bilingual.md (line-aligned)")
    options.add(p, "--epub", S, help="for a folder: also write book.epub, a chapter per file")
    options.add(p, "--resume", S, help="reuse finished chunks from the cache")
    options.add(p, "--text-logs", S, "log_text", help="keep source and target text in logs/NAME.jsonl")


def settings(a: argparse.Namespace) -> Settings:
    """Settings from parsed CLI options."""
    preface = Path(a.preface) if a.preface else paths.data() / "translation" / "preface.txt"
    if not preface.exists():
        raise LabError(f"preface file {preface} does not exist")
    spec = PromptSpec(preface=preface.read_text("utf-8").strip(), template=a.template,
                      glossary=load_glossary(a.glossary), fewshot=load_fewshot(a.fewshot),
                      context_lines=a.context_lines)
    return Settings(out=Path(a.out), endpoints=options.endpoints(a), spec=spec, model=a.model,
                    api_key=config.api_key() or "EMPTY", concurrency=a.concurrency, rps=a.rps,
                    attempts=a.attempts, split=a.split, chunk_tokens=a.chunk_tokens, max_tokens=a.max_tokens,
                    temperature=a.temperature, timeout=a.timeout, thinking=a.thinking, aozora=a.aozora,
                    bilingual=a.bilingual, epub=a.epub, resume=a.resume, log_text=a.log_text)


def _run(a: argparse.Namespace) -> int:
    stats = Translator(settings(a)).run(a.input)
    print(json.dumps(stats, ensure_ascii=False))
    if stats["failed"]:
        print(f"{stats['failed_units']} line(s) left untranslated and marked 【未翻译】: {stats['failed']}")
    return 0


def _bench(a: argparse.Namespace) -> int:
    from lab.translate.bench import translate_suite
    res = translate_suite(a.profile, a.copies, a.chunk_tokens, a.concurrency, a.repeats)
    print(json.dumps(res, indent=1))
    print(ratio_line(res, a.concurrency, 5, "pipeline", "pipeline_vs_bare", 0.85))
    return 0


def _eval(a: argparse.Namespace) -> int:
    from lab.translate.eval import evaluate
    res = evaluate(a.hyp, a.ref, a.source, load_glossary(a.glossary))
    options.print_rows([*res["rows"], res["total"]])
    return 0


def _tokens(a: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from lab.translate.sources import inputs, read_text
    tok = AutoTokenizer.from_pretrained(config.load(a.profile, check_device=False).model_path())
    rows = []
    for f in inputs(a.path):
        text, enc = read_text(f)
        rows.append({"file": str(f), "encoding": enc, "chars": len(text),
                     "tokens": len(tok(text, add_special_tokens=False)["input_ids"])})
    rows.append({"file": "TOTAL", "encoding": "", "chars": sum(r["chars"] for r in rows),
                 "tokens": sum(r["tokens"] for r in rows)})
    options.print_rows(rows)
    return 0
