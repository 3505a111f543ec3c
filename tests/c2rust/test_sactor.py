"""lab.c2rust.sactor and SACToR's formats: the comparison SACToR makes, offline crates, the CLI on a task, the live
server's config."""

import json

import pytest
from helpers import ROOT, FakeServer, lab

from lab import LabError, c2rust
from lab.c2rust import build
from lab.client import Client

SACTOR = ROOT / "data" / "c_to_rust_sactor"


def test_sactor_comparison_is_normalized_stdout_plus_stderr_and_ignores_exit_codes():
    task = c2rust.load_task(SACTOR / "fib" / "test_task" / "test_task.json")
    ref, rep = c2rust.check(SACTOR / "fib" / "fib.c", task.path, SACTOR / "fib" / "unidiomatic.rs")
    assert ref.ok and rep.ok and rep.crates == ["libc"]  # the usage case exits 1 with its text on stderr
    with pytest.raises(LabError, match="bad task: .* fed as arguments unless the feed is stdin"):
        c2rust.check(SACTOR / "stats" / "stats.c", SACTOR / "stats" / "test_task" / "test_samples.json",
                     SACTOR / "fib" / "idiomatic.rs")  # a stdin program's bare samples, fed as args by default
    stats_c = (SACTOR / "stats" / "stats.c").read_text()
    assert c2rust.check_source(stats_c, c2rust.load_task(SACTOR / "stats" / "test_task" / "test_task.json"), "c").ok


def test_libc_translation_builds_offline_and_the_idiomatic_gate_is_the_compiler():
    fib = c2rust.load_task(SACTOR / "fib" / "test_task" / "test_task.json")
    uni = (SACTOR / "fib" / "unidiomatic.rs").read_text()
    gated = c2rust.check_source(uni, fib, idiomatic=True)
    assert not gated.compiled and "unsafe" in gated.compile_errors
    idio = c2rust.check_source((SACTOR / "fib" / "idiomatic.rs").read_text(), fib, idiomatic=True)
    assert idio.ok and idio.crates == []
    for src in ((SACTOR / "fib" / "idiomatic.rs").read_text(), uni):  # clippy-driver, then cargo clippy
        warnings = build.clippy_warnings(src)
        assert warnings is None or warnings >= 0
    missing = c2rust.check_source("use rand::Rng;\nfn main() {}\n", fib)
    assert not missing.compiled and missing.compile_errors.startswith("crate(s) rand not available offline")
    assert build.crates_used("extern crate libc;\nuse std::io;\nmod util { }\nuse util::x;") == ["libc"]
    assert build.crates_used("enum Color { Red }\nuse Color::*;\nfn main() { libc::exit(0) }") == ["libc"]


def test_cli_checks_a_sactor_task_and_says_which_protections_are_active():
    r = lab("c2rust", "check", str(SACTOR / "fib" / "fib.c"), str(SACTOR / "fib" / "test_task" / "test_task.json"),
            str(SACTOR / "fib" / "idiomatic.rs"))
    assert r.returncode == 0 and "Rust: 5/5 cases pass" in r.stdout and r.stdout.startswith("sandbox: ")
    j = lab("c2rust", "check", "--json", str(SACTOR / "fib" / "fib.c"),
            str(SACTOR / "fib" / "test_task" / "test_task.json"), str(SACTOR / "fib" / "idiomatic.rs"))
    assert j.returncode == 0 and json.loads(j.stdout)["passed"] == 5 and j.stderr.startswith("sandbox: ")


def test_sactor_config_takes_model_and_budget_from_the_live_server(tmp_path):
    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "qwen3-32b-awq", "object": "model",
                                                     "max_model_len": 40960}]}
        return 404, {"detail": "no"}
    fake = FakeServer(handler)
    mine = tmp_path / "mine.toml"
    mine.write_text('[general]\nllm = "OpenAI"\n\n[test_generator]\nmax_attempts = 6\n')
    try:
        text = c2rust.sactor_config(Client(fake.url))
        r = lab("c2rust", "sactor-config", "--base-url", fake.url, "-o", str(tmp_path / "sactor.toml"))
        again = lab("c2rust", "sactor-config", "--base-url", fake.url, "-o", str(tmp_path / "sactor.toml"))
        refused = lab("c2rust", "sactor-config", "--base-url", fake.url, "-o", str(mine))
    finally:
        fake.close()
    assert again.returncode == 0  # its own file: rewritten
    assert refused.returncode == 1 and "was not written by this command" in refused.stderr
    assert "test_generator" in mine.read_text()  # a user's sactor.toml keeps its other sections
    import tomllib
    cfg = tomllib.loads(text)
    assert cfg["general"]["llm"] == "VLLM"
    assert cfg["VLLM"] == {"base_url": fake.url, "api_key": "EMPTY", "model": "qwen3-32b-awq", "max_tokens": 20480,
                           "temperature": 0.0}
    assert r.returncode == 0 and tomllib.loads((tmp_path / "sactor.toml").read_text()) == cfg
    assert (tmp_path / "sactor.toml").stat().st_mode & 0o777 == 0o600


def test_loop_trims_feedback_that_would_not_fit_and_batch_fails_when_any_program_fails(tmp_path):
    broken = "fn main() { let x: i32 = \"no\"; }\n" * 3
    calls = []

    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "small", "object": "model", "max_model_len": 1200}]}
        if path.endswith("/tokenize"):
            return 200, {"count": sum(len(m["content"]) for m in body["messages"]) // 3}
        calls.append(body)
        return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "small",
                     "choices": [{"index": 0, "finish_reason": "stop", "message": {
                         "role": "assistant", "content": "x" * 1500 + f"\n```rust\n{broken}```"}}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}
    fake = FakeServer(handler)
    try:
        prog = tmp_path / "progs" / "fib"
        (prog / "test_task").mkdir(parents=True)
        for f in ("fib.c",):
            (prog / f).write_text((SACTOR / "fib" / f).read_text())
        for f in ("test_task.json", "test_samples.json"):
            (prog / "test_task" / f).write_text((SACTOR / "fib" / "test_task" / f).read_text())
        r = c2rust.translate(prog / "fib.c", prog / "test_task" / "test_task.json", Client(fake.url, max_retries=0),
                             rounds=3, out=tmp_path / "out", progress=False)
        assert r["rounds"] == 3 and not r["ok"] and r["stop"] == "still failing after 3 rounds"
        # the long reply did not end the loop (its echo was trimmed): 3 rounds, and rounds 2 and 3, which repeat
        # round 1's program, each asked a fresh translation too (system + C program only)
        assert len(calls) == 5 and [len(c["messages"]) for c in calls[2::2]] == [2, 2]
        cli = lab("c2rust", "batch", str(tmp_path / "progs"), "--base-url", fake.url, "--rounds", "1",
                  "--out", str(tmp_path / "b"))
    finally:
        fake.close()
    assert cli.returncode == 1 and "success 0%" in cli.stdout and "fib" in cli.stdout
