"""lab.c2rust.loop, one program: a repeated program is said so and the next round samples, candidates, fresh
translations, the nearest program kept."""

import json

from helpers import openai_fake

from lab.c2rust.loop import translate
from lab.client import Client


def test_a_repeated_program_is_named_and_the_next_round_samples(tmp_path):
    prog = tmp_path / "p"
    prog.mkdir()
    (prog / "p.c").write_text('#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }\n')
    (prog / "tests.json").write_text('[{"input": "", "output": "hi"}]')
    fake = openai_fake(lambda body: (200, "```rust\nfn main() { println!(\"ho\"); }\n```", "stop"))
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=3, progress=False)
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    assert len(chats) == 5 and not res["ok"]  # rounds 2 and 3 repeat round 1: each asks a fresh translation too
    assert "temperature" not in chats[1] or chats[1]["temperature"] == 0.0  # round 2: greedy, first repeat unknown
    assert chats[2]["temperature"] == 0.7 and chats[2]["seed"] == 2999 and chats[2]["messages"] == chats[0]["messages"]
    assert chats[3]["temperature"] == 0.7 and chats[3]["seed"] == 3  # round 3 follows a repeated program
    assert "same program as your previous reply" in chats[3]["messages"][-1]["content"]
    assert chats[4]["seed"] == 3999 and chats[4]["messages"] == chats[0]["messages"]
    assert res["history"] == [{"round": r, "compiled": True, "ok": False} for r in (1, 2, 3)]  # compiles, prints ho


def test_a_round_of_repeats_goes_on_with_a_fresh_translation(tmp_path):
    prog = tmp_path / "p"
    prog.mkdir()
    (prog / "p.c").write_text('#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }\n')
    (prog / "tests.json").write_text('[{"input": "", "output": "hi"}]')
    ho = "```rust\nfn main() { println!(\"ho\"); }\n```"
    hi = "```rust\nfn main() { println!(\"hi\"); }\n```"
    fake = openai_fake(lambda body: (200, hi if body.get("seed") == 2999 else ho, "stop"))
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=3, progress=False,
                        out=tmp_path / "o")
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    assert len(chats) == 3 and res["ok"] and res["rounds"] == 2  # round 2's repeat was not what it spent
    log = [json.loads(ln) for ln in (tmp_path / "o" / "p.log.jsonl").read_text().splitlines()]
    assert log[1]["repeat_replaced"] is True and "repeated" not in log[1] and log[1]["ok"]


def test_per_round_counts_each_program_at_its_latest_round():
    from lab.c2rust.loop import per_round
    rows = [{"history": [{"round": 1, "compiled": False, "ok": False}, {"round": 2, "compiled": True, "ok": True}]},
            {"history": [{"round": 1, "compiled": True, "ok": False}, {"round": 2, "compiled": True, "ok": False},
                         {"round": 3, "compiled": False, "ok": False}]},
            {"history": []}]  # no code block in any round
    assert per_round(rows, 3) == [{"round": 1, "compiled": 1, "passed": 0, "programs": 3},
                                  {"round": 2, "compiled": 2, "passed": 1, "programs": 3},
                                  {"round": 3, "compiled": 1, "passed": 1, "programs": 3}]


def _translated(prog, reply, rounds, out):
    """translate() of prog/p.c against a fake server answering reply(body); the result and the chat requests."""
    fake = openai_fake(reply)
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=rounds, progress=False, out=out)
    finally:
        fake.close()
    return res, [b for p, b in fake.requests if p.endswith("/chat/completions")]


def _hi_task(tmp_path):
    prog = tmp_path / "p"
    prog.mkdir()
    (prog / "p.c").write_text('#include <stdio.h>\nint main(int c, char **v) { printf("hi %d\\n", c - 1); '
                              'return 0; }\n')
    (prog / "tests.json").write_text('{"cases": [{"args": ["a", "b"], "expected_stdout": "hi 2\\n"},'
                                     ' {"args": [], "expected_stdout": "hi 0\\n"}, '
                                     '{"args": ["x"], "expected_stdout": "hi 1\\n"}]}')
    return prog


GOOD_HI = 'fn main() {\n    println!("hi {}", std::env::args().count() - 1);\n}\n'


