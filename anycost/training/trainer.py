"""The Anycost GAN training loop: plain StyleGAN2, then multi-resolution, then adaptive channels.

One `Trainer` runs a `TrainConfig` schedule from step 0 (or a resumed step) to the end. Each step draws
its randomness from generators seeded by (seed, step) only, so a run resumed from a checkpoint takes
exactly the steps an uninterrupted run takes. Gradients flow through the reference ops (`impl="ref"`):
the native kernels have no double backward, which R1 and path-length regularisation need. Forward-only
passes (the fakes of D's step, sample grids) use the native kernels where they are built.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from anycost.data.pyramid import random_flip
from anycost.fileio import atomic_write
from anycost.images import image_grid
from anycost.metrics.consistency import downsample_to
from anycost.models.stylegan2 import Discriminator, Generator, SubnetConfig, sort_channels
from anycost.models.stylegan2.checkpoints import save_generator
from anycost.training import distributed, losses, sampling
from anycost.training.augment import diff_augment
from anycost.training.checkpoint import load_training_state
from anycost.training.config import TrainConfig

SAMPLE_SEED = 12345
N_SAMPLES = 8


def step_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """A CPU generator seeded by (seed, step, stream) only; stream -1 is shared by all processes."""
    digest = hashlib.sha256(f"{seed}:{step}:{stream}".encode()).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def trim_log(path, step: int) -> None:
    """Drop the records of a JSONL log (one object with a "step" per line) after `step`: those a run wrote after
    the checkpoint it is resumed from, so the resumed run's records follow on without repeats."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
    if len(kept) != len(lines):
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in kept)))


def _lazy_adam(params, cfg: TrainConfig, every: int | None) -> torch.optim.Adam:
    """Adam with StyleGAN2's lazy-regularisation correction of lr and betas (every = regulariser interval)."""
    c = every / (every + 1) if every else 1.0
    return torch.optim.Adam(params, lr=cfg.lr * c, betas=tuple(b**c for b in cfg.betas))


