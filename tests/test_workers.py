"""lab.workers: results in order, the first failure raised, an interrupt raised at once and the workers stopped."""

import threading
import time

import pytest

from lab import workers


def test_results_come_in_the_items_order_whatever_finishes_first():
    assert workers.run_all(lambda x: time.sleep(0.02 * (5 - x)) or x * x, range(5), 3) == [0, 1, 4, 9, 16]
    assert workers.run_all(lambda x: x, [], 4) == []


def test_the_first_failure_is_raised_and_nothing_starts_after_it():
    started = []

    def fn(x):
        started.append(x)
        if x == 1:
            raise ValueError("bad item 1")
        time.sleep(0.2)
        return x
    with pytest.raises(ValueError, match="bad item 1"):
        workers.run_all(fn, range(10), 2)
    assert sorted(started) == [0, 1]  # both threads began; neither took another item after 1 failed


def test_an_interrupt_is_raised_at_once_and_the_workers_stop_at_their_next_check():
    release, checked, after = threading.Event(), threading.Event(), []

    def fn(x):
        release.wait(30)  # a reply in flight
        try:
            workers.check()
        except workers.Stopped:
            checked.set()
            raise
        after.append(x)

    def tick(done, total):
        raise KeyboardInterrupt  # Ctrl-C (or cli.Terminated) arriving while the caller waits
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        workers.run_all(fn, range(4), 2, tick=tick, tick_s=0.05)
    assert time.monotonic() - t0 < 5  # not after the replies in flight (a ThreadPoolExecutor waited for them)
    release.set()
    assert checked.wait(5) and after == []  # the work in flight stopped at its check; items 2 and 3 never began
    assert not workers.stopping()  # the caller's thread belongs to no run


def test_a_stopped_run_stops_the_runs_its_workers_started():
    outer_stopped, inner_seen = threading.Event(), []

    def inner(x):
        outer_stopped.wait(30)
        inner_seen.append(workers.stopping())

    def outer(x):
        if x == 0:
            workers.run_all(inner, range(2), 2, tick_s=0.05)  # raises Stopped when the batch stops: ends quietly
            inner_seen.append("returned")  # never reached
        else:
            time.sleep(0.1)
            outer_stopped.set()
            raise RuntimeError("server gone")
    with pytest.raises(RuntimeError, match="server gone"):
        workers.run_all(outer, range(2), 2)
    assert inner_seen == [True, True]  # the candidates saw the batch stop; the program did not go on