def test_candidates_are_all_checked_and_the_best_goes_on(tmp_path):
    prog = _hi_task(tmp_path)

    def reply(body):  # greedy writes a program that does not compile; only the seed-1002 sample is right
        if body.get("seed") == 1002:
            return 200, f"```rust\n{GOOD_HI}```", "stop"
        if body.get("seed"):
            return 200, '```rust\nfn main() { println!("hi"); }\n```', "stop"
        return 200, "```rust\nfn main() { let x: i32 = \"a\"; }\n```", "stop"
    fake = openai_fake(reply)
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=2, candidates=3,
                        progress=False, out=tmp_path / "out")
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    assert res["ok"] and res["rounds"] == 1 and len(chats) == 3  # one round: three replies, the third passed
    assert sorted(c.get("seed", 0) for c in chats) == [0, 1001, 1002]
    assert all(c["temperature"] == 0.7 for c in chats if c.get("seed"))
    import json
    log = json.loads((tmp_path / "out" / "p.log.jsonl").read_text().splitlines()[0])
    assert log["candidate"] == 2 and log["result"] == "3/3 cases pass"
    assert log["candidates"][0].startswith("does not compile") and log["candidates"][1].startswith("0/3")
    assert (tmp_path / "out" / "p.rs").read_text() == GOOD_HI


def test_the_first_prompt_shows_test_runs_and_later_rounds_echo_the_compiled_program(tmp_path):
    prog = _hi_task(tmp_path)
    missing = 'fn main() {\n    println!("hi {}", args().count());\n}\n'  # compiles once rustc adds the import
    fake = openai_fake(lambda body: (200, f"Here it is.\n```rust\n{missing}```\nDone.", "stop"))
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=2, progress=False)
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    first = chats[0]["messages"][1]["content"]
    assert "args ['a', 'b']: stdout 'hi 2\\n'" in first and "args []: stdout 'hi 0\\n'" in first
    assert "'x'" not in first  # two examples, not every case
    echo = chats[1]["messages"][2]
    assert echo["role"] == "assistant" and "use std::env::args;" in echo["content"]
    assert "Here it is" not in echo["content"]
    assert res["compiled"] and res["passed"] == 0  # off by one: the program's name counts


def test_construct_hints_go_in_only_where_the_context_leaves_room(tmp_path):
    from lab.c2rust.advice import hints_for
    from lab.c2rust.prompts import SYSTEM, example_turns, first_messages
    from lab.c2rust.tasks import load_task
    prog = _hi_task(tmp_path)
    src, task = (prog / "p.c").read_text(), load_task(prog / "tests.json")
    sizes = {}
    for ctx in (9000, 3000, 1600, 1200):  # the fake counts a character as a token
        fake = openai_fake(lambda body: (200, "", "stop"), max_model_len=ctx)
        try:
            sizes[ctx] = first_messages(Client(fake.url), src, task, max_tokens=400, example=True)
        finally:
            fake.close()
    assert hints_for(src) and sizes[9000][0]["content"] == SYSTEM + "\n" + hints_for(src)
    assert [m["role"] for m in sizes[9000]] == ["system", "user", "assistant", "user"]  # the worked example
    assert sizes[9000][1:3] == example_turns() and "```rust\n" in sizes[9000][2]["content"]
    assert "for example" in sizes[9000][3]["content"] and src in sizes[9000][3]["content"]
    assert len(sizes[3000]) == 2 and sizes[3000][0] == sizes[9000][0]  # the example goes first
    assert sizes[1600][0]["content"] == SYSTEM and "for example" in sizes[1600][1]["content"]  # then the hints
    assert sizes[1200][1]["content"] == f"```c\n{src}\n```"  # then the test runs; the program always stays


def test_after_round_one_every_other_candidate_translates_afresh(tmp_path):
    prog = _hi_task(tmp_path)
    fake = openai_fake(lambda body: (200, '```rust\nfn main() { println!("hi"); }\n```', "stop"))
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url), rounds=2, candidates=3, progress=False)
    finally:
        fake.close()
    chats = [b for p, b in fake.requests if p.endswith("/chat/completions")]
    assert len(chats) == 6 and not res["ok"]
    second = {c.get("seed", 0): len(c["messages"]) for c in chats[3:]}
    assert second == {0: 4, 2001: 2, 2002: 4}  # a fresh one: system + C only


