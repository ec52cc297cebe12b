"""Optimisation-based projection: the W+ code whose full-generator image matches a target image.

The code starts at the encoder's guess (`anycost.projection.encoder`) when one is given, else at `G.w_avg`
in every layer, and is optimised with Adam or L-BFGS on

    d(G(w), x) + mse_weight * MSE(G(w), x)
      + consistency_weight * mean over configs c of [d(G_c(w), down(x)) + mse_weight * MSE(G_c(w), down(x))]

where d is a perceptual distance (`anycost.metrics.perceptual`; None drops it), down(x) is the target
box-downsampled to the sub-generator's resolution (`downsample_to`) and the configs are sub-generators.
The last term is the consistency term of the Anycost GAN paper: it keeps the code one that every preview
sub-generator also renders well, so a cheap preview of an edit looks like the full render.

Adam follows the StyleGAN2 projector's learning-rate ramp (linear warm-up over the first 5% of the steps,
cosine ramp-down over the last 25%). L-BFGS is `torch.optim.LBFGS` with a strong-Wolfe line search, one
iteration per step (a step may evaluate the generator several times); when its line search finds no
decrease, its history is dropped and it restarts from steepest descent. A batch of N targets is projected
at once with the per-image losses summed, which keeps Adam's updates independent per image (L-BFGS's
line search couples them). Noise is the generator's stored ("const") noise unless `optimize_noise`:
then per-layer noise maps, drawn with `seed`, are optimised too, penalised by `noise_weight` times the
StyleGAN2 projector's noise regulariser (`noise_regularization`: squared autocorrelation at a one-pixel
shift, at every scale down to 8 px, so the maps cannot smuggle image content in) and renormalised to zero
mean and unit variance after each step, as that projector does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from anycost.data.image_folder import check_resolution, square_resize, to_rgb, uint8_to_tensor
from anycost.metrics.consistency import check_configs, downsample_to
from anycost.models.stylegan2 import SubnetConfig

OPTIMIZERS = ("adam", "lbfgs")
#: Default learning rates: Adam on W+ (per-dimension w spread is about 0.7 for the bundled model), L-BFGS's step.
DEFAULT_LR = {"adam": 0.05, "lbfgs": 1.0}
LR_RAMP_UP, LR_RAMP_DOWN = 0.05, 0.25


@dataclass(frozen=True)
class Projection:
    """Result of `project`: detached tensors on the generator's device.

    `w_plus` [N, n_styles, style_dim]; `image` the full generator's output [N, 3, R, R] (raw, not clamped);
    `losses` the mean per-image loss at the start of every step run; `distances` at the end (means over the
    batch): ``full_perceptual`` and ``full_mse`` to the target, and per sub-generator c
    ``sub:<c.describe()>`` (perceptual) and ``sub_mse:<c.describe()>``, the distance of c's output to the
    full output box-downsampled to c's resolution. Perceptual entries are absent when no perceptual
    distance is used. `noise` holds the optimised noise maps (None: the stored noise). `stopped`: the
    callback ended the run early.
    """

    w_plus: torch.Tensor
    image: torch.Tensor
    losses: list[float]
    distances: dict[str, float]
    noise: tuple[torch.Tensor, ...] | None = None
    stopped: bool = False


def load_target(image, resolution: int) -> torch.Tensor:
    """An image file path or a Pillow image -> [1, 3, R, R] in [-1, 1].

    Any mode is converted to RGB (transparency composited on white), centre-cropped to a square and
    resized (Lanczos). Raises FileNotFoundError / IsADirectoryError for a bad path and ValueError for an
    empty file or one that is not a readable image.
    """
    check_resolution(resolution)
    if isinstance(image, Image.Image):
        rgb = square_resize(to_rgb(image), resolution)
    else:
        if not isinstance(image, (str, Path)):
            raise TypeError(f"image must be a path or a PIL image, got {type(image).__name__}")
        path = Path(image)
        if not path.exists():
            raise FileNotFoundError(f"no image file at {path}")
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory, not an image file")
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty (0 bytes), not an image")
        try:
            with Image.open(path) as opened:
                opened.load()
                rgb = square_resize(to_rgb(opened), resolution)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise ValueError(f"{path} is not an image that can be read ({type(err).__name__}: {err})") from None
    return uint8_to_tensor(np.asarray(rgb)).unsqueeze(0)


def default_configs(arch) -> list[SubnetConfig]:
    """Preview sub-generators: uniform 0.75, 0.5, 0.25 at full resolution, and full width at half resolution."""
    configs = [SubnetConfig.uniform(arch, r, arch.resolution) for r in (0.75, 0.5, 0.25)]
    return configs + [SubnetConfig.full(arch, arch.resolution // 2)]


def adam_lr(step: int, steps: int, lr: float) -> float:
    """The StyleGAN2 projector's schedule: linear warm-up, then cosine ramp-down over the last quarter."""
    t = (step + 0.5) / max(1, steps)  # mid-step time: neither the first nor the last step gets lr 0
    ramp = 0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / LR_RAMP_DOWN) * math.pi)
    return lr * ramp * min(1.0, t / LR_RAMP_UP)


