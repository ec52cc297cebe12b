"""Attribute consistency: do a sub-generator's outputs keep the attributes of the full generator's outputs?

The Anycost GAN paper measures, with an attribute classifier, how often the attributes predicted for a
sub-generator's output agree with those predicted for the full generator's output for the same latent code. Here
the classifier is a small CNN trained on labelled images (by default the emoji labels of
`anycost.data.EmojiDataset`: skin tone, hair, gender, smiling), one softmax head per label.

- `train_attribute_classifier(data, epochs, seed)` -> `AttributeClassifier`, with its held-out accuracy in
  `.metrics` (a seeded random split). Every label value is a class, including "none" / "unknown": for emoji they
  are visual categories (yellow default skin, no hair modifier, a smiley or a hand rather than a gendered person).
  Labels with a single value in the data (``person_or_face`` in the faces/people subset) get no head.
- `AttributeClassifier.predict(images)` -> {label: probabilities [N, values]}; `save` / `load` use one safetensors
  file whose metadata holds the label names and values, the architecture and the training report as JSON.
- `attribute_consistency(G, configs, classifier)` -> one `AttributeRow` per config: per label, the fraction of
  samples whose predicted value (argmax) for the config's output equals the one for the full output, and their
  mean. Same latents and noise for every config (`same_latent_outputs`); the full output is area-downsampled to
  the config's resolution by default, as in `subnet_consistency` (``reference="full"`` keeps it at full size).
  The classifier resizes every input to its own `input_size`, so any resolution can be scored.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from anycost.checks import check_positive
from anycost.fileio import write_tagged_safetensors
from anycost.metrics.consistency import check_configs, downsample_to, same_latent_outputs
from anycost.models.stylegan2 import SubnetConfig

FORMAT = "anycost-attribute-classifier"
FORMAT_VERSION = 1
#: The bundled emoji attribute classifier in `anycost/assets`.
CLASSIFIER_NAME = "emoji_attributes.safetensors"


def default_classifier_path() -> Path | None:
    """Path of the bundled emoji attribute classifier, or None when this build has none."""
    from anycost import assets

    return assets.path(CLASSIFIER_NAME)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class AttributeClassifier(nn.Module):
    """A small CNN with one softmax head per label, for images of `channels` channels (3: RGB, 1: grey) in
    [-1, 1] of any size.

    Inputs are resized (bilinear, antialiased when shrinking) to `input_size`, then go through four 3x3
    conv-BN-ReLU stages of `width`, 2x`width`, 4x`width`, 4x`width` channels (2x2 max pooling between them),
    global average pooling, dropout and one linear head per label. `label_values` maps each label name to its
    value names (the classes, in index order).
    """

    def __init__(self, label_values: Mapping[str, Sequence[str]], input_size: int = 32, width: int = 32,
                 dropout: float = 0.2, channels: int = 3):
        super().__init__()
        if not label_values:
            raise ValueError("give at least one label")
        for name, values in label_values.items():
            if not isinstance(name, str) or len(values) < 2:
                raise ValueError(f"label {name!r} needs at least two values, got {list(values)}")
        check_positive(input_size=input_size, width=width, channels=channels)
        if input_size < 8:
            raise ValueError(f"input_size must be at least 8, got {input_size}")
        self.label_values = {name: tuple(str(v) for v in values) for name, values in label_values.items()}
        self.input_size = input_size
        self.width = width
        self.dropout = float(dropout)
        self.channels = channels
        w = width
        self.features = nn.Sequential(_block(channels, w), nn.MaxPool2d(2), _block(w, 2 * w), nn.MaxPool2d(2),
                                      _block(2 * w, 4 * w), nn.MaxPool2d(2), _block(4 * w, 4 * w),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(self.dropout))
        self.heads = nn.ModuleDict({name: nn.Linear(4 * w, len(values))
                                    for name, values in self.label_values.items()})
        #: held-out evaluation and training settings (filled by `train_attribute_classifier`, saved with the file)
        self.metrics: dict = {}

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.label_values)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images [N, C, H, W] -> float32 [N, C, input_size, input_size] on the model's device."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != self.channels:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a tensor [N, {self.channels}, H, W], got {got}")
        if images.shape[0] == 0 or not images.is_floating_point():
            raise ValueError(f"images must be a non-empty float tensor in [-1, 1], got {images.dtype} "
                             f"{tuple(images.shape)}")
        x = images.to(self.heads[self.label_names[0]].weight.device, torch.float32)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.input_size or x.shape[-2] > self.input_size)
        return x.clamp(-1, 1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits {label: [N, values]}."""
        h = self.features(self.prepare(images))
        return {name: head(h) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 256) -> dict[str, torch.Tensor]:
        """Class probabilities {label: float32 [N, values]} on the CPU (eval mode, no gradients)."""
        check_positive(batch=batch)
        was_training = self.training
        self.eval()
        try:
            parts = [self(images[i: i + batch]) for i in range(0, max(len(images), 1), batch)]
        finally:
            self.train(was_training)
        return {name: torch.cat([p[name] for p in parts]).softmax(1).float().cpu() for name in self.label_names}

    def predict_labels(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Predicted class indices int64 [N, len(label_names)] (argmax of `predict`)."""
        probs = self.predict(images, batch)
        return torch.stack([probs[name].argmax(1) for name in self.label_names], 1)

    # -- files --------------------------------------------------------------------------------------
    def save(self, path, metadata: dict | None = None) -> Path:
        """One safetensors file (written atomically): weights, BN statistics, JSON labels/architecture/metrics."""
        return write_tagged_safetensors(path, self.state_dict(), FORMAT, FORMAT_VERSION, metadata,
                                        label_values=self.label_values, metrics=self.metrics,
                                        arch={"input_size": self.input_size, "width": self.width,
                                              "dropout": self.dropout, "channels": self.channels})

    @classmethod
    def load(cls, path, map_location="cpu") -> AttributeClassifier:
        """A classifier saved by `save`, in eval mode; ValueError for a file of another kind or shape."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file, safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no attribute classifier at {path}")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            state = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not an attribute classifier (format={meta.get('format')!r})")
        if meta.get("format_version") != str(FORMAT_VERSION):
            raise ValueError(f"{path}: unsupported format version {meta.get('format_version')!r}")
        try:
            model = cls(json.loads(meta["label_values"]), **json.loads(meta["arch"]))
            model.metrics = json.loads(meta.get("metrics", "{}"))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: bad metadata ({err})") from None
        expected = model.state_dict()
        bad = sorted(set(expected) ^ set(state)) or [k for k in expected if expected[k].shape != state[k].shape]
        if bad:
            raise ValueError(f"{path}: weights do not match the saved architecture (first bad key {bad[0]!r})")
        model.load_state_dict(state)
        return model.to(map_location).eval()


