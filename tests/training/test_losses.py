"""Losses against hand-computed values."""

import math

import pytest
import torch

from anycost.training import losses


def test_d_logistic_loss_hand_values():
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [0.0]])
    expected = (math.log1p(math.exp(-1)) + math.log(2)) / 2 + (math.log1p(math.exp(-2)) + math.log(2)) / 2
    assert losses.d_logistic_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)


def test_g_nonsaturating_loss_hand_values():
    assert losses.g_nonsaturating_loss(torch.zeros(3, 1)).item() == pytest.approx(math.log(2))
    assert losses.g_nonsaturating_loss(torch.tensor([[1.0]])).item() == pytest.approx(math.log1p(math.exp(-1)))


def test_r1_penalty_of_a_linear_critic_is_its_weight_norm():
    a = torch.randn(3, 4, 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * a).flatten(1).sum(1, keepdim=True)
    penalty = losses.r1_penalty(logits, x)
    torch.testing.assert_close(penalty, a.square().sum())
    penalty.backward()  # differentiable (create_graph): the D update goes through it
    torch.testing.assert_close(a.grad, 2 * a.detach())


def test_path_length_of_a_linear_generator():
    n, layers, d = 4, 3, 5
    A = torch.randn(layers * d, 3 * 2 * 2)
    w = torch.randn(n, layers, d, requires_grad=True)
    images = (w.reshape(n, -1) @ A).reshape(n, 3, 2, 2)
    noise = torch.randn(n, 3, 2, 2)
    penalty, lengths, new_mean = losses.path_length_penalty(images, w, torch.tensor(0.0), decay=0.5, noise=noise)
    grad = (noise.reshape(n, -1) / 2) @ A.T  # d/dw of sum(images * noise / sqrt(HW))
    expected = grad.reshape(n, layers, d).square().sum(2).mean(1).sqrt()
    torch.testing.assert_close(lengths, expected)
    torch.testing.assert_close(new_mean, 0.5 * expected.mean())
    torch.testing.assert_close(penalty, (expected - 0.5 * expected.mean()).square().mean())


def test_consistency_loss_downsamples_the_detached_teacher():
    full = torch.randn(2, 3, 8, 8, requires_grad=True)
    sub = torch.nn.functional.avg_pool2d(full.detach(), 2).requires_grad_(True)
    loss, parts = losses.consistency_loss(sub, full)
    assert loss.item() == 0 and parts["mse"] == 0
    loss, parts = losses.consistency_loss(sub + 1, full, perceptual=lambda x, y: (x - y).abs().flatten(1).mean(1),
                                          perceptual_weight=2.0)
    assert parts["mse"].item() == pytest.approx(1.0) and parts["perceptual"].item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(3.0)
    loss.backward()
    assert full.grad is None and sub.grad is not None  # the full output is only a teacher


def test_consistency_loss_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="cannot area-downsample"):
        losses.consistency_loss(torch.zeros(1, 3, 6, 6), torch.zeros(1, 3, 8, 8))
