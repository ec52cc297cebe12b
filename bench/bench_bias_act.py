"""Per op: `bias_act` at the shapes the models use, kernel vs reference: the mapping MLP (bias + leaky
ReLU on [N, 512], N = 1 and mean_w's 2048), the modulation (bias only, [1, 512]) and the discriminator's
activations. "MACs" are elements (one add + activation each). Measured with 1 thread, CPU clock, under
inference mode: lrelu 1.4-3.5x faster native, linear 0.7-0.9x (one broadcast add in the reference).
Outside inference mode the Python autograd layer of the native op adds ~5-10 us per call."""

import pytest
import torch
from _timing import record

from anycost import ops

CASES = [  # (name, shape, act)
    ("mapping", (1, 512), "lrelu"),
    ("mapping", (2048, 512), "lrelu"),
    ("modulation", (1, 512), "linear"),
    ("disc", (4, 512, 8, 8), "lrelu"),
    ("disc", (4, 128, 64, 64), "lrelu"),
    ("disc", (1, 64, 256, 256), "lrelu"),
]


@pytest.mark.parametrize("impl", ["ref", "kernel"])
@pytest.mark.parametrize(("name", "shape", "act"), [
    pytest.param(*case, id=f"{case[0]}-{'x'.join(map(str, case[1]))}-{case[2]}") for case in CASES])
def test_bias_act(benchmark, name, shape, act, impl):
    g = torch.Generator().manual_seed(len(shape))
    x, b = torch.randn(*shape, generator=g), torch.randn(shape[1], generator=g)
    numel = x.numel()
    benchmark.group = f"bias_act {name} {'x'.join(map(str, shape))} {act}"
    benchmark.pedantic(ops.bias_act, args=(x, b, act), kwargs=dict(impl=impl), rounds=10 if numel > 1e6 else 200,
                       warmup_rounds=2)
    record(benchmark, numel, kind="op", op="bias_act", impl=impl, shape="x".join(map(str, shape)), act=act)