# -- training -------------------------------------------------------------------------------------------
def _as_arrays(data, label_values):
    """(images float [N, C, H, W], labels int64 [N, L], label_values) from a dataset or an (images, labels) pair."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        images, labels = data
    else:
        if label_values is None:
            label_values = getattr(data, "label_values", None)
            names = getattr(data, "label_names", None)
            if label_values is not None and names is not None:
                label_values = {name: label_values[name] for name in names}
        items = [data[i] for i in range(len(data))]
        if not items:
            raise ValueError("the dataset is empty")
        images = torch.stack([item[0] for item in items])
        labels = torch.stack([torch.as_tensor(item[1]) for item in items])
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
        raise ValueError(f"images must be a non-empty tensor [N, 1 or 3, H, W], got {getattr(images, 'shape', images)}")
    labels = torch.as_tensor(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or len(labels) != len(images) or labels.is_floating_point():
        raise ValueError(f"labels must be integers [N, L] with N = {len(images)}, got {tuple(labels.shape)}")
    labels = labels.long()
    if label_values is None:
        label_values = {f"label{j}": tuple(str(v) for v in range(int(labels[:, j].max()) + 1))
                        for j in range(labels.shape[1])}
    label_values = {name: tuple(values) for name, values in label_values.items()}
    if len(label_values) != labels.shape[1]:
        raise ValueError(f"{len(label_values)} label names for {labels.shape[1]} label columns")
    for j, (name, values) in enumerate(label_values.items()):
        if labels[:, j].min() < 0 or labels[:, j].max() >= len(values):
            raise ValueError(f"label {name!r} has indices outside 0..{len(values) - 1}")
    return images.float(), labels, label_values


def _augment(x: torch.Tensor, gen: torch.Generator, shift: int, flip: bool) -> torch.Tensor:
    """Random horizontal flips (with `flip`) and translations by up to `shift` pixels (edges replicated)."""
    if flip:
        flipped = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(flipped[:, None, None, None], x.flip(3), x)
    if shift:
        size = x.shape[-1]
        padded = F.pad(x, (shift,) * 4, mode="replicate")
        dx, dy = torch.randint(0, 2 * shift + 1, (2,), generator=gen).tolist()
        x = padded[..., dy: dy + size, dx: dx + size]
    return x


@torch.no_grad()
def evaluate_classifier(classifier: AttributeClassifier, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Per label: accuracy, balanced accuracy (mean recall over the values present), the majority-value baseline,
    and n. `labels` are int64 [N, len(label_names)] in the classifier's label order."""
    predicted = classifier.predict_labels(images)
    labels = torch.as_tensor(labels).long().cpu()
    if labels.shape != predicted.shape:
        raise ValueError(f"labels must have shape {tuple(predicted.shape)}, got {tuple(labels.shape)}")
    report = {}
    for j, name in enumerate(classifier.label_names):
        truth, guess = labels[:, j], predicted[:, j]
        present = truth.unique()
        recalls = [(guess[truth == v] == v).float().mean().item() for v in present]
        report[name] = {
            "accuracy": (guess == truth).float().mean().item(),
            "balanced_accuracy": sum(recalls) / len(recalls),
            "majority_baseline": truth.bincount().max().item() / len(truth),
            "n": len(truth),
        }
    return report


