"""SACToR's loop, small and local: translate C to Rust, build, test, feed errors back; then idiomatic Rust."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import LabError, locks, paths, workers
from lab.c2rust import splice
from lab.c2rust.build import clippy_warnings
from lab.c2rust.harness import CheckReport, check_source, count_unsafe, extract_rust
from lab.c2rust.prompts import FEEDBACK_CASES, IDIOMATIC, SYSTEM, feedback, first_messages, prompt_parts
from lab.c2rust.replies import Replaying
from lab.c2rust.tasks import Task, find_program, program_task, why_not_program
from lab.client import Client, Result, context_room
from lab.server_errors import BadRequest, ServerError

ROUNDS = 6  # SACToR's default number of feedback rounds (max_translation_attempts)
MIN_REPLY_TOKENS = 64  # below this a reply cannot hold a program: trim the feedback instead
HEARTBEAT_S = 30.0  # a line this often while a round's replies are awaited (minutes each for a 1.5B on CPU)
SAMPLE_TEMPERATURE = 0.7  # Qwen2.5-Coder's recommended temperature, for the sampled candidates


@dataclass(frozen=True)
class LoopSettings:
    """How `lab c2rust translate|batch` run the loop; their options show these defaults."""

    rounds: int = ROUNDS               # feedback rounds per stage
    idiomatic: bool = False            # then ask for idiomatic Rust (no unsafe) too
    max_tokens: int = 4096             # cap on tokens per reply (the context left caps it too)
    candidates: int = 1                # replies per round, checked in parallel; the best one goes on (after round
                                       # 1 every other sampled one is a fresh translation, not a repair)
    feed: str | None = None            # a bare test_samples.json: input as argv words or on stdin
    example: bool = False              # show one worked C -> Rust translation first (advice.EXAMPLE_C); off:
                                       # the 1.5B did worse with it (0 of 8 pass against 1, README)
    concurrency: int = 4               # programs in flight (batch)
    progress: bool = True


def _fit(client: Client, first: list[dict[str, str]], reply: str, report: CheckReport | None, task: Task,
         cap: int, repeated: bool = False, truncated: bool = False) -> tuple[list[dict[str, str]], int]:
    """The next conversation and its max_tokens, trimmed (fewer errors, fewer cases, shorter echo) to fit.

    The echoed turn is the program as it was compiled (rustc's fixes and imports in), not the raw reply: echoing
    the reply let the 1.5B drop the `mut` rustc had added in every later round."""
    if report is not None and report.source:
        reply = f"```rust\n{report.source}```"
    for cases, lines, echo in ((FEEDBACK_CASES, 30, 4000), (1, 10, 2000), (1, 4, 0)):
        msgs = [*first, *([{"role": "assistant", "content": reply[:echo]}] if echo else []),
                {"role": "user", "content": feedback(report, task, cases, lines, repeated, truncated)}]
        mt = min(cap, context_room(client.max_model_len, client.count_tokens(msgs)))
        if mt >= MIN_REPLY_TOKENS:
            return msgs, mt
    return msgs, mt


def _errors(rep: CheckReport | None) -> int:
    """Compiler errors of a report (a program with fewer is nearer to building)."""
    return sum(line.startswith("error") for line in rep.compile_errors.splitlines()) if rep else 10**6


def _checked(new: str, base: str | None, task: Task, idiomatic: bool) -> tuple[str, CheckReport]:
    """A reply's program checked; where it does not compile and lacks items of the program it repairs (`base`), that
    program's items spliced back in are checked too, and the one that gets further goes on."""
    rep = check_source(new, task, idiomatic=idiomatic, fix=True)
    if rep.compiled or not base or not (whole := splice.merge(base, new)):
        return new, rep
    rep2 = check_source(whole[0], task, idiomatic=idiomatic, fix=True)
    if _merit(rep2) <= _merit(rep):
        return new, rep
    rep2.spliced = whole[1]
    return whole[0], rep2


def _ask(client: Client, convs: list[tuple[list[dict[str, str]], int]], r: int, repeated: bool, task: Task,
         idiomatic: bool, first_seed: int | None = None, say: Any = None, label: str = "",
         bases: list[str | None] | None = None) -> list[tuple[Any, str | None, CheckReport | None]]:
    """One reply per (conversation, max_tokens), each extracted and checked (in parallel): the first greedy unless
    the last round repeated itself (or `first_seed` is given), the others sampled with seeds of their own, so a
    rerun asks the same. bases[j] is the program conversation j repairs (None: a fresh translation). While
    replies are awaited, `say` gets a line every HEARTBEAT_S seconds."""
    def one(j: int) -> tuple[Any, str | None, CheckReport | None]:
        # Greedy decoding of the same conversation is a fixed point: after a repeated program every reply samples.
        sampled = repeated or j > 0 or first_seed is not None
        seed = (first_seed if first_seed is not None else r) if j == 0 else 1000 * r + j
        sampling = {"temperature": SAMPLE_TEMPERATURE, "seed": seed} if sampled else {}
        res = client.complete(convs[j][0], max_tokens=convs[j][1], thinking=False, **sampling)
        new = extract_rust(res.text)
        if not new:
            return res, None, None
        return res, *_checked(new, bases[j] if bases else None, task, idiomatic)
    t0 = time.monotonic()

    def waiting(done: int, total: int) -> None:  # a 1,536-token reply takes ~4 min on 2 cores at 7 tok/s (1.5B)
        if say is not None:
            say(f"  {label}: waiting on the model ({time.monotonic() - t0:.0f}s, {done} of {total} replies "
                f"in and checked; a request fails after {client.timeout:.0f}s without a token)")
    return workers.run_all(one, range(len(convs)), len(convs), tick=waiting, tick_s=HEARTBEAT_S)


def _merit(rep: CheckReport | None) -> tuple[bool, int, bool, int]:
    """How near a program is: passes, cases passed, compiles, fewest errors (higher is nearer)."""
    return bool(rep and rep.ok), rep.passed if rep else -1, bool(rep and rep.compiled), -_errors(rep)


def _best(got: list[tuple[Any, str | None, CheckReport | None]], seen: set[str]) -> int:
    """The candidate that goes on: passes most, then compiles, then fewest errors, then new, then the first."""
    return max(range(len(got)), key=lambda j: (*_merit(got[j][2]), bool(got[j][1]) and got[j][1] not in seen, -j))


def _round_entry(got: list[tuple[Result, str | None, CheckReport | None]], j: int,
                 fresh: list[bool], seconds: float) -> dict[str, Any]:
    """The log's record of a round's chosen reply j (and, with candidates, what each of the others gave)."""
    res, _, rep = got[j]
    return {"finish_reason": res.finish_reason, "usage": [res.prompt_tokens, res.completion_tokens],
            "seconds": round(seconds, 2), "reply": res.text, "result": rep.summary() if rep else "no code block",
            "compiled": bool(rep and rep.compiled), "ok": bool(rep and rep.ok),
            **({"added_imports": rep.added_imports} if rep and rep.added_imports else {}),
            **({"applied_fixes": rep.applied_fixes} if rep and rep.applied_fixes else {}),
            **({"spliced": rep.spliced} if rep and rep.spliced else {}),
            **({"candidate": j, "fresh": fresh[j],
                "candidates": [g[2].summary() if g[2] else "no code block" for g in got]} if len(got) > 1 else {})}


def _stage(client: Client, first: list[dict[str, str]], task: Task, st: LoopSettings, log: list[dict[str, Any]],
           stage: str, say: Any) -> tuple[str | None, CheckReport | None, int, int, str]:
    """Rounds of ask -> extract -> check -> feedback; returns (code, report, rounds used, tokens, stop reason)."""
    tokens, code, report = 0, None, None
    messages, mt = first, min(st.max_tokens, context_room(client.max_model_len, client.count_tokens(first)))
    first_mt = mt
    idiomatic = stage == "idiomatic"
    seen: set[str] = set()
    repeated = False
    echoed: str | None = None
    for r in range(1, st.rounds + 1):
        workers.check()  # an interrupted batch: this program stops here, between rounds
        if mt < MIN_REPLY_TOKENS:
            reason = f"the prompt leaves {max(mt, 0)} tokens of the model's {client.max_model_len}-token context"
            log.append({"stage": stage, "round": r, "stop": reason})
            return code, report, r - 1, tokens, reason
        t0 = time.time()
        # After round 1 every other sampled candidate starts afresh from the C program: the 1.5B's repairs of one
        # program converged on one error in all three candidates, while fresh translations differ (measured).
        fresh = [r > 1 and j % 2 == 1 for j in range(st.candidates)]
        convs = [(first, first_mt) if f else (messages, mt) for f in fresh]
        got = _ask(client, convs, r, repeated, task, idiomatic, say=say, label=f"{stage} round {r}",
                   bases=[None if f else echoed for f in fresh])
        again = not any(fresh) and bool(seen) and all(g[1] in seen for g in got if g[1]) and any(g[1] for g in got)
        if again:
            # Every reply is a program an earlier round already checked, so its result is known: the round is not
            # spent on it. One sampled fresh translation of the C program goes beside it (the 0.5B's sampled
            # repair of bit_manipulation repeated round 2's program in rounds 3 and 4); with more candidates a
            # fresh one is among them already.
            got += _ask(client, [(first, first_mt)], r, True, task, idiomatic, first_seed=1000 * r + 999,
                        say=say, label=f"{stage} round {r}")
            fresh.append(True)
        tokens += sum(res.prompt_tokens + res.completion_tokens for res, _, _ in got)
        # after a round of repeats the fresh program goes on whatever its merit: the repeat's feedback was given
        j = len(got) - 1 if again and got[-1][1] and got[-1][1] not in seen else _best(got, seen)
        replaced = again and j == len(got) - 1
        res, new, rep = got[j]
        log.append({"stage": stage, "round": r, "max_tokens": mt, **_round_entry(got, j, fresh, time.time() - t0),
                    **({"repeat_replaced": replaced} if again else {})})
        repeated = bool(new) and new in seen
        if repeated:
            log[-1]["repeated"] = True
        pick = f" (candidate {j + 1} of {len(got)})" if len(got) > 1 else ""
        if again:
            pick = (" (a fresh translation: the repair repeated an earlier program)" if replaced
                    else " (a fresh translation gave no new program either)")
        say(f"  {stage} round {r}: {rep.summary() if rep else 'no code block'}{pick}"
            + (" (same program again)" if repeated else ""))
        seen.update(g[1] for g in got if g[1])
        # the result is the nearest program of any round: a later round can be worse (caesar went 3/4 -> 0/4)
        if new and (code is None or _merit(rep) > _merit(report)):
            code, report = (rep.source if rep and rep.source else new), rep  # the imports rustc named included
        if rep and rep.ok:
            return code, report, r, tokens, "passed"
        messages, mt = _fit(client, first, res.text, rep, task, st.max_tokens, repeated,
                            truncated=res.finish_reason == "length")
        echoed = (rep.source if rep and rep.source else new) if new else None  # what _fit showed the model
    return code, report, st.rounds, tokens, f"still failing after {st.rounds} rounds"


_PRINTING = threading.Lock()  # batch's programs print from threads: one whole line at a time


def _line(text: str) -> None:
    """Print one progress line whole (print() writes text and newline apart: threads interleaved them), control
    characters escaped (it names a program's folder and quotes the compiler on model-written code)."""
    with _PRINTING:
        sys.stdout.write(paths.one_line(text) + "\n")
        sys.stdout.flush()


def _mean(xs: list[int]) -> float:
    """The mean rounded to 2 places; 0 for none."""
    return round(sum(xs) / len(xs), 2) if xs else 0


def program_name(c_file: Path) -> str:
    """NAME of NAME/NAME.c, or of NAME/prog.c: the name of its reports."""
    return paths.short_name(c_file.stem if c_file.stem != "prog" else c_file.parent.name)


def _key(src: str, task: Task, model: str, st: LoopSettings) -> str:
    """What a finished result depends on: a rerun with the same key reuses it instead of asking again."""
    what = {"c": src, "cases": [dataclasses.asdict(c) for c in task.cases], "model": model,
            "settings": [st.rounds, st.idiomatic, st.max_tokens, st.candidates],
            # how rounds are spent and what feedback says: 2 = a round of repeats asks a fresh translation too,
            # 3 = an exit-status failure quotes the C lines that end with that status, 4 = a program that reads
            # all of stdin more than once is told so
            "loop": 4,
            # a changed prompt, cheat sheet or worked example is another question
            "prompt": prompt_parts(src, st.example)}
    if task.files:  # the data files the cases read (none: the keys of earlier runs stay as they were)
        what["files"] = {n: hashlib.sha256(b).hexdigest() for n, b in task.files.items()}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _earlier(report: Path, key: str) -> dict[str, Any] | None:
    """The result a killed or finished earlier run wrote for this key (an unreadable one is redone)."""
    try:
        r = paths.parse_json(report.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return dict(r, resumed=True) if isinstance(r, dict) and r.get("key") == key else None


def translate(c_file: str | Path, tests: str | Path, client: Client, settings: LoopSettings | None = None,
              out: Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Translate one C program; report compiled, cases passed, rounds, tokens, stop reasons, unsafe, clippy.
    `overrides` replace fields of `settings` (translate(c, tests, client, rounds=2))."""
    st = dataclasses.replace(settings or LoopSettings(), **overrides)
    if st.candidates < 1:
        raise LabError(f"candidates must be >= 1, got {st.candidates}")
    out = paths.out_dir(out) if out else None
    with locks.writing(out, "lab c2rust run") if out else contextlib.nullcontext():
        return _program(Path(c_file), tests, client, st, out)


def _program(c_file: Path, tests: str | Path, client: Client, st: LoopSettings, out: Path | None) -> dict[str, Any]:
    """translate() of one program, its output folder (if any) made and held."""
    task = program_task(c_file, tests, st.feed)
    src = task.c_source
    name = program_name(c_file)
    say = (lambda m: _line(f"[{name}] {m.strip()}")) if st.progress else (lambda m: None)
    key = _key(src, task, client.model, st)
    if out and (earlier := _earlier(Path(out) / f"{name}.json", key)):
        say(f"reused the finished result in {out} (same program, tests, model, settings and prompt)")
        return earlier
    ref = check_source(src, task, "c")
    if not ref.ok:
        say(f"bad task: the C reference fails: {ref.summary()}")
        return {"program": name, "bad_task": True, "ok": False, "stop": f"C reference fails: {ref.summary()}"}
    log: list[dict[str, Any]] = []
    if out:
        replies = Replaying(client, Path(out) / ".replies" / name)
        if replies.kept:
            say(f"{replies.kept} replies an earlier run kept in {out}/.replies: a round that asks the same replays "
                f"its reply, checked again, not asked again")
        client = replies  # type: ignore[assignment]  # a Client in all but complete()
    msgs = first_messages(client, src, task, st.max_tokens, st.example)
    code, rep, used, tokens, why = _stage(client, msgs, task, st, log, "unidiomatic", say)
    say(f"unidiomatic: {why}")
    result: dict[str, Any] = {"program": name, "model": client.model, "task": task.format, "key": key,
                              "compiled": bool(rep and rep.compiled), "passed": rep.passed if rep else 0,
                              "total": len(task.cases), "rounds": used, "tokens": tokens, "ok": bool(rep and rep.ok),
                              "stop": why, "crates": rep.crates if rep else [],
                              "history": [{"round": x["round"], "compiled": x["compiled"], "ok": x["ok"]}
                                          for x in log if x["stage"] == "unidiomatic" and "compiled" in x]}
    if st.idiomatic and rep and rep.ok:
        msgs2 = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{IDIOMATIC}\n```rust\n{code}```"}]
        code2, rep2, used2, tok2, why2 = _stage(client, msgs2, task, st, log, "idiomatic", say)
        say(f"idiomatic: {why2}")
        ok2 = bool(rep2 and rep2.ok)  # compiled with -F unsafe_code, so passing means no unsafe
        result.update(idiomatic_ok=ok2, idiomatic_rounds=used2, idiomatic_stop=why2, tokens=tokens + tok2)
        if ok2:
            code, rep = code2, rep2
    result["unsafe"] = count_unsafe(code) if code else None
    result["clippy_warnings"] = clippy_warnings(code) if code and rep and rep.compiled else None  # once, final code
    if out:
        out = Path(out)
        if code:
            paths.atomic_write(out / f"{name}.rs", code)
        paths.atomic_write(out / f"{name}.log.jsonl", "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in log))
        paths.atomic_write(out / f"{name}.json", json.dumps(result, indent=1) + "\n")
    return result


def per_round(rows: list[dict[str, Any]], rounds: int) -> list[dict[str, Any]]:
    """After each round: how many programs compile and how many pass, each program at its latest round so far
    (one that passed in round 2 still counts in round 4)."""
    table = []
    for r in range(1, rounds + 1):
        states = [next((h for h in reversed(row.get("history", [])) if h["round"] <= r), None) for row in rows]
        table.append({"round": r, "compiled": sum(bool(h and h["compiled"]) for h in states),
                      "passed": sum(bool(h and h["ok"]) for h in states), "programs": len(rows)})
    return table


def programs(folder: str | Path) -> list[tuple[Path, Path]]:
    """(C file, task) of every program folder below `folder` (NAME/NAME.c or prog.c; test_task/ or tests.json)."""
    folder = Path(folder)
    if not folder.exists():
        raise LabError(f"{folder} does not exist: give a folder of programs (each: NAME/NAME.c + "
                       f"NAME/test_task/test_task.json)")
    if not folder.is_dir():
        raise LabError(f"{folder} is not a folder of programs (each: NAME/NAME.c + NAME/test_task/test_task.json)")
    found = []
    for d in sorted(x for x in folder.iterdir() if x.is_dir()):
        if p := find_program(d):
            found.append(p)
        elif why := why_not_program(d):  # a folder that looks like a program and is not one is said, not dropped
            paths.warn(f"{d}: skipped, not a program folder: {why}")
    kept = paths.inside(folder, [c for c, _ in found])
    found = [p for p in found if p[0] in kept]
    if not found:
        raise LabError(f"no programs in {folder}: expected NAME/NAME.c (or one .c) with "
                       f"NAME/test_task/test_task.json or NAME/tests.json")
    owners: dict[str, Path] = {}
    for c, _ in found:  # a/prog.c and b/a.c both write a.rs and a.json: one report would replace the other
        key = program_name(c).casefold()  # as macOS and Windows file systems compare names
        if key in owners:
            raise LabError(f"{owners[key]} and {c} would both write the reports of {program_name(c)}: rename one "
                           f"of them; nothing was run")
        owners[key] = c
    return found


def batch(folder: str | Path, client: Client, settings: LoopSettings | None = None, out: Path | None = None,
          **overrides: Any) -> dict[str, Any]:
    """Every program of a folder with bounded concurrency; a summary table, a per-round table and totals."""
    st = dataclasses.replace(settings or LoopSettings(), **overrides)
    if st.concurrency < 1:
        raise LabError(f"concurrency must be >= 1, got {st.concurrency}")
    progs = programs(folder)
    if out:
        out = paths.out_dir(out)
    done = 0
    said = threading.Lock()  # one count per finished program

    def one(pair: tuple[Path, Path]) -> dict[str, Any]:
        nonlocal done
        try:
            r = _program(pair[0], pair[1], client, st, out)  # its round lines too: minutes pass between programs
        except ServerError as e:
            # the server is gone or failing: every program would wait on it (run_all starts no other)
            if not isinstance(e, BadRequest):
                kept = f"; finished programs are kept: rerun with --out {out} to go on" if out else ""
                raise LabError(f"{e}{kept}") from None
            r = {"program": program_name(pair[0]), "ok": False, "stop": str(e)}  # this program's request only
        except LabError as e:  # one unreadable program or test file fails that program, not the batch
            r = {"program": program_name(pair[0]), "bad_task": True, "ok": False, "stop": str(e)}
        with said:
            done += 1
            if st.progress:
                _line(f"[{done}/{len(progs)}] {r['program']}: {'ok' if r['ok'] else 'failed'} "
                      f"({r.get('passed', 0)}/{r.get('total', 0)} cases, {r.get('rounds', 0)} rounds; {r['stop']})"
                      f"{' (from an earlier run)' if r.get('resumed') else ''}")
        return r
    with locks.writing(out, "lab c2rust run") if out else contextlib.nullcontext():
        rows = workers.run_all(one, progs, st.concurrency)
    n = len(rows)
    return {"model": client.model, "programs": n, "per_round": per_round(rows, st.rounds),
            "success_rate": round(sum(r["ok"] for r in rows) / n, 3),
            "compiled_rate": round(sum(bool(r.get("compiled")) for r in rows) / n, 3),
            "mean_rounds": _mean([r["rounds"] for r in rows if "rounds" in r]),  # bad tasks ran no round
            "tokens": sum(r.get("tokens", 0) for r in rows), "rows": rows}
