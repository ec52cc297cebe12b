"""The slimmable generators: shapes at every width, weights shared as views, per-width BN statistics, the
sliced class tables of scBN, widths run at once from two threads, and the errors for bad input."""

import threading

import pytest
import torch

from anycost.models.slimgan import SlimArch, SlimConfig, build_generator
from anycost.models.slimgan.layers import SlimConv2d, SlimConvTranspose2d, SlimLinear
from anycost.models.slimgan.norms import SliceableConditionalBatchNorm, SwitchableBatchNorm

Z = 8
ARCHS = {
    "resnet": SlimArch.resnet32(16, z_dim=Z),
    "resnet-cond": SlimArch.resnet32(16, z_dim=Z, num_classes=10),
    "resnet-cond-x": SlimArch.resnet32(16, z_dim=Z, num_classes=10, cbn="switchable"),
    "dcgan": SlimArch.dcgan32(32, z_dim=Z),
    "dcgan-cond": SlimArch.dcgan32(32, z_dim=Z, num_classes=10),
}


def make(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_generator(ARCHS[name])


def classes(G, batch: int):
    return torch.arange(batch) % G.num_classes if G.num_classes else None


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_shapes_at_every_width(name):
    G = make(name).eval()
    assert G.widths == (0.25, 0.5, 0.75, 1.0) and G.z_dim == Z
    assert G.num_classes == ARCHS[name].num_classes
    z = torch.randn(3, Z)
    with torch.no_grad():
        for width in G.widths:
            out = G(z, classes(G, 3), width=width)
            assert out.shape == (3, 3, 32, 32) and out.abs().max() <= 1
        assert torch.equal(G(z, classes(G, 3)), G(z, classes(G, 3), width=1.0))  # default: the widest
        assert torch.equal(G(z, classes(G, 3), width=G.subnet(0.5)), G(z, classes(G, 3), width=0.5))


@pytest.mark.parametrize("name", ["resnet", "dcgan"])
def test_widths_are_views_of_the_full_weights(name):
    G = make(name)
    layers = [m for m in G.modules() if isinstance(m, (SlimLinear, SlimConv2d, SlimConvTranspose2d))]
    assert len(layers) >= 5
    for layer in layers:
        weight, bias = layer.sliced(1, 1)
        assert weight.data_ptr() == layer.weight.data_ptr() and weight._base is layer.weight
        assert bias.data_ptr() == layer.bias.data_ptr()


@pytest.mark.parametrize("name", ["resnet-cond", "dcgan-cond"])
def test_a_narrow_width_trains_only_the_leading_block(name):
    G = make(name).train()
    G(torch.randn(4, Z), classes(G, 4), width=0.25).square().mean().backward()
    first = G.blocks[0].c2 if name.startswith("resnet") else G.ups[1]
    c = SlimConfig(G.arch, 0.25).channels[1]
    grad = first.weight.grad if name.startswith("resnet") else first.weight.grad.transpose(0, 1)
    assert grad[:c, :c].abs().sum() > 0
    assert grad[c:].abs().sum() == 0 and grad[:, c:].abs().sum() == 0


def test_switchable_bn_keeps_statistics_per_width():
    G = make("resnet").train()
    norms = [m for m in G.modules() if isinstance(m, SwitchableBatchNorm)]
    assert len(norms) == 7
    before = [[bn.running_mean.clone() for bn in norm.bns] for norm in norms]
    G(torch.randn(4, Z), width=0.25)
    for norm, old in zip(norms, before):
        assert not torch.equal(norm.bns[0].running_mean, old[0])  # 0.25 moved
        for bn, mean in zip(norm.bns[1:], old[1:]):
            assert torch.equal(bn.running_mean, mean) and bn.running_var.eq(1).all()  # the others did not


def test_sliceable_cbn_shares_one_full_width_class_table():
    G = make("resnet-cond").train()
    norm = G.blocks[1].b1
    assert isinstance(norm, SliceableConditionalBatchNorm)
    assert norm.class_gamma.shape == (10, 16) and [g.shape[0] for g in norm.gamma] == [4, 8, 12, 16]
    y = torch.tensor([2, 5, 2, 5])
    G(torch.randn(4, Z), y, width=0.5).square().mean().backward()
    grad = norm.class_gamma.grad
    assert grad[[2, 5], :8].abs().sum() > 0
    assert grad[:, 8:].abs().sum() == 0 and grad[[0, 1, 3, 4, 6, 7, 8, 9]].abs().sum() == 0
    assert norm.gamma[1].grad.abs().sum() > 0 and all(norm.gamma[i].grad is None for i in (0, 2, 3))


def test_class_changes_the_output():
    G = make("dcgan-cond").eval()
    z = torch.randn(1, Z)
    with torch.no_grad():
        assert not torch.allclose(G(z, 1, width=0.5), G(z, 2, width=0.5))
        assert torch.equal(G(z, 3, width=0.5), G(z, torch.tensor([3]), width=0.5))


def test_two_widths_from_two_threads_match_sequential_runs():
    """Same inputs and batch sizes as the sequential runs; the tolerance allows for a different order of
    floating-point work in threads (the results need not be bit-exact)."""
    G = make("resnet-cond").eval()
    z, y = torch.randn(4, Z), torch.tensor([0, 3, 6, 9])
    with torch.no_grad():
        expected = {w: G(z, y, width=w) for w in (0.25, 1.0)}
    results, errors = {w: [] for w in expected}, []

    def render(width):
        try:
            with torch.no_grad():
                for _ in range(5):
                    results[width].append(G(z, y, width=width))
        except Exception as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=render, args=(w,)) for w in expected]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for width, outs in results.items():
        assert len(outs) == 5
        for out in outs:
            torch.testing.assert_close(out, expected[width], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, call, error, message", [
    ("resnet", lambda G: G(torch.randn(2, Z), width=0.3), ValueError,
     r"width 0.3 is not one of this generator's widths \(0.25, 0.5, 0.75, 1.0\)"),
    ("resnet", lambda G: G(torch.randn(2, Z), width="half"), TypeError, "width must be a number or a SlimConfig"),
    ("resnet", lambda G: G(torch.randn(2, Z), torch.tensor([0, 1])), ValueError,
     "this generator is unconditional: call it without y"),
    ("resnet-cond", lambda G: G(torch.randn(2, Z)), ValueError,
     r"this generator is class-conditional \(10 classes\): pass y"),
    ("resnet-cond", lambda G: G(torch.randn(2, Z), torch.tensor([3, 10])), ValueError,
     r"class index 10 out of range: this generator has 10 classes \(0 to 9\)"),
    ("dcgan-cond", lambda G: G(torch.randn(2, Z), -1), ValueError, "class index -1 out of range"),
    ("dcgan-cond", lambda G: G(torch.randn(2, Z), torch.tensor([0.0, 1.0])), TypeError,
     "y must be an int or an integer tensor of class indices, got a tensor of torch.float32"),
    ("dcgan-cond", lambda G: G(torch.randn(2, Z), torch.tensor([0, 1, 2])), ValueError,
     r"y must have shape \[2\] \(one class per sample\), got \[3\]"),
    ("dcgan", lambda G: G(torch.randn(2, Z + 1)), ValueError, r"z must have shape \[batch, 8\], got \[2, 9\]"),
    ("dcgan", lambda G: G(torch.zeros(2, Z, dtype=torch.long)), TypeError,
     "z must be a floating-point tensor, got a tensor of torch.int64"),
    ("dcgan", lambda G: G(torch.randn(2, Z), width=SlimConfig(ARCHS["resnet"], 0.5)), ValueError,
     "the config is for another generator"),
])
def test_bad_input_is_a_clear_one_line_error(name, call, error, message):
    G = make(name).eval()
    with pytest.raises(error, match=message) as info:
        call(G)
    assert "\n" not in str(info.value)


def test_bad_arch_argument():
    with pytest.raises(TypeError, match="arch must be a SlimArch"):
        build_generator({"backbone": "resnet"})