def _class_weights(y: torch.Tensor, label_values: Mapping[str, Sequence[str]], balance: bool, device) -> list:
    """Per label, the cross-entropy weight of each value: 1/sqrt(frequency), normalised (or 1) for values present
    in `y`, 0 for absent ones."""
    weights = []
    for j, values in enumerate(label_values.values()):
        counts = y[:, j].bincount(minlength=len(values)).float()
        w = torch.where(counts > 0, counts.clamp(min=1).rsqrt(), torch.zeros(()))
        weights.append((w * (counts > 0).sum() / w.sum() if balance else (counts > 0).float()).to(device))
    return weights


def _fit(model, x_train, y_train, weights, epochs: int, batch_size: int, lr: float, gen, shift: int, flip: bool,
         device, progress: bool) -> None:
    """AdamW with a one-cycle learning rate over `epochs` of shuffled, augmented batches."""
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    from tqdm.auto import tqdm

    model.train()
    with tqdm(total=epochs * steps_per_epoch, desc="attribute classifier", unit="step", disable=not progress) as bar:
        for _ in range(epochs):
            perm = torch.randperm(len(x_train), generator=gen)
            for k in range(steps_per_epoch):
                idx = perm[k * batch_size: (k + 1) * batch_size]
                x = _augment(x_train[idx], gen, shift, flip).to(device)
                y = y_train[idx].to(device)
                logits = model(x)
                loss = sum(F.cross_entropy(logits[name], y[:, j], weight=weights[j])
                           for j, name in enumerate(model.label_names))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")


