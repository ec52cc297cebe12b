"""SlimGAN's losses: the hinge GAN loss and the inplace distillation between widths.

All take the outputs of one batch; the generator's images at every width are narrowest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss: E relu(1 - D(x)) + E relu(1 + D(G(z)))."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's hinge loss: -E D(G(z))."""
    return -fake_logits.mean()


def distillation_loss(outputs: Sequence[torch.Tensor], mode: str = "stepwise") -> torch.Tensor:
    """Mean over the N - 1 narrower widths of the MSE between a width's output and its teacher's, on a latent
    all widths share: the next wider width (`mode` "stepwise", SlimGAN's L = 1/(N-1) sum_i ||G_i - sg(G_i+1)||^2
    with the code's mean over pixels) or the widest (`mode` "widest"). Teachers are detached (stop-gradient):
    a width is pulled toward its teacher, never the teacher toward it, so the widest width gets no gradient."""
    if len(outputs) < 2:
        raise ValueError(f"distillation needs the outputs of at least two widths, got {len(outputs)}")
    if mode == "stepwise":
        teachers = outputs[1:]
    elif mode == "widest":
        teachers = [outputs[-1]] * (len(outputs) - 1)
    else:
        raise ValueError(f"distillation mode must be 'stepwise' or 'widest', got {mode!r}")
    terms = [F.mse_loss(student, teacher.detach()) for student, teacher in zip(outputs[:-1], teachers)]
    return torch.stack(terms).mean()
