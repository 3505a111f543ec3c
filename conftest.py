"""Test session set-up shared by tests/ and the nbval notebook runs: isolated dirs, one vLLM server."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import free_port  # tests/ is on pytest's pythonpath (pyproject.toml)

# a port of the session's own (never the tiny profile's 8011, so a developer's own server is never touched): two
# sessions at once (a developer's and CI's) each start and stop their own server; on one fixed port the first
# to finish stopped the server under the other
TEST_PORT = os.environ.get("LAB_TEST_PORT") or str(free_port())
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
    os.environ.pop("LAB_PROFILE", None)
    os.environ.pop("LAB_API_KEY", None)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
    tmp = _state["tmp"]
    if session.exitstatus == 0:
        shutil.rmtree(tmp, ignore_errors=True)  # one per run piled up in /tmp (250 after two days of tests)
    else:
        print(f"\nthe session's runs, logs and journal are kept for a look: {tmp}")


@pytest.fixture(scope="session")
def tiny_server():
    """The session's real vLLM server on the tiny model."""
    return session_server()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The embedded tiny model (built by `make tiny` before the tests; built here if missing)."""
    from lab import tiny
    return tiny.build(progress=False)
