"""Whole-generator latency of `compression.quantize_int8` against the fp32 kernel and precision="bf16", timed
interleaved (round-robin, median wall time; batch 1, 2 threads, noise="const"), and int8's PSNR to fp32 (the same
quantised model's fp32 path is not the reference: the reference is the uncompressed fp32 generator).

Run: `PYTHONPATH=$PWD python bench/int8_generator.py [--rounds 3]`: random config-f at 256 / 0.25, 256 / 1.0,
1024 / 1.0, and the bundled 64 px model (calibration: 8 latents of seeds other than the measured ones)."""

import argparse
import statistics
import time

import torch

import anycost
from anycost.benchmark import random_generator
from anycost.compression import quantize_int8


def _psnr(a, b) -> float:
    return float(10 * torch.log10(4 / (a - b).square().mean()))


def run(name, G, configs, rounds):
    with torch.no_grad():
        w = G.mapping(torch.randn(9, G.arch.style_dim, generator=torch.Generator().manual_seed(0)))
        Gq = quantize_int8(G, w[1:])
        for label, config in configs:
            fns = {"fp32": lambda c=config: G(w[:1], config=c, noise="const"),
                   "bf16": lambda c=config: G(w[:1], config=c, noise="const", precision="bf16"),
                   "int8": lambda c=config: Gq(w[:1], config=c, noise="const")}
            outs = {k: f() for k, f in fns.items()}  # also the warm-up (prepacking)
            times = {k: [] for k in fns}
            for _ in range(rounds):
                for k, f in fns.items():
                    t = time.perf_counter()
                    f()
                    times[k].append(time.perf_counter() - t)
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            print(f"| {name} {label} | {med['fp32']:.0f} | {med['bf16']:.0f} ({med['fp32'] / med['bf16']:.2f}x) | "
                  f"{med['int8']:.0f} ({med['fp32'] / med['int8']:.2f}x) | {_psnr(outs['bf16'], outs['fp32']):.1f} | "
                  f"{_psnr(outs['int8'], outs['fp32']):.1f} |", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print("| model config | fp32 ms | bf16 ms (vs fp32) | int8 ms (vs fp32) | bf16 PSNR dB | int8 PSNR dB |")
    print("|---|---|---|---|---|---|")
    G, _ = anycost.default_generator()
    run("bundled 64 px", G.eval(), [("full", G.full_config)], args.rounds)
    G = random_generator(1024, 2)
    run("config-f", G, [("256/0.25", G.subnet(256, 0.25)), ("256/1.0", G.subnet(256, 1.0)),
                        ("1024/1.0", G.full_config)], args.rounds)


if __name__ == "__main__":
    main()