def train_attribute_classifier(data, epochs: int = 16, seed: int = 0, progress: bool = False, *,
                               label_values: Mapping[str, Sequence[str]] | None = None, val_fraction: float = 0.2,
                               batch_size: int = 64, lr: float = 3e-3, input_size: int = 32, width: int = 32,
                               balance: bool = True, shift: int = 2, flip: bool = True,
                               device=None) -> AttributeClassifier:
    """Train an `AttributeClassifier` on labelled images; its held-out report is in `.metrics`.

    `data` is a dataset of (image [3, H, W] in [-1, 1], labels int64 [L]) items with `label_names` and
    `label_values` attributes (e.g. `EmojiDataset`), or a pair (images [N, 3, H, W], or grey [N, 1, H, W], labels
    [N, L]) with `label_values` given (default: names ``label0``... and values ``0``, ``1``...); the classifier
    takes the images' channels. A random `val_fraction` of the items (permutation seeded by `seed`) is held out
    and never trained on. Labels with a single value in the data get no head. AdamW with a one-cycle learning
    rate, random horizontal flips (with `flip`) and shifts of up to `shift` pixels; with `balance`, the
    cross-entropy weights each class by 1/sqrt(frequency) (normalised), so rare values (red hair, smiling) are not
    ignored. Deterministic for a given seed on one thread.
    """
    images, labels, label_values = _as_arrays(data, label_values)
    check_positive(epochs=epochs, batch_size=batch_size)
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    keep = [j for j in range(labels.shape[1]) if labels[:, j].unique().numel() > 1]
    if not keep:
        raise ValueError("every label has a single value in the data: nothing to learn")
    names = list(label_values)
    skipped = [names[j] for j in range(len(names)) if j not in keep]
    label_values = {names[j]: label_values[names[j]] for j in keep}
    labels = labels[:, keep]

    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=gen)
    n_val = int(round(val_fraction * len(images)))
    if len(images) - n_val < 1:
        raise ValueError("no training items left after the held-out split")
    val_idx, train_idx = order[:n_val], order[n_val:]
    torch.manual_seed(seed)
    model = AttributeClassifier(label_values, input_size=input_size, width=width, channels=images.shape[1])
    device = torch.device(device) if device is not None else torch.device("cpu")
    model.to(device)
    x_train = model.prepare(images[train_idx]).cpu()  # resize once; augment at the classifier's input size
    y_train = labels[train_idx]
    weights = _class_weights(y_train, label_values, balance, device)
    start = time.perf_counter()
    _fit(model, x_train, y_train, weights, epochs, batch_size, lr, gen, shift, flip, device, progress)
    model.eval()
    seconds = time.perf_counter() - start
    model.metrics = {
        "held_out": evaluate_classifier(model, images[val_idx], labels[val_idx]) if n_val else {},
        "train": evaluate_classifier(model, images[train_idx], labels[train_idx]),
        "skipped_labels": skipped,
        "settings": {"epochs": epochs, "seed": seed, "val_fraction": val_fraction, "batch_size": batch_size,
                     "lr": lr, "balance": balance, "shift": shift, "flip": flip, "n_train": len(train_idx),
                     "n_val": n_val, "image_size": images.shape[-1]},
        "train_seconds": round(seconds, 2),
    }
    return model


# -- attribute consistency ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttributeRow:
    """Attribute agreement of one config's outputs with the full outputs over `n` samples."""

    config: SubnetConfig
    resolution: int
    macs: int
    agreement: dict[str, float] = field(default_factory=dict)
    mean: float = math.nan
    n: int = 0

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "resolution": self.resolution, "macs": self.macs,
                "agreement": dict(self.agreement), "mean": self.mean, "n": self.n}


@torch.no_grad()
def attribute_consistency(G, configs: Sequence[SubnetConfig], classifier: AttributeClassifier, n: int = 64,
                          seed: int = 0, batch: int = 16, *, reference: str = "downsampled",
                          truncation: float = 1.0, impl: str = "auto") -> list[AttributeRow]:
    """Per config: for each label, the fraction of the `n` samples whose predicted value (argmax) on the config's
    output equals the one on the full output for the same z and noise; `mean` averages the labels.

    `reference="downsampled"` (default) area-downsamples the full output to the config's resolution before
    classifying it, as `subnet_consistency` does; ``"full"`` classifies it at the model's resolution. The full
    config scores 1.0 on every label either way.
    """
    configs = check_configs(G, configs)
    check_positive(n=n, batch=batch)
    if not isinstance(classifier, AttributeClassifier):
        raise TypeError(f"classifier must be an AttributeClassifier, got {type(classifier).__name__}")
    if reference not in ("downsampled", "full"):
        raise ValueError(f"reference must be 'downsampled' or 'full', got {reference!r}")
    names = classifier.label_names
    agree = torch.zeros(len(configs), len(names), dtype=torch.float64)
    full_labels: dict[int, torch.Tensor] = {}
    for outputs in same_latent_outputs(G, [G.full_config, *configs], n, seed, batch, truncation=truncation,
                                       impl=impl):
        full = next(outputs)
        full_labels.clear()
        for i, (config, sub) in enumerate(zip(configs, outputs)):
            r = config.resolution if reference == "downsampled" else G.arch.resolution
            if r not in full_labels:
                full_labels[r] = classifier.predict_labels(downsample_to(full, r))
            agree[i] += (classifier.predict_labels(sub) == full_labels[r]).double().sum(0)
    rows = []
    for i, config in enumerate(configs):
        per_label = {name: agree[i, j].item() / n for j, name in enumerate(names)}
        rows.append(AttributeRow(config=config, resolution=config.resolution, macs=config.macs,
                                 agreement=per_label, mean=sum(per_label.values()) / len(per_label), n=n))
    return rows
