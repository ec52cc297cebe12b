"""Process-wide allocator policy for render loops.

A generator forward allocates and frees a few large activations (8 MB per layer at 256 px, 256 MB at
1024 px). glibc's malloc serves such blocks with fresh ``mmap`` pages, or from a heap whose free top it
hands back to the OS, so the next forward page-faults the same memory in again: measured on a 256 px /
ratio 0.25 preview (2 threads), 0 or ~1,000 faults per forward depending on the allocation history, and
~1 ms of its ~62 ms when they happen. `retain_freed_memory` makes malloc keep freed memory for reuse, as
tcmalloc or jemalloc do (the official Anycost GAN figures quote tcmalloc for the same reason). The price
is that the process keeps its peak heap.

The ``anycost`` command line calls it for every command; ``ANYCOST_RETAIN_MEMORY=0`` turns that off. A
library user decides for their own process.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int

_state = {"retained": False}


def retain_freed_memory() -> bool:
    """Keep memory freed by the process for its next allocations (glibc only): no heap trimming and no
    ``mmap`` for large blocks. Returns whether the policy is in force (False on other C libraries)."""
    if _state["retained"]:
        return True
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM) == 1
    _state["retained"] = ok
    return ok


def is_retained() -> bool:
    """Whether `retain_freed_memory` is in force in this process (reported by ``anycost bench``)."""
    return _state["retained"]


def apply_cli_policy() -> bool:
    """The command line's choice: retain unless ``ANYCOST_RETAIN_MEMORY=0``."""
    if os.environ.get("ANYCOST_RETAIN_MEMORY", "1") == "0":
        return False
    return retain_freed_memory()
