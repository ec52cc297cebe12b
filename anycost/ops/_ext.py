"""The native extension `anycost._C`, if it was built, and why not otherwise.

The extension registers its ops with `TORCH_LIBRARY` (no Python module init), so it is loaded with
`torch.ops.load_library`; its ops then appear as ``torch.ops.anycost.*``.
"""

from __future__ import annotations

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
    return torch.ops.anycost, ""


def load():
    """The `torch.ops.anycost` namespace when the native ops are loaded, else None (see `reason`)."""
    return _load_result()[0]


def reason() -> str:
    """Why the native kernels are not in use ('' when they are)."""
    return _load_result()[1]
