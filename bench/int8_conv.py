"""int8 against fp32, one styled conv at a time: our int8 kernel (`ops.qconv2d`), our fp32 kernel
(`ops.modulated_conv2d`) and oneDNN's int8 conv through torch, at config-f layer shapes (plain 3x3 and 2x upsampling,
8-1024 px, 8-512 channels, batch 1). Every variant is a whole generator layer: fp32 NCHW in, modulation,
demodulation, noise, bias and leaky ReLU included, fp32 NCHW out; so the int8 variants pay their quantise step and
fp32 epilogue (oneDNN also its NCHW <-> channels_last changes) inside the timing. Weights are packed beforehand (once
per layer and width, as `compression.int8` caches them).

Variants, per CPU level of --levels (forced with `ops._set_cpu_capability_for_testing`; default: the best one):
- fp32 kernel @level:   `ops.modulated_conv2d(impl="kernel")`;
- int8 anycost @level:  `ops.qconv2d` with the demodulation computed as `compression.int8` does;
- int8 onednn (plain layers only, oneDNN picks its own ISA): `onednn.qconv2d_pointwise`, s8 per-channel weights,
  u8 activations (zero point 128), fp32 out, then demodulation, noise and bias_act in torch.

Timing: all variants of a layer interleaved, round-robin, --rounds rounds after a warm-up; medians of the wall time
and of the CPU time (of the calling thread with --threads 1, which is all the work then, and the measure a shared
machine disturbs least; of the process otherwise), the ratios fp32 / int8 of the CPU medians at each level, and the
1-minute load average when the layer finished (this machine is shared with jobs of higher priority).

Run: `PYTHONPATH=$PWD python bench/int8_conv.py [--rounds 7] [--threads 1] [--levels avx2,avx512_vnni]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import torch

from anycost import ops
from anycost.compression.int8 import quantize_weight
from anycost.ops import ref

# (c_in, c_out, input size, upsample): config-f's plain and upsampling layers at full width and ratio 0.25, up to
# 1024 px.
SHAPES = ((512, 512, 16, False), (512, 512, 32, False), (512, 512, 64, False), (256, 256, 128, False),
          (128, 128, 256, False), (64, 64, 512, False), (32, 32, 1024, False), (128, 128, 16, False),
          (128, 128, 64, False), (64, 64, 128, False), (32, 32, 256, False), (16, 16, 512, False), (8, 8, 1024, False),
          (512, 512, 8, True), (512, 512, 16, True), (512, 512, 32, True), (512, 256, 64, True),
          (256, 128, 128, True), (128, 64, 256, True), (64, 32, 512, True), (128, 64, 64, True), (64, 32, 128, True),
          (32, 16, 256, True), (16, 8, 512, True))
ZP = 128  # oneDNN's u8 zero point


def layer(c_in: int, c_out: int, size: int, upsample: bool):
    """name -> zero-argument callable running one generator layer (fp32 in and out), for each variant."""
    gen = torch.Generator().manual_seed(c_in * size + upsample)
    x = torch.randn(1, c_in, size, size, generator=gen)
    weight = torch.randn(1, c_out, c_in, 3, 3, generator=gen)
    styles = torch.rand(1, c_in, generator=gen) + 0.5
    out_size = 2 * size if upsample else size
    noise, strength = torch.randn(1, 1, out_size, out_size, generator=gen), torch.tensor([0.1])
    bias = torch.randn(c_out, generator=gen)
    scale = 1 / (c_in * 9) ** 0.5
    q, w_scales = quantize_weight(weight)
    w_deq = (q.float() * w_scales.reshape(1, -1, 1, 1, 1))[0]
    act_scale = float((x * styles[:, :, None, None]).abs().amax()) / 127
    packed, wsum = ops.qconv2d_pack(q[0])
    square_sums = (w_deq * scale).square().sum((2, 3))
    out_w_scales = w_scales * scale

    def fp32():
        return ops.modulated_conv2d(x, w_deq, styles, weight_scale=scale, upsample=upsample, noise=noise,
                                    noise_strength=strength, bias=bias, activate=True, impl="kernel")

    def demod():
        return torch.rsqrt(styles.square() @ square_sums.T + ref.DEMOD_EPS)

    def int8():
        out_scale = demod().mul_(out_w_scales * act_scale)
        return ops.qconv2d(x, styles, act_scale, packed, wsum, out_scale, upsample=upsample, noise=noise,
                           noise_strength=strength, bias=bias, activate=True, impl="kernel")

    fns = {"fp32": fp32, "int8": int8}
    if not upsample and "onednn" in torch.backends.quantized.supported_engines:
        prepacked = torch.ops.onednn.qconv_prepack(q[0], out_w_scales, act_scale, ZP, [1, 1], [1, 1], [1, 1], 1,
                                                   [1, c_in, size, size])
        zeros = torch.zeros(c_out, dtype=torch.int64)

        def onednn():
            xs = (x * styles[:, :, None, None]).contiguous(memory_format=torch.channels_last)
            xq = torch.quantize_per_tensor(xs, act_scale, ZP, torch.quint8).int_repr()
            out = torch.ops.onednn.qconv2d_pointwise(xq, act_scale, ZP, prepacked, out_w_scales, zeros, None,
                                                     [1, 1], [1, 1], [1, 1], 1, 1.0, 0, torch.float32, "none", [],
                                                     None).contiguous()
            out.mul_(demod()[:, :, None, None]).add_(strength * noise)
            return ops.bias_act(out, bias, "lrelu", impl="kernel")

        fns["onednn"] = onednn
    return fns


def run_layer(shape, levels, rounds: int, cpu_clock):
    """{variant label: (wall median s, CPU median s, rel. error vs fp32 at the first level)}."""
    fns = layer(*shape)
    calls = {}
    for level in levels:
        for name in ("fp32", "int8"):
            calls[f"{name} @{level}"] = (level, fns[name])
    if "onednn" in fns:
        calls["int8 onednn"] = (levels[-1], fns["onednn"])
    outs = {}
    for label, (level, fn) in calls.items():  # warm-up, and the outputs
        ops._set_cpu_capability_for_testing(level)
        outs[label] = fn()
    ref_out = outs[f"fp32 @{levels[0]}"]
    wall, cpu = {k: [] for k in calls}, {k: [] for k in calls}
    for _ in range(rounds):
        for label, (level, fn) in calls.items():
            ops._set_cpu_capability_for_testing(level)
            t, c = time.perf_counter(), cpu_clock()
            fn()
            cpu[label].append(cpu_clock() - c)
            wall[label].append(time.perf_counter() - t)
    ops._set_cpu_capability_for_testing(None)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k]),
                float((outs[k] - ref_out).norm() / ref_out.norm())) for k in calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--levels", default="", help="comma-separated CPU levels (default: the best one)")
    parser.add_argument("--filter", default="", help="only shapes whose label contains this")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
    levels = [lv for lv in args.levels.split(",") if lv] or [ops.cpu_capabilities()[-1]]
    cpu_clock = time.thread_time if args.threads == 1 else time.process_time
    print(f"torch {torch.__version__}, {ops.cpu_model()}, {args.threads} thread(s), batch 1, medians of "
          f"{args.rounds} interleaved rounds; CPU = {'thread' if args.threads == 1 else 'process'} CPU time")
    print("| layer | variant | wall ms | CPU ms | GMAC/s (CPU) | fp32 / int8 (CPU) | rel. err vs fp32 | load |")
    print("|---|---|---|---|---|---|---|---|")
    with torch.no_grad():
        for c_in, c_out, size, up in SHAPES:
            label = f"{'up ' if up else ''}{c_in}->{c_out} @ {size}{'->' + str(2 * size) if up else ''}"
            if args.filter not in label:
                continue
            res = run_layer((c_in, c_out, size, up), levels, args.rounds, cpu_clock)
            load = os.getloadavg()[0]
            macs = c_in * c_out * 9 * size * size
            for k, (w, c, err) in res.items():
                level = k.split("@")[-1] if "@" in k else levels[-1]
                ratio = res[f"fp32 @{level}"][1] / c if not k.startswith("fp32") else 1.0
                print(f"| {label} | {k} | {w * 1e3:.2f} | {c * 1e3:.2f} | {macs / c / 1e9:.0f} | {ratio:.2f}x | "
                      f"{err:.1e} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    main()
