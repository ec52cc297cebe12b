"""`RunConfig`: everything a GAN Compression run depends on, saved as the run's config.json and in each checkpoint.

One config type for the five roles: "teacher" (pix2pix training of the full generator on a paired task),
"cyclegan" (CycleGAN training of the teacher on an unpaired task), "distill" (a smaller student distilled from a
teacher run), "supernet" (once-for-all: distillation into every sub-network of the student, one random
sub-network per step) and "finetune" (distillation of one searched sub-network of a supernet run, exported as a
plain generator, starting from the supernet's weights). Defaults follow the paper's
edges -> shoes set-up (Adam 2e-4, betas 0.5 / 0.999, the learning rate constant for the first quarter then
decaying linearly to 0 as its 5 + 15 epochs do; L1 weight 100, distillation weight 1; Li et al., "GAN
Compression", CVPR 2020) at a CPU scale: teacher ngf 16 with 9 dense blocks, student ngf 8 with separable blocks,
PatchGAN ndf 32. `RunConfig.for_task` takes its CycleGAN settings for an unpaired task (`PAPER_SETTINGS`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from anycost.gan_compression.losses import check_gan_loss
from anycost.gan_compression.tasks import get_task
from anycost.jsonrecord import check_fields, check_record, loads_object
from anycost.models.i2i import I2IArch

ROLES = ("teacher", "cyclegan", "distill", "supernet", "finetune")
#: The roles that train a teacher: pix2pix on a paired task, CycleGAN on an unpaired one.
TEACHER_ROLES = {True: "teacher", False: "cyclegan"}
#: What a student's L1 term pulls its output to: the real target (the paired tasks' choice), or the teacher's
#: output on the same input (the paper's pseudo pairs, the only choice on an unpaired task, and its "output
#: distillation" baseline on a paired one).
RECON_TARGETS = ("real", "teacher")
CONFIG_VERSION = 1
#: The paper's settings (its Table 5 and code) that differ between its pix2pix edges -> shoes runs and its CycleGAN
#: runs, by whether the task is paired: pairs per step, the L1 weight (CycleGAN: of the cycle-consistency term;
#: its students: of the L1 to the teacher's output), the distillation weight, and the share of the steps over
#: which the learning rate decays (5 + 15 epochs; 100 + 100). The field defaults are the paired ones.
PAPER_SETTINGS = {
    True: dict(batch=4, lambda_recon=100.0, lambda_distill=1.0, decay_fraction=0.75),
    False: dict(batch=1, lambda_recon=10.0, lambda_distill=0.01, decay_fraction=0.5),
}


def _positive(name: str, value, kind=int):
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class RunConfig:
    """A run: `role`, `task`, `generator` (the teacher's arch, or the student's / supernet's), the schedule and
    loss weights; `teacher` is the teacher run folder of a distill / supernet run, `teacher_arch` its generator's
    arch (checked when the run resumes), `ndf` / `d_layers` the PatchGAN's (a student's D is the teacher's);
    `supernet` is the supernet run folder a finetune run starts from (its generator is the sub-network's arch);
    `recon_target` what a student's L1 term compares with (`RECON_TARGETS`); `reset_discriminator` (a distill or
    supernet run) starts its D from random weights instead of the teacher's (the paper's Table 3 arm that "resets
    D"); `sample_macs` (a supernet run) the
    window of true MACs, (low, high), its per-step sub-networks are drawn from (None: every sub-network). In a
    CycleGAN run `lambda_recon` weighs the cycle-consistency L1 (the input reconstructed by both generators) and
    `lambda_identity` the identity L1 relative to it (CycleGAN's 10 and 0.5)."""

    role: str
    task: str
    generator: I2IArch
    steps: int = 1000
    batch: int = 4
    seed: int = 0
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    decay_fraction: float = 0.75
    gan_loss: str = "lsgan"
    lambda_recon: float = 100.0
    lambda_distill: float = 1.0
    ndf: int = 32
    d_layers: int = 1
    teacher: str | None = None
    teacher_arch: I2IArch | None = None
    sample_every: int = 200
    checkpoint_every: int = 100
    supernet: str | None = None
    recon_target: str = "real"
    lambda_identity: float = 0.5
    sample_macs: tuple[int, int] | None = None
    reset_discriminator: bool = False

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if not isinstance(self.generator, I2IArch):
            raise TypeError(f"generator must be an I2IArch, got {type(self.generator).__name__}")
        for name in ("steps", "batch", "ndf", "d_layers", "sample_every", "checkpoint_every"):
            _positive(name, getattr(self, name))
        _positive("lr", self.lr, float)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not 0 <= self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must be in [0, 1], got {self.decay_fraction}")
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.lambda_identity < 0:
            raise ValueError(f"lambda_identity must be at least 0, got {self.lambda_identity}")
        check_gan_loss(self.gan_loss)
        paired = get_task(self.task).paired  # a one-line error for an unknown task
        students = self.role not in TEACHER_ROLES.values()
        if students != (self.teacher is not None) or students != isinstance(self.teacher_arch, I2IArch):
            raise ValueError("a distill or supernet run needs the teacher run and its generator's arch; "
                             "a teacher run has neither")
        if not students and self.role != TEACHER_ROLES[paired]:
            raise ValueError(f"task {self.task} is {'paired' if paired else 'unpaired'}: its teacher is trained by "
                             f"role {TEACHER_ROLES[paired]!r}, not {self.role!r}")
        if self.recon_target not in RECON_TARGETS:
            raise ValueError(f"recon_target must be one of {RECON_TARGETS}, got {self.recon_target!r}")
        if not students and self.recon_target != "real":
            raise ValueError("a teacher run has no teacher to reconstruct: its recon_target is 'real'")
        if students and not paired and self.recon_target != "teacher":
            raise ValueError(f"task {self.task} is unpaired: it has no real targets, a student's L1 term pulls to "
                             "the teacher's outputs (pseudo pairs: recon target 'teacher')")
        if not isinstance(self.reset_discriminator, bool):
            raise ValueError(f"reset_discriminator must be true or false, got {self.reset_discriminator!r}")
        if self.reset_discriminator and self.role not in ("distill", "supernet"):
            raise ValueError(f"reset_discriminator is for a distill or supernet run (whose D otherwise starts from "
                             f"the teacher's), not a {self.role} run")
        if (self.role == "finetune") != (self.supernet is not None):
            raise ValueError("a finetune run, and only it, needs the supernet run it starts from")
        if self.sample_macs is not None:
            if self.role != "supernet":
                raise ValueError(f"sample_macs is the MAC window of a supernet run's sub-networks; a {self.role} "
                                 "run trains one network")
            window = tuple(self.sample_macs)
            if len(window) != 2 or not 0 < window[0] <= window[1]:
                raise ValueError(f"sample_macs must be (low, high) with 0 < low <= high, got {self.sample_macs!r}")
            object.__setattr__(self, "sample_macs", window)

    @classmethod
    def for_task(cls, task: str, **fields) -> RunConfig:
        """A run on `task` with the paper's settings for its kind (`PAPER_SETTINGS`) where `fields` give none."""
        return cls(task=task, **{**PAPER_SETTINGS[get_task(task).paired], **fields})

    def lr_at(self, step: int) -> float:
        """The learning rate of step `step` (0-based): constant, then linear to 0 over the last `decay_fraction`."""
        decay = round(self.decay_fraction * self.steps)
        return self.lr if decay == 0 else self.lr * min(1.0, (self.steps - step) / decay)

    def replace(self, **changes) -> RunConfig:
        return replace(self, **changes)

    def to_json(self) -> str:
        data = asdict(self)
        data["generator"] = self.generator.to_dict()
        data["teacher_arch"] = self.teacher_arch.to_dict() if self.teacher_arch else None
        return json.dumps({"version": CONFIG_VERSION, **data}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        data = check_record(loads_object(text, "GAN Compression run config"), "GAN Compression run config",
                            CONFIG_VERSION)
        data.pop("version")
        check_fields(data, cls, "run config")
        data["generator"] = I2IArch.from_dict(data.get("generator"))
        if data.get("teacher_arch") is not None:
            data["teacher_arch"] = I2IArch.from_dict(data["teacher_arch"])
        return cls(**data)
