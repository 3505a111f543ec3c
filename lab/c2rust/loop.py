"""SACToR's loop, small and local: translate C to Rust, compile, test, feed errors back; then idiomatic."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lab import LabError, paths
from lab.c2rust.harness import CheckReport, check_source, clippy_warnings, count_unsafe, extract_rust, load_tests
from lab.client import Client

ROUNDS = 6  # SACToR's default number of feedback rounds
SYSTEM = ("You translate C programs into Rust. Reply with one complete Rust program (edition 2021, standard "
          "library only) in a single ```rust code block, with the same command-line arguments, stdin handling, "
          "stdout and exit codes as the C program.")
IDIOMATIC = ("Rewrite this working Rust program idiomatically: no `unsafe`, no raw pointers, no libc; use "
             "ownership, slices, iterators and Option/Result. Behaviour must stay identical. Reply with one "
             "```rust code block.")


def feedback(report: CheckReport | None, cases: list[dict[str, Any]]) -> str:
    """The message that tells the model what went wrong (compiler errors or failing cases)."""
    if report is None:
        return "Your reply contained no ```rust code block. Reply with the complete program in one block."
    if not report.compiled:
        return f"The program does not compile. rustc says:\n```\n{report.compile_errors}\n```\nFix it."
    parts = []
    for c in [c for c in report.cases if not c.passed][:3]:
        case = cases[c.index]
        parts.append(f"- args {case['args']!r}, stdin {case['stdin'][:200]!r}: {c.reason}"
                     + (f"\n```diff\n{c.diff[:800]}\n```" if c.diff else ""))
    return (f"{report.passed}/{len(report.cases)} tests pass. Failing cases:\n" + "\n".join(parts)
            + "\nFix the program.")


def _max_tokens(client: Client, messages: list[dict[str, str]], cap: int) -> int:
    """What fits after the prompt in the server's context; 0 when even the prompt does not fit."""
    room = client.max_model_len - client.count_tokens(messages) - 8
    return max(0, min(cap, room))


def _stage(client: Client, messages: list[dict[str, str]], cases: list[dict[str, Any]], rounds: int,
           max_tokens: int, log: list[dict[str, Any]], stage: str) -> tuple[str | None, CheckReport | None, int, int]:
    """Rounds of ask -> extract -> check -> feedback; returns (code, report, rounds used, tokens)."""
    tokens, code, report = 0, None, None
    first = messages
    for r in range(1, rounds + 1):
        mt = _max_tokens(client, messages, max_tokens)
        if mt < 16:
            log.append({"stage": stage, "round": r, "error": "prompt does not fit the model's context"})
            return code, report, r, tokens
        t0 = time.time()
        res = client.chat(messages, max_tokens=mt, thinking=False)
        tokens += res.prompt_tokens + res.completion_tokens
        new = extract_rust(res.text)
        rep = check_source(new, cases) if new else None
        log.append({"stage": stage, "round": r, "max_tokens": mt, "finish_reason": res.finish_reason,
                    "usage": [res.prompt_tokens, res.completion_tokens], "seconds": round(time.time() - t0, 2),
                    "reply": res.text, "result": rep.summary() if rep else "no code block"})
        if new:
            code, report = new, rep
        if rep and rep.ok:
            return code, report, r, tokens
        # Keep the conversation bounded: the task, the last reply and what went wrong with it.
        messages = [*first, {"role": "assistant", "content": res.text[:4000]},
                    {"role": "user", "content": feedback(rep, cases)}]
    return code, report, rounds, tokens


def translate(c_file: str | Path, tests: str | Path, client: Client, rounds: int = ROUNDS, idiomatic: bool = False,
              max_tokens: int = 4096, out: Path | None = None) -> dict[str, Any]:
    """Translate one C program; report compiled, cases passed, rounds, tokens, unsafe and clippy counts."""
    c_file = Path(c_file)
    if not c_file.exists():
        raise LabError(f"{c_file} does not exist")
    cases = load_tests(tests)
    src = c_file.read_text()
    ref = check_source(src, cases, "c")
    name = c_file.stem if c_file.stem != "prog" else c_file.parent.name
    if not ref.ok:
        return {"program": name, "bad_task": True, "ok": False, "error": f"C reference fails: {ref.summary()}"}
    log: list[dict[str, Any]] = []
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"```c\n{src}\n```"}]
    code, rep, used, tokens = _stage(client, msgs, cases, rounds, max_tokens, log, "unidiomatic")
    result: dict[str, Any] = {"program": name, "model": client.model, "compiled": bool(rep and rep.compiled),
                              "passed": rep.passed if rep else 0, "total": len(cases), "rounds": used,
                              "tokens": tokens, "ok": bool(rep and rep.ok)}
    if idiomatic and rep and rep.ok:
        msgs2 = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{IDIOMATIC}\n```rust\n{code}```"}]
        code2, rep2, used2, tok2 = _stage(client, msgs2, cases, rounds, max_tokens, log, "idiomatic")
        idio_ok = bool(rep2 and rep2.ok and count_unsafe(code2 or "") == 0)
        result.update(idiomatic_ok=idio_ok, idiomatic_rounds=used2, tokens=tokens + tok2)
        if idio_ok:
            code = code2
    result["unsafe"] = count_unsafe(code) if code else None
    result["clippy_warnings"] = clippy_warnings(code) if code and result["compiled"] else None
    if out:
        out = Path(out)
        if code:
            paths.atomic_write(out / f"{name}.rs", code)
        paths.atomic_write(out / f"{name}.log.jsonl", "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in log))
        paths.atomic_write(out / f"{name}.json", json.dumps(result, indent=1) + "\n")
    return result


def programs(folder: str | Path) -> list[tuple[Path, Path]]:
    """(prog.c, tests.json) pairs of every program folder below `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LabError(f"{folder} is not a folder of programs (each: NAME/prog.c + NAME/tests.json)")
    found = [(d / "prog.c", d / "tests.json") for d in sorted(folder.iterdir())
             if (d / "prog.c").exists() and (d / "tests.json").exists()]
    if not found:
        raise LabError(f"no programs in {folder}: expected NAME/prog.c with NAME/tests.json")
    return found


def batch(folder: str | Path, client: Client, concurrency: int = 4, rounds: int = ROUNDS, idiomatic: bool = False,
          max_tokens: int = 4096, out: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Every program of a folder with bounded concurrency; a summary table and totals."""
    if concurrency < 1:
        raise LabError(f"concurrency must be >= 1, got {concurrency}")
    progs = programs(folder)
    done = 0

    def one(pair: tuple[Path, Path]) -> dict[str, Any]:
        nonlocal done
        r = translate(pair[0], pair[1], client, rounds, idiomatic, max_tokens, out)
        done += 1
        if progress:
            print(f"[{done}/{len(progs)}] {r['program']}: {'ok' if r['ok'] else 'failed'} "
                  f"({r.get('passed', 0)}/{r.get('total', 0)} cases, {r.get('rounds', 0)} rounds)", flush=True)
        return r
    with ThreadPoolExecutor(concurrency) as ex:
        rows = list(ex.map(one, progs))
    n = len(rows)
    return {"model": client.model, "programs": n, "success_rate": round(sum(r["ok"] for r in rows) / n, 3),
            "compiled_rate": round(sum(bool(r.get("compiled")) for r in rows) / n, 3),
            "mean_rounds": round(sum(r.get("rounds", 0) for r in rows) / n, 2),
            "tokens": sum(r.get("tokens", 0) for r in rows), "rows": rows}
