"""SlimGAN's losses: hinge values, and the inplace distillation (zero when widths agree, stop-gradient, modes)."""

import pytest
import torch

from anycost.models.slimgan import SlimArch, build_generator
from anycost.training.slimgan import distillation_loss, hinge_d_loss, hinge_g_loss


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    # relu(1 - real) = 0, 0.5, 2 ; relu(1 + fake) = 0, 1, 2
    assert hinge_d_loss(real, fake).item() == pytest.approx(2.5 / 3 + 3 / 3)
    assert hinge_g_loss(fake).item() == pytest.approx(1 / 3)


def test_distillation_is_zero_when_the_widths_agree():
    out = torch.randn(2, 1, 4, 4)
    for mode in ("stepwise", "widest"):
        assert distillation_loss([out, out.clone(), out.clone()], mode).item() == 0


def test_stepwise_and_widest_teachers():
    a, b, c = (torch.full((1, 1, 2, 2), v) for v in (0.0, 1.0, 3.0))
    assert distillation_loss([a, b, c], "stepwise").item() == pytest.approx((1 + 4) / 2)  # a<-b, b<-c
    assert distillation_loss([a, b, c], "widest").item() == pytest.approx((9 + 4) / 2)  # a<-c, b<-c


@pytest.mark.parametrize("mode", ["stepwise", "widest"])
def test_teachers_get_no_gradient(mode):
    outs = [torch.randn(2, 1, 4, 4, requires_grad=True) for _ in range(3)]
    distillation_loss(outs, mode).backward()
    assert outs[-1].grad is None  # the widest is only ever a teacher
    assert all(o.grad is not None and o.grad.abs().sum() > 0 for o in outs[:-1])
    if mode == "stepwise":  # the middle width learns from the widest; its gradient comes from its own term only
        assert torch.allclose(outs[1].grad, (outs[1] - outs[2]).detach() / outs[1].numel())


def test_the_widest_widths_private_parameters_get_no_distillation_gradient():
    """On a real generator: width 1.0's own BN affine gets nothing from the distillation term, the others do."""
    torch.manual_seed(0)
    G = build_generator(SlimArch.dcgan32(32, z_dim=8))
    z = torch.randn(4, 8)
    distillation_loss([G(z, width=w) for w in G.widths], "stepwise").backward()
    bns = G.norms[0].bns
    assert bns[-1].weight.grad is None or bns[-1].weight.grad.abs().sum() == 0
    assert all(bns[i].weight.grad.abs().sum() > 0 for i in range(len(G.widths) - 1))


def test_bad_inputs():
    out = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="at least two"):
        distillation_loss([out], "stepwise")
    with pytest.raises(ValueError, match="'stepwise' or 'widest'"):
        distillation_loss([out, out], "none")
