"""Atomic file writes: a file is either its old or its complete new content, never a partial one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path, write) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, flush it to disk, then rename it over `path`.

    The result gets the ordinary permissions of a new file (umask), not mkstemp's private 0600. On any
    error the temporary file is removed and `path` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npz(path, arrays: dict) -> Path:
    """Write `arrays` (name -> numpy array) as an uncompressed .npz at `path`, atomically."""
    import numpy as np

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
            np.savez(f, **arrays)

    return atomic_write(path, write)
