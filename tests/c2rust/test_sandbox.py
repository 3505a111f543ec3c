"""lab.c2rust.sandbox holds against programs that try to escape; concurrent checks share no process budget."""

import os
import socket
import time
from pathlib import Path

import pytest
from helpers import ROOT

from lab import c2rust
from lab.c2rust import sandbox

SACTOR = ROOT / "data" / "c_to_rust_sactor"
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
