"""libanycost on compressed generator files (`anycost.compression`, format "anycost-compressed-generator"): each
kind of encoded weight decodes to the weights the Python model computes with, and an int8 model's convs run the
int8 kernels in C where they do in Python (`Int8StyledConv.runs_int8` at this CPU's level), so the C render equals
the Python one layer by layer at every config. Bad compressed files are in conftest's `bad_files` (checked by
test_capi.py and under AddressSanitizer)."""

from __future__ import annotations

import threading

import _capi
import numpy as np
import pytest

import anycost
from anycost import compression
from anycost.models.stylegan2 import Generator

TOL = 1e-4  # of the output range, for the float32 kinds
INT8_MEAN = _capi.INT8_MEAN


@pytest.fixture(scope="module")
def files(tmp_path_factory, bundled_path):
    """kind -> the bundled model compressed that way, saved and loaded back (the model the file stands for)."""
    root = tmp_path_factory.mktemp("capi-compressed")
    G = anycost.load_generator(bundled_path)
    calib = _capi.latents(G, 8, seed=3)
    models = {
        "sparse": compression.prune(G, sparsity=0.5),
        "channels": compression.prune_channels(G, keep=0.75),
        "kmeans": compression.kmeans_quantize(G, bits=4),
        "int8": compression.quantize_int8(G, calibration=calib),
        "int8-calibrated": compression.quantize_int8(G, calibration=calib, activations="calibrated"),
        "kmeans-int8": compression.quantize_int8(compression.kmeans_quantize(G, bits=4), calibration=calib),
    }
    out = {}
    for kind, model in models.items():
        path = anycost.save_generator(model, root / f"{kind}.safetensors")
        out[kind] = (anycost.load_generator(path), path)
    return out


@pytest.mark.parametrize("kind", ["sparse", "channels", "kmeans"])
@pytest.mark.parametrize("resolution,ratio", [(64, 1.0), (64, 0.5), (32, 0.25)])
def test_float_kinds_equal_python(lib, files, kind, resolution, ratio):
    G, path = files[kind]
    m = lib.model(path)
    try:
        w = _capi.latents(G)
        code, rgb, err = m.render(w.numpy(), resolution, ratio)
        assert code == _capi.OK, err
        want = _capi.layer_render(G, w, G.subnet(resolution, ratio)).numpy()
        assert _capi.max_rel_diff(rgb, want) < TOL
    finally:
        m.close()


ODD_WIDTHS = [96, 64, 128, 17, 100, 64, 33, 40]  # 32 px: channel counts off the kernels' tiles and groups of 4


@pytest.mark.parametrize("kind", ["int8", "int8-calibrated", "kmeans-int8"])
@pytest.mark.parametrize("resolution,ratio,widths,w_plus", [(64, 1.0, None, False), (64, 0.5, None, True),
                                                            (32, 0.25, None, False), (32, 1.0, ODD_WIDTHS, False)])
def test_int8_kinds_equal_python(lib, files, kind, resolution, ratio, widths, w_plus):
    G, path = files[kind]
    m = lib.model(path)
    try:
        w = _capi.latents(G)
        if w_plus:
            w = G.mix_styles(w, w.flip(0), crossover=3, n_styles=G.arch.n_styles)
        config = G.subnet(resolution, ratio) if widths is None else G.subnet(resolution, channels=widths)
        code, rgb, err = m.render(w.numpy(), resolution, ratio, widths=widths)
        assert code == _capi.OK, err
        want = _capi.layer_render(G, w, config).numpy()
        # the same weights in float32 (a plain generator): where int8 ran, the renders differ by int8's error
        dense = Generator(arch=G.arch).eval()
        dense.load_state_dict(G.state_dict())
        fp32 = _capi.layer_render(dense, w, config).numpy()
        assert _capi.mean_rel_diff(rgb, want) < INT8_MEAN
        assert _capi.mean_rel_diff(fp32, want) > 5 * INT8_MEAN, "int8 did not change the Python render: untested"
        # a second render reuses the kept int8 slices and gives the same image
        code, again, err = m.render(w.numpy(), resolution, ratio, widths=widths)
        assert code == _capi.OK and np.array_equal(again, rgb), err
    finally:
        m.close()


def test_int8_threads_render_at_once(lib, files):
    """Two threads rendering two configs of one int8 model at once (each packing its slices on first use, under
    the model's slice cache) get what they get one after the other."""
    G, path = files["int8"]
    cases = [(64, 0.75), (32, 0.5)]
    w = _capi.latents(G).numpy()
    serial = lib.model(path)
    want = [serial.render(w, res, ratio)[1] for res, ratio in cases]
    serial.close()
    m = lib.model(path)
    got: list[list] = [[], []]
    barrier = threading.Barrier(2)

    def work(i):
        barrier.wait()
        for _ in range(3):
            got[i].append(m.render(w, *cases[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m.close()
    for i in range(2):
        assert len(got[i]) == 3 and all(code == _capi.OK and np.array_equal(rgb, want[i]) for code, rgb, _ in got[i])
