"""`lab translate [run] INPUT -o OUT`, `translate fix/rebuild OUT`, `translate eval HYP REF`, `lab tokens PATH`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lab import LabError, config, crash, locks, options, paths
from lab.measure import ratio_line
from lab.translate import document, sources
from lab.translate.outputs import RUN_STATS, UNTRANSLATED, rebuild
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
    f = s.add_parser("fix", help="lock a person's translation of one line (shows the line without --text)",
                     description="Corrections live in OUT/.lab-cache/NAME/fixes.json, win over any model output "
                     "and survive reruns with other settings; the outputs are rewritten at once.")
    f.add_argument("out", help="the output folder of a translation run")
    f.add_argument("--doc", help="document name, as in NAME.zh.txt (default: the only one)")
    f.add_argument("--line", type=options.POSITIVE_INT, required=True, help="line number in NAME.zh.txt")
    f.add_argument("--text", help="the corrected translation (default: show the line and change nothing)")
    f.set_defaults(func=_fix)
    b = s.add_parser("rebuild", help="rewrite the outputs from the cache and fixes, sending nothing")
    b.add_argument("out", help="the output folder of a translation run")
    b.add_argument("--bilingual", action=argparse.BooleanOptionalAction,
                   help="write NAME.bilingual.md (default: as the last run did)")
    b.add_argument("--epub", action=argparse.BooleanOptionalAction,
                   help="write the EPUB of text inputs (default: as the last run did)")
    b.set_defaults(func=_rebuild)
    e = s.add_parser("eval", help="score translations: chrF, BLEU (zh tokenization), glossary adherence")
    e.add_argument("hyp", help="folder with NAME.zh.txt translations, or one translated file")
    e.add_argument("ref", help="folder with NAME.txt references, or one reference file")
    e.add_argument("--source", help="folder with the NAME.txt (or NAME.zip) sources, or one source file (for glossary "
                   "adherence; default: none, no adherence column)")
    e.add_argument("--glossary", help="glossary TSV (default: none)")
    e.set_defaults(func=_eval)
    t = sub.add_parser("tokens", help="token counts of a file or folder with the profile's tokenizer")
    t.add_argument("path", help="a .txt, .epub (one row a chapter) or .zip of .txt files (one row each), or a "
                   "folder of them")
    options.profile_arg(t, "whose tokenizer")
    t.add_argument("--aozora", action=argparse.BooleanOptionalAction, default=None,
                   help="count Aozora Bunko text without its markup, as `lab translate` sends it (default: detected)")
    t.set_defaults(func=_tokens)
    if bench is not None:
        from lab.translate import bench as tbench
        b = bench.add_parser("translate", help="translation pipeline vs a bare openai loop; high concurrency vs 1")
        options.profile_arg(b, "profile whose server is running")
        options.add(b, "--copies", tbench.translate_suite, type=options.checked(int, 1, 1000),
                    help="copies of the sample texts (8 make 168 chunks; at most 1000)")
        options.add(b, "--chunk-tokens", tbench.translate_suite, type=options.POSITIVE_INT,
                    help="chunk size: small makes many chunks")
        options.add(b, "--concurrency", tbench.translate_suite, type=options.POSITIVE_INT, help="high concurrency")
        options.add(b, "--repeats", tbench.translate_suite, type=options.POSITIVE_INT,
                    help="interleaved rounds; ratios use medians")
        b.set_defaults(func=_bench)


def _run_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a .txt or .epub file, a .zip of .txt files (as Aozora ships them), or a folder "
                   "of them (UTF-8/16, Shift_JIS, EUC-JP and "
                   "ISO-2022-JP detected; output folders inside it and links out of it are not read)")
    p.add_argument("-o", "--out", required=True, help="output folder: NAME.zh.txt, logs/, the resume cache")
    options.endpoint_opts(p, several=True)
    p.add_argument("--glossary", help="TSV glossary: source<TAB>target[<TAB>note], UTF-8 or UTF-16 with a BOM "
                   "(Excel's \"Unicode text\") (default: none)")
    p.add_argument("--preface", help="instruction file (default: data/translation/preface.txt)")
    p.add_argument("--fewshot", help="JSONL few-shot examples {source, target} (default: none)")
    options.add(p, "--template", PromptSpec, choices=["qwen", "sakura"], help="prompt template")
    options.add(p, "--context", PromptSpec, "context_lines", type=options.NON_NEGATIVE_INT,
                help="previous source lines given as context")
    options.add(p, "--line-note", PromptSpec, help="tell the model how many lines a chunk of several has and that "
                "each comes back as one line (qwen template; a 1.5B model then kept the count at once)")
    options.add(p, "--concurrency", S, type=options.POSITIVE_INT, help="requests in flight")
    p.add_argument("--rps", type=options.RATE, help="at most this many request starts per second "
                   "(default: no cap)")
    options.add(p, "--attempts", S, type=options.POSITIVE_INT, help="tries per chunk before splitting it")
    options.add(p, "--feedback", S, help="a retry shows the model its rejected reply and what was wrong with it "
                "(Japanese left in, line count), besides changing sampling; off, a retry changes sampling only")
    options.add(p, "--split", S, help="split a chunk that keeps failing (--no-split marks it failed)")
    options.add(p, "--split-at-once", S, help="split a chunk of several lines as soon as a reply has the wrong "
                "line count (--no-split-at-once retries it whole --attempts times first)")
    options.add(p, "--chunk-tokens", S, type=options.POSITIVE_INT, help="max source tokens per chunk")
    options.add(p, "--max-tokens", S, type=options.POSITIVE_INT, help="cap on tokens per reply")
    options.add(p, "--temperature", S, type=options.checked(float, 0), help="sampling temperature, 0 is greedy")
    options.add(p, "--timeout", S, type=options.SECONDS,
                help="seconds a request may wait for its next token, the first included (replies stream, so a "
                     "long reply on a slow CPU is never cut off while tokens arrive)")
    options.add(p, "--thinking", S, help="let Qwen3-style models think")
    p.add_argument("--aozora", action=argparse.BooleanOptionalAction, default=None,
                   help="Aozora Bunko text: drop the notation header, ruby 《》｜ and ［＃…］ notes, gaiji notes "
                   "become their character, the 底本 footer is copied untranslated (default: detected)")
    options.add(p, "--bilingual", S, help="also write NAME.bilingual.md (line-aligned)")
    options.add(p, "--epub", S, help="also write an EPUB of text inputs: book.epub for a folder (a chapter per "
                "file), NAME.epub for one file; EPUB inputs always come back as NAME.zh.epub")
    options.add(p, "--resume", S, help="reuse finished chunks from the cache")
    options.add(p, "--text-logs", S, "log_text", help="keep source and target text in logs/NAME.jsonl")


def settings(a: argparse.Namespace) -> Settings:
    """Settings from parsed CLI options."""
    preface = Path(a.preface) if a.preface else paths.data() / "translation" / "preface.txt"
    instruction = paths.read_text(preface, "preface file").strip()
    if not instruction:  # the model would get the bare text and no task: it answers in Japanese or chats
        raise LabError(f"preface file {preface} is empty: write the instruction the model follows (default: "
                       f"data/translation/preface.txt)")
    spec = PromptSpec(preface=instruction, template=a.template,
                      glossary=load_glossary(a.glossary), fewshot=load_fewshot(a.fewshot),
                      context_lines=a.context_lines, line_note=a.line_note)
    return Settings(out=Path(a.out), endpoints=options.endpoints(a), spec=spec, model=a.model,
                    api_key=config.client_key(), concurrency=a.concurrency, rps=a.rps,
                    attempts=a.attempts, feedback=a.feedback, split=a.split,
                    split_at_once=a.split_at_once, chunk_tokens=a.chunk_tokens,
                    max_tokens=a.max_tokens, temperature=a.temperature, timeout=a.timeout, thinking=a.thinking,
                    aozora=a.aozora, bilingual=a.bilingual, epub=a.epub, resume=a.resume, log_text=a.log_text)


def _run(a: argparse.Namespace) -> int:
    s = settings(a)
    srcs = sources.load(a.input, s.out, s.aozora)  # input problems first: no server asked, nothing created
    for src in srcs:
        for note in src.notes:
            print(paths.one_line(f"read: {src.path}: {note}"))
    locks.refuse_if_busy(s.out, "lab translate")  # before the server is asked anything
    stats = Translator(s).run(srcs)
    paths.atomic_write(s.out / RUN_STATS, json.dumps(stats, ensure_ascii=False, indent=1) + "\n")
    print(paths.one_line(f"translated {stats['documents']} document(s), {stats['chunks']} chunks ({stats['reused']} "
                         f"reused from an earlier run) in {stats['wall_s']:.0f} s with {stats['requests']} requests "
                         f"({stats['retries']} retries, {stats['splits']} splits); wrote "
                         f"{crash.listed(stats['outputs'])} in {s.out}"))
    _say_untranslated(s.out, stats["untranslated_lines"])
    return 0


def _say_untranslated(out: Path, n: int) -> None:
    if n:
        print(f"{n} line(s) left untranslated, marked 【未翻译】 and listed in {out / UNTRANSLATED}; rerun to retry "
              f"them, or set one with `lab translate fix {out} --doc NAME --line N --text ...`")
    else:
        print("every line translated")


def _fix(a: argparse.Namespace) -> int:
    out = Path(a.out)
    found = document.names(out)
    if a.doc is None and len(found) != 1:
        raise LabError(f"--doc is needed: {out} holds {len(found)} documents ({crash.listed(found) or 'none'})")
    doc = document.load_doc(out, a.doc or found[0])
    if a.text is None:
        document.check_line(doc, a.line)
        print(paths.one_line(f"source: {doc.lines[a.line - 1]}"))  # a source line may hold an ESC sequence
        print(paths.one_line(f"current: {document.assemble(doc)[a.line - 1][1]}"))
        return 0
    document.save_fix(out, doc, a.line, a.text)
    res = rebuild(out)
    print(paths.one_line(f"{doc.name} line {a.line} locked to your translation; "
                         f"rewrote {crash.listed(res['outputs'])}"))
    _say_untranslated(out, res["untranslated_lines"])
    return 0


def _rebuild(a: argparse.Namespace) -> int:
    res = rebuild(Path(a.out), a.bilingual, a.epub)
    print(paths.one_line(f"rebuilt {res['documents']} document(s) from the cache, nothing sent: "
                         f"{crash.listed(res['outputs'])}"))
    _say_untranslated(Path(a.out), res["untranslated_lines"])
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


def _count(tok: Any, text: str, name: str) -> int:
    """Tokens of `text`; over MAX_LINE_CHARS characters, asked in pieces cut before a line (a 104,857,600-character
    chapter tokenized at once took 24 GB and the OOM killer; a cut can shift the count by a token: SmolLM2's
    count of README.md in 786 pieces was 32,064 against 32,157, Qwen's the same)."""
    from lab.translate.chunking import MAX_LINE_CHARS, refuse_long_line
    for i, line in enumerate(text.split("\n")):
        refuse_long_line(line, f"{name}: line {i + 1}")
    start, total = 0, 0
    while start < len(text):
        # the window holds a whole line at least (none is longer), so it holds a "\n" to cut after
        end = len(text) if len(text) - start <= MAX_LINE_CHARS else \
            text.rfind("\n", start, start + MAX_LINE_CHARS + 1) + 1
        total += len(tok(text[start:end], add_special_tokens=False)["input_ids"])
        start = end
    return total


def _tokens(a: argparse.Namespace) -> int:
    from lab.translate import epub
    texts = []  # read (and refused) before the tokenizer: a bad file's line came after 8 s of transformers import
    files = sources.inputs(a.path)
    for f in files:
        if f.suffix.lower() == ".epub":  # one row a chapter
            texts += [(f"{f}:{ch.href}", "epub", ch.text) for ch in epub.chapters(f)]
            continue
        # an empty file is counted (0 tokens), not the folder's error
        for member, text, enc, _ in sources.file_texts(f, in_folder=len(files) > 1):
            if sources.is_aozora(text, a.aozora):  # its ruby and notes are never sent: 966 -> 447 tokens in ame.txt
                text, enc = sources.clean_aozora(text)[0], f"{enc}+aozora"
            texts.append((f"{f}:{member}" if member else str(f), enc, text))
    path = config.local_or_reachable(config.load(a.profile, check_device=False).model_path())
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.model_max_length = sys.maxsize  # counting only: a chapter past the model's context is no error here
    rows = [{"file": name, "encoding": enc, "chars": len(text), "tokens": _count(tok, text, name)}
            for name, enc, text in texts]
    rows.append({"file": "TOTAL", "encoding": "", "chars": sum(r["chars"] for r in rows),
                 "tokens": sum(r["tokens"] for r in rows)})
    options.print_rows(rows)
    return 0
