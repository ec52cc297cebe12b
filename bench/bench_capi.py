"""libanycost (the C API) vs the Python path, per config, batch 1, fp32, 2 threads on every side: the bundled model and
config-f random weights (saved to a file the library loads), each also as an int8 model (`quantize_int8`, calibrated
on 4 latents, saved as a compressed file; "-int8"), which both sides run on the int8 kernels. All render the same w
with the constant noise; the C side is called through ctypes with its arguments prepared once (what a native app's
call costs, plus a few microseconds of ctypes); "python" is `G(w, ...)` (at fp32 inference one native call,
`anycost.ops.synthesis`), "layers" the same forward layer by layer through the ops (what it cost before that call, and
what training, bf16 and hooked forwards still run). The library is built as the tests build it (tests/capi/_capi.py,
cached under build/capi-test/).

    make bench BENCH_ARGS='-k capi'      # or: python -m pytest bench/bench_capi.py --benchmark-only
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _timing import THREADS, config_f, record

import anycost
from anycost import compression
from anycost.benchmark import latent
from anycost.models.stylegan2 import SubnetConfig
from anycost.models.stylegan2.bundled import default_model_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "capi"))
import _capi  # noqa: E402 - the one home of the build and the ctypes binding

CONFIGS = [(name + kind, resolution, ratio) for kind in ("", "-int8")
           for name, resolution, ratio in [("bundled", 64, 1.0), ("bundled", 64, 0.25), ("bundled", 32, 0.5),
                                           ("config-f", 256, 0.25), ("config-f", 256, 1.0), ("config-f", 1024, 0.25)]]


def _rounds(macs: int) -> int:
    return 3 if macs > 20e9 else 5 if macs > 5e9 else 20


@pytest.fixture(scope="module")
def lib():
    reason = _capi.missing_prerequisite()
    if reason:
        pytest.skip(reason)
    return _capi.Lib(_capi.library_path(_capi.build("release")))


@pytest.fixture(scope="module")
def models(lib, tmp_path_factory):
    """name -> (Python generator, C model)."""
    out = {}
    folder = tmp_path_factory.mktemp("bench-capi")
    bundled = default_model_path()
    generators = {"config-f": config_f()}
    if bundled is not None:
        generators["bundled"] = anycost.load_generator(bundled)
    for name, G in generators.items():
        path = bundled if name == "bundled" else anycost.save_generator(G, folder / f"{name}.safetensors")
        out[name] = (G, lib.model(path))
        path = anycost.save_generator(compression.quantize_int8(G, calibration=_capi.latents(G, 4)),
                                      folder / f"{name}-int8.safetensors")
        out[f"{name}-int8"] = (anycost.load_generator(path), lib.model(path))
    yield out
    for _, model in out.values():
        model.close()


def _c_call(model: _capi.Model, w: np.ndarray, resolution: int, ratio: float):
    """A no-argument call of anycost_render with everything prepared (output buffer included)."""
    rgb = np.empty((1, 3, resolution, resolution), np.float32)
    err = ctypes.create_string_buffer(256)
    f32p = ctypes.POINTER(ctypes.c_float)
    args = (model.handle, w.ctypes.data_as(f32p), 1, 0, resolution, None, ratio, None, 1.0, rgb.ctypes.data_as(f32p),
            err, 256)
    render = model.lib.raw.anycost_render

    def call():
        code = render(*args)
        if code != 0:
            raise RuntimeError(err.value.decode())
        return rgb

    return call


@pytest.mark.parametrize("side", ["layers", "python", "capi"])
@pytest.mark.parametrize("name,resolution,ratio", CONFIGS, ids=[f"{n}-{r}-{q:g}" for n, r, q in CONFIGS])
def test_capi_vs_python(benchmark, lib, models, name, resolution, ratio, side):
    if name not in models:
        pytest.skip(f"no {name} model in this build")
    G, model = models[name]
    config = SubnetConfig.uniform(G.arch, ratio, resolution)
    w = latent(G)
    if side == "python":
        def fn():  # as an app renders: no autograd (G's parameters require grad)
            with torch.inference_mode():
                return G(w, config=config, noise="const")

        args, kwargs = (), {}
    elif side == "layers":
        layers = len(config.widths)
        styles, noises = G._styles(w, layers, 1.0), G._noise("const", 1, layers - 1, None)

        def fn():
            with torch.inference_mode():
                return G._layers(styles, noises, config.widths, "auto", "fp32", False)

        args, kwargs = (), {}
    else:
        lib.raw.anycost_set_num_threads(THREADS)
        fn, args, kwargs = _c_call(model, np.ascontiguousarray(w.numpy(), np.float32), resolution, ratio), (), {}
    benchmark.group = f"capi {name} {resolution}/{ratio:g}"
    try:
        benchmark.pedantic(fn, args=args, kwargs=kwargs, rounds=_rounds(config.macs), warmup_rounds=1)
    finally:
        lib.raw.anycost_set_num_threads(0)
    record(benchmark, config.macs, kind="capi", model=name, resolution=resolution, ratio=ratio, side=side)
