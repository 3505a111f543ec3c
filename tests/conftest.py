"""Fixtures every test folder shares (tests/[<stage>/]test_<module>.py mirrors lab/[<stage>/]<module>.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import helpers  # tests/ is on pytest's pythonpath (pyproject.toml)
import pytest


@pytest.fixture
def lab_cli() -> Callable:
    """Run the `lab` CLI in a subprocess, as a user would: lab_cli("serve", "status", env={...})."""
    return helpers.lab


@pytest.fixture
def openai_fake() -> Iterator[Callable]:
    """Start scripted OpenAI-compatible HTTP servers on 127.0.0.1; all are closed after the test."""
    started: list[helpers.FakeServer] = []

    def make(reply: Callable, **kw) -> helpers.FakeServer:
        srv = helpers.openai_fake(reply, **kw)
        started.append(srv)
        return srv
    yield make
    for s in started:
        s.close()
