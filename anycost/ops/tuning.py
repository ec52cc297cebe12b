"""The per-machine tuning table of `modulated_conv2d(impl="auto")`: the fastest backend of each layer shape.

Backends (`BACKENDS`): "kernel", our native fused kernel (it picks its blocked or small-image path by shape
itself); "ref", the reference formulation (the styles scale the input, one oneDNN convolution with the shared
weight, the demodulation scales the output); "bf16", the oneDNN bf16 path of `precision="bf16"`. `anycost tune`
(`anycost.benchmark.tune`) times the candidates of every styled-conv shape of a generator and saves the winners
here; `impl="auto"` looks each call's `Shape` up (`lookup`) and runs the winner, and falls back to its fixed rule
for a shape the table lacks.

The table is one JSON file, `$ANYCOST_TUNE_FILE` or `$XDG_CACHE_HOME/anycost/tuning.json` (`path()`), holding the
machine it was measured on (`machine_key`: CPU model, instruction-set level in use, torch and anycost versions).
A file of another machine or software, or a corrupt one, is ignored with a warning (the fixed rule decides) and
replaced by the next `anycost tune`. A process reads it once, on its first lookup; `save`, `clear` and `reload`
make the next lookup read it again.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from anycost import fileio, jsonrecord
from anycost._version import __version__

KIND = "anycost-tuning"
VERSION = 1
#: The environment variable that moves the table file (tests point it into a temporary folder).
ENV = "ANYCOST_TUNE_FILE"
BACKENDS = ("kernel", "ref", "bf16")
#: The backends timed for each precision ("ref" and "kernel" compute in fp32 whatever the precision asked).
CANDIDATES = {"fp32": ("kernel", "ref"), "bf16": ("bf16", "kernel", "ref")}


class TableError(ValueError):
    """A tuning table that cannot be used: unreadable, corrupt, or measured on another machine or software."""


class Shape(NamedTuple):
    """One modulated conv call as the table keys it (a plain tuple of the same values looks it up too)."""

    c_in: int
    c_out: int
    height: int  # of the input
    width: int
    upsample: bool
    batch: int
    precision: str

    def describe(self) -> str:
        up = " up" if self.upsample else ""
        return f"{self.c_in}->{self.c_out} @ {self.height}x{self.width}{up}, batch {self.batch}, {self.precision}"


@dataclass(frozen=True)
class Choice:
    """The winning backend of one shape, the median ms of every candidate timed, and the torch threads used."""

    backend: str
    ms: dict
    threads: int


@dataclass
class Table:
    """The choices of one machine (`machine` is the `machine_key` they were measured under)."""

    machine: dict
    choices: dict[Shape, Choice] = field(default_factory=dict)

    @classmethod
    def new(cls) -> Table:
        """An empty table of this machine."""
        return cls(machine_key())

    def to_json(self) -> str:
        entries = [{"shape": shape._asdict(), "backend": c.backend, "ms": c.ms, "threads": c.threads}
                   for shape, c in self.choices.items()]
        return json.dumps({"kind": KIND, "version": VERSION, "machine": self.machine, "entries": entries}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Table:
        """The table in `text`; ValueError or TypeError saying what is wrong."""
        data = jsonrecord.check_record(jsonrecord.loads_object(text, "tuning table"), "tuning table", VERSION,
                                       ("kind", "machine", "entries"))
        if data["kind"] != KIND:
            raise ValueError(f"not an anycost tuning table (kind={data['kind']!r})")
        if not isinstance(data["machine"], dict) or not isinstance(data["entries"], list):
            raise ValueError("'machine' must be an object and 'entries' a list")
        return cls(data["machine"], dict(_entry(e) for e in data["entries"]))


def _entry(data) -> tuple[Shape, Choice]:
    """One JSON entry, checked: sizes positive ints, a bool upsample, a backend among its precision's candidates."""
    shape = Shape(**data["shape"])
    sizes = (shape.c_in, shape.c_out, shape.height, shape.width, shape.batch)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sizes):
        raise ValueError(f"bad sizes in a tuning entry: {data['shape']}")
    if not isinstance(shape.upsample, bool):
        raise ValueError(f"upsample must be true or false in a tuning entry: {data['shape']}")
    if data["backend"] not in CANDIDATES.get(shape.precision, ()):
        raise ValueError(f"bad backend {data['backend']!r} for precision {shape.precision!r} in a tuning entry")
    ms = data["ms"]
    if not isinstance(ms, dict) or not all(k in BACKENDS and type(v) in (int, float) for k, v in ms.items()):
        raise ValueError(f"a tuning entry's 'ms' must map backends to numbers, got {ms!r}")
    if isinstance(data["threads"], bool) or not isinstance(data["threads"], int):
        raise ValueError(f"a tuning entry's 'threads' must be an integer, got {data['threads']!r}")
    return shape, Choice(data["backend"], ms, data["threads"])


