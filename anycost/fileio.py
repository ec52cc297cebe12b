"""Our files: atomic writes (a file is either its old or its complete new content, never a partial one)
and checked reads of tensor files (safetensors, and torch pickles read with ``weights_only=True``).

Every reader fails with a one-line `CheckpointError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from pathlib import Path

import torch


def cache_dir() -> Path:
    """anycost's per-user cache folder: $XDG_CACHE_HOME/anycost, by default ~/.cache/anycost (not created here)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "anycost"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, corrupt, truncated or mismatched."""


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


# -- checked reads -----------------------------------------------------------------------------------
def check_state(state: dict, expected: dict[str, torch.Tensor], source: str) -> None:
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(f"{source}: missing key {missing[0]!r}" + (f" (+{len(missing) - 1} more)"
                                                                         if len(missing) > 1 else ""))
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise CheckpointError(f"{source}: unexpected key {unexpected[0]!r}" + (
            f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    for key, ref in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: {key!r} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(f"{source}: {key!r} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}")
        if not value.is_floating_point():
            raise CheckpointError(f"{source}: {key!r} has dtype {value.dtype}, expected a floating-point tensor")
        if not torch.isfinite(value).all():
            raise CheckpointError(f"{source}: {key!r} holds NaN or infinite values")


def is_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte little-endian header size, then a JSON object."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def read_safetensors(path: Path, tensors: bool = True) -> tuple[dict, dict]:
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({err})") from None
    return meta, state


def write_tagged_safetensors(path, tensors: dict, fmt: str, version: int, metadata: dict | None = None,
                             **fields) -> Path:
    """Write `tensors` (detached, contiguous CPU copies) to `path` as safetensors, atomically, with the header
    `read_tagged_safetensors` checks: `format` = `fmt`, `format_version` = `version`, the anycost version, the
    free-form provenance `metadata` (JSON, as "info") and the other `fields` (a string as it is, anything else
    as JSON)."""
    from safetensors.torch import save_file

    from anycost._version import __version__

    meta = {"format": fmt, "format_version": str(version), "anycost_version": __version__,
            "info": json.dumps(metadata or {})}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()})
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(data, tmp, metadata=meta))


def read_tagged_safetensors(path, fmt: str, version: int, what: str, tensors: bool = True) -> tuple[dict, dict]:
    """(metadata, tensors) of an anycost safetensors file whose metadata says `format` = `fmt` and
    `format_version` = `version`; CheckpointError naming `what` ("generator", "encoder", ...) otherwise."""
    path = Path(path)
    meta, state = read_safetensors(path, tensors)
    if meta.get("format") != fmt:
        raise CheckpointError(f"{path}: not an anycost {what} file (format={meta.get('format')!r})")
    if meta.get("format_version") != str(version):
        raise CheckpointError(f"{path}: unsupported {what} format version {meta.get('format_version')!r}")
    return meta, state


def read_torch_file(path, what: str):
    """What torch.save wrote at `path`, read with ``weights_only=True``: tensors and plain containers only.

    A file that pickles other Python objects is refused (torch's own message would advise
    ``weights_only=False``, which would run code from the file); a file that is no torch archive, or is
    cut short, is a one-line CheckpointError too.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if found:
            raise CheckpointError(f"{path}: refused: this {what} pickles a Python object ({found.group(1)}), and "
                                  "anycost never unpickles code from a file (tensors and plain containers only)"
                                  ) from None
        raise CheckpointError(f"{path}: not a torch {what} file, or a corrupt one") from None
    except Exception as err:  # noqa: BLE001 - torch raises many types (KeyError, RuntimeError, ...) for non-archives
        raise CheckpointError(f"{path}: not a torch {what} file, or a corrupt or truncated one "
                              f"({type(err).__name__}: {_first_line(err)})") from None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def load_torch_checkpoint(path, fmt: str, version: int, what: str, required=(), hint: str = "") -> dict:
    """The dict saved by torch.save at `path` (loaded with weights_only: nothing executable is unpickled),
    checked for `format` = `fmt`, `version` and the `required` keys; FileNotFoundError when absent,
    CheckpointError naming `what` (plus `hint` for a file of another kind) when corrupt or not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    state = read_torch_file(path, what)
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise CheckpointError(f"{path}: not an anycost {what}{hint}")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path}: {what} lacks {missing}")
    if state.get("version") != version:
        raise CheckpointError(f"{path}: unsupported {what} version {state.get('version')!r}")
    return state
