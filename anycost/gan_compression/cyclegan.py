"""CycleGAN training of the teacher of an unpaired task (role "cyclegan").

Two ResNet generators of the config's arch, "G": A -> B (the teacher the students are distilled from) and
"G_BA": B -> A, and two PatchGANs that judge an image alone (no input beside it, unlike pix2pix's): "D" judges
B images (real B against G's outputs; the discriminator a student inherits) and "D_A" judges A images. One step,
in the order of the CycleGAN code (Zhu et al., ICCV 2017):

1. generators, both discriminators frozen: the GAN loss (LSGAN by default) of G(a) under D and of G_BA(b) under
   D_A, plus `lambda_recon` (10) x the cycle-consistency L1 |G_BA(G(a)) - a| + |G(G_BA(b)) - b|, plus
   `lambda_identity` (0.5) x `lambda_recon` x the identity L1 |G(b) - b| + |G_BA(a) - a| (a generator given an
   image of its own output domain should leave it as it is, which keeps the colours of what needs no
   translation); one Adam step over both generators;
2. discriminators: each the half-sum of its real and fake terms, on this step's outputs (detached); one Adam step
   over both.

The CycleGAN code also shows each D a pool of 50 earlier fakes half the time; this run shows D the step's own
fakes (no pool), which keeps the training state to the modules and optimisers, so a resume stays exact. The
optimiser and schedule are the other runs' (Adam 2e-4, betas 0.5 / 0.999, constant then linear to 0; the command
keeps the rate constant for half the steps, as the paper's 100 + 100 epochs). teacher.safetensors holds G
(A -> B), which `distill` distils with pseudo pairs; G_BA and both discriminators stay in latest.pt.
"""

from __future__ import annotations

from pathlib import Path

import torch

from anycost.gan_compression import losses
from anycost.gan_compression.config import RunConfig
from anycost.gan_compression.run import Run
from anycost.gan_compression.teacher import export_teacher
from anycost.models.i2i import I2IGenerator


class CycleGANRun(Run):
    """CycleGAN training of `cfg.generator` (role "cyclegan", an unpaired task): see the module docstring."""

    ROLES = ("cyclegan",)

    def __init__(self, cfg: RunConfig, out_dir, progress: bool = True):
        super().__init__(cfg, out_dir, progress)
        with self.seeded():
            self.G, self.G_BA = I2IGenerator(cfg.generator), I2IGenerator(cfg.generator)
            self.D, self.D_A = self.make_discriminator(), self.make_discriminator()
        self.modules = {"G": self.G, "G_BA": self.G_BA, "D": self.D, "D_A": self.D_A}
        self.optimizers = {"G": self.adam([*self.G.parameters(), *self.G_BA.parameters()]),
                           "D": self.adam([*self.D.parameters(), *self.D_A.parameters()])}

    def _generator_loss(self, a, b, fake_b, fake_a) -> tuple[torch.Tensor, dict[str, float]]:
        """The generators' objective (step 1 of the module docstring) and its terms for the log."""
        cfg, l1 = self.cfg, losses.reconstruction_loss
        gan = losses.g_loss(cfg.gan_loss, self.D(fake_b)) + losses.g_loss(cfg.gan_loss, self.D_A(fake_a))
        cycle = l1(self.G_BA(fake_b), a) + l1(self.G(fake_a), b)
        loss = gan + cfg.lambda_recon * cycle
        identity = torch.zeros(())
        if cfg.lambda_identity > 0:  # two more generator passes, skipped when they do not count
            identity = l1(self.G(b), b) + l1(self.G_BA(a), a)
            loss = loss + cfg.lambda_identity * cfg.lambda_recon * identity
        terms = {"g_gan": gan, "cycle": cycle, "identity": identity}
        return loss, {k: float(v.detach()) for k, v in terms.items()}

    def train_step(self, rng: torch.Generator) -> dict[str, float]:
        a, b = self.reals(rng)
        fake_b, fake_a = self.G(a), self.G_BA(b)
        for D in (self.D, self.D_A):
            D.requires_grad_(False)
        loss, log = self._generator_loss(a, b, fake_b, fake_a)
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["G"].step()
        for D in (self.D, self.D_A):
            D.requires_grad_(True)
        kind = self.cfg.gan_loss
        d_b = losses.d_loss(kind, self.D(b), self.D(fake_b.detach()))
        d_a = losses.d_loss(kind, self.D_A(a), self.D_A(fake_a.detach()))
        self.optimizers["D"].zero_grad(set_to_none=True)
        (d_b + d_a).backward()
        self.optimizers["D"].step()
        return {"d": float(d_b.detach()), "d_a": float(d_a.detach()), **log}

    def sample_rows(self, inputs, targets):
        """a | G(a) | G_BA(G(a)) | b | G_BA(b) | G(G_BA(b)): both translations and their cycles."""
        fake_b, fake_a = self.G(inputs), self.G_BA(targets)
        cells = [inputs, fake_b, self.G_BA(fake_b), targets, fake_a, self.G(fake_a)]
        return [torch.stack(row) for row in zip(*cells)]

    def export(self) -> Path:
        return export_teacher(self)
