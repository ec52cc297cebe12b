"""`ops.core_pair_ns`: the cache-line round trip between two CPUs that `anycost bench` records beside its
timings (the native probe, csrc/core_pair.cpp, where it is built)."""

import os

import pytest

from anycost import ops
from anycost.ops import _ext, core_pair_ns, placement

ALLOWED = sorted(os.sched_getaffinity(0))
native = pytest.mark.skipif(not ops.NATIVE, reason=f"native ops unavailable: {_ext.reason()}")
two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs to run on")


@native
@two_cpus
def test_round_trip_is_measured_both_ways():
    for cpus in (None, (ALLOWED[1], ALLOWED[0])):
        ns = core_pair_ns(cpus, rounds=500, samples=2)
        assert 1 < ns < 1e6  # nanoseconds: a hand-over takes tens to hundreds on today's CPUs


@native
def test_native_probe_refuses_bad_arguments_and_unpinnable_cpus():
    assert _ext.core_pair_ns(0, 0, 10) == -2  # the same CPU twice
    assert _ext.core_pair_ns(-1, 0, 10) == -2
    assert _ext.core_pair_ns(0, 1, 0) == -2
    assert _ext.core_pair_ns(0, 1 << 20, 10) == -2  # past any CPU set
    assert _ext.core_pair_ns(ALLOWED[0], ALLOWED[-1] + 1, 10) == -1  # not one this process may use


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="two different CPUs"):
        core_pair_ns((0, 0))
    with pytest.raises(ValueError, match="not one this process may run on"):
        core_pair_ns((ALLOWED[0], ALLOWED[-1] + 1))
    with pytest.raises(ValueError, match="rounds"):
        core_pair_ns(rounds=0)
    with pytest.raises(ValueError, match="samples"):
        core_pair_ns(samples=0)


def test_one_cpu_gives_none_the_least_sample_wins_and_a_failed_pin_is_an_error(monkeypatch):
    monkeypatch.setattr(placement.os, "sched_getaffinity", lambda pid: {3})
    assert core_pair_ns() is None
    monkeypatch.setattr(placement.os, "sched_getaffinity", lambda pid: {3, 5})
    monkeypatch.setattr(placement._ext, "load", lambda: object())
    monkeypatch.setattr(placement, "SETTLE_S", 0)
    means = iter([310.0, 62.0, 75.0])  # the least of the samples: other load only slows one down
    monkeypatch.setattr(placement._ext, "core_pair_ns", lambda a, b, rounds: next(means))
    assert core_pair_ns(samples=3) == 62.0
    monkeypatch.setattr(placement._ext, "core_pair_ns", lambda a, b, rounds: -1.0)
    with pytest.raises(RuntimeError, match="could not pin the probe's threads to CPUs 3 and 5"):
        core_pair_ns()
