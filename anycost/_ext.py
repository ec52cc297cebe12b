"""The native extension `anycost._C`, if it was built, and why not otherwise."""

from __future__ import annotations

import importlib
import os
from functools import cache


@cache
def load():
    """Return the `anycost._C` module, or None when it is absent or disabled (see `reason`)."""
    if os.environ.get("ANYCOST_NO_EXT") == "1":
        return None
    try:
        return importlib.import_module("anycost._C")
    except ImportError:
        return None


def reason() -> str:
    """Why the native kernels are not in use ('' when they are)."""
    if load() is not None:
        return ""
    if os.environ.get("ANYCOST_NO_EXT") == "1":
        return "disabled by ANYCOST_NO_EXT=1"
    return "anycost._C is not built (this build has the PyTorch reference ops only)"
