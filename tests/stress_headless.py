"""Headless-run soak: `lab run 01` many times against one tiny server while other processes load the CPU.

Not part of `make test` (it takes ~15 min on 2 cores); run it with `make stress` or
    .venv/bin/python tests/stress_headless.py --runs 50 --hogs 3 --pairs 5
Each run has a wall-clock bound (a hang shows as "hung", and the run's kernel log is named); --pairs also
starts two `lab run`s at once from the same folder, the case that shared kernel socket files. Exit code 0
only when every run passed. Runs and journal go to a temporary folder, never to the project's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _hog(stop: float) -> None:
    """Busy CPU and memory traffic until `stop` (a monotonic time)."""
    buf = bytearray(64 << 20)
    i = 0
    while time.monotonic() < stop:
        buf[i % len(buf)] = i & 0xFF  # touch memory as well as the ALUs
        i += 4093


def _lab_run(env: dict[str, str], bound: float) -> tuple[str, float, str]:
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "lab.cli", "run", "01", "--profile", "tiny", "--cell-timeout", "120"],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=bound)
    except subprocess.TimeoutExpired:
        return "hung", time.monotonic() - t0, f"no exit within {bound:.0f}s"
    last = (r.stdout.strip().splitlines() or [""])[-2:] + (r.stderr.strip().splitlines() or [""])[-1:]
    return ("passed" if r.returncode == 0 else "failed"), time.monotonic() - t0, " | ".join(last)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50, help="sequential runs of notebook 01 (default: 50)")
    ap.add_argument("--pairs", type=int, default=5, help="extra rounds of two runs at once, same folder (default: 5)")
    ap.add_argument("--hogs", type=int, default=3, help="CPU/memory hog processes during the runs (default: 3)")
    ap.add_argument("--bound", type=float, default=600, help="seconds one run may take before it counts as hung "
                    "(default: 600)")
    a = ap.parse_args()
    from lab import serve
    tmp = Path(tempfile.mkdtemp(prefix="lab-stress-"))
    env = {**os.environ, "LAB_RUNS": str(tmp / "runs"), "LAB_JOURNAL": str(tmp / "journal")}
    srv = serve.start("tiny", quiet=True)
    stop = time.monotonic() + a.bound * (a.runs + a.pairs)
    hogs = [mp.Process(target=_hog, args=(stop,), daemon=True) for _ in range(a.hogs)]
    for h in hogs:
        h.start()
    counts = {"passed": 0, "failed": 0, "hung": 0}
    try:
        for i in range(1, a.runs + 1):
            status, secs, why = _lab_run(env, a.bound)
            counts[status] += 1
            print(f"run {i}/{a.runs}: {status} in {secs:.0f}s{'' if status == 'passed' else ': ' + why}", flush=True)
        for i in range(1, a.pairs + 1):
            with mp.pool.ThreadPool(2) as pool:
                got = pool.map(lambda _: _lab_run(env, a.bound), range(2))
            for status, secs, why in got:
                counts[status] += 1
                print(f"pair {i}/{a.pairs}: {status} in {secs:.0f}s{'' if status == 'passed' else ': ' + why}",
                      flush=True)
    finally:
        for h in hogs:
            h.terminate()
        if srv.owned:
            serve.stop("tiny", quiet=True)
    print(f"stress: {counts['passed']} passed, {counts['failed']} failed, {counts['hung']} hung "
          f"({a.hogs} hogs on {os.cpu_count()} cores); runs in {tmp / 'runs'}", flush=True)
    return 0 if counts["passed"] == a.runs + 2 * a.pairs else 1


if __name__ == "__main__":
    import multiprocessing.pool  # noqa: F401  (mp.pool above)
    sys.exit(main())
