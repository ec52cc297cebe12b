"""The native extension `anycost._C`, if it was built, and why not otherwise.

The extension registers its ops with `TORCH_LIBRARY` (no Python module init), so it is loaded with
`torch.ops.load_library`; its ops then appear as ``torch.ops.anycost.*``. The choice of the CPU
instruction-set level (kernels/cpu/dispatch.h) is reached through three C functions of the same
library, called with ctypes (`cpu_capability`, `cpu_capabilities`, `set_cpu_capability`).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from functools import cache


@cache
def _load_result():
    if os.environ.get("ANYCOST_NO_EXT") == "1":
        return None, "disabled by ANYCOST_NO_EXT=1"
    spec = importlib.util.find_spec("anycost._C")
    if spec is None or not spec.origin:
        return None, "anycost._C is not built (pip install --no-build-isolation -e . builds it)"
    import torch

    try:
        torch.ops.load_library(spec.origin)
    except OSError as err:
        return None, f"anycost._C failed to load: {err}"
    from anycost.ops import _registry

    _registry.register()
    _clib.path = spec.origin
    return torch.ops.anycost, ""


class _clib:
    """ctypes handle of the loaded extension (the same library torch loaded)."""

    path: str | None = None
    handle = None

    @classmethod
    def get(cls):
        if cls.handle is None:
            cls.handle = ctypes.CDLL(cls.path)
        return cls.handle


def _call(name: str, *args) -> tuple[int, str]:
    buf = ctypes.create_string_buffer(1024)
    rc = getattr(_clib.get(), name)(*args, buf, ctypes.c_size_t(len(buf)))
    return rc, buf.value.decode()


def cpu_capability() -> str:
    """The instruction-set level the native CPU kernels run at; RuntimeError for a bad ANYCOST_CPU_CAPABILITY."""
    rc, text = _call("anycost_cpu_capability")
    if rc:
        raise RuntimeError(text)
    return text


def cpu_capabilities() -> tuple[str, ...]:
    """The levels this CPU supports, lowest first."""
    return tuple(_call("anycost_cpu_capabilities")[1].split(","))


def set_cpu_capability(level: str | None) -> None:
    """Force a level for this process (None: back to ANYCOST_CPU_CAPABILITY or the best level)."""
    rc, text = _call("anycost_set_cpu_capability", (level or "").encode())
    if rc:
        raise RuntimeError(text)


def load():
    """The `torch.ops.anycost` namespace when the native ops are loaded, else None (see `reason`)."""
    return _load_result()[0]


def reason() -> str:
    """Why the native kernels are not in use ('' when they are)."""
    return _load_result()[1]


def limit_cpu_capabilities_for_testing(level: str | None) -> None:
    """Pretend this CPU supports no level above `level` (None: no cap); for tests of the error paths."""
    levels = ("portable", "avx2", "avx512")
    _call("anycost_limit_cpu_capabilities_for_testing", ctypes.c_int(-1 if level is None else levels.index(level)))
