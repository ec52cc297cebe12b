"""Does an edit direction do what its name says? Measured with an attribute classifier on held-out latents.

`check_directions(G, directions, classifier, w, std)` moves every held-out latent of `w` (latents not used to fit
the directions) by `sigmas` standard deviations of w along each direction, renders before and after with the full
generator (``noise="const"``) and classifies both. Per direction (`DirectionCheck`):

- ``target_move``: for a boundary ``label:value`` (or a two-valued ``label``: its second value), the mean over the
  latents of P(value) after minus before: how much probability the edit moves onto the value it is named after.
- ``moves``: how much every OTHER attribute moves. For each other label, the total variation distance between its
  mean class distributions before and after (half the sum over values of |mean change of P(value)|): the
  probability mass the edit moves between that label's values, the same unit as ``target_move``. Within the
  target's own label (with more than two values), the rise of the mean probability of each other value
  (``hair:white`` for an edit named ``hair:blond`` that greys the hair), keyed ``label:value``; the values it takes
  mass from count as 0.
- ``passed``: the criterion: ``target_move >= min_move`` and every other move ``<= max_ratio * target_move``; the
  ``reason`` says which part failed. Directions without a target (PCA axes) get their moves measured and
  ``passed=None``: they make no claim to check.

The defaults (+2 std, ``min_move`` 0.1, ``max_ratio`` 0.5) are the ones `anycost directions` keeps directions by;
``random_baseline`` measures the same moves along random directions, the chance level ``min_move`` must clear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

#: Edit strength of a check, in standard deviations of the sampled w along the direction.
DEFAULT_SIGMAS = 2.0
#: Least mean rise of P(target value) for a direction to count as doing what its name says.
DEFAULT_MIN_MOVE = 0.1
#: Most any other attribute may move, as a fraction of the target's move.
DEFAULT_MAX_RATIO = 0.5


@dataclass(frozen=True)
class DirectionCheck:
    """One direction checked at `strength` (= `sigmas` x its std, in w units) on `n` held-out latents; see the
    module docstring for `target_move`, `moves` and `passed`."""

    name: str
    target: str | None  # "label:value", None for an unsupervised direction
    sigmas: float
    strength: float
    n: int
    target_move: float | None
    moves: dict[str, float] = field(default_factory=dict)
    passed: bool | None = None
    reason: str = ""
    #: the directions this one was made orthogonal to before the check (conditional editing), if any
    orthogonal_to: tuple[str, ...] = ()

    @property
    def largest_other(self) -> tuple[str, float]:
        """(name, move) of the attribute that moves most besides the target ("", 0.0) when none was measured."""
        if not self.moves:
            return "", 0.0
        name = max(self.moves, key=lambda k: self.moves[k])
        return name, self.moves[name]

    def to_dict(self) -> dict:
        name, move = self.largest_other
        return {"name": self.name, "target": self.target, "sigmas": self.sigmas, "strength": self.strength,
                "n": self.n, "target_move": self.target_move, "largest_other": name, "largest_other_move": move,
                "moves": self.moves, "passed": self.passed, "reason": self.reason,
                "orthogonal_to": list(self.orthogonal_to)}


def target_of(name: str, label_values: Mapping[str, Sequence[str]]) -> tuple[str, int] | None:
    """(label, value index) a direction named as `anycost.editing.fit.boundary_targets` names them aims at, or
    None (PCA axes and other names)."""
    label, sep, value = name.partition(":")
    values = label_values.get(label)
    if values is None:
        return None
    if not sep:
        return (label, 1) if len(values) == 2 else None
    return (label, list(values).index(value)) if value in values else None


def judge(target_move: float | None, moves: Mapping[str, float], min_move: float = DEFAULT_MIN_MOVE,
          max_ratio: float = DEFAULT_MAX_RATIO) -> tuple[bool | None, str]:
    """(passed, reason) of the criterion in the module docstring; (None, "unsupervised ...") without a target."""
    if target_move is None:
        return None, "unsupervised: no target attribute to check"
    if not target_move >= min_move:
        worst = max(moves, key=lambda k: moves[k]) if moves else None
        other = f" (largest other move: {worst} {moves[worst]:.3f})" if worst is not None else ""
        return False, f"target moves {_digits(target_move, min_move, '+')} < {min_move:g}{other}"
    over = {k: v for k, v in moves.items() if v > max_ratio * target_move}
    if over:
        worst = max(over, key=lambda k: over[k])
        return False, (f"{worst} moves {_digits(over[worst], max_ratio * target_move)} > {max_ratio:g} x target move "
                       f"{target_move:.3f}" + (f" (also {', '.join(k for k in over if k != worst)})"
                                                if len(over) > 1 else ""))
    return True, "passed"


def _digits(value: float, bound: float, sign: str = "") -> str:
    """`value` with 3 decimals, or more when 3 would print it equal to the `bound` it was compared with."""
    for digits in range(3, 7):
        if round(value, digits) != round(bound, digits):
            break
    return f"{value:{sign}.{digits}f}"


def attribute_moves(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor],
                    target: tuple[str, int] | None, label_values: Mapping[str, Sequence[str]]
                    ) -> tuple[float | None, dict[str, float]]:
    """(target_move, moves) from class probabilities {label: [n, values]} before and after an edit (see the module
    docstring)."""
    shift = {label: (after[label].double() - before[label].double()).mean(0) for label in label_values}
    moves = {}
    for label, values in label_values.items():
        if target is not None and label == target[0]:
            if len(values) == 2:  # the other value falls exactly as much as the target rises
                continue
            for i, value in enumerate(values):
                if i != target[1]:
                    moves[f"{label}:{value}"] = max(0.0, float(shift[label][i]))
        else:
            moves[label] = 0.5 * float(shift[label].abs().sum())
    return (None if target is None else float(shift[target[0]][target[1]])), moves


@torch.no_grad()
def classify(G, w: torch.Tensor, classifier, batch: int = 64, impl: str = "auto") -> dict[str, torch.Tensor]:
    """Class probabilities {label: [n, values]} of the full-config renders (``noise="const"``) of `w`, in batches."""
    device = G.w_avg.device
    parts = [classifier.predict(G(w[i: i + batch].to(device, G.w_avg.dtype), noise="const", impl=impl))
             for i in range(0, len(w), batch)]
    return {label: torch.cat([p[label] for p in parts]) for label in parts[0]}


def check_directions(G, directions, classifier, w: torch.Tensor, std: Mapping[str, float],
                     names: Sequence[str] | None = None, sigmas: float = DEFAULT_SIGMAS,
                     min_move: float = DEFAULT_MIN_MOVE, max_ratio: float = DEFAULT_MAX_RATIO,
                     before: Mapping[str, torch.Tensor] | None = None, batch: int = 64, impl: str = "auto",
                     progress: bool = False) -> list[DirectionCheck]:
    """One `DirectionCheck` per direction in `names` (default: all of `directions`), each edit ``+sigmas * std[name]``
    applied to the held-out latents `w` [n, style_dim] (W). `before`: the classifier's probabilities for `w` when
    already computed (else they are). Targets come from the names (`target_of`)."""
    if w.ndim != 2 or len(w) < 1:
        raise ValueError(f"w must be held-out latents [n, style_dim], got {tuple(w.shape)}")
    if not sigmas > 0 or not min_move > 0 or not 0 < max_ratio <= 1:
        raise ValueError(f"need sigmas > 0, min_move > 0 and 0 < max_ratio <= 1, got {sigmas}, {min_move}, "
                         f"{max_ratio}")
    from tqdm.auto import tqdm

    names = list(directions.names if names is None else names)
    missing = [n for n in names if n not in std]
    if missing:
        raise ValueError(f"no std for direction(s) {', '.join(missing)}")
    label_values = classifier.label_values
    if before is None:
        before = classify(G, w, classifier, batch, impl)
    checks = []
    for name in tqdm(names, desc="checking directions", unit="direction", disable=not progress):
        strength = sigmas * float(std[name])
        after = classify(G, directions.apply(w, {name: strength}), classifier, batch, impl)
        target = target_of(name, label_values)
        target_move, moves = attribute_moves(before, after, target, label_values)
        passed, reason = judge(target_move, moves, min_move, max_ratio)
        target_name = None if target is None else f"{target[0]}:{label_values[target[0]][target[1]]}"
        checks.append(DirectionCheck(name, target_name, sigmas, strength, len(w), target_move, moves, passed, reason))
    return checks


def random_baseline(G, classifier, w: torch.Tensor, k: int = 8, sigmas: float = DEFAULT_SIGMAS, seed: int = 0,
                    before: Mapping[str, torch.Tensor] | None = None, batch: int = 64,
                    impl: str = "auto") -> float:
    """The chance level of a target move: along `k` random unit directions (seeded), each applied at `sigmas` std
    of `w` along it, the largest |mean change| of P(value) over every value of every label."""
    from anycost.editing.directions import EditDirections

    g = torch.Generator().manual_seed(seed)
    dirs = EditDirections(tuple(f"random{i}" for i in range(k)), torch.randn(k, w.shape[1], generator=g))
    if before is None:
        before = classify(G, w, classifier, batch, impl)
    largest = 0.0
    for name in dirs.names:
        strength = sigmas * float((w.double() @ dirs[name].double()).std())
        after = classify(G, dirs.apply(w, {name: strength}), classifier, batch, impl)
        for label in classifier.label_values:
            largest = max(largest, float((after[label].double() - before[label].double()).mean(0).abs().max()))
    return largest


def group_names(names: Sequence[str]) -> str:
    """'gender, hair:white' for ('gender:man', 'gender:woman', 'hair:white'): direction names sharing a label
    (two or more) shown as the label, for tables; reports keep the full names."""
    by_label: dict[str, list[str]] = {}
    for name in names:
        by_label.setdefault(name.partition(":")[0], []).append(name)
    return ", ".join(label if len(group) > 1 else group[0] for label, group in by_label.items())


def checks_table(checks: Sequence[DirectionCheck]) -> str:
    """A markdown table: direction (a conditional retry says what it was made orthogonal to), target, strength,
    target move, the largest other move, whether it passed."""
    lines = ["| direction | target | strength (std) | target move | largest other move | check |",
             "|---|---|---:|---:|---|---|"]
    for c in checks:
        other, move = c.largest_other
        name = f"{c.name} (orthogonal to {group_names(c.orthogonal_to)})" if c.orthogonal_to else c.name
        target_move = f"{c.target_move:+.3f}" if c.target_move is not None else ""
        verdict = {True: "passed", None: "unsupervised"}.get(c.passed, f"failed: {c.reason}")
        lines.append(f"| {name} | {c.target or ''} | {c.strength:.2f} ({c.sigmas:+g}) | {target_move} | "
                     f"{other} {move:.3f} | {verdict} |")
    return "\n".join(lines)
