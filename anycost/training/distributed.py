"""Multi-process training through torch.distributed (torchrun): gloo on the CPU, NCCL on GPUs.

Every process builds the same models from the same seed, draws its own data and latents, and averages
gradients after each backward pass, so all copies take identical optimiser steps. The sub-generator of
a step is drawn from a seed shared by all processes, so the same parameters get gradients everywhere.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env(device: torch.device) -> tuple[int, int]:
    """(rank, world size): joins the process group torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_gradients(params, world: int) -> None:
    """All-reduce the existing gradients of `params` into their mean over `world` processes (one flat buffer)."""
    if world <= 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(module: torch.nn.Module, world: int) -> None:
    """Copy rank 0's parameters and buffers to every process (a guard against any init difference)."""
    if world <= 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)
