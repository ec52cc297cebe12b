"""Conv outputs written past the caches (non-temporal stores: kernels/cpu/modconv_params.h `streams_output`, from
twice the last-level cache, which ANYCOST_L3_KB overrides): with ANYCOST_L3_KB=1 every conv output of these layers
streams, and every value must come out bit for bit as written normally, at every CPU level this machine has: the fp32
modulated conv (plain, upsampling, with its RGB head) on its small-image, direct and Winograd paths, the int8 conv
(plain and upsampling), and a generator's one-call forward, fp32 and int8. Each run is its own process (the size is
read once)."""

import os
import subprocess
import sys

import pytest
import torch

from anycost.ops import _ext

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")

_CODE = """
import sys
import torch
from anycost import ops
from anycost.benchmark import random_generator
from anycost.compression import int8, quantize_int8
from anycost.models.stylegan2 import GeneratorArch

out = {}
gen = torch.Generator().manual_seed(0)
for level in ops.cpu_capabilities():
    ops._set_cpu_capability_for_testing(level)
    int8.DOT_PRODUCT_LEVELS = (level,)  # the plain convs int8 too
    for size, c in ((8, 16), (32, 32), (64, 24)):  # the small-image, direct and Winograd paths
        x = torch.randn(2, c, size, size, generator=gen)
        weight = torch.randn(c, c, 3, 3, generator=gen)
        styles = torch.rand(2, c, generator=gen) + 0.5
        for up in (False, True):
            noise = torch.randn(1, 1, size * (1 + up), size * (1 + up), generator=gen)
            out[level, size, up, "fp32"] = ops.modulated_conv2d(
                x, weight, styles, weight_scale=0.1, upsample=up, noise=noise, noise_strength=torch.tensor([0.3]),
                bias=torch.randn(c, generator=gen), activate=True, impl="kernel")
            q = torch.randint(-127, 128, (c, c, 3, 3), generator=gen, dtype=torch.int8)
            packed, wsum = ops.qconv2d_pack(q, impl="kernel")
            out[level, size, up, "int8"] = ops.qconv2d(
                x, styles, None, packed, wsum, torch.rand(2, c, generator=gen) * 1e-3, upsample=up, noise=noise,
                noise_strength=torch.tensor([0.3]), bias=torch.randn(c, generator=gen), activate=True, impl="kernel")
        out[level, size, "rgb"] = ops.styled_conv_to_rgb(
            x, weight, styles, weight_scale=0.1, noise=None, noise_strength=None, bias=torch.randn(c, generator=gen),
            rgb_weight=torch.randn(3, c, 1, 1, generator=gen), rgb_styles=torch.rand(2, c, generator=gen),
            rgb_bias=torch.randn(3, generator=gen), rgb_weight_scale=0.2, skip=None, keep_x=True, impl="kernel")
    G = random_generator(arch=GeneratorArch(64, channel_multiplier=0.25, channel_max=32, style_dim=16, n_mlp=1))
    w = G.mapping(torch.randn(2, 16, generator=gen))
    with torch.no_grad():
        out[level, "G"] = G(w, noise="const")
        out[level, "G int8"] = quantize_int8(G, w)(w, noise="const")
torch.save(out, sys.argv[1])
"""


def _outputs(tmp_path, name, l3_kb=None):
    env = dict(os.environ)
    env.pop("ANYCOST_L3_KB", None)
    if l3_kb is not None:
        env["ANYCOST_L3_KB"] = l3_kb
    path = tmp_path / f"{name}.pt"
    run = subprocess.run([sys.executable, "-c", _CODE, str(path)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return torch.load(path, weights_only=True)


def test_streamed_outputs_are_bit_identical(tmp_path):
    normal, streamed = _outputs(tmp_path, "normal"), _outputs(tmp_path, "streamed", l3_kb="1")
    assert normal.keys() == streamed.keys() and len(normal) > 10
    for key, value in normal.items():
        got = streamed[key]
        for a, b in zip(value if isinstance(value, tuple) else (value,), got if isinstance(got, tuple) else (got,)):
            assert torch.equal(a, b), key
