"""What every GAN Compression training run shares: the run folder, checkpoints, exact resume, the log and samples.

A run folder holds config.json (the `RunConfig`), latest.pt (the whole training state, written atomically every
`checkpoint_every` steps and at the end; plain tensors and containers, so ``torch.load(weights_only=True)``
reads it), log.jsonl (one JSON record per step) and samples/step-NNNNNN.png (fixed validation inputs, one row
each). Every step draws its batch (and a supernet run its sub-network) from `step_generator(seed, step)` only,
and the learning rate is a function of the step, so a run resumed from latest.pt takes exactly the steps an
uninterrupted run takes. Subclasses (`teacher.TeacherRun`, `cyclegan.CycleGANRun`, `distill.DistillRun`) build
the models and define `train_step` and the sample rows.

On a paired task a step's batch is (inputs, their targets) and the discriminator is conditional (it judges the
input and the image together, as pix2pix's); on an unpaired task the batch is (A images, B images), drawn
independently, and the discriminator judges the image alone, as CycleGAN's (`Run.d_input`).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from anycost.fileio import atomic_write, load_torch_checkpoint
from anycost.gan_compression.config import RunConfig
from anycost.gan_compression.discriminator import PatchDiscriminator
from anycost.gan_compression.tasks import get_task, load_split
from anycost.images import image_grid
from anycost.models.i2i import I2IArch
from anycost.training.runlog import trim_log
from anycost.training.trainer import step_generator

FORMAT = "anycost-gan-compression-run"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "version", "config", "step", "modules", "optimizers")
#: Validation pairs shown in the sample grids.
N_SAMPLES = 8
#: Cell size (px) of the sample grids.
SAMPLE_CELL = 64


def check_task_arch(arch: I2IArch, task: str, what: str = "generator") -> None:
    """A one-line error when generator `arch` cannot run on `task`'s images (RGB in and out, its size)."""
    spec = get_task(task)
    if (arch.in_channels, arch.out_channels, arch.image_size) != (3, 3, spec.image_size):
        raise ValueError(f"the {what} maps {arch.in_channels}-channel to {arch.out_channels}-channel images of "
                         f"{arch.image_size} px; task {task} {'pairs' if spec.paired else 'translates'} 3-channel "
                         f"images of {spec.image_size} px")


def load_run_state(path) -> dict:
    """The training state saved at `path` (a run's latest.pt); CheckpointError if it is not one."""
    return load_torch_checkpoint(path, FORMAT, FORMAT_VERSION, "GAN Compression training state", REQUIRED_KEYS)


class Run:
    """One training run of `cfg` writing to `out_dir`. Subclasses name the `ROLES` of the configs they train, set
    `self.modules` (name -> module, with a "D"), `self.optimizers` (name -> Adam) and implement `train_step(rng)`
    and `sample_rows(inputs, targets)`."""

    ROLES: tuple[str, ...] = ()

    def __init__(self, cfg: RunConfig, out_dir, progress: bool = True):
        if cfg.role not in self.ROLES:
            raise ValueError(f"{type(self).__name__} trains role(s) {', '.join(self.ROLES)}, got {cfg.role!r}")
        self.cfg, self.out_dir, self.progress = cfg, Path(out_dir), progress
        check_task_arch(cfg.generator, cfg.task)
        self.paired = get_task(cfg.task).paired
        self.data = load_split(cfg.task, "train")
        self.step = 0
        self.modules: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @contextlib.contextmanager
    def seeded(self):
        """Modules built inside take their initial weights from the config's seed alone; the global random state
        is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            yield

    def make_discriminator(self) -> PatchDiscriminator:
        """The PatchGAN of this run's config: conditional on a paired task (input and output concatenated: 6
        channels), on the output alone on an unpaired one (3 channels)."""
        arch = self.cfg.generator
        channels = arch.in_channels + arch.out_channels if self.paired else arch.out_channels
        return PatchDiscriminator(channels, self.cfg.ndf, self.cfg.d_layers)

    def d_input(self, inputs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """What the discriminator judges of `images` (real or generated) made from, or paired with, `inputs`."""
        return torch.cat([inputs, images], 1) if self.paired else images

    def adam(self, params) -> torch.optim.Adam:
        return torch.optim.Adam(params, lr=self.cfg.lr, betas=self.cfg.betas)

    # -- state -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "config": self.cfg.to_json(), "step": self.step,
                "modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_state_dict(self, state: dict) -> None:
        for key, module in self.modules.items():
            module.load_state_dict(state["modules"][key])
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][key])
        self.step = int(state["step"])

    def save(self, path=None) -> Path:
        path = Path(path or self.out_dir / "latest.pt")
        state = self.state_dict()
        atomic_write(path, lambda tmp: torch.save(state, tmp))
        return path

    def write_config(self) -> Path:
        return atomic_write(self.out_dir / "config.json", lambda tmp: Path(tmp).write_text(self.cfg.to_json() + "\n"))

    # -- steps -------------------------------------------------------------------------------------------------
    def step_rng(self, stream: int = 0) -> torch.Generator:
        """The random generator of this step: stream 0 draws the batch, stream 1 a supernet's sub-network."""
        return step_generator(self.cfg.seed, self.step, stream)

    def reals(self, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's batch, float RGB in [-1, 1]: training pairs (inputs, targets), or (A images, B images)."""
        return self.data.sample(rng, self.cfg.batch)

    def set_lr(self) -> None:
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.cfg.lr_at(self.step)

    def train_step(self, rng: torch.Generator) -> dict[str, float]:
        raise NotImplementedError

    def sample_rows(self, inputs: torch.Tensor, targets: torch.Tensor) -> list[torch.Tensor]:
        """One row per example, [cells, 3, H, W]: its input, the run's outputs, its target (on an unpaired task
        `targets` are B images, not the inputs' translations)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample_grid(self, path) -> Path:
        """The first validation pairs (or A and B images) through the run's generators, one row per example."""
        inputs, targets = load_split(self.cfg.task, "validation").first(N_SAMPLES)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        image_grid(self.sample_rows(inputs, targets), SAMPLE_CELL).save(path)
        return path

    # -- the run -----------------------------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        with open(self.out_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def train(self, until: int | None = None) -> None:
        """Run steps up to `until` (default: the config's `steps`), checkpointing to latest.pt on the way."""
        cfg = self.cfg
        until = cfg.steps if until is None else min(until, cfg.steps)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        trim_log(self.out_dir / "log.jsonl", self.step)  # records of steps after the checkpoint resumed from
        bar = tqdm(total=until, initial=self.step, disable=not self.progress, unit="step", dynamic_ncols=True)
        while self.step < until:
            start = time.perf_counter()
            self.set_lr()
            log = self.train_step(self.step_rng())
            self.step += 1
            seconds = time.perf_counter() - start
            bar.set_postfix({k: f"{v:.3g}" for k, v in log.items() if isinstance(v, float)})
            bar.update(1)
            self._log({"step": self.step, "time": round(time.time(), 2), "step_s": round(seconds, 4),
                       "lr": cfg.lr_at(self.step - 1), **log})
            if self.step % cfg.checkpoint_every == 0 or self.step == until:
                self.save()
            if self.step % cfg.sample_every == 0 or self.step == until:
                self.sample_grid(self.out_dir / "samples" / f"step-{self.step:06d}.png")
        bar.close()
