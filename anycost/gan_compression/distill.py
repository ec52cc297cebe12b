"""Distillation of a teacher into a smaller student, and once-for-all training of the student as a supernet.

The student's objective is the teacher's pix2pix one (GAN + 100 x L1 to the real target, or to the teacher's
output when `RunConfig.recon_target` is "teacher": the paper's output distillation and its pseudo pairs) plus
`lambda_distill` times the intermediate-feature distillation loss: at `default_taps` of each network (the residual
trunk after 0, 1/3, 2/3 and all of its blocks: the paper's 4 taps, one every 3 of 9 blocks) a learnable 1 x 1 conv
(an `Adapter`) maps the student's trunk to the teacher's width, and the MSE to the teacher's trunk is summed. The
discriminator starts from the teacher's (the paper found a reset D worse than training from scratch), or from random
weights drawn from the run's seed with `RunConfig.reset_discriminator`.

A CycleGAN teacher (an unpaired task) is distilled the same way with pseudo pairs: the inputs are A images, the L1
term pulls to the teacher's output (`RunConfig` refuses the real target there: there is none), and the
discriminator is the teacher's "D", which judges B images alone: real B images against the student's outputs.

In a supernet run ("once-for-all") every step trains one random sub-network (`sample_config`: each layer's width
drawn uniformly from the multiples of the arch's step, from the step's generator; with `RunConfig.sample_macs`
only the sub-networks of that window of MACs, the ones a search under a budget will look at), and the adapters
slice their input channels to that sub-network's trunk width: every sub-network shares the leading channels of one
set of weights. A supernet may start from a trained student (`load_leading`), as the paper's pipeline does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from anycost.gan_compression import losses
from anycost.gan_compression.config import TEACHER_ROLES, RunConfig
from anycost.gan_compression.run import Run, check_task_arch, load_run_state
from anycost.gan_compression.teacher import TEACHER_FILE, adversarial_step, generator_gan_terms
from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator, load_generator, save_generator
from anycost.models.i2i.layers import SlicedConv2d
from anycost.training.sampling import choice

STUDENT_FILES = {"distill": "student.safetensors", "supernet": "supernet.safetensors",
                 "finetune": "finetuned.safetensors"}
N_TAPS = 4


def default_taps(n_blocks: int) -> tuple[int, ...]:
    """Block counts 0, n/3, 2n/3, n (rounded): where the features are compared, at the same depths in both."""
    return tuple(round(i * n_blocks / (N_TAPS - 1)) for i in range(N_TAPS))


class Adapter(SlicedConv2d):
    """A 1 x 1 conv from the student's trunk to the teacher's; it takes the leading input channels it is given
    (a sub-network's trunk) and always outputs the teacher's full width."""

    def __init__(self, student_width: int, teacher_width: int):
        super().__init__(student_width, teacher_width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x, self.weight.shape[0])


def make_adapters(student: I2IArch, teacher: I2IArch) -> nn.ModuleList:
    return nn.ModuleList(Adapter(student.widths[2], teacher.widths[2]) for _ in range(N_TAPS))


#: Draws `sample_config` makes for one sub-network in a MAC window before it gives up on the window.
MAX_WINDOW_DRAWS = 10_000


def sample_config(arch: I2IArch, rng: torch.Generator, macs: tuple[int, int] | None = None) -> I2IConfig:
    """A random sub-network: every layer's width drawn uniformly from its choices (multiples of the step). With a
    window `macs` = (low, high) of true MACs: drawn again until one lies in it, which makes the draw uniform over
    the sub-networks of the window; a ValueError when `MAX_WINDOW_DRAWS` draws found none."""
    choices = arch.width_choices()
    for _ in range(MAX_WINDOW_DRAWS if macs else 1):
        config = I2IConfig(arch, tuple(choice(widths, rng) for widths in choices))
        if macs is None or macs[0] <= config.macs <= macs[1]:
            return config
    raise ValueError(f"none of {MAX_WINDOW_DRAWS:,} random sub-networks of {arch.describe()} has "
                     f"{macs[0] / 1e6:.4g}-{macs[1] / 1e6:.4g} M MACs: widen the window")


def check_window(arch: I2IArch, macs: tuple[int, int]) -> None:
    """A ValueError unless sub-networks of `arch` can have `macs` = (low, high) true MACs: the window must meet
    the range from the smallest sub-network to the whole supernet, and random draws must find one in it."""
    smallest, full = I2IConfig.smallest(arch).macs, I2IConfig.full(arch).macs
    if macs[1] < smallest or macs[0] > full:
        raise ValueError(f"the MAC window {macs[0] / 1e6:.4g}-{macs[1] / 1e6:.4g} M holds no sub-network of "
                         f"{arch.describe()}: they have {smallest / 1e6:.4g}-{full / 1e6:.4g} M MACs")
    sample_config(arch, torch.Generator().manual_seed(0), macs)


@torch.no_grad()
def load_leading(G: I2IGenerator, small: I2IGenerator) -> None:
    """Copy `small`'s weights into the leading channels of supernet `G` (where sub-network
    ``I2IConfig(G.arch, small.arch.widths)`` runs); a ValueError if `small` is no sub-network of `G`."""
    a, b = G.arch, small.arch
    if (a.n_blocks, a.separable, a.in_channels, a.out_channels) != (b.n_blocks, b.separable, b.in_channels,
                                                                   b.out_channels):
        raise ValueError(f"cannot start the supernet ({a.describe()}) from {b.describe()}: blocks, their kind "
                         "and the image channels must match")
    I2IConfig(a, b.widths)  # raises when a layer is wider than the supernet's
    full = G.state_dict()
    for key, value in small.state_dict().items():
        full[key][tuple(slice(0, n) for n in value.shape)].copy_(value)


def load_teacher(folder) -> tuple[I2IGenerator, dict, RunConfig]:
    """A finished teacher run's generator, its discriminator's state and its config (a CycleGAN run: its A -> B
    generator and the discriminator of B images)."""
    folder = Path(folder)
    path = folder / TEACHER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {TEACHER_FILE} in {folder}: give a teacher run folder whose run finished "
                                "(anycost gan-compression train-teacher)")
    state = load_run_state(folder / "latest.pt")
    cfg = RunConfig.from_json(state["config"])
    if cfg.role not in TEACHER_ROLES.values():
        raise ValueError(f"{folder} is a {cfg.role} run, not a teacher run")
    return load_generator(path).requires_grad_(False), state["modules"]["D"], cfg


class DistillRun(Run):
    """Distillation of `cfg.teacher` into `cfg.generator` (role "distill"), or once-for-all training of it as a
    supernet (role "supernet"); `init_student` (a generator) starts the student from its weights."""

    ROLES = ("distill", "supernet")

    def __init__(self, cfg: RunConfig, out_dir, progress: bool = True, init_student: I2IGenerator | None = None):
        super().__init__(cfg, out_dir, progress)
        self.teacher, d_state, teacher_cfg = load_teacher(cfg.teacher)
        check_task_arch(self.teacher.arch, cfg.task, "teacher")
        if self.teacher.arch != cfg.teacher_arch or teacher_cfg.task != cfg.task:
            raise ValueError(f"the teacher in {cfg.teacher} ({self.teacher.arch.describe()}, task {teacher_cfg.task})"
                             f" is not the one this run distils ({cfg.teacher_arch.describe()}, task {cfg.task})")
        with self.seeded():
            self.G = I2IGenerator(cfg.generator)
            self.adapters = make_adapters(cfg.generator, cfg.teacher_arch)
            self.D = self.make_discriminator()
        if not cfg.reset_discriminator:
            self.D.load_state_dict(d_state)
        if init_student is not None:
            load_leading(self.G, init_student)
        if cfg.sample_macs is not None:
            check_window(cfg.generator, cfg.sample_macs)
        self.taps = default_taps(cfg.generator.n_blocks), default_taps(cfg.teacher_arch.n_blocks)
        self.modules = {"G": self.G, "A": self.adapters, "D": self.D}
        self.optimizers = {"G": self.adam([*self.G.parameters(), *self.adapters.parameters()]),
                           "D": self.adam(self.D.parameters())}

    def step_config(self) -> I2IConfig | None:
        """The sub-network this step trains: a random one (a supernet run, in its MAC window if it has one; its own
        stream of the step's random numbers, so the batches do not depend on it), else None (the whole student)."""
        if self.cfg.role != "supernet":
            return None
        return sample_config(self.G.arch, self.step_rng(1), self.cfg.sample_macs)

    def train_step(self, rng: torch.Generator) -> dict[str, float]:
        inputs, targets = self.reals(rng)
        config = self.step_config()
        with torch.no_grad():
            teacher_out, teacher_features = self.teacher(inputs, return_features=self.taps[1])
        out, features = self.G(inputs, config=config, return_features=self.taps[0])
        log = adversarial_step(self, out, inputs, targets)
        loss, terms = generator_gan_terms(self, out, inputs, teacher_out if self.cfg.recon_target == "teacher"
                                          else targets)
        distill = losses.distillation_loss(features, teacher_features, self.adapters)
        self.optimizers["G"].zero_grad(set_to_none=True)
        (loss + self.cfg.lambda_distill * distill).backward()
        self.optimizers["G"].step()
        log = {**log, **terms, "distill": float(distill.detach())}
        if config is not None:
            log["widths"] = list(config.widths)
        return log

    def sample_rows(self, inputs, targets):
        """input | teacher | student (a supernet: its full, then its smallest sub-network) | target (an unpaired
        task: a B image, no translation of the input)."""
        cells = [inputs, self.teacher(inputs), self.G(inputs)]
        if self.cfg.role == "supernet":
            cells.append(self.G(inputs, config=I2IConfig.smallest(self.G.arch)))
        return [torch.stack(row) for row in zip(*cells, targets)]

    def export(self) -> Path:
        info = {"trained_by": f"anycost gan-compression distill ({self.cfg.role})", "task": self.cfg.task,
                "step": self.step, "teacher": self.cfg.teacher, "run_config": self.cfg.to_json()}
        return save_generator(self.G, self.out_dir / STUDENT_FILES[self.cfg.role], metadata=info)
