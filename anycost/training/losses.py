"""StyleGAN2 losses and regularisers, and the Anycost consistency loss.

All take raw discriminator logits [N, 1] (or [N]) and return a scalar mean over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from anycost.metrics.consistency import downsample_to


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: softplus(fake) + softplus(-real), i.e. -log(1 - D(fake)) - log D(real)."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: softplus(-fake) = -log D(fake)."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1: mean over the batch of |d D(x) / d x|^2 at real images (`real_images` must require grad)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def path_length_penalty(images: torch.Tensor, w: torch.Tensor, mean_length: torch.Tensor, decay: float = 0.01,
                        noise: torch.Tensor | None = None):
    """StyleGAN2 path-length regulariser.

    `w` is the W+ input [N, L, D] that produced `images` [N, 3, H, W] (with grad). Returns (penalty,
    path_lengths, new_mean): the penalty is mean((|J^T y| - a)^2) with y ~ N(0, 1/(H W)) image noise and a
    the running mean of the path length, updated with `decay`.
    """
    if noise is None:
        noise = torch.randn_like(images)
    noise = noise / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * noise).sum(), w, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    new_mean = mean_length + decay * (lengths.detach().mean() - mean_length)
    return (lengths - new_mean).square().mean(), lengths, new_mean.detach()


def consistency_loss(sub_images: torch.Tensor, full_images: torch.Tensor, perceptual=None,
                     mse_weight: float = 1.0, perceptual_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Distance of a sub-generator's output to the full generator's output for the same latents.

    The full output is the teacher: it is detached and, when larger, box-downsampled to the sub output's
    resolution (the same pyramid the multi-resolution training uses). Returns (loss, parts) where parts
    holds the unweighted "mse" and, with a `perceptual` module (d(x, y) -> [N]), "perceptual" terms.
    """
    full_images = downsample_to(full_images.detach(), sub_images.shape[-1])
    mse = F.mse_loss(sub_images, full_images)
    parts = {"mse": mse.detach()}
    loss = mse_weight * mse
    if perceptual is not None and perceptual_weight:
        dist = perceptual(sub_images, full_images).mean()
        parts["perceptual"] = dist.detach()
        loss = loss + perceptual_weight * dist
    return loss, parts
