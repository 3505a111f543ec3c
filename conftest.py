"""Test session set-up shared by tests/ and the nbval notebook runs: isolated dirs, one vLLM server per worker."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import free_port  # tests/ is on pytest's pythonpath (pyproject.toml)

# a port of the session's own (never the tiny profile's 8011, so a developer's own server is never touched): two
# sessions at once (a developer's and CI's) each start and stop their own server; on one fixed port the first
# to finish stopped the server under the other. Under xdist each worker has its own (LAB_TEST_PORT + worker number).
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TEST_PORT = str(int(os.environ["LAB_TEST_PORT"]) + _WORKER) if os.environ.get("LAB_TEST_PORT") else str(free_port())
_state: dict = {}


def pytest_configure(config: pytest.Config) -> None:
    # Kernels started by nbval and papermill inherit these, so notebooks under test write to
    # temp folders (never into the committed journal/) and share the session's server.
    tmp = Path(tempfile.mkdtemp(prefix="lab-test-"))
    _state["tmp"] = tmp
    for var, sub in (("LAB_RUNS", "runs"), ("LAB_LOGS", "logs"), ("LAB_JOURNAL", "journal")):
        os.environ[var] = str(tmp / sub)
    os.environ["LAB_PORT"] = TEST_PORT
    os.environ["LAB_TEST_SESSION"] = str(tmp)  # marks every process the session starts (see _vllm_processes)
    # the run's lock on the cores (_cpu_lock): set by the xdist controller, whose environment its workers inherit
    os.environ.setdefault("LAB_TEST_CPU_LOCK", str(tmp / "cpu.lock"))
    os.environ.pop("LAB_PROFILE", None)
    os.environ.pop("LAB_API_KEY", None)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# `make test` runs the suite on 2 workers, file by file (-n 2 --dist loadfile --no-loadscope-reorder). These
# files take 1-5 minutes each there (2 cores, AVX2 host): started first, they overlap the many short files (left
# to xdist's order, the SmolLM2 module ran last while the other worker sat idle for 2.5 minutes). The files that
# train keep apart (CPU_BOUND below), so they are spread out in this list: notebook 03 comes after the fine-tune
# tests by two long files that do not train, so a worker is not idle waiting for the lock (84 s in one run).
# xdist hands a worker its next file while the current one still has 2 items to go: with notebooks 04 and 05 (a
# 64 s and a 48 s cell) last in collection order, one worker ran them alone for the last 94 s (2026-12-07, a
# timeline of the run); the short files last, the two workers end within seconds of each other.
LONGEST_FIRST = ("tests/test_smollm2.py", "tests/test_serve_shared.py", "tests/bench/test_sweeps.py",
                 "notebooks/02_transformers_vs_vllm.ipynb", "tests/test_serve.py", "tests/test_qwen_coder.py",
                 "tests/finetune/test_train.py", "tests/translate/test_pipeline.py", "tests/test_cli_bad_inputs.py",
                 "notebooks/03_qlora_finetune.ipynb", "notebooks/04_translation_ja_zh.ipynb", "tests/test_runner.py",
                 "notebooks/05_c_to_rust.ipynb", "tests/c2rust/test_harness.py",
                 "tests/translate/test_pipeline_novel.py", "notebooks/01_serving.ipynb")
# Files that train with PyTorch on every core. Two at once (4 OpenMP threads on 2 cores) took 5-8x their time
# alone (SmolLM2's QLoRA fixture: 97 s alone, 738 s beside the fine-tune tests), so a worker holds a lock shared by
# the workers of one run while it runs one of these files; the other worker's files that wait (servers, kills,
# timeouts) go on meanwhile. (test_adapter's 2 steps on the toy take seconds: not worth the other worker's wait.)
CPU_BOUND = ("tests/test_smollm2.py", "tests/finetune/test_train.py", "notebooks/03_qlora_finetune.ipynb")
CPU_LOCK_WAIT_S = 1800  # the longest of these files alone takes ~5 min; past this, run anyway rather than hang


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if getattr(config, "workerinput", None) is None:
        return  # one process: collection order (the files' own order is what a reader expects)
    rank = {f: i for i, f in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda it: rank.get(it.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order


def _cpu_lock(acquire: bool) -> None:
    """Take (waiting at most CPU_LOCK_WAIT_S) or drop this run's lock on the cores, shared by its xdist workers."""
    import fcntl
    import time
    if not acquire:
        if "cpu_lock" in _state:
            _state.pop("cpu_lock").close()  # closing the file drops its flock
        return
    if "cpu_lock" in _state or not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    f = open(os.environ["LAB_TEST_CPU_LOCK"], "w")
    start = time.monotonic()
    deadline = start + CPU_LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                break  # the other worker's file is stuck: its own timeouts end it; this one runs beside it
            time.sleep(1)
    _state["cpu_lock"] = f
    waited = time.monotonic() - start
    if waited >= 1:  # a worker idle while the other trains: summed at the end (pytest_terminal_summary)
        with open(os.environ["LAB_TEST_CPU_LOCK"] + ".waits", "a") as log:
            log.write(f"{waited:.0f}\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    file = item.nodeid.split("::")[0]
    if file in CPU_BOUND:
        _cpu_lock(True)
    try:
        yield
    finally:  # the file's last item (loadfile keeps a file's items together, in one worker)
        if nextitem is None or nextitem.nodeid.split("::")[0] != file:
            _cpu_lock(False)


def session_server():
    """Start the tiny server once per test session (reused by every test and notebook)."""
    if "server" not in _state:
        from lab import serve
        _state["server"] = serve.start("tiny", quiet=True)
    return _state["server"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if str(getattr(item, "path", "")).endswith(".ipynb"):
        session_server()


def _vllm_processes() -> set[tuple[int, int | None]]:
    """(pid, start ticks) of every vLLM process this session started (API servers, EngineCore, workers): they
    inherit its LAB_TEST_SESSION, which no other session shares."""
    from lab import procs
    mine = f"LAB_TEST_SESSION={_state['tmp']}".encode()
    found = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie holds no memory; init reaps it
            comm = (d / "comm").read_text().strip()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (comm.startswith("VLLM") or "vllm.entrypoints" in cmd or "vllm serve" in cmd) and mine in env:
            found.add((int(d.name), procs.start_ticks(int(d.name))))
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    srv = _state.pop("server", None)
    if srv is not None and srv.owned:
        from lab import serve
        serve.stop(srv.profile, quiet=True)
    # the suite must leave no vLLM process (EngineCore and workers included) behind, whoever in it started it
    left = _vllm_processes()
    if left:
        print(f"\nERROR: vLLM processes left after the session: {sorted(p for p, _ in left)}")
        session.exitstatus = 1
    waits = Path(os.environ["LAB_TEST_CPU_LOCK"] + ".waits")
    if getattr(session.config, "workerinput", None) is None and waits.exists():  # the controller, once
        _state["lock_waits"] = [float(x) for x in waits.read_text().split()]
        waits.unlink()
    tmp = _state["tmp"]
    if session.exitstatus == 0 or not any(tmp.iterdir()):  # a failed session that wrote nothing: nothing to see
        shutil.rmtree(tmp, ignore_errors=True)  # one per run piled up in /tmp (250 after two days of tests)
    else:
        print(f"\nthe session's runs, logs and journal are kept for a look: {tmp}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    waits = _state.get("lock_waits")
    if waits:  # time a worker sat idle, waiting for the other's training to end
        terminalreporter.write_line(f"cpu lock: {len(waits)} wait(s), {sum(waits):.0f} s in all")


@pytest.fixture(scope="session")
def tiny_server():
    """The session's real vLLM server on the tiny model."""
    return session_server()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The embedded tiny model (built by `make tiny` before the tests; built here if missing)."""
    from lab import tiny
    return tiny.build(progress=False)
