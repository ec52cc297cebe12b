"""Shared helpers of the pytest-benchmark files: thin users of `anycost.benchmark` (the one home of
the timing, GFLOP/s and peak code), so `pytest bench` and `anycost bench` measure the same way."""

from __future__ import annotations

import functools

import torch

from anycost.benchmark import PEAK_SHAPE, gflops, peak_macs, random_generator

__all__ = ["THREADS", "config_f", "gflops", "peak_macs", "PEAK_SHAPE", "record"]

#: The targets are stated for 2 threads, batch 1.
THREADS = 2


@functools.lru_cache(maxsize=1)
def config_f():
    """The random-weight config-f 1024 px generator (built once per session, without mean-w sampling)."""
    return random_generator(1024, 2)


def record(benchmark, macs: int, **info) -> None:
    """Put the true MACs and the achieved GFLOP/s (from the median) into ``benchmark.extra_info``."""
    benchmark.extra_info.update(info, macs=int(macs), threads=torch.get_num_threads())
    stats = getattr(benchmark, "stats", None)
    median = getattr(getattr(stats, "stats", None), "median", None)
    if median:
        benchmark.extra_info["gflops"] = gflops(macs, median)
