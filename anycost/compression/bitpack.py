"""Packing small unsigned integers (1..8 bits each) into a byte stream, little-endian bit order, and back."""

from __future__ import annotations

import torch


def packed_size(count: int, bits: int) -> int:
    """Bytes that `count` values of `bits` bits take once packed."""
    return (count * bits + 7) // 8


def pack_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 [packed_size(n, bits)]: the n values (each in [0, 2**bits)) as one stream of `bits`-bit fields."""
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    v = values.reshape(-1).to(torch.uint8)
    shifts = torch.arange(bits, dtype=torch.uint8, device=v.device)
    stream = ((v.unsqueeze(1) >> shifts) & 1).reshape(-1)  # bit j of value i at position i*bits + j
    stream = torch.cat([stream, stream.new_zeros((-stream.numel()) % 8)]).view(-1, 8)
    out = torch.zeros(stream.shape[0], dtype=torch.uint8, device=v.device)
    for j in range(8):  # one pass per bit position keeps memory at one byte per bit
        out |= stream[:, j] << j
    return out


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """int64 [count]: the values `pack_bits(values, bits)` packed (ValueError when `packed` is too short)."""
    if packed.dtype != torch.uint8 or packed.ndim != 1 or packed.numel() != packed_size(count, bits):
        raise ValueError(f"expected {packed_size(count, bits)} packed bytes (uint8) for {count} {bits}-bit values, "
                         f"got {packed.numel()} ({packed.dtype})")
    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
    stream = ((packed.unsqueeze(1) >> shifts) & 1).reshape(-1)[: count * bits].view(count, bits)
    out = torch.zeros(count, dtype=torch.int64, device=packed.device)
    for j in range(bits):
        out |= stream[:, j].long() << j
    return out