def test_the_result_is_the_nearest_program_of_any_round_not_the_last(tmp_path):
    """Round 1 passes 1 of 3 cases, round 2 does not compile: the report and the .rs are round 1's (was: the last
    round's, so a run could end worse than it had been)."""
    prog = _hi_task(tmp_path)
    partial = 'fn main() {\n    println!("hi 2");\n}\n'

    def reply(body):
        if len(body["messages"]) <= 2:  # the opening conversation: round 1
            return 200, f"```rust\n{partial}```", "stop"
        return 200, "```rust\nfn main() { let x: i32 = \"a\"; }\n```", "stop"
    res, _ = _translated(prog, reply, 2, tmp_path / "out")
    assert not res["ok"] and res["compiled"] and res["passed"] == 1 and res["rounds"] == 2
    assert [h["compiled"] for h in res["history"]] == [True, False]  # what each round gave stays in the history
    assert (tmp_path / "out" / "p.rs").read_text() == partial


def test_a_slow_reply_gets_waiting_lines_while_it_is_awaited(tmp_path, monkeypatch, capsys):
    """A 1.5B round is minutes on 2 cores: it used to pass without a word until the reply came."""
    import time

    from lab.c2rust import loop
    monkeypatch.setattr(loop, "HEARTBEAT_S", 0.2)
    prog = tmp_path / "p"
    prog.mkdir()
    (prog / "p.c").write_text('#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }\n')
    (prog / "tests.json").write_text('[{"input": "", "output": "hi"}]')

    def slow(body):
        time.sleep(1.5)
        return 200, '```rust\nfn main() { println!("hi"); }\n```', "stop"
    fake = openai_fake(slow)
    try:
        res = translate(prog / "p.c", prog / "tests.json", Client(fake.url, timeout=60), rounds=1)
    finally:
        fake.close()
    out = capsys.readouterr().out
    assert res["ok"] and "[p] unidiomatic round 1: waiting on the model (" in out, out
    assert "0 of 1 replies in and checked; a request fails after 60s without a token)" in out


def test_a_repair_that_replies_one_function_is_checked_with_the_rest_of_the_program(tmp_path):
    """Round 2 replies only the function it changed (the 1.5B did, `cannot find function reverse`): it is checked
    with round 1's other items spliced in, the model is told, and round 3 sees the whole program."""
    prog = tmp_path / "p"
    prog.mkdir()
    (prog / "p.c").write_text('#include <stdio.h>\nint twice(int x) { return 2 * x; }\n'
                              'int main(void) { printf("%d\\n", twice(21)); return 0; }\n')
    (prog / "tests.json").write_text('[{"input": "", "output": "42"}]')
    main = 'fn main() {\n    println!("{}", twice(21));\n}\n'
    replies = {1: f"```rust\nfn twice(x: i32) -> i32 {{\n    x + 2\n}}\n\n{main}```",
               2: "Only `twice` changes:\n```rust\nfn twice(x: i32) -> i32 {\n    3 * x\n}\n```",
               3: f"```rust\n{main}\nfn twice(x: i32) -> i32 {{\n    x * 2\n}}\n```"}

    def reply(body):  # each round's conversation is the opening, the program shown back, the feedback
        m = body["messages"]
        return 200, replies[1 if len(m) == 2 else 2 if "x + 2" in m[-2]["content"] else 3], "stop"
    res, chats = _translated(prog, reply, 3, tmp_path / "o")
    log = [json.loads(ln) for ln in (tmp_path / "o" / "p.log.jsonl").read_text().splitlines()]
    assert res["ok"] and res["rounds"] == 3 and [h["compiled"] for h in res["history"]] == [True, True, True]
    assert "spliced" not in log[0] and log[1]["spliced"] == ["fn main"] and log[1]["result"] == "0/1 cases pass " \
        "(case 0: wrong_output)"  # as the reply stood it could not build (no main); spliced it runs and prints 63
    echo, told = chats[2]["messages"][-2]["content"], chats[2]["messages"][-1]["content"]
    assert "3 * x" in echo and "fn main" in echo  # the program shown back is the spliced one, whole
    assert "left out fn main" in told and "Reply with the whole program" in told
