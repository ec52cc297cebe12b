"""The training configuration: a frozen dataclass, saved as JSON inside every checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from anycost.jsonrecord import check_fields
from anycost.models.stylegan2 import UNIFORM_RATIOS, GeneratorArch
from anycost.models.stylegan2.bundled import DEFAULT_ARCH, DEFAULT_DATA
from anycost.training.augment import check_policy

#: DiffAugment on everything D sees: all three policies, which keep D from memorising a set as small as the 893
#: emoji heads (the model card has the runs that chose them). Colour jitter also hides the output range from D, so
#: the log's share of pixels beyond +-1.2 is worth watching. Configs saved without the field had no augmentation.
AUGMENT_DEFAULT = ("color", "translation", "cutout")

TRAIN_CONFIG_VERSION = 1
#: Training stages, in the order the method runs them.
STAGES = ("plain", "multires", "adaptive")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (the data source, the model shape, the schedule, the losses).

    `schedule` is a sequence of (stage, steps): e.g. (("plain", 6800), ("multires", 800), ("adaptive", 3000))
    trains plain StyleGAN2, then sampling-based multi-resolution, then adaptive channels, in one run (the
    default, the bundled model's schedule; the model card says why the plain stage is the longest).
    `perceptual` names the consistency loss's perceptual distance (`anycost.metrics.perceptual_from_spec`:
    "auto:2" = the first two stages of LPIPS-VGG, or of its offline HED-VGG16 stand-in).
    At the start of the adaptive stage the channels are sorted by importance (`anycost.sort_channels`).
    `augment` lists the differentiable augmentations applied to D's inputs (`anycost.training.augment`).
    `resolution_consistency`: in the adaptive stage, a step at a lower resolution takes its consistency teacher
    from the full generator at full resolution (box-downsampled), so the lower-resolution previews are pulled
    toward the full image too; off, the teacher is the full-width generator at the step's own resolution.
    `full_resolution_prob`: in the multires and adaptive stages, the probability that a step trains at the full
    output resolution (the others draw a lower one uniformly); None draws all resolutions uniformly. Uniform
    draws give the full resolution a quarter of those steps at 64 px, so stages 2-3 add little full-resolution
    training.
    """

    data: str = DEFAULT_DATA
    arch: GeneratorArch = DEFAULT_ARCH
    schedule: tuple[tuple[str, int], ...] = (("plain", 6800), ("multires", 800), ("adaptive", 3000))
    batch: int = 16
    lr: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 1.0
    r1_every: int = 16
    pl_weight: float = 0.0
    pl_every: int = 4
    pl_decay: float = 0.01
    mixing: float = 0.9
    ema_kimg: float = 5.0
    ema_rampup: float = 0.05
    ratios: tuple[float, ...] = UNIFORM_RATIOS
    flexible_prob: float = 0.5
    consistency_mse: float = 1.0
    consistency_perceptual: float = 1.0
    resolution_consistency: bool = True
    full_resolution_prob: float | None = None
    perceptual: str = "auto:2"
    augment: tuple[str, ...] = AUGMENT_DEFAULT
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 250
    version: int = TRAIN_CONFIG_VERSION

    def __post_init__(self):
        if not isinstance(self.arch, GeneratorArch):
            raise TypeError(f"arch must be a GeneratorArch, got {type(self.arch).__name__}")
        schedule = tuple((str(s), int(n)) for s, n in self.schedule)
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "ratios", tuple(sorted(self.ratios)))
        object.__setattr__(self, "augment", check_policy(self.augment))
        if not schedule:
            raise ValueError("schedule must have at least one (stage, steps) entry")
        order = [STAGES.index(s) if s in STAGES else -1 for s, _ in schedule]
        for (stage, steps), idx in zip(schedule, order):
            if idx < 0:
                raise ValueError(f"unknown stage {stage!r}: choose from {STAGES}")
            if steps < 1:
                raise ValueError(f"stage {stage!r} needs a positive number of steps, got {steps}")
        if order != sorted(set(order)):
            raise ValueError(f"stages must appear once each, in the order {STAGES}: got {[s for s, _ in schedule]}")
        for name in ("batch", "r1_every", "pl_every", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "ema_kimg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not all(0 < r <= 1 for r in self.ratios) or self.ratios[-1] != 1.0:
            raise ValueError(f"ratios must lie in (0, 1] and include 1.0, got {self.ratios}")
        for name in ("mixing", "flexible_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        if self.full_resolution_prob is not None and not 0 <= self.full_resolution_prob <= 1:
            raise ValueError(f"full_resolution_prob must be a probability or None, got {self.full_resolution_prob}")

    @property
    def total_steps(self) -> int:
        return sum(n for _, n in self.schedule)

    def stage_at(self, step: int) -> tuple[str, int]:
        """(stage, first step of that stage) for global step `step` (0-based)."""
        start = 0
        for stage, n in self.schedule:
            if step < start + n:
                return stage, start
            start += n
        raise ValueError(f"step {step} is past the schedule's {start} steps")

    def to_json(self) -> str:
        data = asdict(self)
        data["arch"] = self.arch.to_dict()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        data = json.loads(text)
        if data.get("version") != TRAIN_CONFIG_VERSION:
            raise ValueError(f"unsupported training config version {data.get('version')!r}")
        check_fields(data, cls, "training config")
        data["arch"] = GeneratorArch.from_dict(data["arch"])
        data.setdefault("augment", ())  # no field: a config of a run without augmentation
        data.setdefault("resolution_consistency", False)  # likewise: the teacher was at the step's resolution
        return cls(**data)

    def replace(self, **changes) -> TrainConfig:
        return replace(self, **changes)
