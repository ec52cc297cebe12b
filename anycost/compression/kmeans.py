"""k-means weight sharing: every weight of a layer replaced by the nearest of at most 2**bits shared values.

1-D k-means is cheap once the values are sorted: the clusters are contiguous runs of the sorted values, split at
the midpoints between neighbouring centroids, so one Lloyd iteration is a binary search of the k-1 midpoints
(`searchsorted`) and differences of one prefix sum: O(k log n) after one O(n log n) sort, whatever k is. The
study's 8-bit run took an hour; this takes about a second per million weights (the sort dominates).
"""

from __future__ import annotations

import torch

from anycost.compression.generator import CompressedGenerator, build, compressible_keys, start_from

INITS = ("linear", "quantile")


def check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer in 1..8, got {bits!r}")
    return bits


def _initial(sorted_values: torch.Tensor, k: int, init: str) -> torch.Tensor:
    """k starting centroids: evenly spaced over [min, max] ("linear", which keeps the rare large weights, as Deep
    Compression recommends) or at evenly spaced quantiles ("quantile", denser where the weights are)."""
    if init == "linear":
        return torch.linspace(sorted_values[0].item(), sorted_values[-1].item(), k, dtype=torch.float64)
    positions = torch.linspace(0, sorted_values.numel() - 1, k).round().long()
    return sorted_values[positions].double()


def kmeans_1d(values: torch.Tensor, k: int, iters: int = 50, init: str = "linear"):
    """(codebook [<= k] ascending, indices [n] int64) of 1-D k-means on `values` with Lloyd's iterations.

    Stops early once no centroid moves. When `values` holds at most k distinct numbers, the codebook is those
    numbers (the exact optimum: lossless). Clusters left empty are dropped from the codebook.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    flat = values.detach().reshape(-1)
    s = torch.sort(flat).values
    distinct = torch.unique_consecutive(s)
    if distinct.numel() <= k:
        return distinct, torch.searchsorted(distinct, flat)
    prefix = torch.cat([s.new_zeros(1, dtype=torch.float64), torch.cumsum(s.double(), 0)])
    centroids = _initial(s, k, init)
    for _ in range(iters):
        cuts = torch.searchsorted(s, ((centroids[1:] + centroids[:-1]) / 2).to(s.dtype))
        edges = torch.cat([cuts.new_zeros(1), cuts, cuts.new_full((1,), s.numel())])
        counts = edges[1:] - edges[:-1]  # an empty cluster keeps its centroid
        sums = prefix[edges[1:]] - prefix[edges[:-1]]
        moved = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        if torch.equal(moved, centroids):
            break
        centroids = moved
    centroids = centroids.to(flat.dtype)
    # Nearest centroid (a value exactly on a midpoint goes to the lower one), then the unused ones dropped.
    indices = torch.bucketize(flat, (centroids[1:] + centroids[:-1]) / 2)
    used = torch.bincount(indices, minlength=k) > 0
    return centroids[used], (torch.cumsum(used, 0) - 1)[indices]


@torch.no_grad()
def kmeans_quantize(G, bits: int = 4, iters: int = 50, init: str = "linear") -> CompressedGenerator:
    """Per-layer k-means weight sharing of the 3x3 modulated conv weights with k = 2**bits (1..8 bits).

    Each layer gets its own codebook; the returned generator holds the dequantised weights (it runs as fast as
    the dense model) and stores indices + codebook (`compression.files`).
    """
    bits = check_bits(bits)
    steps, encodings = start_from(G)
    state = {k: v.detach().clone() for k, v in G.state_dict().items()}
    for key in compressible_keys(G):
        codebook, indices = kmeans_1d(state[key], 2**bits, iters, init)
        state[key] = codebook[indices].view_as(state[key])
        encodings[key] = {"kind": "kmeans", "bits": bits}
    step = {"method": "kmeans", "bits": bits, "init": init, "iters": iters}
    return build(G.arch, state, steps + [step], encodings)
