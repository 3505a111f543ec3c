"""lab.client.run_sync inside a running loop (a notebook cell): the value or the error comes back, and an interrupt
cancels the coroutine and is raised at once instead of waiting for it to end."""

import _thread
import asyncio
import signal
import threading
import time

import pytest

from lab.client import run_sync


def _in_a_running_loop(fn):
    """fn() called from inside a running event loop, as a notebook kernel runs a cell (no asyncio SIGINT handler)."""
    async def cell():
        return fn()
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(cell())
    finally:
        loop.close()


def test_the_value_and_the_error_come_back_from_inside_a_running_loop():
    async def seven():
        await asyncio.sleep(0.01)
        return 7

    async def boom():
        raise ValueError("no")
    assert _in_a_running_loop(lambda: run_sync(seven())) == 7
    with pytest.raises(ValueError, match="no"):
        _in_a_running_loop(lambda: run_sync(boom()))


def test_an_interrupt_cancels_the_coroutine_and_is_raised_at_once():
    cleaned = threading.Event()

    async def slow():  # a translation with minutes to go
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.set()  # its clean-up (closing clients, writing the cache) runs

    def interrupted():
        threading.Timer(0.3, _thread.interrupt_main).start()  # the kernel's SIGINT, as Jupyter's interrupt sends it
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_sync(slow())
        return time.monotonic() - t0
    # a kernel raises KeyboardInterrupt on SIGINT; an earlier test in this process may have left another handler
    # (interrupt_main does nothing under SIG_IGN or SIG_DFL)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert _in_a_running_loop(interrupted) < 5 and cleaned.is_set()
    finally:
        signal.signal(signal.SIGINT, before)
