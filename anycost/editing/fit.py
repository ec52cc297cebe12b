"""Fitting edit directions in W: InterFaceGAN boundaries from attribute labels, PCA axes, conditional directions.

- `sample_latents(G, n, seed, classifier)`: n latents w = G.mapping(z) and, with an `AttributeClassifier`, its
  class probabilities for the images G renders from them (full config, the stored noise).
- `fit_boundaries(w, probs, label_values)`: one linear boundary per attribute value (InterFaceGAN): the most
  confident `fraction` of positives and of negatives are split into train / held-out parts, a linear SVM is fitted
  on the train part, and its unit normal (pointing to the positive side) is the direction. A two-valued label
  gives one direction named after the label, towards its second value (``smiling``: no -> yes); a label with more
  values gives one one-vs-rest direction per value, named ``label:value`` (``gender:woman``, ``skin_tone:dark``).
  The held-out accuracy says how linearly the attribute sits in W, i.e. how far an edit can be trusted.
- `pca_directions(w, k)`: the top-k principal axes of the sampled w (GANSpace), ``pca0`` .. ``pca{k-1}``, with the
  standard deviation of w along each, so strengths can be read in std units.
- `orthogonalize(directions, name, against)`: conditional editing; `name` made orthogonal to other directions, so
  that moving along it leaves the latent's position along those unchanged.
- `fit_directions(G, classifier, n, pca, seed)`: both kinds at once, as `anycost directions` does; with a classifier
  it then checks every direction on held-out latents (`anycost.editing.validate`: another seed, +2 std) and keeps
  only the boundaries that do what their names say. A boundary that fails is retried made orthogonal to the
  boundaries of the attributes that moved too much (`conditional_retry`) and kept in that form if it then passes;
  the others are dropped, each with its reason in the fit report. PCA axes make no claim: they are kept (and
  their attribute moves reported).

The bundled ``anycost/assets/emoji64_directions.npz`` (and its ``.json`` report) comes from the bundled model and
classifier with, from the repository root (regenerate it whenever the bundled model changes)::

    anycost directions --out anycost/assets/emoji64_directions.npz --n 2000 --pca 8 --seed 0 --threads 1
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from anycost.editing.directions import DirectionsError, EditDirections
from anycost.editing.validate import (
    DEFAULT_MAX_RATIO,
    DEFAULT_MIN_MOVE,
    DEFAULT_SIGMAS,
    DirectionCheck,
    check_directions,
    group_names,
    random_baseline,
    target_of,
)
from anycost.fileio import atomic_write


@dataclass(frozen=True)
class DirectionStats:
    """How one direction was fitted: `std` is the standard deviation of the sampled w along it (one std is a
    typical edit strength); boundaries carry their held-out `accuracy` and split sizes, PCA axes the fraction of
    the variance of w they `explain`. A "conditional" direction is a boundary made orthogonal to the directions
    `orthogonal_to`; its `accuracy` and split sizes are those of the boundary it came from."""

    name: str
    kind: str  # "boundary", "conditional" or "pca"
    std: float
    accuracy: float | None = None
    n_train: int = 0
    n_val: int = 0
    explained: float | None = None
    orthogonal_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class FittedDirections:
    """Directions with their fit statistics (`stats[k]` belongs to `directions.names[k]`), the attribute values
    that got no boundary (`skipped`: name -> reason), the held-out `checks` (`anycost.editing.validate`; every
    check made, conditional retries included) and the boundaries fitted but not kept (`dropped`: name -> why)."""

    directions: EditDirections
    stats: tuple[DirectionStats, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    checks: tuple[DirectionCheck, ...] = ()
    dropped: dict[str, str] = field(default_factory=dict)

    def check_of(self, name: str) -> DirectionCheck | None:
        """The check that decided direction `name` (its last one), None when it was not checked."""
        return next((c for c in reversed(self.checks) if c.name == name), None)

    def table(self) -> str:
        """A markdown table: one row per direction (with its held-out check when there is one), then one per
        dropped direction and one per skipped attribute value."""
        lines = ["| direction | kind | held-out accuracy | train / held-out | std of w along it | variance explained "
                 "| target move | largest other move |",
                 "|---|---|---:|---:|---:|---:|---:|---|"]
        for s in self.stats:
            acc = f"{s.accuracy:.3f}" if s.accuracy is not None else ""
            split = f"{s.n_train} / {s.n_val}" if s.kind != "pca" else ""
            explained = f"{s.explained:.1%}" if s.explained is not None else ""
            kind = f"{s.kind} (orthogonal to {group_names(s.orthogonal_to)})" if s.orthogonal_to else s.kind
            check = self.check_of(s.name)
            move = f"{check.target_move:+.3f}" if check is not None and check.target_move is not None else ""
            other = "{} {:.3f}".format(*check.largest_other) if check is not None and check.moves else ""
            lines.append(f"| {s.name} | {kind} | {acc} | {split} | {s.std:.3f} | {explained} | {move} | {other} |")
        lines += [f"| {name} | dropped: {reason} | | | | | | |" for name, reason in self.dropped.items()]
        lines += [f"| {name} | skipped: {reason} | | | | | | |" for name, reason in self.skipped.items()]
        return "\n".join(lines)

    def save(self, path) -> Path:
        """The directions as .npz at `path` (see `EditDirections.save`), and this report as JSON beside it
        (same name, suffix .json): settings, per kept direction its stats and deciding check, the dropped
        boundaries with the reason, the skipped attribute values, and every check made."""
        path = self.directions.save(path)
        directions = []
        for s in self.stats:
            check = self.check_of(s.name)
            directions.append({**asdict(s), "orthogonal_to": list(s.orthogonal_to),
                               "check": None if check is None else check.to_dict()})
        report = {"source": self.directions.source, "settings": self.settings, "directions": directions,
                  "dropped": self.dropped, "skipped": self.skipped, "checks": [c.to_dict() for c in self.checks]}
        text = json.dumps(report, indent=1) + "\n"
        atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
        return path


# -- sampling -----------------------------------------------------------------------------------------
@torch.no_grad()
def sample_latents(G, n: int, seed: int = 0, classifier=None, batch: int = 64, impl: str = "auto",
                   progress: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(w float32 [n, style_dim] on the CPU, probs): `n` latents G.mapping(z), z drawn from one generator seeded by
    `seed` in batches of `batch`; with an `AttributeClassifier`, `probs` holds its class probabilities
    {label: [n, values]} for the full-config images rendered with ``noise="const"``, else it is empty."""
    if n < 1 or batch < 1:
        raise ValueError(f"n and batch must be positive, got n={n}, batch={batch}")
    from tqdm.auto import tqdm

    device = G.w_avg.device
    rng = torch.Generator().manual_seed(seed)
    ws, parts = [], []
    for start in tqdm(range(0, n, batch), desc="sampling latents", unit="batch", disable=not progress):
        z = torch.randn(min(batch, n - start), G.arch.style_dim, generator=rng)
        w = G.mapping(z.to(device, G.w_avg.dtype))
        ws.append(w.float().cpu())
        if classifier is not None:
            parts.append(classifier.predict(G(w, noise="const", impl=impl)))
    probs = {name: torch.cat([p[name] for p in parts]) for name in parts[0]} if parts else {}
    return torch.cat(ws), probs


