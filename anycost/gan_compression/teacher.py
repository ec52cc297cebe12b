"""Teacher training: pix2pix with a ResNet generator, a conditional PatchGAN, LSGAN (or hinge) + 100 x L1.

The teacher is the full model that the student and the supernet are later distilled from. Its run folder keeps,
besides the `run.Run` files, teacher.safetensors (the generator, `anycost.models.i2i.save_generator`; written by
`export_teacher`, for the CycleGAN teacher of an unpaired task too); the discriminator stays in latest.pt, where a
distill run takes it from.
"""

from __future__ import annotations

from pathlib import Path

import torch

from anycost.gan_compression import losses
from anycost.gan_compression.config import RunConfig
from anycost.gan_compression.run import Run
from anycost.models.i2i import I2IGenerator, save_generator

TEACHER_FILE = "teacher.safetensors"


def adversarial_step(run: Run, G_out: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """One discriminator step of `run` on real pairs (inputs, targets) against (inputs, G_out), G_out detached (on
    an unpaired task: real B images `targets` against `G_out`)."""
    D, kind = run.modules["D"], run.cfg.gan_loss
    D.requires_grad_(True)
    real = D(run.d_input(inputs, targets))
    fake = D(run.d_input(inputs, G_out.detach()))
    loss = losses.d_loss(kind, real, fake)
    run.optimizers["D"].zero_grad(set_to_none=True)
    loss.backward()
    run.optimizers["D"].step()
    return {"d": float(loss.detach())}


def generator_gan_terms(run: Run, G_out: torch.Tensor, inputs: torch.Tensor, recon_to: torch.Tensor):
    """(the GAN + weighted L1 loss of `G_out`, their log values): the generator's pix2pix objective, its L1 term
    to `recon_to` (the real targets, or a teacher's outputs)."""
    D = run.modules["D"].requires_grad_(False)
    gan = losses.g_loss(run.cfg.gan_loss, D(run.d_input(inputs, G_out)))
    recon = losses.reconstruction_loss(G_out, recon_to)
    return gan + run.cfg.lambda_recon * recon, {"g_gan": float(gan.detach()), "l1": float(recon.detach())}


def export_teacher(run: Run) -> Path:
    """Write `run`'s generator "G" (a pix2pix teacher, or a CycleGAN's A -> B generator) as its TEACHER_FILE."""
    info = {"trained_by": "anycost gan-compression train-teacher", "task": run.cfg.task, "step": run.step,
            "run_config": run.cfg.to_json()}
    return save_generator(run.modules["G"], run.out_dir / TEACHER_FILE, metadata=info)


class TeacherRun(Run):
    """pix2pix training of `cfg.generator` (role "teacher")."""

    ROLES = ("teacher",)

    def __init__(self, cfg: RunConfig, out_dir, progress: bool = True):
        super().__init__(cfg, out_dir, progress)
        with self.seeded():
            self.G = I2IGenerator(cfg.generator)
            self.D = self.make_discriminator()
        self.modules = {"G": self.G, "D": self.D}
        self.optimizers = {"G": self.adam(self.G.parameters()), "D": self.adam(self.D.parameters())}

    def train_step(self, rng: torch.Generator) -> dict[str, float]:
        inputs, targets = self.reals(rng)
        out = self.G(inputs)
        log = adversarial_step(self, out, inputs, targets)
        loss, terms = generator_gan_terms(self, out, inputs, targets)
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["G"].step()
        return {**log, **terms}

    def sample_rows(self, inputs, targets):
        out = self.G(inputs)  # no mode to switch: instance norms without running statistics, no dropout
        return [torch.stack(cells) for cells in zip(inputs, out, targets)]

    def export(self) -> Path:
        return export_teacher(self)
