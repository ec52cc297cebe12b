"""Does an int8 conv that torch ships beat fp32 at the generator's shapes? One 3x3 conv (padding 1), batch 1,
2 threads, at the config-f layer shapes; every variant takes fp32 NCHW activations and returns fp32 NCHW, so the
int8 variants pay their quantise / dequantise (and layout changes) inside the timing, as a generator would.

Variants (timed interleaved, round-robin; wall-clock median and minimum, and the process CPU time (both threads)
median, which a shared machine disturbs least; GFLOP/s = 2 * MACs / wall median):
- fp32 F.conv2d:         ATen's conv (oneDNN), NCHW, plain weight (reordered per call);
- fp32 anycost kernel:   `anycost.ops.modulated_conv2d(impl="kernel")`: modulation + demodulation included;
- bf16 anycost:          the same with precision="bf16" (prepacked oneDNN bf16, cached weight);
- int8 onednn:           `onednn.qconv_prepack` once; per call: modulate and quantise to u8 (zero point 128),
                         channels_last, `onednn.qconv2d_pointwise` with s8 per-output-channel weights and fp32 out;
- int8 quantized.conv2d: torch.ao's x86 engine, prepacked weight; `quantize_per_tensor` in, `dequantize` out.

Run: `PYTHONPATH=$PWD python bench/int8_conv.py [--rounds 9]`. Relative error is L2 against fp32 F.conv2d.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

from anycost import ops

SHAPES = ((512, 512, 16), (512, 512, 32), (512, 512, 64), (256, 256, 128), (128, 128, 256))
ZP = 128  # u8 zero point: the activations (leaky ReLU output times styles) are signed


def qweight(w: torch.Tensor):
    """Symmetric s8 weights, one scale per output channel."""
    scale = w.abs().amax((1, 2, 3)).clamp_min(1e-12) / 127
    return torch.round(w / scale.reshape(-1, 1, 1, 1)).clamp(-127, 127).to(torch.int8), scale


def variants(c_in: int, c_out: int, size: int):
    """name -> zero-argument callable returning the fp32 conv output, plus the fp32 reference output."""
    gen = torch.Generator().manual_seed(c_in * size)
    x = torch.randn(1, c_in, size, size, generator=gen)
    w = torch.randn(c_out, c_in, 3, 3, generator=gen)
    styles = torch.ones(1, c_in)  # modulation by 1 so every variant computes the same conv
    x_scale = float(x.abs().amax()) / 127
    qw, w_scale = qweight(w)
    prepacked = torch.ops.onednn.qconv_prepack(qw, w_scale, x_scale, ZP, [1, 1], [1, 1], [1, 1], 1,
                                               [1, c_in, size, size])
    zeros = torch.zeros(c_out, dtype=torch.int64)

    def onednn_int8():
        xs = (x * styles.reshape(1, -1, 1, 1)).contiguous(memory_format=torch.channels_last)
        q = torch.quantize_per_tensor(xs, x_scale, ZP, torch.quint8).int_repr()  # one fused pass, then u8 view
        out = torch.ops.onednn.qconv2d_pointwise(q, x_scale, ZP, prepacked, w_scale, zeros, None, [1, 1], [1, 1],
                                                 [1, 1], 1, 1.0, 0, torch.float32, "none", [], None)
        return out.contiguous()

    torch.backends.quantized.engine = "x86"
    qw_ao = torch._make_per_channel_quantized_tensor(qw, w_scale.double(), zeros, 0)
    packed_ao = torch.ops.quantized.conv2d_prepack(qw_ao, None, [1, 1], [1, 1], [1, 1], 1)

    out_scale = float(F.conv2d(x, w, padding=1).abs().amax()) / 127  # u8 output: its range from the fp32 conv

    def ao_int8():
        q = torch.quantize_per_tensor(x, x_scale, ZP, torch.quint8)
        return torch.ops.quantized.conv2d(q, packed_ao, out_scale, ZP).dequantize()

    kw = dict(weight_scale=1.0, demodulate=False, impl="kernel")
    return {
        "fp32 F.conv2d": lambda: F.conv2d(x, w, padding=1),
        "fp32 anycost kernel": lambda: ops.modulated_conv2d(x, w, styles, **kw),
        "bf16 anycost": lambda: ops.modulated_conv2d(x, w, styles, precision="bf16", **kw),
        "int8 onednn": onednn_int8,
        "int8 quantized.conv2d": ao_int8,
    }, F.conv2d(x, w, padding=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*quantized tensor creation.*deprecated")
    print(f"torch {torch.__version__}, {args.threads} threads, batch 1, median of {args.rounds} interleaved rounds")
    print("| shape | variant | wall ms (min) | GFLOP/s | CPU ms | vs F.conv2d (CPU) | vs fp32 kernel (CPU) "
          "| rel. err |")
    print("|---|---|---|---|---|---|---|---|")
    with torch.no_grad():
        for c_in, c_out, size in SHAPES:
            fns, ref = variants(c_in, c_out, size)
            errs = {k: float((f() - ref).norm() / ref.norm()) for k, f in fns.items()}  # also the warm-up
            wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
            for _ in range(args.rounds):
                for k, f in fns.items():
                    t, c = time.perf_counter(), time.process_time()
                    f()
                    wall[k].append(time.perf_counter() - t)
                    cpu[k].append(time.process_time() - c)
            med = {k: statistics.median(v) for k, v in wall.items()}
            cmed = {k: statistics.median(v) for k, v in cpu.items()}
            flop = 2 * c_in * c_out * 9 * size * size
            for k in fns:
                print(f"| {c_in}->{c_out} @ {size} | {k} | {med[k] * 1e3:.1f} ({min(wall[k]) * 1e3:.1f}) | "
                      f"{flop / med[k] / 1e9:.0f} | {cmed[k] * 1e3:.1f} | {cmed['fp32 F.conv2d'] / cmed[k]:.2f}x | "
                      f"{cmed['fp32 anycost kernel'] / cmed[k]:.2f}x | {errs[k]:.1e} |", flush=True)


if __name__ == "__main__":
    main()