# -- boundaries ---------------------------------------------------------------------------------------
def boundary_targets(label_values: Mapping[str, Sequence[str]]) -> list[tuple[str, str, int]]:
    """(direction name, label, positive value index) of every boundary, named as the module docstring says."""
    targets = []
    for label, values in label_values.items():
        if len(values) == 2:
            targets.append((label, label, 1))
        else:
            targets += [(f"{label}:{value}", label, i) for i, value in enumerate(values)]
    return targets


def fit_boundary(w: torch.Tensor, score: torch.Tensor, fraction: float = 0.25, val_fraction: float = 0.3,
                 seed: int = 0, min_per_side: int = 10, C: float = 1.0) -> tuple[torch.Tensor, float, int, int]:
    """(unit normal [style_dim], held-out accuracy, n_train, n_val) of a linear SVM separating high from low `score`.

    `score` [n] is a log-odds: a sample is positive when it is > 0. The k = min(fraction * n, #positive,
    #negative) highest and k lowest scores are kept (InterFaceGAN's most confident top and bottom); `val_fraction`
    of each side (seeded permutation) is held out, the SVM is fitted on the rest. Raises ValueError when
    k < `min_per_side` (too few samples on one side for a trustworthy boundary).
    """
    if w.ndim != 2 or score.shape != (len(w),):
        raise ValueError(f"w must be [n, style_dim] and score [n], got {tuple(w.shape)} and {tuple(score.shape)}")
    if not 0 < fraction <= 0.5 or not 0 < val_fraction < 1:
        raise ValueError(f"fraction must be in (0, 0.5] and val_fraction in (0, 1), got {fraction}, {val_fraction}")
    from sklearn.svm import LinearSVC

    n_pos = int((score > 0).sum())
    k = min(int(fraction * len(w)), n_pos, len(w) - n_pos)
    if k < min_per_side:
        raise ValueError(f"{n_pos} of {len(w)} samples positive; a boundary needs {min_per_side} on each side")
    order = score.argsort(descending=True)
    sides = (order[:k], order[-k:])  # positives, negatives
    rng = torch.Generator().manual_seed(seed)
    n_val = max(1, int(round(val_fraction * k)))
    if k - n_val < 1:
        raise ValueError(f"{k} samples per side leave none to train on")
    split = [side[torch.randperm(k, generator=rng)] for side in sides]
    train = torch.cat([s[n_val:] for s in split])
    val = torch.cat([s[:n_val] for s in split])
    y = np.r_[np.ones(k - n_val), np.zeros(k - n_val)]
    y_val = np.r_[np.ones(n_val), np.zeros(n_val)]
    x = w.double()
    x = ((x - x.mean(0)) / x.std()).numpy()  # one scalar scale: the geometry of W (and the normal) is kept
    svm = LinearSVC(C=C, max_iter=20000, random_state=seed).fit(x[train.numpy()], y)
    accuracy = float((svm.predict(x[val.numpy()]) == y_val).mean())
    normal = torch.from_numpy(svm.coef_[0]).float()
    if not normal.norm() > 0:
        raise ValueError("the boundary has a zero normal (the two sides are not separable at all)")
    return normal / normal.norm(), accuracy, 2 * (k - n_val), 2 * n_val


