"""GAN Compression's losses: the adversarial loss (LSGAN or hinge), L1 reconstruction and feature distillation.

The adversarial losses take the PatchGAN's raw logits (one per patch) and average over patches and the batch.
The discriminator's loss is half the sum of its real and fake terms, as in pix2pix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

GAN_LOSSES = ("lsgan", "hinge")


def check_gan_loss(kind: str) -> str:
    if kind not in GAN_LOSSES:
        raise ValueError(f"GAN loss must be one of {GAN_LOSSES}, got {kind!r}")
    return kind


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """LSGAN: ((D(real) - 1)^2 + D(fake)^2) / 2; hinge: (relu(1 - D(real)) + relu(1 + D(fake))) / 2."""
    if check_gan_loss(kind) == "lsgan":
        real, fake = (real_logits - 1).square().mean(), fake_logits.square().mean()
    else:
        real, fake = F.relu(1 - real_logits).mean(), F.relu(1 + fake_logits).mean()
    return (real + fake) / 2


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """LSGAN: (D(fake) - 1)^2; hinge: -D(fake)."""
    if check_gan_loss(kind) == "lsgan":
        return (fake_logits - 1).square().mean()
    return -fake_logits.mean()


def reconstruction_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 to the target: the real image (paired) or the teacher's output (pseudo pairs)."""
    return F.l1_loss(output, target)


def distillation_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], adapters) -> torch.Tensor:
    """Sum over taps of MSE(adapter_i(student_i), teacher_i): the student's features are mapped to the teacher's
    width by `adapters` (callables, one per tap; see `distill.FeatureAdapters`); the teacher's are constants."""
    if not len(student) == len(teacher) == len(adapters):
        raise ValueError(f"{len(student)} student features, {len(teacher)} teacher features and {len(adapters)} "
                         "adapters: one of each per tap")
    return sum(F.mse_loss(adapt(s), t.detach()) for s, t, adapt in zip(student, teacher, adapters))
