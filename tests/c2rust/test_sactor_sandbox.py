"""SACToR's task formats, offline crates, and the sandbox holding against programs that try to escape."""

import json
import os
import socket
import time
from pathlib import Path

import pytest
from helpers import ROOT, FakeServer, lab

from lab import LabError, c2rust
from lab.c2rust import build, sandbox
from lab.client import Client

SACTOR = ROOT / "data" / "c_to_rust_sactor"


def test_sactor_tasks_load_with_both_feeds_and_relative_samples(tmp_path):
    fib = c2rust.load_task(SACTOR / "fib" / "test_task" / "test_task.json")
    assert fib.format == "sactor-task" and len(fib.cases) == 5
    assert fib.cases[1].args == ["10"] and fib.cases[3].args == [] and fib.cases[1].stdin == ""
    stats = c2rust.load_task(SACTOR / "stats" / "test_task" / "test_task.json")
    assert stats.cases[1].args == [] and stats.cases[1].stdin == "  -5\n7   \n 0 \n"  # input + "\n", as SACToR
    bare = c2rust.load_task(SACTOR / "stats" / "test_task" / "test_samples.json", feed="stdin")
    assert bare.format == "sactor-samples" and [c.stdin for c in bare.cases] == [c.stdin for c in stats.cases]
    assert c2rust.load_task(SACTOR / "fib" / "test_task" / "test_samples.json").cases[2].args == ["92"]
    assert c2rust.normalize(" a \r\nb  \n") == "a\nb"  # lines stripped, no trailing newline
    bad = tmp_path / "test_task.json"
    for text, msg in ((json.dumps([{"command": "sactor run-tests --type bin ./s.json %t 0", "test_id": 0}]),
                       r"s\.json does not exist"),
                      (json.dumps([{"command": "sactor translate x.c", "test_id": 0}]), "only `sactor run-tests`"),
                      (json.dumps([{"command": "sactor run-tests --type lib ./s.json %t 0"}]), "only --type bin"),
                      (json.dumps([{"command": "sactor run-tests --type bin ./s.json %t 3"}]), "out of range"),
                      (json.dumps([{"command": "sactor run-tests --type bin /etc/passwd %t 0"}]),
                       "the samples file /etc/passwd is outside the program folder"),
                      (json.dumps([{"command": "sactor run-tests --type bin ../../../../../../etc/hosts %t 0"}]),
                       "outside the program folder")):
        (tmp_path / "s.json").write_text('[{"input": "1", "output": "1"}]')
        if "does not exist" in msg:
            (tmp_path / "s.json").unlink()
        bad.write_text(text)
        with pytest.raises(LabError, match=msg):
            c2rust.load_task(bad)


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


ESCAPES = {  # C programs that each try one escape; each prints "blocked" when the sandbox stopped it
    "write_outside": r'''#include <stdio.h>
int main(int c, char **v) { int ok = 0; const char *t[] = {"%s/lab-escape-home", "%s/lab-escape-project", 0};
  const char *dirs[] = {v[1], v[2]};
  for (int i = 0; t[i]; i++) { char p[512]; snprintf(p, sizeof p, t[i], dirs[i]); FILE *f = fopen(p, "w");
    if (f) { fputs("x", f); fclose(f); ok = 1; } }
  puts(ok ? "escaped" : "blocked"); return 0; }''',
    "read_outside": r'''#include <stdio.h>
int main(int c, char **v) { FILE *f = fopen(v[1], "r"); char b[64];
  puts(f && fgets(b, sizeof b, f) ? "escaped" : "blocked"); return 0; }''',
    "allocate": r'''#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) { size_t n = (size_t)3 << 30; char *p = malloc(n);
  if (!p) { puts("blocked"); return 0; } memset(p, 1, n); puts("escaped"); return 0; }''',
    "detach": r'''#include <stdio.h>
#include <unistd.h>
int main(int c, char **v) { if (fork() == 0) { setsid(); if (fork() == 0) {
    execl("/bin/sleep", "sleep", v[1], (char *)0); } return 0; }
  puts("blocked"); return 0; }''',
    "fork_bomb": r'''#include <stdio.h>
#include <unistd.h>
int main(void) { int n = 0; for (int i = 0; i < 200; i++) { pid_t p = fork(); if (p == 0) { sleep(2); _exit(0); }
    if (p > 0) n++; }
  puts(n < 200 ? "blocked" : "escaped"); return 0; }''',
    "socket": r'''#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <sys/socket.h>
int main(int c, char **v) { int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = {0};
  a.sin_family = AF_INET; a.sin_port = htons(atoi(v[1])); a.sin_addr.s_addr = htonl(0x7f000001);
  puts(s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? "escaped" : "blocked"); return 0; }''',
}


def _sleepers(tag: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and tag in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                out.append(int(d.name))
        except OSError:
            pass
    return out


def test_escapes_fail_or_are_contained_and_the_host_is_checked_afterwards(tmp_path):
    if not sandbox.protections()["bubblewrap"]:
        pytest.skip("bubblewrap is not installed: `make test` installs it where apt is available")
    home, secret = Path.home(), tmp_path / "secret.txt"
    secret.write_text("do not read me\n")
    tag = f"{31 + os.getpid() % 1000}.5"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.1)
    args = {"write_outside": [str(home), str(ROOT)], "read_outside": [str(secret)], "allocate": [],
            "detach": [tag], "socket": [str(listener.getsockname()[1])], "fork_bomb": []}
    try:
        for name, src in ESCAPES.items():
            rep = c2rust.check_source(src, [c2rust.Case(args[name], "", "blocked\n")], "c")
            assert rep.compiled, (name, rep.compile_errors)
            assert rep.ok, (name, rep.cases[0].reason, rep.cases[0].diff)
        with pytest.raises(OSError):
            listener.accept()  # nothing connected from inside
    finally:
        listener.close()
    assert not (home / "lab-escape-home").exists() and not (ROOT / "lab-escape-project").exists()
    time.sleep(0.2)
    assert _sleepers(f"sleep {tag}") == [], "a detached child outlived its case"


def test_concurrent_checks_do_not_share_one_process_budget():
    """Several checks at once (parallel jobs, `c2rust batch`): each case's process limit must be its own.

    With every case running as one shared `nobody`, 3 of 4 concurrent checks failed with
    "bwrap: Can't fork for pid 1: Resource temporarily unavailable"."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor
    fib = SACTOR / "fib"
    argv = [sys.executable, "-m", "lab.cli", "c2rust", "check", str(fib / "fib.c"),
            str(fib / "test_task" / "test_task.json"), str(fib / "idiomatic.rs")]
    with ThreadPoolExecutor(4) as ex:
        runs = list(ex.map(lambda _: subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT),
                           range(4)))
    assert [r.stdout.strip().splitlines()[-1] for r in runs] == ["Rust: 5/5 cases pass"] * 4, \
        [r.stdout[-300:] for r in runs]
    src = (SACTOR / "stats" / "stats.c").read_text()  # and threads in one process, as `batch` runs them
    task = c2rust.load_task(SACTOR / "stats" / "test_task" / "test_task.json")
    with ThreadPoolExecutor(6) as ex:
        reports = list(ex.map(lambda _: c2rust.check_source(src, task, "c"), range(6)))
    assert [r.summary() for r in reports] == ["4/4 cases pass"] * 6


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
