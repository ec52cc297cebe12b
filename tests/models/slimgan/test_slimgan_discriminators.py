"""The discriminators of a slimmable generator: every pairing mode, what is shared, the projection head,
spectral norm and the errors for bad input."""

import pytest
import torch
from torch.nn.utils import parametrize

from anycost.models.slimgan import SlimArch, SlimDiscriminator
from anycost.models.slimgan.layers import SlimConv2d

ARCHS = {
    "resnet": SlimArch.resnet32(16, z_dim=8),
    "resnet-cond": SlimArch.resnet32(16, z_dim=8, num_classes=10),
    "dcgan-cond": SlimArch.dcgan32(32, z_dim=8, num_classes=10),
}
NDF = {"resnet": 16, "dcgan": 32}
MODES = ("shared", "independent", "same", "slimmable")


def make(name: str, mode: str, **kw) -> SlimDiscriminator:
    torch.manual_seed(0)
    arch = ARCHS[name]
    return SlimDiscriminator(arch, mode, ndf=NDF[arch.backbone], **kw)


def inputs(D, batch: int = 3):
    y = torch.arange(batch) % D.arch.num_classes if D.arch.num_classes else None
    return torch.randn(batch, 3, 32, 32), y


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(ARCHS))
def test_one_logit_per_image_at_every_width(name, mode):
    D = make(name, mode).eval()
    x, y = inputs(D)
    with torch.no_grad():
        outs = [D(x, y, width=w) for w in D.arch.widths]
        assert all(o.shape == (3,) and torch.isfinite(o).all() for o in outs)
        assert torch.equal(D(x, y), outs[-1])  # default: the widest
    differ = [not torch.equal(outs[0], o) for o in outs[1:]]
    assert all(differ) if mode != "same" else not any(differ)


def grads(module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("name, n_share, n_stages", [("resnet", 2, 4), ("dcgan-cond", 3, 7), ("resnet", 0, 4)])
def test_shared_stages_get_every_width_and_private_ones_only_their_own(name, n_share, n_stages):
    D = make(name, "shared", n_share=n_share).train()
    assert len(D.shared) == n_share and len(D.branches) == 4
    assert all(len(branch.stages) == n_stages - n_share for branch in D.branches)
    x, y = inputs(D)
    D(x, y, width=0.5).sum().backward()
    assert [grads(b) for b in D.branches] == [False, True, False, False]
    assert n_share == 0 or grads(D.shared)


def test_default_sharing_and_the_other_modes_layout():
    assert make("resnet", "shared").n_share == 2 and make("dcgan-cond", "shared").n_share == 3
    independent = make("resnet", "independent")
    assert independent.n_share == 0 and len(independent.branches) == 4
    for mode in ("same", "slimmable"):
        D = make("resnet", mode)
        assert len(D.branches) == 1 and len(D.shared) == 4 and len(D.branches[0].stages) == 0


@pytest.mark.parametrize("name", ["resnet-cond", "dcgan-cond"])
def test_slimmable_discriminator_uses_the_leading_channels(name):
    D = make(name, "slimmable").eval()
    seen = []
    hooks = [stage.register_forward_hook(lambda m, i, out: seen.append(out.shape[1])) for stage in D.shared]
    x, y = inputs(D)
    D(x, y, width=0.25)
    for hook in hooks:
        hook.remove()
    assert seen == [max(1, c // 4) for c in D.channels]


def test_projection_depends_on_the_class():
    D = make("resnet-cond", "shared").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(D(x, 1, width=0.25), D(x, 2, width=0.25))


def test_spectral_norm_makes_each_weight_one_lipschitz():
    D = make("resnet", "same").train()
    x, _ = inputs(D)
    with torch.no_grad():
        for _ in range(30):  # every call runs one power iteration per layer
            D(x)
    convs = [m for m in D.modules() if isinstance(m, SlimConv2d)]
    assert convs and all(parametrize.is_parametrized(c, "weight") for c in convs)
    D.eval()
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        torch.testing.assert_close(sigma, torch.tensor(1.0), rtol=0.05, atol=0.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="twin"), "mode must be one of"),
    (dict(mode="shared", n_share=5), r"n_share must be an integer in \[0, 4\], got 5"),
    (dict(mode="same", n_share=1), "n_share applies to mode 'shared' only, not 'same'"),
    (dict(mode="shared", ndf=4), "ndf must be an integer >= 8"),
])
def test_bad_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SlimDiscriminator(ARCHS["resnet"], **kwargs)


def test_too_narrow_for_a_slimmable_discriminator():
    with pytest.raises(ValueError, match="too small for a slimmable discriminator"):
        SlimDiscriminator(ARCHS["dcgan-cond"], "slimmable", ndf=16)


@pytest.mark.parametrize("name, call, error, message", [
    ("resnet", lambda D: D(torch.randn(2, 3, 32, 32), width=0.6), ValueError, "width 0.6 is not one of"),
    ("resnet", lambda D: D(torch.randn(2, 3, 16, 16)), ValueError,
     r"x must have shape \[batch, 3, 32, 32\], got \[2, 3, 16, 16\]"),
    ("resnet", lambda D: D(torch.randn(2, 3, 32, 32), 1), ValueError, "this discriminator is unconditional"),
    ("resnet-cond", lambda D: D(torch.randn(2, 3, 32, 32)), ValueError,
     r"this discriminator is class-conditional \(10 classes\)"),
    ("resnet-cond", lambda D: D(torch.randn(2, 3, 32, 32), torch.tensor([0, 11])), ValueError,
     "class index 11 out of range"),
])
def test_bad_input_is_a_clear_one_line_error(name, call, error, message):
    D = make(name, "shared").eval()
    with pytest.raises(error, match=message) as info:
        call(D)
    assert "\n" not in str(info.value)