def machine_key() -> dict:
    """What a table is valid for: the CPU model, the instruction-set level the kernels run at, torch, anycost."""
    from anycost import ops  # the package this module belongs to (imported here: it imports this module)

    return {"cpu": ops.cpu_model(), "cpu_capability": ops.cpu_capability() or "none", "torch": torch.__version__,
            "anycost": __version__}


def path() -> Path:
    """The table file: `$ANYCOST_TUNE_FILE`, else tuning.json in the user cache folder."""
    return Path(os.environ[ENV]).expanduser() if os.environ.get(ENV) else fileio.cache_dir() / "tuning.json"


def read(file=None) -> Table:
    """The table in `file` (default `path()`): FileNotFoundError when there is none, TableError naming the file
    when it is corrupt or was measured on another machine or software."""
    file = Path(file) if file is not None else path()
    try:
        table = Table.from_json(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise TableError(f"{file}: unreadable or corrupt ({type(err).__name__}: {err})") from None
    here = machine_key()
    if table.machine != here:
        raise TableError(f"{file}: measured under {describe(table.machine)}, this is {describe(here)}")
    return table


def describe(machine: dict) -> str:
    """A `machine_key` as one line."""
    return ", ".join(f"{k} {machine.get(k)!r}" for k in ("cpu", "cpu_capability", "torch", "anycost"))


def save(table: Table, file=None) -> Path:
    """Write `table` atomically to `file` (default `path()`); this process's next lookup reads it."""
    file = Path(file) if file is not None else path()
    fileio.atomic_write(file, lambda tmp: Path(tmp).write_text(table.to_json(), encoding="utf-8"))
    reload()
    return file


def clear(file=None) -> bool:
    """Remove the table file (default `path()`); whether there was one. The fixed rule decides from then on."""
    file = Path(file) if file is not None else path()
    existed = file.exists()
    file.unlink(missing_ok=True)
    reload()
    return existed


def summary(file=None) -> str:
    """One line on the table file: its path and number of entries, or why there is none in use."""
    file = Path(file) if file is not None else path()
    try:
        return f"{file}, {len(read(file).choices)} entries"
    except FileNotFoundError:
        return f"{file}, none yet (`anycost tune` builds it; impl='auto' uses its fixed rule)"
    except TableError as err:
        return f"ignored: {err}"


# -- the process's table -------------------------------------------------------------------------------------
_CHOICES: dict[tuple, str] | None = None  # shape -> backend of the table in use; None: not read yet
_LOCK = threading.Lock()


def lookup(shape: tuple) -> str | None:
    """The tuned backend of `shape` (a `Shape` or the same plain tuple), None when the table has no entry."""
    choices = _CHOICES if _CHOICES is not None else _load()
    return choices.get(shape)


def overrides_kernel(precision: str) -> bool:
    """Whether the table in use picks another backend than the native kernel for some shape of `precision` (then
    a generator's forward keeps its layers apart, each taking its tuned backend)."""
    choices = _CHOICES if _CHOICES is not None else _load()
    return any(backend != "kernel" for shape, backend in choices.items() if shape[-1] == precision)


def reload() -> None:
    """Forget the table read by this process: the next lookup reads the file again."""
    global _CHOICES
    with _LOCK:
        _CHOICES = None


def _load() -> dict[tuple, str]:
    """Read the table once (under the lock); without a usable one, an empty table (after a warning if the file
    exists but cannot be used)."""
    global _CHOICES
    with _LOCK:
        if _CHOICES is None:
            try:
                _CHOICES = {shape: c.backend for shape, c in read().choices.items()}
            except FileNotFoundError:
                _CHOICES = {}
            except TableError as err:
                warnings.warn(f"ignoring the tuning table {err}; impl='auto' uses its fixed rule until "
                              "`anycost tune` rebuilds it", stacklevel=5)  # at the caller of ops.modulated_conv2d
                _CHOICES = {}
        return _CHOICES
