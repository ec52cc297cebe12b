"""libanycost for the tests: built with CMake once per source state (a cache folder under build/ keyed by a hash
of the sources it compiles), loaded with ctypes, wrapped in a few numpy-level calls, plus the checks of bad inputs.

Needs numpy only (no torch): `_asan_driver.py` runs the same checks in a subprocess against the AddressSanitizer
build, whose runtime must be preloaded into a fresh Python.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "capi-test"
#: What the library and its example are built from: a change in any of these rebuilds it.
SOURCE_GLOBS = ("CMakeLists.txt", "csrc/capi/*", "kernels/cpu/*", "examples/c/*", "anycost/_version.py")

# Return codes of csrc/capi/anycost.h.
OK, E_ARGUMENT, E_IO, E_FORMAT, E_RESOLUTION, E_WIDTH, E_UNSUPPORTED, E_MEMORY, E_INTERNAL = (
    0, -1, -2, -3, -4, -5, -6, -7, -8)
PRECISION_FP32, PRECISION_BF16 = 0, 1
ERR_LEN = 1024


def missing_prerequisite() -> str | None:
    """Why libanycost cannot be built here (None when it can): no source tree, no cmake or no C/C++ compiler."""
    if not (ROOT / "CMakeLists.txt").is_file() or not (ROOT / "csrc" / "capi" / "anycost.h").is_file():
        return "not a source tree (tests/ copied beside an installed wheel): libanycost's sources are absent"
    if shutil.which("cmake") is None:
        return "cmake not found: libanycost is built with CMake"
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")) or not any(shutil.which(c) for c in ("cc", "gcc")):
        return "no C and C++ compiler found (cc / c++)"
    return None


def source_hash(*extra: str) -> str:
    digest = hashlib.sha256("\0".join(extra).encode())
    for pattern in SOURCE_GLOBS:
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file():
                digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on `path` (pytest-xdist workers build one copy, the others wait for it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build(kind: str = "release", targets=("anycost_shared",)) -> Path:
    """The build folder of `kind` ("release", or "asan": -DANYCOST_SANITIZE=address) holding `targets`, built
    with -j2 only when the sources changed since the last build of that kind (older builds of it are removed).
    Raises RuntimeError with the end of the log when the build fails."""
    flags = ["-DCMAKE_BUILD_TYPE=Release", "-DANYCOST_BUILD_TESTS=OFF", "-DANYCOST_BUILD_BENCH=OFF"]
    if kind == "asan":
        flags += ["-DANYCOST_SANITIZE=address"]
    folder = CACHE / f"{kind}-{source_hash(*flags)}"
    done = folder / (".built-" + "-".join(sorted(targets)))
    with _locked(CACHE / f".{kind}.lock"):
        if done.is_file():
            return folder
        for old in CACHE.glob(f"{kind}-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
        log = folder / "build.log"
        folder.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as out:
            steps = [["cmake", "-S", str(ROOT), "-B", str(folder), *flags],
                     ["cmake", "--build", str(folder), "-j2", "--target", *targets]]
            for step in steps:
                if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=1800).returncode != 0:
                    raise RuntimeError(f"libanycost build failed ({' '.join(step)}):\n{log.read_text()[-4000:]}")
        done.touch()
    return folder


def library_path(folder: Path) -> Path:
    return folder / "libanycost.so"


_f32p = ctypes.POINTER(ctypes.c_float)
_i32p = ctypes.POINTER(ctypes.c_int)


class Lib:
    """libanycost through ctypes: the raw functions (`raw`) and numpy-level wrappers that return codes and
    messages instead of raising, so tests can assert on them."""

    def __init__(self, path):
        self.raw = raw = ctypes.CDLL(str(path))
        signatures = {
            "anycost_version": (ctypes.c_char_p, []),
            "anycost_cpu_capability": (ctypes.c_char_p, []),
            "anycost_set_num_threads": (ctypes.c_int, [ctypes.c_int]),
            "anycost_num_threads": (ctypes.c_int, []),
            "anycost_set_precision": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]),
            "anycost_load": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
            "anycost_free": (None, [ctypes.c_void_p]),
            "anycost_style_dim": (ctypes.c_int, [ctypes.c_void_p]),
            "anycost_num_styles": (ctypes.c_int, [ctypes.c_void_p]),
            "anycost_num_layers": (ctypes.c_int, [ctypes.c_void_p]),
            "anycost_resolutions": (ctypes.c_int, [ctypes.c_void_p, _i32p, ctypes.c_int]),
            "anycost_full_widths": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, _i32p, ctypes.c_int]),
            "anycost_check_widths": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, _i32p, ctypes.c_int,
                                                    ctypes.c_char_p, ctypes.c_size_t]),
            "anycost_w_avg": (ctypes.c_int, [ctypes.c_void_p, _f32p]),
            "anycost_mapping": (ctypes.c_int, [ctypes.c_void_p, _f32p, ctypes.c_int, _f32p]),
            "anycost_render": (ctypes.c_int, [ctypes.c_void_p, _f32p, ctypes.c_int, ctypes.c_int, ctypes.c_int, _i32p,
                                              ctypes.c_float, _f32p, ctypes.c_float, _f32p, ctypes.c_char_p,
                                              ctypes.c_size_t]),
        }
        for name, (restype, argtypes) in signatures.items():
            fn = getattr(raw, name)
            fn.restype, fn.argtypes = restype, argtypes

    # -- models -------------------------------------------------------------------------------------------------
    def load(self, path) -> tuple[int | None, str]:
        """(handle or None, message)."""
        err = ctypes.create_string_buffer(ERR_LEN)
        handle = self.raw.anycost_load(None if path is None else str(path).encode(), err, ERR_LEN)
        return handle, err.value.decode()

    def model(self, path) -> Model:
        handle, err = self.load(path)
        if not handle:
            raise RuntimeError(err)
        return Model(self, handle)

    def precision(self, value: int) -> tuple[int, str]:
        err = ctypes.create_string_buffer(ERR_LEN)
        return self.raw.anycost_set_precision(value, err, ERR_LEN), err.value.decode()


def _fp(a):
    return None if a is None else a.ctypes.data_as(_f32p)


class Model:
    """One loaded model (freed with `close` or at garbage collection)."""

    def __init__(self, lib: Lib, handle: int):
        self.lib, self.handle = lib, handle
        raw = lib.raw
        self.style_dim = raw.anycost_style_dim(handle)
        self.num_styles = raw.anycost_num_styles(handle)
        self.num_layers = raw.anycost_num_layers(handle)
        count = raw.anycost_resolutions(handle, None, 0)
        out = (ctypes.c_int * count)()
        raw.anycost_resolutions(handle, out, count)
        self.resolutions = tuple(out)

    def close(self):
        if self.handle:
            self.lib.raw.anycost_free(self.handle)
            self.handle = None

    __del__ = close

    def full_widths(self, resolution: int = 0) -> tuple[int, ...] | int:
        """The full widths at `resolution`, or the negative code for a resolution the model lacks."""
        count = self.lib.raw.anycost_full_widths(self.handle, resolution, None, 0)
        if count < 0:
            return count
        out = (ctypes.c_int * count)()
        self.lib.raw.anycost_full_widths(self.handle, resolution, out, count)
        return tuple(out)

    def check_widths(self, resolution: int, widths) -> tuple[int, str]:
        err = ctypes.create_string_buffer(ERR_LEN)
        arr = (ctypes.c_int * len(widths))(*widths)
        return self.lib.raw.anycost_check_widths(self.handle, resolution, arr, len(widths), err, ERR_LEN), \
            err.value.decode()

    def w_avg(self) -> np.ndarray:
        out = np.zeros(self.style_dim, np.float32)
        assert self.lib.raw.anycost_w_avg(self.handle, _fp(out)) == OK
        return out

    def mapping(self, z: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(z, np.float32)
        w = np.zeros_like(z)
        code = self.lib.raw.anycost_mapping(self.handle, _fp(z), z.shape[0], _fp(w))
        assert code == OK, code
        return w

    def render(self, w: np.ndarray, resolution: int, ratio: float = 1.0, widths=None, mean=None,
               truncation: float = 1.0) -> tuple[int, np.ndarray, str]:
        """(code, rgb [n, 3, res, res], message); `w` is W [n, style_dim] or W+ [n, num_styles, style_dim]."""
        w = np.ascontiguousarray(w, np.float32)
        rgb = np.zeros((w.shape[0], 3, resolution, resolution), np.float32)
        arr = None if widths is None else (ctypes.c_int * len(widths))(*widths)
        mean = None if mean is None else np.ascontiguousarray(mean, np.float32)
        err = ctypes.create_string_buffer(ERR_LEN)
        code = self.lib.raw.anycost_render(self.handle, _fp(w), w.shape[0], int(w.ndim == 3), resolution, arr,
                                           ratio, _fp(mean), truncation, _fp(rgb), err, ERR_LEN)
        return code, rgb, err.value.decode()


def layer_render(G, w, config, impl="auto", truncation=1.0):
    """`G(w, config=config, noise="const", impl=impl, truncation=truncation)` layer by layer: at fp32 inference the
    forward itself would take the C library's synthesis (`anycost.ops.synthesis`), the code under test."""
    import torch  # the library's own checks need no torch; only the references do

    layers = len(config.widths)
    with torch.no_grad():
        styles = G._styles(w, layers, truncation)
        noises = G._noise("const", styles.shape[0], layers - 1, None)
        return G._layers(styles, noises, config.widths, impl, "fp32", False)


