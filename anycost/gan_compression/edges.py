"""Canny edge maps of grey images, batched (the inputs of the edges -> image tasks).

The classic algorithm, built from the scipy.ndimage filters `skimage.feature.canny` uses (scikit-image is not a
dependency; scipy comes with scikit-learn, which is), over a whole batch at once (axis 0 never mixes images):

1. Gaussian smoothing (standard deviation `sigma`, truncated at 4 sigma, borders replicated);
2. Sobel gradients, divided by 8 so a magnitude of 1 is a ramp of one grey level (full range) per pixel;
3. non-maximum suppression: a pixel stays only where its magnitude is at least that of its two neighbours along
   the gradient direction, quantised to 0, 45, 90 or 135 degrees (skimage interpolates between neighbours
   instead: edges differ by at most a pixel here and there);
4. hysteresis: pixels above `high` are edges, and so is every pixel above `low` 8-connected to an edge.
"""

from __future__ import annotations

import numpy as np
import torch

#: Neighbour offsets (dy, dx) along each quantised gradient direction: 0, 45, 90 and 135 degrees (y down).
_DIRECTIONS = ((0, 1), (1, 1), (1, 0), (1, -1))


def _shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[:, i, j] = x[:, i + dy, j + dx], zero outside the image."""
    h, w = x.shape[1:]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    return padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def _non_maximum_suppression(magnitude: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Where `magnitude` is a local maximum across the edge (along the gradient)."""
    sector = np.rint(np.degrees(np.arctan2(gy, gx)) % 180 / 45).astype(np.int64) % 4
    keep = np.zeros(magnitude.shape, dtype=bool)
    for k, (dy, dx) in enumerate(_DIRECTIONS):
        peak = (magnitude >= _shift(magnitude, dy, dx)) & (magnitude >= _shift(magnitude, -dy, -dx))
        keep |= (sector == k) & peak
    return keep & (magnitude > 0)


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """The 8-connected components of `weak` [N, H, W] that hold a `strong` pixel (one labelling pass over the
    batch, as skimage finds them; components never cross from one image to the next)."""
    from scipy import ndimage

    within_image = np.zeros((3, 3, 3), dtype=bool)
    within_image[1] = True  # neighbours in the same image only (axis 0 is the batch)
    labels, count = ndimage.label(weak, structure=within_image)
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False  # the background
    return keep[labels]


def _sobel(x: np.ndarray, axis: int) -> np.ndarray:
    """The Sobel derivative of images [N, H, W] along `axis` (1: y, 2: x), over 8. Built from 1-d filters
    (ndimage.sobel would also smooth along the batch axis)."""
    from scipy import ndimage

    other = 3 - axis
    derivative = ndimage.correlate1d(x, [-1.0, 0.0, 1.0], axis=axis, mode="nearest")
    return ndimage.correlate1d(derivative, [1.0, 2.0, 1.0], axis=other, mode="nearest") / 8


def canny(images: torch.Tensor, sigma: float = 1.0, low: float = 0.1, high: float = 0.2) -> torch.Tensor:
    """Edges of grey `images` [N, H, W] or [N, 1, H, W] (floats in [0, 1], or uint8) as a bool tensor of the same
    shape; `low` and `high` are gradient magnitudes in grey levels (full range 1) per pixel."""
    from scipy import ndimage

    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[1] != 1):
        raise ValueError(f"canny takes grey images [N, H, W] or [N, 1, H, W], got {tuple(images.shape)}")
    if not 0 <= low <= high:
        raise ValueError(f"thresholds must satisfy 0 <= low <= high, got low={low}, high={high}")
    x = images.detach().cpu().reshape(-1, *images.shape[-2:]).numpy().astype(np.float32)
    if images.dtype == torch.uint8:
        x /= 255
    smooth = ndimage.gaussian_filter(x, sigma, mode="nearest", truncate=4.0, axes=(1, 2))
    gy, gx = _sobel(smooth, 1), _sobel(smooth, 2)
    magnitude = np.hypot(gx, gy)
    thin = _non_maximum_suppression(magnitude, gx, gy)
    edges = _hysteresis(thin & (magnitude >= high), thin & (magnitude >= low))
    return torch.from_numpy(edges).reshape(images.shape)
