"""The bundled edges -> shoes generators (teacher and compressed student) at inference, the whole forward in one
native call (`anycost.ops.i2i_forward`, what `I2IGenerator.forward` takes) against the same layers called one by one
from Python (`I2IGenerator._layers`: the same ops), at the task's 32 px and at 256 px (threads: bench/conftest.py).
The gap is the per-layer Python and dispatcher cost, which at 32 px is as large as the student's own layers."""

import pytest
import torch
from _timing import record

from anycost.gan_compression import load_bundled
from anycost.models.i2i.macs import true_macs


@pytest.mark.parametrize("path", ["layers", "native"])
@pytest.mark.parametrize("size", [32, 256])
@pytest.mark.parametrize("role", ["teacher", "compressed"])
def test_i2i_forward(benchmark, role, size, path):
    G = load_bundled("fmnist-edges2shoes", role).eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    widths = G.full_config.widths
    run = (lambda: G(x)) if path == "native" else (lambda: G._layers(x, widths, None))
    benchmark.group = f"edges -> shoes {role} {size} px"
    with torch.inference_mode():
        benchmark.pedantic(run, rounds=50 if size == 32 else 10, warmup_rounds=10)
    record(benchmark, true_macs(G.arch, widths, size), kind="generator", op="i2i_forward", impl=path,
           shape=f"{role}-{size}")
