"""Whole-generator latency of `compression.quantize_int8` against the uncompressed fp32 generator (our fp32
kernels), per CPU level, and int8's PSNR to fp32 (the reference is the uncompressed fp32 generator, not the
quantised model's fp32 path), measured as `anycost compress` does (`compression.report.distances`: 8 latents and
random noise from seed 0; int8 calibrated as the CLI does, on 16 latents of seed 1), for each activation scale mode
of --activations (`quantize_int8(activations=...)`) and, with --kmeans-bits B, for k-means B bits run int8
(`quantize_int8(kmeans_quantize(G, B))`, dynamic scales; its PSNR includes the clustering's loss).

Models: the bundled 64 px model, and random config-f weights at 256 / 0.25, 256 / 1.0 and 1024 / 1.0; timed at
batch 1, noise="const". fp32 and int8 are timed interleaved
(round-robin, --rounds rounds after a warm-up) at each level of --levels (forced with
`ops._set_cpu_capability_for_testing`; default: the best one); reported are the medians of the wall time and of the
CPU time (the calling thread's with --threads 1, which is then all the work and what a shared machine disturbs
least; the process's otherwise), fp32 / int8 of the CPU medians, and the 1-minute load average after each row.

Run: `PYTHONPATH=$PWD python bench/int8_generator.py [--rounds 3] [--threads 1] [--levels avx2,avx512_vnni]
[--only bundled|256/0.25|256/1.0|1024/1.0] [--activations dynamic,calibrated] [--kmeans-bits 4]`.
"""

import argparse
import os
import statistics
import time

import torch

import anycost
from anycost import ops
from anycost.benchmark import random_generator
from anycost.compression import kmeans_quantize, quantize_int8
from anycost.compression.int8 import calibration_latents
from anycost.compression.report import distances


def run(name, G, configs, levels, modes, kmeans_bits, rounds, cpu_clock):
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.arch.style_dim, generator=torch.Generator().manual_seed(0)))
        calibration = calibration_latents(G, 16, seed=1)
        quantized = {mode: quantize_int8(G, calibration, activations=mode) for mode in modes}
        if kmeans_bits:
            quantized[f"k-means {kmeans_bits} bits"] = quantize_int8(kmeans_quantize(G, kmeans_bits), calibration)
        for label, config in configs:
            psnr = {mode: distances(G, Gq, [config], n=8)[config.describe()]["psnr"] for mode, Gq in quantized.items()}
            fns = {}
            for level in levels:
                fns[("fp32", level)] = lambda c=config: G(w, config=c, noise="const")
                for mode, Gq in quantized.items():
                    fns[(mode, level)] = lambda c=config, Gq=Gq: Gq(w, config=c, noise="const")
            for (_, level), f in fns.items():  # warm-up (weight packing)
                ops._set_cpu_capability_for_testing(level)
                f()
            wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
            for _ in range(rounds):
                for (mode, level), f in fns.items():
                    ops._set_cpu_capability_for_testing(level)
                    t, c = time.perf_counter(), cpu_clock()
                    f()
                    cpu[mode, level].append(cpu_clock() - c)
                    wall[mode, level].append(time.perf_counter() - t)
            ops._set_cpu_capability_for_testing(None)
            load = os.getloadavg()[0]
            mw = {k: statistics.median(v) * 1e3 for k, v in wall.items()}
            mc = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
            for level in levels:
                f = ("fp32", level)
                for mode in quantized:
                    q = (mode, level)
                    print(f"| {name} {label} | {level} | {mode} | {mw[f]:.0f} / {mc[f]:.0f} | "
                          f"{mw[q]:.0f} / {mc[q]:.0f} | {mc[f] / mc[q]:.2f}x | {psnr[mode]:.1f} | {load:.1f} |",
                          flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--levels", default="", help="comma-separated CPU levels (default: the best one)")
    parser.add_argument("--only", default="", help="one model / config: bundled, 256/0.25, 256/1.0 or 1024/1.0")
    parser.add_argument("--activations", default="dynamic", help="comma-separated int8 activation scale modes")
    parser.add_argument("--kmeans-bits", type=int, default=0, help="also k-means this many bits, run int8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    levels = [lv for lv in args.levels.split(",") if lv] or [ops.cpu_capabilities()[-1]]
    cpu_clock = time.thread_time if args.threads == 1 else time.process_time
    print(f"torch {torch.__version__}, {ops.cpu_model()}, {args.threads} thread(s), batch 1, medians of "
          f"{args.rounds} interleaved rounds; CPU = {'thread' if args.threads == 1 else 'process'} CPU time")
    modes = args.activations.split(",")
    print("| model config | level | int8 variant | fp32 wall / CPU ms | int8 wall / CPU ms | fp32 / int8 (CPU) | "
          "int8 PSNR dB | load |")
    print("|---|---|---|---|---|---|---|---|")
    if args.only in ("", "bundled"):
        G, _ = anycost.default_generator()
        run("bundled 64 px", G.eval(), [("full", G.full_config)], levels, modes, args.kmeans_bits, args.rounds,
            cpu_clock)
    configs = [("256/0.25", (256, 0.25)), ("256/1.0", (256, 1.0)), ("1024/1.0", (1024, 1.0))]
    configs = [c for c in configs if args.only in ("", c[0])]
    if configs:
        G = random_generator(1024, 2)
        run("config-f", G, [(label, G.subnet(*sub)) for label, sub in configs], levels, modes, args.kmeans_bits,
            args.rounds, cpu_clock)


if __name__ == "__main__":
    main()
