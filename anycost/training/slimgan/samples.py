"""Sample grids of a slimmable generator: one row per width, one column per class (or per latent).

Every column has one latent (and one class) that every width renders, so reading down a column shows how the
widths agree; a conditional model's columns are its classes in order. Grey models are shown in grey.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from anycost.images import image_grid, to_rgb
from anycost.metrics.slimgan import eval_mode
from anycost.models.slimgan import SlimGenerator

#: The seed of the grid's latents: the same columns at every step of a run and in every run.
SAMPLE_SEED = 12345
#: Columns of an unconditional model's grid.
UNCONDITIONAL_COLUMNS = 8


@torch.no_grad()
def width_grid(G: SlimGenerator, seed: int = SAMPLE_SEED, cell: int = 64) -> Image.Image:
    """The grid of `G` (in its current mode: call it on a model in eval mode), every cell `cell` px."""
    device = next(G.parameters()).device
    n = G.num_classes or UNCONDITIONAL_COLUMNS
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    y = torch.arange(n, device=device) if G.num_classes else None
    rows = [to_rgb(G(z, y, width=w)) for w in G.widths]
    return image_grid(rows, cell)


def save_width_grid(G: SlimGenerator, path, seed: int = SAMPLE_SEED) -> Path:
    """`width_grid` of `G` in eval mode (its running statistics), saved as a PNG at `path`; G's mode is kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with eval_mode(G):
        width_grid(G, seed).save(path)
    return path
