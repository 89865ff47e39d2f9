"""CPU threads for training: all cores of this process's share, unless other processes are busy.

On a 2-core machine one competing busy process made 2-thread training 2.75x slower (OpenMP threads
wait on each other while one of them is descheduled) while 1 thread ran at its idle speed; so when
other processes keep cores busy at start-up we train on the cores left, and say so."""

from __future__ import annotations

import os
import time


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as handle:
            fields = [float(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def competing_cores(window: float = 0.25) -> float:
    """Cores kept busy by other processes over a short window (this process sleeps through it)."""
    before = _cpu_times()
    if before is None:
        return 0.0
    time.sleep(window)
    after = _cpu_times()
    busy, total = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / total if total > 0 else 0.0


def default_threads(local_processes: int, busy: float | None = None) -> tuple[int, float]:
    """(threads, cores others use): this process's share of the cores, less what others keep busy
    (measured only for a single process: ranks starting together would see each other)."""
    share = max(1, (os.cpu_count() or 1) // local_processes)
    if local_processes > 1:
        return share, 0.0
    busy = competing_cores() if busy is None else busy
    return max(1, min(share, round((os.cpu_count() or 1) - busy))), busy