class Trainer:
    """Trains G and D on `images` (uint8 [N, 3, R, R]) following `cfg`; checkpoints and samples go to `out_dir`."""

    def __init__(self, cfg: TrainConfig, images: torch.Tensor, out_dir, perceptual=None, device="cpu",
                 rank: int = 0, world: int = 1, progress: bool = True, snapshot_every: int = 0):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 [N, 3, R, R], got {images.dtype} {tuple(images.shape)}")
        if images.shape[-1] != cfg.arch.resolution or images.shape[-2] != cfg.arch.resolution:
            raise ValueError(f"images are {images.shape[-1]} px, the generator is {cfg.arch.resolution} px")
        if len(images) == 0:
            raise ValueError("no training images")
        self.cfg, self.images, self.out_dir = cfg, images, Path(out_dir)
        self.device = torch.device(device)
        self.rank, self.world, self.progress = rank, world, progress
        if snapshot_every < 0:
            raise ValueError(f"snapshot_every must be >= 0, got {snapshot_every}")
        #: every this many steps the training state is also kept as snapshots/step-NNNNNN.pt (0 = never), so a
        #: run that degrades later can be resumed from before it did (copy a snapshot over latest.pt)
        self.snapshot_every = snapshot_every
        self.perceptual = perceptual
        with torch.random.fork_rng(devices=[]):  # the same initial weights in every process
            torch.manual_seed(cfg.seed)
            self.G = Generator(arch=cfg.arch).to(self.device)
            self.D = Discriminator(cfg.arch).to(self.device)
        distributed.broadcast_parameters(self.G, world)
        distributed.broadcast_parameters(self.D, world)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = _lazy_adam(self.G.parameters(), cfg, cfg.pl_every if cfg.pl_weight else None)
        self.opt_D = _lazy_adam(self.D.parameters(), cfg, cfg.r1_every)
        self.step = 0
        self.pl_mean = torch.zeros((), device=self.device)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "format": "anycost-train", "version": 1, "config": self.cfg.to_json(), "step": self.step,
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(), "pl_mean": self.pl_mean,
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.pl_mean = state["pl_mean"].to(self.device)
        self.step = int(state["step"])

    @classmethod
    def resume(cls, path, images: torch.Tensor, out_dir=None, **kwargs) -> Trainer:
        """A trainer restored from a training checkpoint (its config comes from the file)."""
        state = load_training_state(path)
        trainer = cls(TrainConfig.from_json(state["config"]), images, out_dir or Path(path).parent, **kwargs)
        trainer.load_state_dict(state)
        return trainer

    def save(self, path) -> Path:
        """Write the full training state atomically (only rank 0 writes)."""
        path = Path(path)
        if self.rank == 0:
            state = self.state_dict()
            atomic_write(path, lambda tmp: torch.save(state, tmp))
        return path

    def export(self, path) -> Path:
        """Save the EMA generator, with its mean w recomputed, in the anycost generator format.

        The mean w is recomputed on a copy: only rank 0 exports, and the ranks' states must stay equal.
        """
        G = copy.deepcopy(self.G_ema)
        G.update_w_avg()
        info = {"trained_by": "anycost train", "step": self.step, "train_config": json.loads(self.cfg.to_json())}
        return save_generator(G, path, metadata=info)

    # -- one step --------------------------------------------------------------------------------
    def _reals(self, rng: torch.Generator, resolution: int) -> torch.Tensor:
        idx = torch.randint(len(self.images), (self.cfg.batch,), generator=rng)
        x = self.images[idx].to(self.device, torch.float32) / 127.5 - 1
        x = random_flip(x, rng)
        return downsample_to(x, resolution)

    def _latents(self, G: Generator, rng: torch.Generator) -> torch.Tensor:
        """W+ [B, n_styles, D], with style mixing at a random crossover with probability `mixing`."""
        n, d, layers = self.cfg.batch, self.cfg.arch.style_dim, self.cfg.arch.n_styles
        z = torch.randn(2, n, d, generator=rng).to(self.device)
        mix = float(torch.rand((), generator=rng)) < self.cfg.mixing
        crossover = int(torch.randint(1, layers, (1,), generator=rng)) if mix else layers
        w = G.mapping(z)
        return G.mix_styles(w[0], w[1], crossover, layers)

    def _arch(self, configs: list[SubnetConfig] | None) -> torch.Tensor | None:
        return None if configs is None else self.D.arch_vector(configs)

    def _step_configs(self, stage: str, shared: torch.Generator):
        """(generator configs, discriminator fake config, conditioned?) for this step's stage."""
        cfg, arch = self.cfg, self.cfg.arch
        res = arch.resolution if stage == "plain" else sampling.sample_resolution(arch, shared,
                                                                                 cfg.full_resolution_prob)
        if stage != "adaptive":
            full = SubnetConfig.full(arch, res)
            return [full], full, False
        g_configs = sampling.sandwich(arch, cfg.ratios, res, cfg.flexible_prob, shared)
        return g_configs, sampling.choice(g_configs, shared), True

    def _augment(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return diff_augment(images, self.cfg.augment, rng)

    def _reduce(self, module) -> None:
        distributed.average_gradients(module.parameters(), self.world)

    def train_step(self) -> dict[str, float]:
        """One D step (with lazy R1), one G step (with consistency in the adaptive stage), one EMA update."""
        cfg, G, D, B = self.cfg, self.G, self.D, self.cfg.batch
        stage, stage_start = cfg.stage_at(self.step)
        if stage == "adaptive" and self.step == stage_start:
            self._start_adaptive()
        shared = step_generator(cfg.seed, self.step, -1)
        local = step_generator(cfg.seed, self.step, self.rank)
        g_configs, d_config, conditioned = self._step_configs(stage, shared)
        res = d_config.resolution
        reals = self._reals(local, res)
        # Conditioned D: reals and fakes get the arch vector of the step's random fake config. Drawn apart (an
        # independent random sub-generator), the reals' vectors followed another distribution than the fakes'
        # (a third of the fakes are the full and a third the smallest config), so the vector alone told D
        # "fake"; D won and G drifted into speckles, fading and colour casts within 800 adaptive steps.
        d_arch = self._arch([d_config] * B) if conditioned else None
        log = {}

        # discriminator
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = G(self._latents(G, local), config=d_config, rng=local, impl="auto")
        d_loss = losses.d_logistic_loss(D(self._augment(reals, local), d_arch),
                                        D(self._augment(fake, local), d_arch))
        self.opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        self._reduce(D)
        self.opt_D.step()
        log["d"] = float(d_loss.detach())
        if self.step % cfg.r1_every == 0 and cfg.r1_gamma:
            reals.requires_grad_(True)
            r1 = losses.r1_penalty(D(self._augment(reals, local), d_arch), reals)
            self.opt_D.zero_grad(set_to_none=True)
            (cfg.r1_gamma / 2 * r1 * cfg.r1_every).backward()
            self._reduce(D)
            self.opt_D.step()
            log["r1"] = float(r1.detach())

        # generator
        G.requires_grad_(True)
        D.requires_grad_(False)
        w = self._latents(G, local)
        top = cfg.arch.resolution
        full_res_teacher = conditioned and cfg.resolution_consistency and res < top
        noise = G.make_noise(B, top if full_res_teacher else res, local)
        teacher = None
        if full_res_teacher:  # the full image, same latents and noise; consistency_loss downsamples it
            with torch.no_grad():
                teacher = G(w, config=SubnetConfig.full(cfg.arch, top), noise=noise, impl="auto")
        students = len(g_configs) - (teacher is None)
        g_loss = 0.0
        for i, config in enumerate(g_configs):
            img = G(w, config=config, noise=noise, impl="ref")
            logits = D(self._augment(img, local), self._arch([config] * B) if conditioned else None)
            term = losses.g_nonsaturating_loss(logits)
            if i == 0:
                log["g"] = float(term.detach())
            if teacher is None:
                teacher = img
            else:
                cons, parts = losses.consistency_loss(img, teacher, self.perceptual, cfg.consistency_mse,
                                                      cfg.consistency_perceptual)
                term = term + cons
                for k, v in parts.items():
                    log[f"cons_{k}"] = log.get(f"cons_{k}", 0.0) + float(v) / students
            g_loss = g_loss + term
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self._reduce(G)
        self.opt_G.step()
        if cfg.pl_weight and self.step % cfg.pl_every == 0:
            log["pl"] = self._path_length_step(local, g_configs[0])
        self._update_ema()
        self.step += 1
        log["res"] = res
        return log

    def _path_length_step(self, rng: torch.Generator, config: SubnetConfig) -> float:
        n = max(1, self.cfg.batch // 2)
        z = torch.randn(n, self.cfg.arch.style_dim, generator=rng).to(self.device)
        w = self.G.mapping(z).unsqueeze(1).repeat(1, self.cfg.arch.n_styles, 1)
        img = self.G(w, config=config, rng=rng, impl="ref")
        noise = torch.randn(img.shape, generator=rng).to(self.device)
        penalty, lengths, self.pl_mean = losses.path_length_penalty(img, w, self.pl_mean, self.cfg.pl_decay, noise)
        self.opt_G.zero_grad(set_to_none=True)
        (self.cfg.pl_weight * self.cfg.pl_every * penalty).backward()
        self._reduce(self.G)
        self.opt_G.step()
        return float(lengths.detach().mean())

    @torch.no_grad()
    def _update_ema(self) -> None:
        cfg = self.cfg
        nimg = (self.step + 1) * cfg.batch * self.world
        half_life = cfg.ema_kimg * 1000
        if cfg.ema_rampup:
            half_life = min(half_life, nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch * self.world / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    @torch.no_grad()
    def _start_adaptive(self) -> None:
        """Stage 3 starts from the sorted EMA weights with a fresh generator optimiser.

        The sorted model is kept as stage-adaptive-start.safetensors: the model before stage 3 whose
        sub-generators the consistency loss is measured against.
        """
        sort_channels(self.G_ema)
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.export(self.out_dir / "stage-adaptive-start.safetensors")
        self.G.load_state_dict(self.G_ema.state_dict())
        self.opt_G = _lazy_adam(self.G.parameters(), self.cfg, self.cfg.pl_every if self.cfg.pl_weight else None)

    # -- the run ---------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, path) -> Path:
        """Fixed latents through G_ema: one row per resolution (full widths), one per ratio at full size."""
        G, arch = self.G_ema, self.cfg.arch
        z = torch.randn(N_SAMPLES, arch.style_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED))
        w = G.mapping(z.to(self.device))
        rows = [G(w, config=SubnetConfig.full(arch, r), noise="const") for r in arch.resolutions]
        rows += [G(w, config=SubnetConfig.uniform(arch, q), noise="const") for q in self.cfg.ratios[:-1]]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        image_grid(rows, arch.resolution).save(path)
        return path

    def _log(self, record: dict) -> None:
        if self.rank == 0:
            with open(self.out_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _trim_log(self) -> None:
        if self.rank == 0:
            trim_log(self.out_dir / "log.jsonl", self.step)

    def train(self, until: int | None = None) -> None:
        """Run steps up to `until` (default: the end of the schedule), checkpointing to out_dir/latest.pt."""
        cfg = self.cfg
        until = cfg.total_steps if until is None else min(until, cfg.total_steps)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._trim_log()
        bar = tqdm(total=until, initial=self.step, disable=not self.progress or self.rank != 0, unit="step",
                   dynamic_ncols=True)
        window, window_start = 0, time.perf_counter()
        while self.step < until:
            stage, _ = cfg.stage_at(self.step)
            log = self.train_step()
            window += cfg.batch * self.world
            elapsed = time.perf_counter() - window_start
            ips = window / elapsed if elapsed > 0 else math.nan
            bar.set_postfix(stage=stage, **{k: f"{v:.3g}" for k, v in log.items() if k != "res"}, img_s=f"{ips:.1f}")
            bar.update(1)
            self._log({"step": self.step, "stage": stage, "time": round(time.time(), 2), "img_per_s": round(ips, 2),
                       **log})
            if self.step % 50 == 0:
                window, window_start = 0, time.perf_counter()
            stage_end = cfg.stage_at(self.step - 1)[1] + dict(cfg.schedule)[stage]
            if self.step == stage_end:  # keep each stage's result (to compare stages)
                self.save(self.out_dir / f"stage-{stage}.pt")
                if self.rank == 0:
                    self.export(self.out_dir / f"stage-{stage}.safetensors")
            if self.step % cfg.checkpoint_every == 0 or self.step in (until, stage_end):
                self.save(self.out_dir / "latest.pt")
            if self.snapshot_every and self.step % self.snapshot_every == 0:
                self.save(self.out_dir / "snapshots" / f"step-{self.step:06d}.pt")
            if self.rank == 0 and (self.step % cfg.sample_every == 0 or self.step == until):
                self.sample_grid(self.out_dir / "samples" / f"step-{self.step:06d}.png")
        bar.close()