def _std_along(w: torch.Tensor, v: torch.Tensor) -> float:
    return float((w.double() @ v.double()).std())


def fit_boundaries(w: torch.Tensor, probs: Mapping[str, torch.Tensor], label_values: Mapping[str, Sequence[str]],
                   fraction: float = 0.25, val_fraction: float = 0.3, seed: int = 0, min_per_side: int = 10,
                   source: str = "interfacegan") -> FittedDirections:
    """One `fit_boundary` per target of `boundary_targets(label_values)`, scored by the log-odds of the value's
    probability in `probs` ({label: [n, values]}, e.g. from `sample_latents`). Values with too few confident
    samples on a side are `skipped` (with the reason), not fitted."""
    names, vectors, stats, skipped = [], [], [], {}
    for name, label, value in boundary_targets(label_values):
        if label not in probs:
            raise ValueError(f"no probabilities for label {label!r} (have {', '.join(probs)})")
        p = probs[label][:, value].double().clamp(1e-12, 1 - 1e-12)
        try:
            v, accuracy, n_train, n_val = fit_boundary(w, (p / (1 - p)).log(), fraction, val_fraction, seed,
                                                       min_per_side)
        except ValueError as err:
            skipped[name] = str(err)
            continue
        names.append(name)
        vectors.append(v)
        stats.append(DirectionStats(name, "boundary", _std_along(w, v), accuracy, n_train, n_val))
    if not names:
        raise ValueError(f"no attribute value has enough confident samples for a boundary: {skipped}")
    return FittedDirections(EditDirections(tuple(names), torch.stack(vectors), source=source), tuple(stats), skipped)


