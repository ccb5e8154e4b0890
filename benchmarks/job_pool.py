"""A few subprocesses at a time: the benchmarks that train several arms side by side share it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable


def run_pool(starts: Iterable[Callable[[], subprocess.Popen | None]], jobs: int) -> None:
    """Call each ``start`` (which launches one job and returns its process, or None when there is
    nothing left to do) with at most ``jobs`` processes running, then wait for all of them."""
    running: list[subprocess.Popen] = []
    for start in starts:
        while len(running) >= jobs:
            time.sleep(5)
            running = [p for p in running if p.poll() is None]
        if (p := start()) is not None:
            running.append(p)
    for p in running:
        p.wait()
