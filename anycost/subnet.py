"""The protocol every model family's sub-network config follows, so search, metrics and benchmarks
stay generic: a frozen, hashable value with its cost, a JSON round trip and a one-line description.

`anycost.models.stylegan2.SubnetConfig` is one; a family's config need not inherit from anything.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class SubnetLike(Protocol):
    """A sub-network of one model: `macs` (true multiply-accumulates of one sample), `to_json` /
    `from_json` (a lossless round trip) and `describe()` (one line for tables and logs)."""

    @property
    def macs(self) -> int: ...

    def to_json(self) -> str: ...

    @classmethod
    def from_json(cls, text: str) -> SubnetLike: ...

    def describe(self) -> str: ...
