"""Checks of plain argument values that give the one-line errors anycost's users see."""

from __future__ import annotations


def check_int(name: str, value, low: int = 1) -> int:
    """`value` when it is an int (not a bool) of at least `low`, else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        need = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return value


def check_positive(**values) -> None:
    """ValueError unless every keyword value is a positive int (bools refused)."""
    for name, value in values.items():
        check_int(name, value)
