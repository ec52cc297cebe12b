"""Input checks shared by the generators and discriminators: one-line errors that say what to pass."""

from __future__ import annotations

import torch


def check_classes(y, num_classes: int, batch: int, device: torch.device, what: str) -> torch.Tensor | None:
    """`y` as a [batch] long tensor on `device` (an int is every sample's class); None for an unconditional
    model (`num_classes` 0), which must get no `y`. `what` names the model in the messages."""
    if not num_classes:
        if y is not None:
            raise ValueError(f"this {what} is unconditional: call it without y")
        return None
    if y is None:
        raise ValueError(f"this {what} is class-conditional ({num_classes} classes): pass y, the class index "
                         "of every sample")
    if isinstance(y, int) and not isinstance(y, bool):
        y = torch.full((batch,), y, dtype=torch.long, device=device)
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        found = f"a tensor of {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise TypeError(f"y must be an int or an integer tensor of class indices, got {found}")
    if y.shape != (batch,):
        raise ValueError(f"y must have shape [{batch}] (one class per sample), got {list(y.shape)}")
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.numel():
        raise ValueError(f"class index {int(bad[0])} out of range: this {what} has {num_classes} classes "
                         f"(0 to {num_classes - 1})")
    return y.to(device=device, dtype=torch.long)


def check_tensor(name: str, x, shape: tuple) -> None:
    """A floating-point tensor of `shape`, where None entries (the batch) may be anything."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        found = f"a tensor of {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name} must be a floating-point tensor, got {found}")
    if x.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, x.shape)):
        wanted = ", ".join("batch" if s is None else str(s) for s in shape)
        raise ValueError(f"{name} must have shape [{wanted}], got {list(x.shape)}")