def latents(G, n=2, seed=0):
    """W latents [n, style_dim] of G: its mapping of n seeded normal z."""
    import torch

    z = torch.randn(n, G.arch.style_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.mapping(z)


def max_rel_diff(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| over the range of `want` (the tests' tolerance is 1e-4 of it)."""
    return float(np.abs(got - want).max() / (want.max() - want.min()))


# An int8 model's render against Python's int8 one: both quantise the same activations, but their style products may
# differ in the last bit, so a value on a rounding boundary can round the other way (one int8 step of one
# activation). Measured on the bundled model (Zen 4): 1e-8 of the range on average, 4-6e-5 where one flipped; int8
# itself is 2.4-7e-3 from float32.
INT8_MEAN = 2e-4


def mean_rel_diff(got: np.ndarray, want: np.ndarray) -> float:
    """mean |got - want| over the range of `want` (int8 renders: at most INT8_MEAN)."""
    return float(np.abs(got - want).mean() / (want.max() - want.min()))


# -- bad inputs (shared by the release and the ASan run) ----------------------------------------------------------
def check_bad_files(lib: Lib, files: dict[str, Path]) -> None:
    """Every file in `files` (name -> path; the names say what is wrong) fails to load with a message."""
    expect = {"missing": "cannot open", "directory": "not a regular file", "empty": "too short",
              "png": "not a safetensors file", "truncated": "truncated", "cut_header": "truncated",
              "huge_header": "not a safetensors file", "corrupt_header": "corrupt safetensors header",
              "slimgan": "not an anycost generator file (format='anycost-slimgan')",
              "gan_compression": "not an anycost generator file", "encoder": "not an anycost generator file",
              "no_metadata": "format=None", "wrong_arch": "missing key", "bad_arch_json": "corrupt architecture",
              "unknown_arch_field": "unknown generator architecture field", "nan": "NaN or infinite",
              "wrong_shape": "has shape", "int_tensor": "expected a floating-point tensor",
              "bad_offsets": "does not match its dtype and shape",
              "compressed_missing_part": "'convs.0.conv.weight': is encoded but its scale (convs.0.conv.weight:scale) "
                                         "is missing",
              "compressed_extra_part": "unexpected tensor 'convs.0.conv.weight:junk'",
              "compressed_unknown_kind": "has an unknown encoding",
              "compressed_unknown_weight": "encoding for unknown weight 'no.such.weight'",
              "compressed_bad_act_scale": "activation scale must be a positive number or null",
              "compressed_q_dtype": "convs.0.conv.weight:q must be a 1-D I8 tensor, got U8",
              "compressed_bad_smooth": "the smoothing factors must be",
              "compressed_big_codebook": "a codebook of 17 values for 4 bits",
              "compressed_short_indices": "packed bytes in indices",
              "compressed_mask_count": "3 values for"}
    assert set(files) <= set(expect), sorted(set(files) - set(expect))
    for name, path in files.items():
        handle, err = lib.load(path)
        assert not handle, f"{name}: loaded"
        assert err.startswith("anycost_load: ") and expect[name] in err, f"{name}: {err!r}"
    handle, err = lib.load(None)
    assert not handle and err == "anycost_load: path is NULL"


def check_bad_arguments(lib: Lib, model: Model) -> None:
    """Every bad argument of every call gives its negative code and a message, and nothing is written past
    err_len."""
    raw, h, sd = lib.raw, model.handle, model.style_dim
    res = model.resolutions[-1]
    w = np.zeros((1, sd), np.float32)
    for fn in (raw.anycost_style_dim, raw.anycost_num_styles, raw.anycost_num_layers):
        assert fn(None) == E_ARGUMENT
    assert raw.anycost_resolutions(None, None, 0) == E_ARGUMENT
    assert raw.anycost_resolutions(h, None, -1) == E_ARGUMENT
    assert raw.anycost_resolutions(h, None, 2) == E_ARGUMENT
    assert raw.anycost_full_widths(h, 12, None, 0) == E_RESOLUTION
    assert raw.anycost_w_avg(h, None) == E_ARGUMENT
    assert raw.anycost_mapping(None, _fp(w), 1, _fp(w)) == E_ARGUMENT
    assert raw.anycost_mapping(h, None, 1, _fp(w)) == E_ARGUMENT
    assert raw.anycost_mapping(h, _fp(w), 0, _fp(w.copy())) == E_ARGUMENT
    assert raw.anycost_set_num_threads(-1) == E_ARGUMENT
    assert lib.precision(PRECISION_FP32) == (OK, "")
    code, err = lib.precision(PRECISION_BF16)
    assert code == E_UNSUPPORTED and "float32 only" in err, err
    assert lib.precision(7)[0] == E_ARGUMENT

    full = model.full_widths(res)
    cases = [  # (kwargs of Model.render, code, part of the message)
        (dict(resolution=2 * res), E_RESOLUTION, f"unknown resolution {2 * res}"),
        (dict(resolution=4), E_RESOLUTION, "unknown resolution 4"),
        (dict(resolution=res - 1), E_RESOLUTION, "this generator can output"),
        (dict(resolution=res, ratio=0.0), E_WIDTH, "ratio must be in (0, 1]"),
        (dict(resolution=res, ratio=1.5), E_WIDTH, "ratio must be in (0, 1]"),
        (dict(resolution=res, ratio=math.nan), E_WIDTH, "ratio must be in (0, 1]"),
        (dict(resolution=res, ratio=1e-6), E_WIDTH, "without channels"),
        (dict(resolution=res, widths=[0, *full[1:]]), E_WIDTH, "width of layer 0 (4 px) must be in [1, "),
        (dict(resolution=res, widths=[*full[:-1], full[-1] + 1]), E_WIDTH, f"must be in [1, {full[-1]}]"),
        (dict(resolution=res, widths=[-3] * len(full)), E_WIDTH, "got -3"),
        (dict(resolution=res, truncation=0.7), E_ARGUMENT, "needs a truncation_mean"),
        (dict(resolution=res, truncation=math.nan, mean=model.w_avg()), E_ARGUMENT, "must be finite"),
    ]
    for kwargs, code, part in cases:
        got, _, err = model.render(w, **kwargs)
        assert got == code and part in err and err.startswith("anycost_render: "), (kwargs, got, err)
    assert model.check_widths(res, full[:-2]) == (E_WIDTH, f"anycost_check_widths: {res} px needs {len(full)} "
                                                           f"layer widths, got {len(full) - 2}")
    assert model.check_widths(res, full) == (OK, "")
    assert model.check_widths(res * 2, full)[0] == E_RESOLUTION

    rgb = np.zeros((1, 3, res, res), np.float32)
    err = ctypes.create_string_buffer(ERR_LEN)
    for args, what in [((None, _fp(w), 1), "the model is NULL"), ((h, None, 1), "w is NULL"),
                       ((h, _fp(w), 0), "n must be positive, got 0"), ((h, _fp(w), -5), "got -5")]:
        code = raw.anycost_render(*args, 0, res, None, 1.0, None, 1.0, _fp(rgb), err, ERR_LEN)
        assert code == E_ARGUMENT and what in err.value.decode(), err.value
    code = raw.anycost_render(h, _fp(w), 1, 0, res, None, 1.0, None, 1.0, None, err, ERR_LEN)
    assert code == E_ARGUMENT and err.value == b"anycost_render: rgb is NULL"
    assert raw.anycost_render(h, _fp(w), 1, 0, 3 * res, None, 1.0, None, 1.0, _fp(rgb), None, 0) == E_RESOLUTION

    # A short error buffer: the message is cut and terminated inside it; the bytes after it stay untouched.
    buf = ctypes.create_string_buffer(b"\x7f" * 64, 64)
    code = raw.anycost_render(h, _fp(w), 1, 0, 3 * res, None, 1.0, None, 1.0, _fp(rgb), buf, 9)
    assert code == E_RESOLUTION and buf.raw[:9] == b"anycost_\0" and buf.raw[9:] == b"\x7f" * 55, buf.raw
    buf = ctypes.create_string_buffer(b"\x7f" * 8, 8)
    assert raw.anycost_render(h, _fp(w), 1, 0, 3 * res, None, 1.0, None, 1.0, _fp(rgb), buf, 1) == E_RESOLUTION
    assert buf.raw == b"\0" + b"\x7f" * 7
