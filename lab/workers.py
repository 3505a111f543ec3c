"""Worker threads an interrupt does not wait for: Ctrl-C or SIGTERM ends a run at once, not after every reply.

A ThreadPoolExecutor's exit joins its threads, and Python joins them again at exit, so an interrupted
`lab c2rust batch` (2 programs x 3 candidates, each reply up to ~4 min from the 1.5B on 2 cores) went on
for the rest of the batch after SIGTERM, holding the server (2026-12-06). These threads are daemons: the
interrupt is raised in the caller at once, nothing new starts, and work in flight stops at its next
`check()` (a notebook's kernel lives on) or with the process (the command line)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

# The caller waits in slices this long: a lock wait ends early only for a signal delivered to its own thread, and
# _thread.interrupt_main() (or a signal another thread took) was seen only when a 30 s wait ran out.
POLL_S = 0.2
T = TypeVar("T")
R = TypeVar("R")


class Stopped(Exception):
    """Raised by check() in a worker whose run was interrupted or failed: it ends that worker quietly."""


def _stops() -> list[threading.Event]:
    """The stop events of this thread's run and of every run it belongs to (a batch's program's candidates)."""
    return list(getattr(threading.current_thread(), "lab_stops", []))


def stopping() -> bool:
    """Whether the run this thread works for was interrupted (always False outside run_all)."""
    return any(e.is_set() for e in _stops())


def check() -> None:
    """Raise Stopped where the run this thread works for was interrupted: a place to stop between steps."""
    if stopping():
        raise Stopped


def run_all(fn: Callable[[T], R], items: Iterable[T], workers: int, tick: Callable[[int, int], None] | None = None,
            tick_s: float = 30.0) -> list[R]:
    """fn over items on `workers` daemon threads, results in the items' order; tick(done, total) every tick_s
    seconds while any is running. The first failure (in item order) is raised once the items in flight end; none
    starts after it. An interrupt of the caller is raised at once, and the workers stop at their next check()."""
    todo = list(enumerate(items))
    results: dict[int, R] = {}
    errors: dict[int, BaseException] = {}
    stop, lock, finished = threading.Event(), threading.Lock(), threading.Semaphore(0)
    pending: queue.SimpleQueue[tuple[int, T]] = queue.SimpleQueue()
    for pair in todo:
        pending.put(pair)
    parents = _stops()

    def work() -> None:
        while not stop.is_set() and not any(e.is_set() for e in parents):
            try:
                i, item = pending.get_nowait()
            except queue.Empty:
                break
            try:
                out = fn(item)
                with lock:
                    results[i] = out
            except Stopped:
                pass
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, raised there
                with lock:
                    errors[i] = e
                stop.set()
        finished.release()
    threads = [threading.Thread(target=work, daemon=True, name=f"lab-worker-{n}")
               for n in range(max(1, min(workers, len(todo))))]
    for t in threads:
        t.lab_stops = [*parents, stop]  # type: ignore[attr-defined]
        t.start()
    next_tick = time.monotonic() + tick_s
    try:
        for _ in threads:
            while not finished.acquire(timeout=min(POLL_S, tick_s)):
                if tick is not None and time.monotonic() >= next_tick:
                    next_tick += tick_s
                    with lock:
                        tick(len(results) + len(errors), len(todo))
    except BaseException:
        stop.set()  # Ctrl-C, SIGTERM (cli.Terminated): nothing new starts, nothing waits for the replies
        raise
    if errors:
        raise errors[min(errors)]
    check()  # the run this one belongs to was stopped meanwhile: its items did not all run
    return [results[i] for i, _ in todo]
