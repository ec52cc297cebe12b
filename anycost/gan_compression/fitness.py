"""How good a sub-network of the supernet is, without retraining it: the GAN Compression search's fitness.

The paper evaluates every candidate sub-network of the once-for-all supernet as it is (weights inherited, no
fine-tuning) on validation data, by FID (or mIoU). Here `SubnetQuality` runs a sub-network on a fixed set of
validation inputs (`tasks.validation_pairs`; an unpaired task's A images, `tasks.validation_inputs`) and compares
its outputs with a reference, lower is better:

- metric "l1" (the default, a fast proxy): the mean absolute pixel difference;
- metric "perceptual" with a `metrics.perceptual` distance (an LPIPS or HED-VGG module, or a `load_perceptual`
  name): the mean perceptual distance;
- metric "fid": the FID between the outputs' Inception features and the reference images' (the offline Inception
  network of `metrics.inception`; an `extractor` may replace it). FID on a few hundred images is biased upwards
  but ranks sub-networks as the paper does; it costs an Inception pass per candidate.

`reference`: "target" (the real target images; the paired tasks' choice) or "teacher" (the teacher's outputs on
the same inputs, the pseudo pairs of the unpaired tasks). Values are cached per config (``.cache``).
"""

from __future__ import annotations

import torch

from anycost.checks import check_int
from anycost.metrics.fid import FeatureStats, fid
from anycost.models.i2i import I2IConfig, I2IGenerator

METRICS = ("l1", "perceptual", "fid")
REFERENCES = ("target", "teacher")


class SubnetQuality:
    """fitness(config) = the distance of supernet `G`'s sub-network `config` to the reference on the fixed
    `inputs` (see the module docstring); `reference_images` are the targets or the teacher's outputs."""

    def __init__(self, G: I2IGenerator, inputs: torch.Tensor, reference_images: torch.Tensor, *, metric: str = "l1",
                 perceptual=None, extractor=None, batch: int = 64, reference: str = "target", task: str = ""):
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        if inputs.shape[0] != reference_images.shape[0] or inputs.shape[2:] != reference_images.shape[2:]:
            raise ValueError(f"inputs {tuple(inputs.shape)} and references {tuple(reference_images.shape)} differ "
                             "in count or size")
        check_int("batch", batch, 1)
        self.G, self.inputs, self.reference_images = G, inputs, reference_images
        self.metric, self.batch, self.reference, self.task = metric, batch, reference, task
        self.cache: dict[I2IConfig, float] = {}
        self.perceptual = self.extractor = self.reference_features = None
        if metric == "perceptual":
            from anycost.metrics.perceptual import load_perceptual

            chosen = "auto" if perceptual is None else perceptual
            self.perceptual = load_perceptual(chosen) if isinstance(chosen, str) else chosen
        if metric == "fid":
            if extractor is None:
                from anycost.metrics.inception import InceptionFeatures

                extractor = InceptionFeatures(batch_size=batch)
            self.extractor = extractor
            # the reference side's statistics once; each candidate then costs one Inception pass
            self.reference_features = FeatureStats.from_features(self._features(reference_images),
                                                                 keep_features=False)

    @property
    def name(self) -> str:
        """What the values are, for reports and plot labels."""
        what = getattr(self.perceptual, "name", "perceptual") if self.metric == "perceptual" else self.metric
        return f"{what} to the {self.reference}"

    def spec(self) -> dict:
        """What the values depend on (a resumed search checks it is unchanged)."""
        return {"metric": self.name, "n": len(self.inputs), "task": self.task, "arch": self.G.arch.to_dict()}

    def _batches(self, tensor: torch.Tensor):
        return (tensor[i:i + self.batch] for i in range(0, len(tensor), self.batch))

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.as_tensor(self.extractor(b)).float().cpu() for b in self._batches(images)])

    @torch.no_grad()
    def outputs(self, config: I2IConfig) -> torch.Tensor:
        """Sub-network `config` on every input, [n, 3, H, W] in [-1, 1]."""
        return torch.cat([self.G(x, config=config) for x in self._batches(self.inputs)])

    @torch.no_grad()
    def __call__(self, config: I2IConfig) -> float:
        if config in self.cache:
            return self.cache[config]
        out = self.outputs(config)
        ref = self.reference_images
        if self.metric == "l1":
            value = (out - ref).abs().double().mean().item()
        elif self.metric == "perceptual":
            value = torch.cat([self.perceptual(a, b).reshape(-1) for a, b in
                               zip(self._batches(out), self._batches(ref))]).double().mean().item()
        else:
            value = fid(self._features(out), self.reference_features)
        self.cache[config] = value
        return value


@torch.no_grad()
def reference_images(reference: str, targets: torch.Tensor, inputs: torch.Tensor, teacher: I2IGenerator | None,
                     batch: int = 64) -> torch.Tensor:
    """The images a sub-network is compared with: the `targets`, or the `teacher`'s outputs on `inputs`."""
    if reference == "target":
        return targets
    if reference != "teacher" or teacher is None:
        raise ValueError(f"reference must be 'target' or 'teacher' (with a teacher), got {reference!r}")
    return torch.cat([teacher(inputs[i:i + batch]) for i in range(0, len(inputs), batch)])