# -- PCA ----------------------------------------------------------------------------------------------
def pca_directions(w: torch.Tensor, k: int, source: str = "pca") -> FittedDirections:
    """The top-`k` principal axes of the rows of `w` [n, style_dim] as unit directions ``pca0`` .. (largest
    variance first), each signed so that its largest-magnitude entry is positive (deterministic)."""
    if w.ndim != 2 or not 1 <= k <= min(len(w) - 1, w.shape[1]):
        raise ValueError(f"k must be in 1..{min(len(w) - 1, w.shape[-1])} for w of shape {tuple(w.shape)}, got {k}")
    x = w.double() - w.double().mean(0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    axes = vh[:k]
    sign = axes.gather(1, axes.abs().argmax(1, keepdim=True)).sign()
    axes = (axes * sign).float()
    std = s[:k] / math.sqrt(len(w) - 1)
    explained = s[:k] ** 2 / (s**2).sum()
    names = tuple(f"pca{i}" for i in range(k))
    stats = tuple(DirectionStats(n, "pca", float(std[i]), explained=float(explained[i])) for i, n in enumerate(names))
    return FittedDirections(EditDirections(names, axes, source=source), stats)


# -- conditional directions ---------------------------------------------------------------------------
def orthogonalize(directions: EditDirections, name: str, against: Sequence[str], tol: float = 1e-3) -> EditDirections:
    """`directions` with the vector of `name` replaced by its (renormalised) component orthogonal to the span of the
    `against` directions: an edit along it keeps w's projections on those unchanged (InterFaceGAN's conditional
    manipulation, e.g. "smiling" orthogonal to "gender:woman"). DirectionsError when `name` is in `against` or
    (nearly, relative norm < `tol`) inside their span; KeyError for unknown names."""
    if name in against:
        raise DirectionsError(f"cannot make {name!r} orthogonal to itself")
    v = directions[name].double()
    basis = directions.select(list(against)).vectors.double()
    if len(basis):
        u, s, _ = torch.linalg.svd(basis.T, full_matrices=False)
        u = u[:, s > s.max() * 1e-6]
        v = v - u @ (u.T @ v)
    if v.norm() < tol:
        raise DirectionsError(f"{name!r} lies within the span of {', '.join(against)}: nothing is left of it")
    k = directions.index(name)
    vectors = directions.vectors.clone()
    vectors[k] = v.float()
    return EditDirections(directions.names, vectors, directions.layers, directions.source)


# -- held-out checks and conditional retries -----------------------------------------------------------
def conditional_retry(G, boundaries: EditDirections, classifier, w_fit: torch.Tensor, w_check: torch.Tensor,
                      failed: DirectionCheck, before: Mapping[str, torch.Tensor], sigmas: float = DEFAULT_SIGMAS,
                      min_move: float = DEFAULT_MIN_MOVE, max_ratio: float = DEFAULT_MAX_RATIO, batch: int = 64,
                      impl: str = "auto") -> tuple[list[DirectionCheck], torch.Tensor | None, float]:
    """Retry the boundary `failed.name` of `boundaries` (all fitted boundaries) made orthogonal to the boundaries of
    whatever moved too much in its check (`orthogonalize`): every boundary of another label that moved more than
    `max_ratio` x max(target move, `min_move`), or the boundary of a value of its own label that rose that much.
    While the retry fails because of attributes not yet constrained, those are added and it is checked again.

    Returns (the retries' checks, the unit vector of the passing retry or None, the std of `w_fit` along it)."""
    label_values = classifier.label_values
    name, checks, against, current = failed.name, [], [], failed
    while True:
        allowed = max_ratio * max(current.target_move or 0.0, min_move)
        new = []
        for key, move in current.moves.items():
            if move <= allowed:
                continue
            if ":" in key:  # a value of the direction's own label
                new += [key] if key in boundaries.names else []
            else:
                new += [b for b in boundaries.names if (target_of(b, label_values) or ("",))[0] == key]
        new = [b for b in dict.fromkeys(new) if b not in against and b != name]
        if not new:
            return checks, None, 0.0
        against += new
        try:
            conditional = orthogonalize(boundaries, name, against)
        except DirectionsError:
            return checks, None, 0.0
        std = _std_along(w_fit, conditional[name])
        current = check_directions(G, conditional, classifier, w_check, {name: std}, [name], sigmas, min_move,
                                   max_ratio, before, batch, impl)[0]
        current = dataclasses.replace(current, orthogonal_to=tuple(against))
        checks.append(current)
        if current.passed:
            return checks, conditional[name], std


def check_and_select(G, fitted: FittedDirections, classifier, w_fit: torch.Tensor, check_n: int = 500,
                     check_seed: int = 1, sigmas: float = DEFAULT_SIGMAS, min_move: float = DEFAULT_MIN_MOVE,
                     max_ratio: float = DEFAULT_MAX_RATIO, conditional: bool = True, baseline: int = 8,
                     batch: int = 64, impl: str = "auto", progress: bool = False) -> FittedDirections:
    """`fitted` (fitted on `w_fit`) checked on `check_n` held-out latents of `sample_latents(G, check_n,
    check_seed)`: boundaries that pass are kept, those that fail are retried conditionally (`conditional_retry`,
    when `conditional`) and kept in that form if it passes, else dropped with the reason; directions without a
    target (PCA) are kept. `baseline` > 0 also measures the chance level (`random_baseline` along that many random
    directions) into the settings. The order of the kept directions is that of `fitted`."""
    w_check, before = sample_latents(G, check_n, check_seed, classifier, batch, impl, progress)
    dirs = fitted.directions
    std = {s.name: s.std for s in fitted.stats}
    checks = check_directions(G, dirs, classifier, w_check, std, None, sigmas, min_move, max_ratio, before, batch,
                              impl, progress)
    boundary_names = [s.name for s in fitted.stats if s.kind == "boundary"]
    boundaries = dirs.select(boundary_names) if boundary_names else None
    all_checks, names, vectors, stats, dropped = [], [], [], [], {}
    for check, s in zip(checks, fitted.stats):
        all_checks.append(check)
        vector = dirs[s.name]
        if check.passed is False:
            retries, vector, new_std = [], None, 0.0
            if conditional and boundaries is not None and s.name in boundaries.names:
                retries, vector, new_std = conditional_retry(G, boundaries, classifier, w_fit, w_check, check, before,
                                                             sigmas, min_move, max_ratio, batch, impl)
            all_checks += retries
            if vector is None:
                dropped[s.name] = check.reason + "".join(
                    f"; orthogonal to {group_names(r.orthogonal_to)}: {r.reason}" for r in retries)
                continue
            s = dataclasses.replace(s, kind="conditional", std=new_std, orthogonal_to=retries[-1].orthogonal_to)
        names.append(s.name)
        vectors.append(vector)
        stats.append(s)
    if not names:
        raise ValueError(f"no direction passed the held-out check, nothing to save: "
                         f"{'; '.join(f'{k}: {v}' for k, v in dropped.items())}")
    settings = {**fitted.settings, "check": {"n": check_n, "seed": check_seed, "sigmas": sigmas,
                                             "min_move": min_move, "max_ratio": max_ratio,
                                             "conditional": conditional}}
    if baseline:
        settings["check"]["random_baseline"] = {
            "directions": baseline,
            "largest_move": random_baseline(G, classifier, w_check, baseline, sigmas, seed=check_seed,
                                            before=before, batch=batch, impl=impl)}
    source = f"{dirs.source}, checked on {check_n} held-out latents (seed {check_seed})"
    return FittedDirections(EditDirections(tuple(names), torch.stack(vectors), source=source), tuple(stats),
                            fitted.skipped, settings, tuple(all_checks), dropped)


# -- both kinds ---------------------------------------------------------------------------------------
def fit_directions(G, classifier=None, n: int = 2000, pca: int = 8, seed: int = 0, fraction: float = 0.25,
                   batch: int = 64, impl: str = "auto", progress: bool = False,
                   classifier_name: str = "classifier", *, check: bool = True, check_n: int = 500,
                   check_seed: int | None = None, sigmas: float = DEFAULT_SIGMAS, min_move: float = DEFAULT_MIN_MOVE,
                   max_ratio: float = DEFAULT_MAX_RATIO, conditional: bool = True,
                   baseline: int = 8) -> FittedDirections:
    """Boundaries for every attribute value of `classifier` (when given) then `pca` PCA axes, all from the same `n`
    latents of `sample_latents(G, n, seed)`; `classifier_name` goes into the directions' `source`. With a
    classifier and `check`, `check_and_select` then keeps the directions that pass on held-out latents (seed
    `check_seed`, default `seed` + 1)."""
    if classifier is None and pca < 1:
        raise ValueError("nothing to fit: give a classifier or pca >= 1")
    check_seed = seed + 1 if check_seed is None else check_seed
    if check and classifier is not None and check_seed == seed:
        raise ValueError(f"the check latents must be held out: use a check seed other than the fit seed {seed}")
    w, probs = sample_latents(G, n, seed, classifier, batch, impl, progress)
    parts = []
    if classifier is not None:
        parts.append(fit_boundaries(w, probs, classifier.label_values, fraction, seed=seed,
                                    source=f"interfacegan:{classifier_name}"))
    if pca:
        parts.append(pca_directions(w, pca))
    names = tuple(name for part in parts for name in part.directions.names)
    vectors = torch.cat([part.directions.vectors for part in parts])
    source = f"{' + '.join(part.directions.source for part in parts)} (n={n}, seed={seed})"
    settings = {"n": n, "seed": seed, "pca": pca, "fraction": fraction, "classifier": classifier_name}
    fitted = FittedDirections(EditDirections(names, vectors, source=source),
                              tuple(s for part in parts for s in part.stats),
                              {k: v for part in parts for k, v in part.skipped.items()}, settings)
    if check and classifier is not None:
        fitted = check_and_select(G, fitted, classifier, w, check_n, check_seed, sigmas, min_move, max_ratio,
                                  conditional, baseline, batch, impl, progress)
    return fitted
