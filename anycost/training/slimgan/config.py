"""`SlimTrainConfig`: everything that decides a SlimGAN training run, saved as JSON in every checkpoint.

The generator's shape is a `SlimArch` (backbone, channels, widths, classes, image channels); the rest are the
paper's training choices. `SlimTrainConfig.create` fills in the per-backbone defaults of the paper (Mimicry's
SNGAN settings: Adam betas (0.5, 0.999) and one D step per G step for the DCGAN backbone, (0, 0.9) and five for
the ResNet one) at a quarter of SNGAN's channels, the size the 2-core CPU set-up trains.

A single width is the paper's "individual" baseline: that width trained alone, with a full-width discriminator
(d_mode "shared" or "same") or one cut to the same width (d_mode "slimmable").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from anycost.checks import check_int
from anycost.jsonrecord import check_fields, check_record, loads_object
from anycost.models.slimgan import DEFAULT_WIDTHS, SlimArch
from anycost.models.slimgan.discriminators import MODES, stage_layout

SLIM_TRAIN_CONFIG_VERSION = 1
#: How the narrower widths learn from the wider ones' outputs on a shared latent: from the next wider width
#: (SlimGAN's stepwise inplace distillation), all from the widest (the paper's "naive" ablation), or not at all.
DISTILL = ("stepwise", "widest", "none")
#: Per backbone: Adam betas, D steps per G step, G channels at full width (a quarter of SNGAN's: 128-64-32-16
#: for the DCGAN one) and D channels (a quarter of SNGAN's 512 and 128).
BACKBONE_DEFAULTS = {
    "dcgan": {"betas": (0.5, 0.999), "n_dis": 1, "ngf": 128, "ndf": 128},
    "resnet": {"betas": (0.0, 0.9), "n_dis": 5, "ngf": 64, "ndf": 32},
}


@dataclass(frozen=True)
class SlimTrainConfig:
    """A SlimGAN run: generator `arch`, data source `data`, discriminator (`ndf` channels at full size, pairing
    `d_mode`, `n_share` shared stages in mode "shared", None = half), distillation kind and weight `lam`,
    `steps` G steps of `batch` images, Adam `lr` / `betas`, `n_dis` D steps per G step, EMA decay of G (`ema`,
    0 = no EMA copy), `seed`, and how often to write sample grids and checkpoints."""

    arch: SlimArch
    data: str = "fashion-mnist"
    ndf: int = 128
    d_mode: str = "shared"
    n_share: int | None = None
    distill: str = "stepwise"
    lam: float = 20.0
    steps: int = 5000
    batch: int = 32
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_dis: int = 1
    ema: float = 0.0
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 100

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if not isinstance(self.arch, SlimArch):
            raise TypeError(f"arch must be a SlimArch, got {type(self.arch).__name__}")
        if self.d_mode not in MODES:
            raise ValueError(f"d_mode must be one of {MODES}, got {self.d_mode!r}")
        if self.distill not in DISTILL:
            raise ValueError(f"distill must be one of {DISTILL}, got {self.distill!r}")
        if self.distill != "none" and len(self.arch.widths) < 2:
            raise ValueError(f"distillation {self.distill!r} needs at least two widths: a single width (the "
                             "individual baseline) trains with distill 'none'")
        for name in ("ndf", "steps", "batch", "n_dis", "sample_every", "checkpoint_every"):
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        if self.n_share is not None:
            if self.d_mode != "shared":
                raise ValueError(f"n_share applies to d_mode 'shared' only, not {self.d_mode!r}")
            n_stages = len(stage_layout(self.arch, self.ndf))
            check_int("n_share", self.n_share, 0)
            if self.n_share > n_stages:
                raise ValueError(f"n_share must be at most {n_stages} (the {self.arch.backbone} discriminator's "
                                 f"stages), got {self.n_share}")
        if not self.lam >= 0:
            raise ValueError(f"lambda (the distillation weight) must be >= 0, got {self.lam}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema (the EMA decay of G) must be in [0, 1), got {self.ema}")

    @classmethod
    def create(cls, backbone: str = "dcgan", widths=DEFAULT_WIDTHS, num_classes: int = 0, img_channels: int = 3,
               ngf: int | None = None, cbn: str = "sliceable", z_dim: int = 128, **kw) -> SlimTrainConfig:
        """A config with the paper's defaults for `backbone` (keywords override any field but `arch`)."""
        if backbone not in BACKBONE_DEFAULTS:
            raise ValueError(f"backbone must be one of {tuple(BACKBONE_DEFAULTS)}, got {backbone!r}")
        defaults = BACKBONE_DEFAULTS[backbone]
        preset = SlimArch.dcgan32 if backbone == "dcgan" else SlimArch.resnet32
        arch = preset(defaults["ngf"] if ngf is None else ngf, widths=tuple(widths), num_classes=num_classes,
                      img_channels=img_channels, cbn=cbn, z_dim=z_dim)
        kw = {k: v for k, v in kw.items() if v is not None}
        return cls(arch, **{"betas": defaults["betas"], "n_dis": defaults["n_dis"], "ndf": defaults["ndf"], **kw})

    def replace(self, **changes) -> SlimTrainConfig:
        return replace(self, **changes)

    # -- serialisation ---------------------------------------------------------------------------
    def to_json(self) -> str:
        data = asdict(self)
        data["arch"] = self.arch.to_dict()
        return json.dumps({"version": SLIM_TRAIN_CONFIG_VERSION, **data})

    @classmethod
    def from_json(cls, text: str) -> SlimTrainConfig:
        data = check_record(loads_object(text, "SlimGAN training config"), "SlimGAN training config",
                            SLIM_TRAIN_CONFIG_VERSION, ("arch",))
        data.pop("version")
        check_fields(data, cls, "SlimGAN training config")
        return cls(**{**data, "arch": SlimArch.from_dict(data["arch"])})

