"""The native extension `anycost._C`, if it was built, and why not otherwise.

The extension registers its ops with `TORCH_LIBRARY` (no Python module init), so it is loaded with
`torch.ops.load_library`; its ops then appear as ``torch.ops.anycost.*``. The choice of the CPU
instruction-set level (kernels/cpu/dispatch.h) is reached through three C functions of the same
library, called with ctypes (`cpu_capability`, `cpu_capabilities`, `set_cpu_capability`, `output_cache`,
`rgb_head_pays`).

setup.py writes what the extension was built against to `_build_info.json` beside it. A C++ extension is
tied to the exact torch it was compiled with (its ABI), so the library is not even opened when the running
torch differs from the recorded one: the ops then run the pure-PyTorch reference, `reason()` says why in one
line, and a RuntimeWarning says it once.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import warnings
from functools import cache
from pathlib import Path

#: The record setup.py writes beside the extension.
BUILD_INFO = "_build_info.json"
#: The CPU instruction-set levels of the native kernels, lowest first (kernels/cpu/dispatch.h: Capability).
CPU_LEVELS = ("portable", "avx2", "avx512", "avx512_vnni")


def _origin() -> str | None:
    """The path of the built extension, or None."""
    spec = importlib.util.find_spec("anycost._C")
    return spec.origin if spec is not None and spec.origin else None


def describe_build(info: dict | None) -> str:
    """One line for `anycost info`: what the extension was built against."""
    if info is None:
        return "no build record (built before records were kept, or not built): rebuild to get one"
    cuda = f" (its CUDA {info['torch_cuda']})" if info.get("torch_cuda") else ""
    march = "this machine only (-march=native)" if info.get("native") else "every x86-64 CPU (no -march=native)"
    kernels = "CPU + CUDA kernels" if info.get("cuda") else "CPU kernels"
    return (f"torch {info.get('torch')}{cuda}, Python {info.get('python')}, {info.get('compiler')}, "
            f"anycost {info.get('anycost')}, {info.get('platform')}; {kernels} for {march}")


def build_info() -> dict | None:
    """What the installed extension was built against (torch, python, compiler, ...), None without one or
    without its record (an extension built before records were written)."""
    origin = _origin()
    path = Path(origin).with_name(BUILD_INFO) if origin else None
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def torch_mismatch(info: dict | None = None) -> str:
    """'' when the extension may be loaded into this torch, else why not (one line)."""
    import torch

    info = build_info() if info is None else info
    if info is None or info.get("torch") == str(torch.__version__):
        return ""
    return (f"anycost._C was built against torch {info.get('torch')}, this is torch {torch.__version__}: not loaded "
            "(the pure-PyTorch reference runs instead); rebuild it against this torch with "
            "`pip install --no-build-isolation --force-reinstall --no-deps <anycost source folder or sdist>`")


@cache
def _load_result():
    if os.environ.get("ANYCOST_NO_EXT") == "1":
        return None, "disabled by ANYCOST_NO_EXT=1"
    origin = _origin()
    if origin is None:
        return None, "anycost._C is not built (pip install --no-build-isolation . builds it)"
    import torch

    mismatch = torch_mismatch()
    if mismatch:
        warnings.warn(mismatch, RuntimeWarning, stacklevel=2)
        return None, mismatch
    try:
        torch.ops.load_library(origin)
    except OSError as err:
        return None, f"anycost._C failed to load: {err}"
    from anycost.ops import _registry

    _registry.register()
    _clib.path = origin
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


def output_cache(clear: bool = False) -> int:
    """Bytes the native ops' output cache holds in free blocks (csrc/output_cache.cpp); `clear` releases them first."""
    fn = _clib.get().anycost_output_cache
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_int]
    return int(fn(1 if clear else 0))


def winograd_cache(clear: bool = False) -> int:
    """Bytes the Winograd weight cache holds (kernels/cpu/wino_weight_cache.h); `clear` drops its entries first."""
    fn = _clib.get().anycost_winograd_cache
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_int]
    return int(fn(1 if clear else 0))


def core_pair_ns(cpu_a: int, cpu_b: int, rounds: int) -> float:
    """The native core-pair probe (csrc/core_pair.cpp): mean round trip in ns, -1 when a thread could not be pinned,
    -2 for bad arguments."""
    fn = _clib.get().anycost_core_pair_ns
    fn.restype = ctypes.c_double
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    return float(fn(cpu_a, cpu_b, rounds))


@cache
def _rgb_head_pays_fn():
    fn = _clib.get().anycost_rgb_head_pays
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    return fn


def rgb_head_pays(c_out: int, pixels: int, keep_out: bool) -> bool:
    """The kernels' rule for fusing a ToRGB into the conv before it (kernels/cpu/modconv_params.h)."""
    return bool(_rgb_head_pays_fn()(c_out, pixels, 1 if keep_out else 0))


def load():
    """The `torch.ops.anycost` namespace when the native ops are loaded, else None (see `reason`)."""
    return _load_result()[0]


def reason() -> str:
    """Why the native kernels are not in use ('' when they are)."""
    return _load_result()[1]


def limit_cpu_capabilities_for_testing(level: str | None) -> None:
    """Pretend this CPU supports no level above `level` (None: no cap); for tests of the error paths."""
    _call("anycost_limit_cpu_capabilities_for_testing",
          ctypes.c_int(-1 if level is None else CPU_LEVELS.index(level)))
