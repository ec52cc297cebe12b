"""Training of the image -> W+ encoder with the consistency-aware objective of the Anycost GAN paper.

Every step encodes a batch that is half generated images (rendered from known codes: z -> w through the
mapping, style-mixed with probability `mix_prob`, stored noise) and half real images of the training
split, and minimises

    full:    d(G(E(x)), x) + mse_weight * MSE(G(E(x)), x)                      (full generator)
    latent:  latent_weight * MSE(E(x), w)                                       (generated images only)
    sub:     sub_weight * [d(G_c(E(x)), down(x)) + mse_weight * MSE(...)]     (consistency-aware term)

with d a perceptual distance, c a sub-generator drawn per step (a resolution drawn uniformly from the
ones the generator outputs, then a uniform or, with probability `flexible_prob`, a flexible channel
config, as in generator training) and down(x) the input box-downsampled to c's resolution
(`downsample_to`). `full_only=True` drops the sub term (the paper's ablation). The generator is frozen.

A fixed, seeded fraction `holdout` of the real images is never trained on (`holdout_split`), so the
ablation (`anycost.projection.ablation`) can evaluate on it. One `torch.Generator` draws everything;
its state is in the checkpoint, so a resumed run is identical to an uninterrupted one.
Run folder: `config.json`, `latest.pt` (atomic, every `checkpoint_every` steps and at the end),
`log.json` (per-step losses) and `encoder.safetensors` when done.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm

from anycost.fileio import atomic_write, load_torch_checkpoint
from anycost.jsonrecord import check_fields
from anycost.metrics.consistency import downsample_to
from anycost.models.stylegan2 import UNIFORM_RATIOS
from anycost.models.stylegan2.bundled import DEFAULT_DATA
from anycost.projection.encoder import Encoder, generator_fingerprint, save_encoder
from anycost.training.sampling import sample_resolution, sample_subnet

TRAIN_FORMAT, TRAIN_VERSION = "anycost-encoder-train", 1


@dataclass(frozen=True)
class EncoderTrainConfig:
    """Settings of one encoder training run (saved as config.json and in every checkpoint)."""

    data: str = DEFAULT_DATA
    #: The bundled encoder's length. At 1,500 steps the consistency-aware encoder reconstructed 3.8% worse
    #: (perceptual) than the full-only one; at 3,000 it is 2.3% better (the model card's ablation).
    steps: int = 3000
    batch: int = 8
    lr: float = 1e-3
    width: int = 32
    max_width: int = 128
    perceptual: str = "auto:1"
    mse_weight: float = 1.0
    latent_weight: float = 1.0
    sub_weight: float = 1.0
    full_only: bool = False
    ratios: tuple[float, ...] = UNIFORM_RATIOS
    flexible_prob: float = 0.5
    mix_prob: float = 0.5
    holdout: float = 0.1
    split_seed: int = 0
    seed: int = 0
    checkpoint_every: int = 250

    def __post_init__(self):
        object.__setattr__(self, "ratios", tuple(self.ratios))
        if self.batch < 2 or self.batch % 2:
            raise ValueError(f"batch must be an even number >= 2 (half generated, half real), got {self.batch}")
        if self.steps < 0 or self.checkpoint_every < 1:
            raise ValueError(f"steps must be >= 0 and checkpoint_every >= 1, got {self.steps}, {self.checkpoint_every}")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> EncoderTrainConfig:
        data = json.loads(text)
        return cls(**check_fields(data, cls, "encoder training config"))


def holdout_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices) of `n` images: a seeded permutation, the first round(fraction * n) held out."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = round(fraction * n)
    return order[k:].sort().values, order[:k].sort().values


class EncoderTrainer:
    """One run: `train()` steps until `cfg.steps`, checkpointing to `out`; `load_state_dict` resumes."""

    def __init__(self, cfg: EncoderTrainConfig, G, images: torch.Tensor, out, perceptual=None,
                 generator_source: str = "", progress: bool = False):
        """`images`: every real image, uint8 [N, 3, R, R]; only the training split is used."""
        r = G.arch.resolution
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (3, r, r):
            raise ValueError(f"images must be uint8 [N, 3, {r}, {r}], got {images.dtype} {tuple(images.shape)}")
        self.cfg, self.G, self.out, self.progress = cfg, G.eval(), Path(out), progress
        self.generator_source, self.fingerprint = generator_source, generator_fingerprint(G)
        train_idx, _ = holdout_split(len(images), cfg.holdout, cfg.split_seed)
        if len(train_idx) == 0:
            raise ValueError("no training images left after the hold-out split")
        self.reals = images[train_idx]
        self.perceptual = perceptual
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            self.encoder = Encoder(G.arch, cfg.width, cfg.max_width).train()
        self.opt = torch.optim.Adam(self.encoder.parameters(), lr=cfg.lr)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.step, self.log = 0, []

    # -- one step -------------------------------------------------------------------------------
    def _distance(self, image, target) -> torch.Tensor:
        loss = self.cfg.mse_weight * (image - target).square().mean()
        return loss + self.perceptual(image, target).mean() if self.perceptual is not None else loss

    @torch.no_grad()
    def _generated(self, n: int):
        G, sd = self.G, self.G.arch.style_dim
        w = G.mapping(torch.randn(2, n, sd, generator=self.rng))
        w_plus = w[0].unsqueeze(1).expand(-1, G.arch.n_styles, -1).clone()
        for i in range(n):
            if float(torch.rand((), generator=self.rng)) < self.cfg.mix_prob:
                cross = int(torch.randint(1, G.arch.n_styles, (), generator=self.rng))
                w_plus[i, cross:] = w[1, i]
        return G(w_plus, noise="const"), w_plus

    def train_step(self) -> dict[str, float]:
        cfg, G = self.cfg, self.G
        n = cfg.batch // 2
        fake, w_true = self._generated(n)
        pick = torch.randint(len(self.reals), (n,), generator=self.rng)
        real = self.reals[pick].float() / 127.5 - 1
        x = torch.cat([fake, real])
        w_hat = self.encoder.encode(G, x)
        losses = {"full": self._distance(G(w_hat, noise="const"), x),
                  "latent": cfg.latent_weight * (w_hat[:n] - w_true).square().mean()}
        if not cfg.full_only:
            config = sample_subnet(G.arch, cfg.ratios, sample_resolution(G.arch, self.rng), cfg.flexible_prob,
                                   self.rng)
            sub = G(w_hat, config=config, noise="const")
            losses["sub"] = cfg.sub_weight * self._distance(sub, downsample_to(x, config.resolution))
        total = sum(losses.values())
        self.opt.zero_grad(set_to_none=True)
        total.backward(inputs=list(self.encoder.parameters()))  # the generator stays frozen
        self.opt.step()
        self.step += 1
        return {"step": self.step, "loss": float(total.detach()), **{k: float(v.detach()) for k, v in losses.items()}}

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"format": TRAIN_FORMAT, "version": TRAIN_VERSION, "config": self.cfg.to_json(),
                "generator_fingerprint": self.fingerprint, "generator_source": self.generator_source,
                "step": self.step, "encoder": self.encoder.state_dict(), "opt": self.opt.state_dict(),
                "rng": self.rng.get_state(), "log": json.dumps(self.log)}

    def load_state_dict(self, state: dict) -> None:
        if state["generator_fingerprint"] != self.fingerprint:
            raise ValueError(f"this run trained an encoder for generator {state['generator_fingerprint']} "
                             f"({state['generator_source'] or 'the bundled model'}); the generator given now "
                             f"is {self.fingerprint}")
        self.encoder.load_state_dict(state["encoder"])
        self.opt.load_state_dict(state["opt"])
        self.rng.set_state(state["rng"])
        self.step, self.log = int(state["step"]), json.loads(state["log"])

    def save(self) -> None:
        atomic_write(self.out / "latest.pt", lambda tmp: torch.save(self.state_dict(), tmp))
        log = json.dumps(self.log)
        atomic_write(self.out / "log.json", lambda tmp: Path(tmp).write_text(log))

    # -- the loop ------------------------------------------------------------------------------
    def train(self) -> Encoder:
        """Train up to `cfg.steps`, then write `encoder.safetensors`; returns the encoder (eval mode)."""
        cfg = self.cfg
        bar = tqdm(total=cfg.steps, initial=self.step, desc="encoder" + (" (full only)" if cfg.full_only else ""),
                   disable=not self.progress)
        start, start_step = time.perf_counter(), self.step
        while self.step < cfg.steps:
            row = self.train_step()
            self.log.append(row)
            rate = (self.step - start_step) * cfg.batch / (time.perf_counter() - start)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "step"} | {"img/s": f"{rate:.1f}"})
            bar.update(1)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save()
        bar.close()
        self.encoder.eval()
        save_encoder(self.encoder, self.out / "encoder.safetensors", self.G,
                     {"trained_by": "anycost train-encoder", "generator": self.generator_source,
                      "config": json.loads(cfg.to_json()), "steps": self.step})
        return self.encoder


def load_train_state(path) -> dict:
    """A training checkpoint written by `EncoderTrainer.save`; CheckpointError when it is not one."""
    return load_torch_checkpoint(path, TRAIN_FORMAT, TRAIN_VERSION, "encoder training checkpoint")


def run(cfg: EncoderTrainConfig, G, images, out, *, resume: bool = False, generator_source: str = "",
        progress: bool = False, steps: int | None = None) -> Encoder:
    """Start (or with `resume`, continue: `cfg` is then read from the checkpoint) a run in `out`; `steps`
    extends or shortens a resumed run. A new run refuses a folder that already holds one (latest.pt or
    encoder.safetensors). The perceptual distance is `cfg.perceptual` ("none", or NAME[:STAGES]).
    """
    from anycost.metrics.perceptual import perceptual_from_spec

    out = Path(out)
    state = None
    if resume:
        state = load_train_state(out / "latest.pt")
        cfg = EncoderTrainConfig.from_json(state["config"])
    elif (out / "latest.pt").exists() or (out / "encoder.safetensors").exists():
        raise FileExistsError(f"{out} already holds an encoder run: pass --resume to continue it, or choose "
                              "another --out")
    if steps is not None:
        cfg = replace(cfg, steps=steps)
    trainer = EncoderTrainer(cfg, G, images, out, perceptual_from_spec(cfg.perceptual), generator_source, progress)
    if state is not None:
        trainer.load_state_dict(state)
    out.mkdir(parents=True, exist_ok=True)
    text = cfg.to_json() + "\n"
    atomic_write(out / "config.json", lambda tmp: Path(tmp).write_text(text))
    return trainer.train()
