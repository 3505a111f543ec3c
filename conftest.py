"""Test session set-up shared by tests/ and the nbval notebook runs: isolated dirs, one vLLM server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

TEST_PORT = "8019"  # not the tiny profile's 8011, so a developer's own server is never touched
_state: dict = {}


def pytest_configure(config: pytest.Config) -> None:
    # Kernels started by nbval and papermill inherit these, so notebooks under test write to
    # temp folders (never into the committed journal/) and share the session's server.
    tmp = Path(tempfile.mkdtemp(prefix="lab-test-"))
    _state["tmp"] = tmp
    for var, sub in (("LAB_RUNS", "runs"), ("LAB_LOGS", "logs"), ("LAB_JOURNAL", "journal")):
        os.environ[var] = str(tmp / sub)
    os.environ["LAB_PORT"] = TEST_PORT
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    srv = _state.pop("server", None)
    if srv is not None and srv.owned:
        from lab import serve
        pgid = srv.pid
        serve.stop(srv.profile, quiet=True)
        left = serve._group_pids(pgid)
        if left:  # the suite must leave no vLLM process (EngineCore included) behind
            print(f"\nERROR: vLLM processes left after the session: {left}")
            session.exitstatus = 1


@pytest.fixture(scope="session")
def tiny_server():
    """The session's real vLLM server on the tiny model."""
    return session_server()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The embedded tiny model (built by `make tiny` before the tests; built here if missing)."""
    from lab import tiny
    return tiny.build(progress=False)
