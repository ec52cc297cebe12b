"""EditDirections: named unit vectors in W that move a latent along one attribute.

An edit is ``w + sum_k strength_k * vector_k``. A direction may be restricted to a range of style
layers (``layers[k] = (start, stop)``, style indices, stop exclusive): then the edit needs W+ and only
those layers move, so e.g. a colour edit can leave the pose alone. Directions are plain data (saved as
.npz with a format tag and the style_dim they belong to), never module state.

>>> dirs = default_directions()                    # the bundled model's; EditDirections.load("my.npz") for yours
>>> w_edit = dirs.apply(w, {"pca0": 2.0})         # 2 standard deviations along the first principal axis
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from anycost.fileio import save_npz

FORMAT = "anycost-edit-directions"
FORMAT_VERSION = 1


class DirectionsError(ValueError):
    """A directions file or value is malformed, or does not fit the latent it is applied to."""


@dataclass(frozen=True, eq=False)
class EditDirections:
    """`names[k]` labels `vectors[k]` ([K, style_dim], unit norm); `layers[k]` is None (all style layers)
    or a (start, stop) range of style indices; `source` says how they were made (e.g. "interfacegan:emoji
    classifier" or "pca")."""

    names: tuple[str, ...]
    vectors: torch.Tensor
    layers: tuple[tuple[int, int] | None, ...] | None = None
    source: str = ""

    def __post_init__(self):
        names = tuple(self.names)
        object.__setattr__(self, "names", names)
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise DirectionsError(f"direction names must be distinct non-empty strings, got {names}")
        v = self.vectors
        if not isinstance(v, torch.Tensor) or v.ndim != 2 or v.shape[0] != len(names) or not v.is_floating_point():
            raise DirectionsError(f"vectors must be a float tensor [{len(names)}, style_dim], "
                                  f"got {getattr(v, 'shape', type(v).__name__)}")
        if not torch.isfinite(v).all() or (v.norm(dim=1) == 0).any():
            raise DirectionsError("every direction vector must be finite and non-zero")
        object.__setattr__(self, "vectors", (v / v.norm(dim=1, keepdim=True)).float().contiguous())
        layers = (None,) * len(names) if self.layers is None else tuple(
            None if r is None else (int(r[0]), int(r[1])) for r in self.layers)
        if len(layers) != len(names):
            raise DirectionsError(f"layers has {len(layers)} entries for {len(names)} directions")
        for name, r in zip(names, layers):
            if r is not None and not 0 <= r[0] < r[1]:
                raise DirectionsError(f"direction {name!r}: layer range {r} must satisfy 0 <= start < stop")
        object.__setattr__(self, "layers", layers)

    @property
    def style_dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.vectors[self.index(name)]

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no direction {name!r}; known: {', '.join(self.names)}") from None

    def select(self, names: Sequence[str]) -> EditDirections:
        """The sub-set `names`, in that order."""
        idx = [self.index(n) for n in names]
        return EditDirections(tuple(names), self.vectors[idx], tuple(self.layers[i] for i in idx), self.source)

    def apply(self, w: torch.Tensor, strengths: Mapping[str, float], n_styles: int | None = None) -> torch.Tensor:
        """`w` moved by `strengths` (name -> multiple of the unit vector); a new tensor.

        `w` is W [N, style_dim] or W+ [N, S, style_dim]. A W input stays W unless an edit with a layer
        range is applied, which needs W+: pass `n_styles` (the generator's `arch.n_styles`) then.
        Unknown names raise KeyError; zero strengths are skipped.
        """
        if not isinstance(w, torch.Tensor) or w.ndim not in (2, 3) or w.shape[-1] != self.style_dim:
            raise DirectionsError(f"w must be W [N, {self.style_dim}] or W+ [N, S, {self.style_dim}], "
                                  f"got {getattr(w, 'shape', type(w).__name__)}")
        edits = [(self.index(name), float(s)) for name, s in strengths.items()]
        for name, s in strengths.items():
            if not np.isfinite(float(s)):
                raise DirectionsError(f"strength of {name!r} must be finite, got {s}")
        edits = [(k, s) for k, s in edits if s != 0]
        if w.ndim == 2 and any(self.layers[k] is not None for k, _ in edits):
            if n_styles is None:
                raise DirectionsError("a layer-restricted edit needs W+: pass n_styles or a W+ latent")
            w = w.unsqueeze(1).expand(-1, n_styles, -1)
        out = w.clone()
        for k, s in edits:
            step = s * self.vectors[k].to(device=w.device, dtype=w.dtype)
            r = self.layers[k]
            if r is None:
                out += step
            elif r[1] > out.shape[1]:
                raise DirectionsError(f"direction {self.names[k]!r} edits styles {r[0]}..{r[1] - 1}, "
                                      f"but w has {out.shape[1]}")
            else:
                out[:, r[0]:r[1]] += step
        return out

    # -- files ---------------------------------------------------------------------------------
    def save(self, path) -> Path:
        starts = np.array([-1 if r is None else r[0] for r in self.layers], dtype=np.int64)
        stops = np.array([-1 if r is None else r[1] for r in self.layers], dtype=np.int64)
        return save_npz(path, {"format": np.array(FORMAT), "version": np.array(FORMAT_VERSION),
                               "names": np.array(self.names), "vectors": self.vectors.numpy(),
                               "layer_start": starts, "layer_stop": stops, "source": np.array(self.source)})

    @classmethod
    def load(cls, path, style_dim: int | None = None) -> EditDirections:
        """Read a file written by `save`; with `style_dim`, refuse directions of another latent size."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no directions file {path}")
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise DirectionsError(f"{path} is not a readable .npz directions file: {e}") from e
        if str(data.get("format", "")) != FORMAT:
            raise DirectionsError(f"{path} is not an anycost directions file (format {data.get('format')!r})")
        if int(data["version"]) > FORMAT_VERSION:
            raise DirectionsError(f"{path} has format version {int(data['version'])}; this anycost reads "
                                  f"up to {FORMAT_VERSION}")
        layers = tuple(None if a < 0 else (int(a), int(b)) for a, b in zip(data["layer_start"], data["layer_stop"]))
        dirs = cls(tuple(str(n) for n in data["names"]), torch.from_numpy(data["vectors"]), layers,
                   str(data["source"]))
        if style_dim is not None and dirs.style_dim != style_dim:
            raise DirectionsError(f"{path} holds directions for style_dim {dirs.style_dim}, the model has {style_dim}")
        return dirs


#: Edit directions fitted for the bundled model (`anycost directions`; the model card has the command).
DIRECTIONS_NAME = "emoji64_directions.npz"


def default_directions() -> EditDirections | None:
    """The bundled model's `EditDirections`, or None when this build has none."""
    from anycost import assets
    from anycost.models.stylegan2.bundled import DEFAULT_ARCH

    path = assets.path(DIRECTIONS_NAME)
    return EditDirections.load(path, style_dim=DEFAULT_ARCH.style_dim) if path is not None else None
