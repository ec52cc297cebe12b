"""The one timing helper: wall- or CPU-clock medians with warm-up, GFLOP/s, and thread-count scoping.

Every figure anycost reports is timed here (``anycost bench``, ``anycost demo``, the search's latency table
and the pytest-benchmark files in ``bench/``). Throughput is always GFLOP/s = 2 x true MACs / time.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

#: Clocks: wall time, or this process's CPU time (with 1 thread on a busy machine, CPU time is the
#: work done by the measured code alone: other processes only delay it, they do not add to it).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


@dataclass(frozen=True)
class Timing:
    """Wall times (seconds) of the timed calls of one measurement (warm-up calls excluded)."""

    times_s: tuple[float, ...]

    def __post_init__(self):
        if not self.times_s:
            raise ValueError("a Timing needs at least one time")

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def median_ms(self) -> float:
        return self.median_s * 1000

    @property
    def min_s(self) -> float:
        return min(self.times_s)


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, budget_s: float | None = None,
              min_repeats: int = 3, clock: str = "wall") -> Timing:
    """Call `fn` `warmup` times untimed, then up to `repeats` times timed with `clock` (see `CLOCKS`).

    With `budget_s`, timed calls stop early once their total passes it, but never before
    `min(min_repeats, repeats)` of them: slow configs get fewer repeats, not a shaky median.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {tuple(CLOCKS)}, got {clock!r}")
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    times: list[float] = []
    for _ in range(repeats):
        start = now()
        fn()
        times.append(now() - start)
        if budget_s is not None and len(times) >= min(min_repeats, repeats) and sum(times) >= budget_s:
            break
    return Timing(tuple(times))


def gflops(macs: float, seconds: float) -> float:
    """GFLOP/s of `macs` multiply-accumulates done in `seconds` (one MAC = 2 FLOPs)."""
    if macs < 0:
        raise ValueError(f"macs must be >= 0, got {macs}")
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return 2 * macs / seconds / 1e9


@contextlib.contextmanager
def num_threads(n: int | None):
    """Run the block with `torch.set_num_threads(n)` (None: leave it), restoring it afterwards."""
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
