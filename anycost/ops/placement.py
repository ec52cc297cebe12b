"""Where a run's threads are: the round trip of a cache line between two of the CPUs this process may use.

Two cores that share a last-level cache hand a line over in tens of nanoseconds; cores that do not (another CCD of a
Zen CPU, another socket) take several times that, and a multi-threaded forward pays it at every layer whose output
one thread writes and another reads. A virtual machine's host may move the guest's vCPUs between such placements
while it runs: on a 2-vCPU Zen 4 guest the probe read 53-88 ns or 290-335 ns, flipping between the two from one
second or minute to the next (apart more often right after heavy work), and the 2-thread image-to-image student took
5.4-5.7 and 10.3-10.4 ms at 256 px accordingly. `anycost bench` records the probe at each of its peak probes, so a
ratio whose two sides ran in different placements shows as such.
"""

from __future__ import annotations

import os
import time

from anycost.checks import check_int
from anycost.ops import _ext

#: Seconds `core_pair_ns` first waits, so that an OpenMP pool still spinning after its last parallel region (libgomp's
#: default wait policy: a few ms) does not share the probe's CPUs.
SETTLE_S = 0.01


def core_pair_ns(cpus: tuple[int, int] | None = None, rounds: int = 2000, samples: int = 5) -> float | None:
    """Round trip (ns) of a cache line between a thread pinned to ``cpus[0]`` and one pinned to ``cpus[1]``
    (default: the first two CPUs this process may run on): after `SETTLE_S`, the least of `samples` means over
    `rounds` hand-overs each (other load only ever slows one down; ~15 ms in all). None without the native
    extension or, by default, with fewer than two CPUs to run on."""
    check_int("rounds", rounds, 1)
    check_int("samples", samples, 1)
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cpus is None:
        if len(allowed) < 2:
            return None
        cpus = (allowed[0], allowed[1])
    a, b = (int(c) for c in cpus)
    if a == b:
        raise ValueError(f"cpus must be two different CPUs, got {a} twice")
    outside = [c for c in (a, b) if allowed and c not in allowed]
    if outside:
        raise ValueError(f"CPU {outside[0]} is not one this process may run on ({allowed})")
    if _ext.load() is None:
        return None
    time.sleep(SETTLE_S)
    best = None
    for _ in range(samples):
        ns = _ext.core_pair_ns(a, b, rounds)
        if ns < 0:
            raise RuntimeError(f"could not pin the probe's threads to CPUs {a} and {b}")
        best = ns if best is None else min(best, ns)
    return best
