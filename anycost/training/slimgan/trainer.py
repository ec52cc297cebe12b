"""The SlimGAN training loop (Hou et al., AAAI 2021): one generator trained at all its widths at once.

One step is `n_dis` discriminator steps and one generator step:

- D step: one real batch; for every width a fresh latent, that width's fakes and the hinge loss of that width's
  discriminator (as the discriminator mode pairs them), each backpropagated so the gradients of all widths add
  up; then one optimiser step.
- G step: for every width a fresh latent and the hinge loss, backpropagated as they come; then one latent shared
  by all widths, the inplace distillation between their outputs (`losses.distillation_loss`, weight `lam`); then
  one optimiser step. An optional EMA copy of G follows.

Every draw of a step (real indices, latents, classes) comes from one generator seeded by (seed, step), so a run
resumed from its checkpoint takes exactly the steps an uninterrupted one takes: bit-exact with the same thread
count and device, as the tests check.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from anycost.fileio import atomic_write, load_torch_checkpoint
from anycost.models.slimgan import SlimDiscriminator, build_generator, save_generator
from anycost.training import runlog
from anycost.training.slimgan.config import SlimTrainConfig
from anycost.training.slimgan.losses import distillation_loss, hinge_d_loss, hinge_g_loss
from anycost.training.slimgan.samples import save_width_grid
from anycost.training.trainer import step_generator

CHECKPOINT_FORMAT = "anycost-slimgan-train"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("format", "version", "config", "step", "G", "D", "G_ema", "opt_G", "opt_D")


def load_slim_training_state(path) -> dict:
    """The state dict of a SlimGAN training checkpoint (loaded weights-only); CheckpointError if it is corrupt or
    another kind of file, FileNotFoundError if it is missing."""
    return load_torch_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "SlimGAN training checkpoint",
                                 REQUIRED_KEYS, hint=" (a StyleGAN2 run's checkpoint? resume it with anycost train)")


def check_data(cfg: SlimTrainConfig, images: torch.Tensor, labels: torch.Tensor | None) -> None:
    """ValueError unless `images` are uint8 [N, C, R, R] of the generator's channels and resolution and `labels`
    are int64 [N] classes of a conditional model (None for an unconditional one)."""
    arch = cfg.arch
    shape = (arch.img_channels, arch.resolution, arch.resolution)
    if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != shape or not len(images):
        raise ValueError(f"images must be uint8 [N, {', '.join(map(str, shape))}] with N >= 1, got {images.dtype} "
                         f"{tuple(images.shape)}")
    if not arch.conditional:
        if labels is not None:
            raise ValueError("the model is unconditional: train it without labels")
        return
    if labels is None:
        raise ValueError(f"the model is class-conditional ({arch.num_classes} classes): give the labels")
    if labels.dtype != torch.int64 or labels.shape != (len(images),):
        raise ValueError(f"labels must be int64 [{len(images)}], got {labels.dtype} {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= arch.num_classes:
        raise ValueError(f"labels must be in [0, {arch.num_classes - 1}], got {int(labels.min())} to "
                         f"{int(labels.max())}")


class SlimTrainer:
    """Trains a slimmable G and its discriminator(s) on `images` (and `labels`) following `cfg`; checkpoints,
    samples, the log and the final generator go to `out_dir`."""

    def __init__(self, cfg: SlimTrainConfig, images: torch.Tensor, labels: torch.Tensor | None = None,
                 out_dir=".", device="cpu", progress: bool = True):
        if not isinstance(cfg, SlimTrainConfig):
            raise TypeError(f"cfg must be a SlimTrainConfig, got {type(cfg).__name__}")
        check_data(cfg, images, labels)
        self.cfg, self.images, self.labels, self.out_dir = cfg, images, labels, Path(out_dir)
        self.device, self.progress = torch.device(device), progress
        with torch.random.fork_rng(devices=[]):  # the initial weights (and spectral norm's vectors) from the seed
            torch.manual_seed(cfg.seed)
            self.G = build_generator(cfg.arch).to(self.device)
            self.D = SlimDiscriminator(cfg.arch, cfg.d_mode, cfg.n_share, cfg.ndf).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.ema else None
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.step = 0

    @property
    def widths(self) -> tuple[float, ...]:
        return self.cfg.arch.widths

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": self.cfg.to_json(),
            "step": self.step, "G": self.G.state_dict(), "D": self.D.state_dict(),
            "G_ema": None if self.G_ema is None else self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if int(state["step"]) > self.cfg.steps:
            raise ValueError(f"the checkpoint is at step {state['step']}, past the run's {self.cfg.steps} steps")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.step = int(state["step"])

    @classmethod
    def resume(cls, path, images: torch.Tensor, labels: torch.Tensor | None = None, out_dir=None,
               steps: int | None = None, **kwargs) -> SlimTrainer:
        """A trainer restored from a checkpoint (its config from the file; `steps` may lengthen the run)."""
        state = load_slim_training_state(path)
        cfg = SlimTrainConfig.from_json(state["config"])
        cfg = cfg if steps is None else cfg.replace(steps=steps)
        trainer = cls(cfg, images, labels, out_dir or Path(path).parent, **kwargs)
        trainer.load_state_dict(state)
        return trainer

    def save(self, path) -> Path:
        """Write the full training state atomically (weights_only-loadable: tensors, numbers and JSON text)."""
        state = self.state_dict()
        return atomic_write(Path(path), lambda tmp: torch.save(state, tmp))

    @property
    def final_generator(self):
        """The generator a run delivers: the EMA copy when there is one, else G itself."""
        return self.G if self.G_ema is None else self.G_ema

    def export(self, path) -> Path:
        """Save the delivered generator (`anycost.models.slimgan.save_generator`) with the run's provenance."""
        info = {"trained_by": "anycost slimgan train", "step": self.step, "data": self.cfg.data,
                "train_config": json.loads(self.cfg.to_json())}
        return save_generator(self.final_generator, path, metadata=info)

    # -- one step --------------------------------------------------------------------------------
    def reals(self, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch of real images in [-1, 1] and their classes (None when unconditional)."""
        idx = torch.randint(len(self.images), (self.cfg.batch,), generator=rng)
        x = self.images[idx].to(self.device, torch.float32) / 127.5 - 1
        return x, None if self.labels is None else self.labels[idx].to(self.device)

    def latents(self, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch of latents z ~ N(0, I) and, for a conditional model, classes drawn uniformly."""
        arch, b = self.cfg.arch, self.cfg.batch
        z = torch.randn(b, arch.z_dim, generator=rng).to(self.device)
        y = torch.randint(arch.num_classes, (b,), generator=rng).to(self.device) if arch.conditional else None
        return z, y

    def d_step(self, rng: torch.Generator) -> float:
        """One discriminator update: the hinge losses of every width accumulate, then one optimiser step. Returns
        the mean loss over the widths."""
        G, D = self.G, self.D
        x, y = self.reals(rng)
        self.opt_D.zero_grad(set_to_none=True)
        total = 0.0
        for width in self.widths:
            z, y_fake = self.latents(rng)
            with torch.no_grad():
                fake = G(z, y_fake, width=width)
            loss = hinge_d_loss(D(x, y, width=width), D(fake, y_fake, width=width))
            loss.backward()
            total += float(loss.detach())
        self.opt_D.step()
        return total / len(self.widths)

    def g_step(self, rng: torch.Generator) -> dict[str, float]:
        """One generator update: the hinge loss of every width on its own latent, then the distillation on a latent
        all widths share, then one optimiser step. Returns the losses (the adversarial one per width)."""
        G, D = self.G, self.D
        self.opt_G.zero_grad(set_to_none=True)
        log = {}
        for width in self.widths:
            z, y = self.latents(rng)
            loss = hinge_g_loss(D(G(z, y, width=width), y, width=width))
            loss.backward()
            log[f"g_{width:g}"] = float(loss.detach())
        if self.cfg.distill != "none":
            z, y = self.latents(rng)
            loss = distillation_loss([G(z, y, width=w) for w in self.widths], self.cfg.distill)
            (self.cfg.lam * loss).backward()
            log["distill"] = float(loss.detach())
        self.opt_G.step()
        return log

    def train_step(self) -> dict[str, float]:
        """`n_dis` D steps, one G step and the EMA update, all drawn from the generator of (seed, step)."""
        rng = step_generator(self.cfg.seed, self.step, 0)
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        for _ in range(self.cfg.n_dis):
            d_loss = self.d_step(rng)
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        log = {"d": d_loss, **self.g_step(rng)}
        self._update_ema()
        self.step += 1
        return log

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.G_ema is None:
            return
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - self.cfg.ema)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):  # BN statistics follow G's
            b_ema.copy_(b)

    # -- the run ---------------------------------------------------------------------------------
    def train(self, until: int | None = None) -> None:
        """Run steps up to `until` (default: the config's `steps`), with checkpoints (latest.pt), sample grids
        (samples/step-*.png) and one log record per step (log.jsonl) in the run folder."""
        cfg = self.cfg
        until = cfg.steps if until is None else min(until, cfg.steps)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.out_dir / "log.jsonl"
        runlog.trim_log(log_path, self.step)
        bar = tqdm(total=until, initial=self.step, disable=not self.progress, unit="step", dynamic_ncols=True)
        start = time.perf_counter()
        first = self.step
        while self.step < until:
            log = self.train_step()
            elapsed = time.perf_counter() - start
            ips = (self.step - first) * cfg.batch / elapsed if elapsed > 0 else math.nan
            bar.set_postfix(d=f"{log['d']:.3g}", img_s=f"{ips:.1f}")
            bar.update(1)
            runlog.append_record(log_path, {"step": self.step, "time": round(time.time(), 2),
                                            "img_per_s": round(ips, 2), **log})
            if self.step % cfg.checkpoint_every == 0 or self.step == until:
                self.save(self.out_dir / "latest.pt")
            if self.step % cfg.sample_every == 0 or self.step == until:
                save_width_grid(self.final_generator, self.out_dir / "samples" / f"step-{self.step:06d}.png")
        bar.close()
