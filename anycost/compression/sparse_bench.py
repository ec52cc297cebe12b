"""Is a sparse kernel worth it? torch's CPU sparse matmuls against dense, on one generator's conv layers.

A pruned modulated conv can keep its weight fixed (and sparse) by modulating the input instead of the weight
(StyleGAN2's unfused form): out = demod * (W @ im2col(x * style)). So the sparse candidate is one fixed sparse
[c_out, c_in*k*k] weight times the im2col matrix [c_in*k*k, H*W]; the dense candidates are the same GEMM
(im2col included) with the dense weight, and the plain `F.conv2d`. Every layer is timed as a 3x3 conv at its
output resolution, batch 1, with all candidates in one run, so only the ratios are meaningful.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from anycost.benchmark.timing import time_call
from anycost.models.stylegan2.arch import layer_resolution

#: The timed candidates: dense conv2d (the baseline), dense GEMM on im2col, and torch's CSR and COO matmuls.
CANDIDATES = ("dense_conv", "dense_mm", "csr_mm", "coo_mm")


@dataclass(frozen=True)
class SparseRow:
    """Median times (ms) of every candidate on one layer shape at one sparsity."""

    layer: int
    c_out: int
    c_in: int
    resolution: int
    sparsity: float
    ms: dict

    def to_dict(self) -> dict:
        return asdict(self)


def _random_pruned(c_out: int, c_in: int, sparsity: float, rng: torch.Generator) -> torch.Tensor:
    """A [c_out, c_in, 3, 3] weight with exactly round(sparsity * n) entries set to zero at random places."""
    weight = torch.randn(c_out, c_in, 3, 3, generator=rng)
    flat = weight.view(-1)
    flat[torch.randperm(flat.numel(), generator=rng)[: round(sparsity * flat.numel())]] = 0
    return weight


def _candidates(x: torch.Tensor, weight: torch.Tensor) -> dict:
    """The calls `CANDIDATES` names, for input `x` and the pruned 3x3 `weight` (im2col counted in the GEMMs)."""
    mat = weight.reshape(weight.shape[0], -1)
    with warnings.catch_warnings():  # torch labels CSR "beta"; measuring it is the point here
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta state")
        csr, coo = mat.to_sparse_csr(), mat.to_sparse()
    return {
        "dense_conv": lambda: F.conv2d(x, weight, padding=1),
        "dense_mm": lambda: mat @ F.unfold(x, 3, padding=1)[0],
        "csr_mm": lambda: csr @ F.unfold(x, 3, padding=1)[0],
        "coo_mm": lambda: torch.sparse.mm(coo, F.unfold(x, 3, padding=1)[0]),
    }


@torch.no_grad()
def measure_sparse_vs_dense(widths, sparsities=(0.5, 0.8, 0.95), repeats: int = 20, seed: int = 0):
    """Time every candidate of `CANDIDATES` on each conv layer of a generator with these full `widths`."""
    rng = torch.Generator().manual_seed(seed)
    rows = []
    for layer in range(1, len(widths)):
        c_in, c_out, res = widths[layer - 1], widths[layer], layer_resolution(layer)
        x = torch.randn(1, c_in, res, res, generator=rng)
        for sparsity in sparsities:
            calls = _candidates(x, _random_pruned(c_out, c_in, sparsity, rng))
            ms = {name: time_call(fn, repeats=repeats, warmup=3).median_ms for name, fn in calls.items()}
            rows.append(SparseRow(layer, c_out, c_in, res, sparsity, ms))
    return rows


def sparse_summary(rows) -> dict:
    """Per sparsity: the summed time of each candidate over all layers, relative to dense conv2d (< 1 is faster)."""
    out = {}
    for sparsity in sorted({r.sparsity for r in rows}):
        total = {c: sum(r.ms[c] for r in rows if r.sparsity == sparsity) for c in CANDIDATES}
        out[sparsity] = {c: total[c] / total["dense_conv"] for c in CANDIDATES}
    return out