def _resolve_perceptual(perceptual, device):
    if perceptual is None or isinstance(perceptual, torch.nn.Module):
        return perceptual
    if not isinstance(perceptual, str):
        raise TypeError(f"perceptual must be a backend name, a distance module or None, got {type(perceptual)}")
    from anycost.metrics.perceptual import perceptual_from_spec

    module = perceptual_from_spec(perceptual)
    return module.to(device) if module is not None else None


def _distance(perceptual, mse_weight: float, image, target) -> torch.Tensor:
    """Per-image loss [N]: perceptual (when any) + mse_weight * MSE."""
    loss = mse_weight * (image - target).square().flatten(1).mean(1)
    return loss + perceptual(image, target) if perceptual is not None else loss


def noise_regularization(noise: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image [N] sum over noise maps [N, 1, H, W] and their 2x box-downsamplings down to 8 px of the
    squared mean product of each map with itself shifted by one pixel along x and along y (StyleGAN2's
    projector). About 0 for white noise; large for maps with spatial structure."""
    total = 0
    for t in noise:
        while True:
            total = total + (t * t.roll(1, dims=3)).mean((1, 2, 3)).square() \
                + (t * t.roll(1, dims=2)).mean((1, 2, 3)).square()
            if t.shape[-1] <= 8:
                break
            t = torch.nn.functional.avg_pool2d(t, 2)
    return total


def _initial_noise(G, n: int, seed: int) -> list[torch.Tensor]:
    rng = torch.Generator(device=G.w_avg.device).manual_seed(seed)
    return [t.requires_grad_() for t in G.make_noise(n, rng=rng)]


@torch.no_grad()
def measure(G, w_plus, target, perceptual, configs, noise="const") -> dict[str, float]:
    """The `Projection.distances` of code `w_plus` against `target` (see `Projection`)."""
    full = G(w_plus, noise=noise)
    out = {"full_mse": float((full - target).square().mean())}
    if perceptual is not None:
        out["full_perceptual"] = float(perceptual(full, target).mean())
    for config in configs:
        sub = G(w_plus, config=config, noise=noise)
        ref = downsample_to(full, config.resolution)
        if perceptual is not None:
            out[f"sub:{config.describe()}"] = float(perceptual(sub, ref).mean())
        out[f"sub_mse:{config.describe()}"] = float((sub - ref).square().mean())
    return out


def _check_arguments(G, target, optimizer: str, steps, **weights) -> None:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    r = G.arch.resolution
    if not isinstance(target, torch.Tensor) or target.ndim != 4 or tuple(target.shape[1:]) != (3, r, r):
        got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target must be [N, 3, {r}, {r}] in [-1, 1] (see load_target), got {got}")
    for label, value in weights.items():
        if not value >= 0:
            raise ValueError(f"{label} must be >= 0, got {value}")


def project(G, target: torch.Tensor, *, encoder=None, steps: int = 100, optimizer: str = "adam",
            lr: float | None = None, perceptual="auto", mse_weight: float = 1.0, consistency_weight: float = 0.0,
            consistency_configs: Sequence[SubnetConfig] | None = None, optimize_noise: bool = False,
            noise_weight: float = 1e5, seed: int = 0, progress: bool = False,
            callback: Callable[[int, float], bool | None] | None = None) -> Projection:
    """Project `target` [N, 3, R, R] (in [-1, 1], R = G's resolution) into W+; see the module doc for the loss.

    `perceptual`: a backend name of `anycost.metrics.load_perceptual` with an optional ":STAGES" suffix
    ("auto", "hed-vgg:2"), a loaded distance module (reuse one across calls), or None (MSE only).
    `consistency_configs`: the sub-generators of the consistency term and of the reported distances
    (default `default_configs`). `callback(step, loss)` runs after every step; returning True stops.
    """
    _check_arguments(G, target, optimizer, steps, mse_weight=mse_weight, consistency_weight=consistency_weight,
                     noise_weight=noise_weight)
    configs = check_configs(G, consistency_configs) if consistency_configs is not None else default_configs(G.arch)
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    device = G.w_avg.device
    target = target.to(device, G.w_avg.dtype)
    perceptual = _resolve_perceptual(perceptual, device)
    n = target.shape[0]

    with torch.no_grad():
        if encoder is not None:
            w = encoder.encode(G, target)
        else:
            w = G.w_avg.expand(n, G.arch.n_styles, -1)
    w = w.detach().clone().requires_grad_()
    noise = _initial_noise(G, n, seed) if optimize_noise else "const"
    params = [w] + (noise if optimize_noise else [])
    down = {c.resolution: downsample_to(target, c.resolution) for c in configs}

    def loss_fn() -> torch.Tensor:
        loss = _distance(perceptual, mse_weight, G(w, noise=noise), target)
        if consistency_weight > 0:
            for c in configs:
                sub = _distance(perceptual, mse_weight, G(w, config=c, noise=noise), down[c.resolution])
                loss = loss + consistency_weight / len(configs) * sub
        if optimize_noise and noise_weight > 0:
            loss = loss + noise_weight * noise_regularization(noise)
        return loss

    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    else:
        opt = torch.optim.LBFGS(params, lr=lr, max_iter=1, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.sum().backward(inputs=params)  # no gradients for G's weights
        closure.last = loss.detach()  # per-image losses of this evaluation
        return closure.last.sum()

    losses, stopped = [], False
    bar = tqdm(range(steps), desc="projecting", disable=not progress, leave=False)
    for step in bar:
        if optimizer == "adam":
            for group in opt.param_groups:
                group["lr"] = adam_lr(step, steps, lr)
            closure()
            loss = float(closure.last.mean())
            opt.step()
        else:
            loss = float(opt.step(closure)) / n  # LBFGS returns the loss of its first evaluation
            if opt.state[w].get("t") == 0:  # the line search found no decrease: restart from steepest descent
                opt.state.clear()
        if optimize_noise:
            with torch.no_grad():
                for t in noise:
                    t.sub_(t.mean((1, 2, 3), keepdim=True)).div_(t.std((1, 2, 3), keepdim=True) + 1e-8)
        losses.append(loss)
        bar.set_postfix(loss=f"{loss:.4f}")
        if callback is not None and callback(step, loss):
            stopped = True
            break
    bar.close()

    w_final = w.detach()
    noise_final = tuple(t.detach() for t in noise) if optimize_noise else None
    with torch.no_grad():
        image = G(w_final, noise=list(noise_final) if optimize_noise else "const")
    distances = measure(G, w_final, target, perceptual, configs, list(noise_final) if optimize_noise else "const")
    return Projection(w_final, image, losses, distances, noise_final, stopped)
