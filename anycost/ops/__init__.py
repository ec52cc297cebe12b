"""Public op API. Every op takes ``impl="auto"|"kernel"|"ref"``.

"ref" is the pure-PyTorch reference (`anycost.ops.ref`), "kernel" the native `anycost._C` op (an
error if it is not built), "auto" the kernel when it is built, covers the inputs (float32 on the
CPU today) and is the faster one for them (`_native_upfirdn2d_pays`, bias_act 'lrelu', the image-to-image
students' `depthwise_conv3x3` / `pointwise_conv`, the generators' 7x7 `small_conv2d` and `small_conv_transpose2d`
when no input needs a gradient), else the reference. Every op has a native CPU kernel. Gradients of native ops
come from the reference (see `anycost.ops._registry`), without double backward: code that differentiates twice
(R1, path length) passes impl="ref".

The native CPU kernels are compiled for several instruction-set levels (portable, avx2, avx512,
avx512_vnni) and the best one this CPU supports is used; `ANYCOST_CPU_CAPABILITY=<level>` forces a lower
one (a level the CPU lacks is an error when the ops are first used). `cpu_capability()` says which
level runs, `cpu_capabilities()` which ones this CPU supports. `core_pair_ns()` (`anycost.ops.placement`) says
whether the first two CPUs share a last-level cache: the round trip of a cache line between threads pinned to them.

`qconv2d_pack` / `qconv2d` are the int8 styled conv (`anycost.compression.int8`): an int8 weight packed once per
(layer, width), activations rounded to int8 per call, int32 accumulation and a fused fp32 epilogue; native at every
level (avx512_vnni: vpdpbusd; avx2 and avx512: vpmaddubsw + vpmaddwd; portable: scalar), inference only.

`modulated_conv2d(..., precision="bf16")` runs the whole styled conv in bf16 through oneDNN (`anycost.ops.bf16`:
fp32 accumulation; cached, prepacked weights) on bf16 channels_last activations, which it returns as such for the
next layer and `to_rgb(..., precision="bf16")`; it is for inference on the CPU (a bf16 layer's output carries no
gradient). Narrow layers, where bf16 measured slower than the fp32 kernels, stay in fp32 and return float32
(`anycost.ops.bf16.pays`).

The native ops' outputs come from a process-wide cache of the blocks of at least 1 MiB that earlier outputs freed
(exact sizes; a generator asks for the same ones every forward), which spares the page faults of first-touching
fresh memory: up to ANYCOST_OUTPUT_CACHE_MB MiB of free blocks (default 1024; 0 turns it off) stay held;
`output_cache_bytes()` says how much, `clear_output_cache()` releases it.

`styled_conv_to_rgb` is a generator's plain styled conv and the ToRGB after it as one native op (inference; fp32, or
a bf16 layer whose epilogue sums the ToRGB): the RGB is summed from the conv's outputs while they are in cache, and
the last layer's output, which nothing else reads, is never written. `fuses_to_rgb` says when a forward takes it.

For a modulated conv that "auto" would give the native kernel, this machine's tuning table
(`anycost.ops.tuning`, built by `anycost tune`) picks the backend when it has the call's shape: "kernel",
"ref" (oneDNN's fp32 conv) or "bf16"; shapes it lacks follow the fixed rule above. Compiled graphs
(`torch.compile`) always follow the fixed rule.
"""

from __future__ import annotations

import math
import platform

import torch

from anycost.ops import _ext, bf16, ref, tuning
from anycost.ops.placement import core_pair_ns
from anycost.ops.ref import fir_kernel

__all__ = ["NATIVE", "PRECISIONS", "bf16_input", "bias_act", "check_precision", "clear_output_cache", "core_pair_ns",
           "cpu_capabilities", "cpu_capability", "cpu_model", "depthwise_conv3x3", "fir_kernel", "i2i_forward",
           "modulated_conv2d", "modulated_conv2d_backend", "output_cache_bytes", "pointwise_conv", "qconv2d",
           "qconv2d_pack", "qconv2d_to_rgb", "resolve_impl", "small_conv2d", "small_conv_pays",
           "small_conv_transpose2d", "styled_conv_to_rgb", "fuses_to_rgb", "synthesis", "to_rgb", "upfirdn2d",
           "winograd_cache_bytes", "clear_winograd_cache"]
IMPLS = ("auto", "kernel", "ref")
#: The arithmetic of the modulated convolutions: "fp32", or "bf16" (bf16 operands, fp32 accumulation).
PRECISIONS = ("fp32", "bf16")
#: Whether the native ops are loaded; decided once at import (so compiled graphs see a constant).
NATIVE = _ext.load() is not None


#: The CPU instruction-set levels of the native kernels, lowest first. avx512_vnni differs from avx512 in its int8
#: kernels only (its fp32 ones are avx512's).
CPU_LEVELS = _ext.CPU_LEVELS


def cpu_capability() -> str | None:
    """The instruction-set level the native CPU kernels run at (one of `CPU_LEVELS`), None
    without the native ops. Raises RuntimeError when ANYCOST_CPU_CAPABILITY names an unknown level or one
    this CPU lacks (the ops raise the same error)."""
    return _ext.cpu_capability() if NATIVE else None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else the platform's processor string)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_capabilities() -> tuple[str, ...]:
    """The levels this CPU supports, lowest first (empty without the native ops)."""
    return _ext.cpu_capabilities() if NATIVE else ()


def output_cache_bytes() -> int:
    """Bytes the native ops' output cache holds in free blocks (0 without the native ops)."""
    return _ext.output_cache() if NATIVE else 0


def clear_output_cache() -> None:
    """Release the free blocks of the native ops' output cache (no-op without the native ops)."""
    if NATIVE:
        _ext.output_cache(clear=True)


def winograd_cache_bytes() -> int:
    """Bytes of transformed weights the native Winograd convs keep between calls (0 without the native ops)."""
    return _ext.winograd_cache() if NATIVE else 0


def clear_winograd_cache() -> None:
    """Drop the transformed weights the native Winograd convs keep between calls. They are rebuilt by themselves
    after every in-place update through torch; call this after writing a weight through `.data`, which its version
    counter does not see (no-op without the native ops)."""
    if NATIVE:
        _ext.winograd_cache(clear=True)


def _set_cpu_capability_for_testing(level: str | None) -> None:
    """Force the level of this process (None: back to ANYCOST_CPU_CAPABILITY or the best level); for tests.
    ValueError for an unknown level, RuntimeError for one this CPU lacks or without the native ops."""
    if level is not None and level not in CPU_LEVELS:
        raise ValueError(f"unknown CPU level {level!r}: use one of {CPU_LEVELS}")
    if not NATIVE:
        raise RuntimeError(f"no native ops: {_ext.reason()}")
    _ext.set_cpu_capability(level)


#: Ops that have a native kernel today; the others always run the reference.
NATIVE_OPS = ("modulated_conv2d", "to_rgb", "styled_conv_to_rgb", "upfirdn2d", "bias_act", "depthwise_conv3x3",
              "pointwise_conv", "small_conv2d", "small_conv_transpose2d", "qconv2d_pack", "qconv2d")
ACTIVATIONS = ("linear", "lrelu")


def resolve_impl(impl: str, *tensors, op: str = "modulated_conv2d") -> str:
    """Map an `impl` argument to "kernel" or "ref", with a clear error for a bad value.

    "auto" picks the kernel when `op` has one, it is built, and every given tensor is a float32 CPU
    tensor (the dtypes and devices the native kernels cover today).
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if op not in NATIVE_OPS:
        if impl == "kernel":
            raise NotImplementedError(f"{op} has no native kernel yet: use impl='ref' or 'auto'")
        return "ref"
    if impl == "auto":
        covered = all(t is None or (t.device.type == "cpu" and t.dtype == torch.float32) for t in tensors)
        return "kernel" if covered and NATIVE else "ref"
    if impl == "kernel" and not NATIVE:
        raise RuntimeError(f"impl='kernel' asked for, but {_ext.reason()}")
    return impl


def _call_native(op, *args):
    """`op(*args)` for a native op with a registered autograd kernel, run past that kernel when no input can need a
    gradient: it is Python (`torch.library.register_autograd`) and costs ~4 us a call, about a third of a small
    image-to-image layer's time at 32 px. With a gradient to compute, or under torch.compile (which traces the op,
    not the guard), through it."""
    if torch.compiler.is_compiling() or (
            torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)):
        return op(*args)
    with torch._C._AutoDispatchBelowAutograd():
        return op(*args)


def _float_tensor(name: str, t, ndim: int | None = None):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dims, got shape {tuple(t.shape)}")


def _check_modconv(x, weight, styles, upsample, noise):
    _float_tensor("x", x, 4)
    _float_tensor("weight", weight, 4)
    _float_tensor("styles", styles, 2)
    n, c_in = x.shape[:2]
    if n == 0:
        raise ValueError("x has an empty batch")
    if weight.shape[1] != c_in:
        raise ValueError(f"weight has {weight.shape[1]} input channels, x has {c_in}")
    if weight.shape[2] != weight.shape[3]:
        raise ValueError(f"weight must be square, got {tuple(weight.shape[2:])}")
    if tuple(styles.shape) != (n, c_in):
        raise ValueError(f"styles must be [{n}, {c_in}] (batch, input channels), got {tuple(styles.shape)}")
    if upsample and weight.shape[2] != 3:
        raise ValueError("upsample needs a 3x3 weight")
    if noise is not None:
        _float_tensor("noise", noise, 4)
        out_hw = tuple(2 * s for s in x.shape[2:]) if upsample else tuple(x.shape[2:])
        if noise.shape[1] != 1 or noise.shape[0] not in (1, n) or tuple(noise.shape[2:]) != out_hw:
            raise ValueError(f"noise must be [1 or {n}, 1, H_out, W_out] for this output, got {tuple(noise.shape)}")


def check_precision(precision: str, *tensors) -> None:
    """A clear error for an unknown precision, and for bf16 off the CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and any(t is not None and t.device.type != "cpu" for t in tensors):
        raise ValueError("precision='bf16' runs on the CPU only")


def _modulated_conv2d_bf16(x, weight, styles, weight_scale, demodulate, upsample, noise, noise_strength, bias,
                           activate):
    """`bf16.styled_conv` (the whole layer in bf16), its output in x's dtype. Inference only: oneDNN's prepacked
    ops have no gradients, so this runs under no_grad (the output requires none)."""
    with torch.no_grad():
        out = bf16.styled_conv(x, weight, styles, weight_scale, demodulate, upsample, noise, noise_strength, bias,
                               activate)
    return out if x.dtype == torch.bfloat16 else out.to(x.dtype, memory_format=torch.contiguous_format)


def modulated_conv2d(x, weight, styles, *, weight_scale, demodulate=True, upsample=False, noise=None,
                     noise_strength=None, bias=None, activate=False, impl="auto", precision="fp32"):
    """Fused styled convolution; see `anycost.ops.ref.modulated_conv2d` for the definition. `precision="bf16"`
    runs the layer in bf16 through oneDNN where that pays (`bf16.pays`; CPU; inference only: the output of a bf16
    layer carries no gradient). A bf16 layer returns x's dtype: float32 in, float32 out; bf16 activations
    (channels_last, as bf16 layers pass them to each other) in, bf16 out. An fp32 layer (a narrow one) given bf16
    activations runs on a float32 copy and returns float32, so the layers after it (as narrow) need no copies.
    With impl="auto" the tuning table may pick another backend."""
    _check_modconv(x, weight, styles, upsample, noise)
    check_precision(precision, x, weight, styles, noise, noise_strength, bias)
    backend = _modconv_backend(impl, precision, x, weight, upsample, styles, noise, noise_strength, bias)
    return _run_modconv(backend, x, weight, styles, weight_scale, demodulate, upsample, noise, noise_strength, bias,
                        activate)


def _modconv_backend(impl, precision, x, weight, upsample, *tensors) -> str:
    """The backend of one modulated conv: the tuned one for impl="auto" on inputs the native kernel covers when
    the table has this shape, else the fixed rule (bf16 where `bf16.pays`, else `resolve_impl`'s choice)."""
    activations = (x,) if x.dtype != torch.bfloat16 else ()  # bf16 ones reach the fp32 backends as a float32 copy
    use = resolve_impl(impl, *activations, weight, *tensors)
    if impl == "auto" and use == "kernel" and not torch.compiler.is_compiling():  # compiled: no file reads
        tuned = tuning.lookup((x.shape[1], weight.shape[0], x.shape[2], x.shape[3], upsample, x.shape[0], precision))
        if tuned is not None:
            return tuned
    if precision == "bf16" and bf16.pays(weight.shape[1], weight.shape[0]):
        return "bf16"
    return use


def bf16_input(x, weight, *, upsample=False, impl="auto"):
    """The activations a layer of a bf16 render (`precision="bf16"`) takes: bf16 channels_last where x is float32 and
    the layer runs in bf16 (`modulated_conv2d`'s backend for impl: the tuning table's choice, else the rule), else x
    as it is. A tuning table may run a layer in the middle of a bf16 render in fp32, which hands the next layer
    float32; a bf16 layer returns x's dtype, so without this every bf16 layer after it would copy its input to bf16
    and its output back (1024 / 1.0 on a Zen 4, 2 threads: 938 ms instead of 496 with a table that ran two of the
    64 px layers in fp32)."""
    if x.dtype != torch.float32 or _modconv_backend(impl, "bf16", x, weight, upsample) != "bf16":
        return x
    return bf16.activations(x)


def modulated_conv2d_backend(backend, x, weight, styles, *, weight_scale, demodulate=True, upsample=False,
                             noise=None, noise_strength=None, bias=None, activate=False):
    """`modulated_conv2d` on the named backend (`tuning.BACKENDS`: "kernel", "ref" or "bf16") whatever the shape:
    what `anycost tune` times (on bf16 activations for its bf16 shapes, as the generator passes them)."""
    if backend not in tuning.BACKENDS:
        raise ValueError(f"backend must be one of {tuning.BACKENDS}, got {backend!r}")
    _check_modconv(x, weight, styles, upsample, noise)
    check_precision("bf16" if backend == "bf16" else "fp32", x, weight, styles, noise, noise_strength, bias)
    if backend == "kernel":
        resolve_impl("kernel")  # the error when the native ops are not built
    return _run_modconv(backend, x, weight, styles, weight_scale, demodulate, upsample, noise, noise_strength, bias,
                        activate)


def _run_modconv(backend, x, weight, styles, weight_scale, demodulate, upsample, noise, noise_strength, bias,
                 activate):
    """Run the modulated conv on `backend`; bf16 activations reach an fp32 backend (with a float32 weight) as a
    float32 NCHW copy."""
    if backend == "bf16":
        return _modulated_conv2d_bf16(x, weight, styles, weight_scale, demodulate, upsample, noise, noise_strength,
                                      bias, activate)
    if x.dtype == torch.bfloat16 and weight.dtype == torch.float32:
        x = x.to(torch.float32, memory_format=torch.contiguous_format)
    if backend == "kernel":
        return _call_native(torch.ops.anycost.modulated_conv2d, x, weight, styles, weight_scale, demodulate, upsample,
                            noise, noise_strength, bias, activate)
    return ref.modulated_conv2d(x, weight, styles, weight_scale=weight_scale, demodulate=demodulate,
                                upsample=upsample, noise=noise, noise_strength=noise_strength, bias=bias,
                                activate=activate)


def to_rgb(x, weight, styles, bias, *, weight_scale, skip=None, impl="auto", precision="fp32"):
    """ToRGB layer; see `anycost.ops.ref.to_rgb`. With `precision="bf16"` and bf16 activations (those of the bf16
    layers) its 1x1 conv runs in bf16 (`bf16.to_rgb_conv`; inference only) and the bias and skip in float32;
    float32 activations (of layers kept in fp32) take the fp32 path. The RGB is float32 either way."""
    _check_modconv(x, weight, styles, False, None)
    check_precision(precision, x, weight, styles, bias, skip)
    if precision == "bf16" and x.dtype == torch.bfloat16:
        with torch.no_grad():
            out = bf16.to_rgb_conv(x, weight, styles, weight_scale).add_(bias.float().reshape(1, -1, 1, 1))
            if skip is None:
                return out
            return out.add_(_upsampled_skip(skip, impl))
    if resolve_impl(impl, x, weight, styles, bias, skip, op="to_rgb") == "kernel":
        return _call_native(torch.ops.anycost.to_rgb, x, weight, styles, bias, weight_scale, skip)
    return ref.to_rgb(x, weight, styles, bias, weight_scale=weight_scale, skip=skip)


def _upsampled_skip(skip, impl) -> torch.Tensor:
    """The RGB of the scale before, 2x upsampled in float32 as `ref.to_rgb` adds it (the bf16 ToRGBs' skip)."""
    return upfirdn2d(skip.float(), fir_kernel(gain=4.0), up=2, pad=(2, 1), impl=impl)


def fuses_to_rgb(impl, precision, keep_x, x, weight, styles, *tensors) -> bool:
    """Whether a plain styled conv (x, weight, styles and its other inputs `tensors`, the ToRGB's included) runs
    with the ToRGB after it fused in (`styled_conv_to_rgb`), by the backend the conv would take
    (`modulated_conv2d`'s): "bf16" always (the ToRGB is summed in its epilogue); the native kernel on float32 x when
    no input needs a gradient and, with impl "auto", where that measured faster (the kernels' rule, `rgb_head_pays`
    in kernels/cpu/modconv_params.h). Compiled graphs (`torch.compile`) keep the two apart: the rule is read
    through ctypes."""
    if not NATIVE or torch.compiler.is_compiling():
        return False
    backend = _modconv_backend(impl, precision, x, weight, False, styles, *tensors)
    if backend == "bf16":
        return True
    if backend != "kernel" or x.dtype != torch.float32:
        return False
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, styles, *tensors)):
        return False
    return impl != "auto" or _ext.rgb_head_pays(weight.shape[0], x.shape[2] * x.shape[3], keep_x)


def _check_rgb_head(rgb_weight, rgb_styles, n, c_out):
    """The ToRGB of a fused conv + ToRGB op: its weight [3, c_out, 1, 1] and styles [n, c_out] (float32)."""
    _float_tensor("rgb_weight", rgb_weight, 4)
    _float_tensor("rgb_styles", rgb_styles, 2)
    if tuple(rgb_weight.shape) != (3, c_out, 1, 1):
        raise ValueError(f"rgb_weight must be [3, {c_out}, 1, 1] (the conv has {c_out} outputs), got "
                         f"{tuple(rgb_weight.shape)}")
    if tuple(rgb_styles.shape) != (n, c_out):
        raise ValueError(f"rgb_styles must be [{n}, {c_out}], got {tuple(rgb_styles.shape)}")


def styled_conv_to_rgb(x, weight, styles, *, weight_scale, noise, noise_strength, bias, rgb_weight, rgb_styles,
                       rgb_bias, rgb_weight_scale, skip=None, keep_x=True, impl="auto", precision="fp32"):
    """A plain styled conv (`modulated_conv2d` with demodulate and activate) and the ToRGB that reads its output
    (`to_rgb`) as one native op; returns (x, rgb), x None when not `keep_x` (then it is never written). Native
    and inference only (no autograd; `fuses_to_rgb` says when a generator takes it); the definition is
    `anycost.ops.ref.styled_conv_to_rgb`. Where the conv runs in bf16 (`modulated_conv2d`'s backend for impl and
    precision), x is bf16 channels_last as there and the ToRGB is summed in float32 from it in the conv's epilogue
    (`bf16.styled_conv`); otherwise both run in fp32 (`anycost::styled_conv_to_rgb`)."""
    _check_modconv(x, weight, styles, False, noise)
    check_precision(precision, x, weight, styles, noise, noise_strength, bias, rgb_weight, rgb_styles, rgb_bias, skip)
    _check_rgb_head(rgb_weight, rgb_styles, x.shape[0], weight.shape[0])
    resolve_impl("kernel")  # the error when the native ops are not built
    if _modconv_backend(impl, precision, x, weight, False, styles, noise, noise_strength, bias) == "bf16":
        up = None if skip is None else _upsampled_skip(skip, impl)
        with torch.no_grad():
            out, rgb = bf16.styled_conv(x, weight, styles, weight_scale, True, False, noise, noise_strength, bias, True,
                                        to_rgb=(rgb_weight, rgb_styles, rgb_bias, rgb_weight_scale, up, keep_x))
        if out is not None and x.dtype != torch.bfloat16:
            out = out.to(x.dtype, memory_format=torch.contiguous_format)
        return out, rgb
    if x.dtype == torch.bfloat16:
        x = x.to(torch.float32, memory_format=torch.contiguous_format)
    out, rgb = _call_native(torch.ops.anycost.styled_conv_to_rgb, x, weight, styles, weight_scale, noise,
                            noise_strength, bias, rgb_weight, rgb_styles, rgb_bias, rgb_weight_scale, skip, keep_x)
    return (out if keep_x else None), rgb


# Shape rules of "auto" where the native kernel is not always the faster one (measured with 1 thread, CPU
# clock, `bench/bench_upfirdn2d.py`, `bench/bench_bias_act.py`; see their docstrings for the numbers):
# - upfirdn2d works plane by plane: it wins on upsampling (2-7x), on planes of >= 32x32 and on small
#   tensors (the reference's pad + grouped conv has ~0.15 ms fixed cost), but a blur or downsample of
#   many small planes (4 x 512 x 8 x 8, 1 x 512 x 16 x 16) is up to 1.6x faster in oneDNN's depthwise conv.
# - bias_act 'linear' is one broadcast add in the reference (nothing without a bias), which the op call
#   cannot beat (0.7-0.9x); 'lrelu' (add, leaky ReLU, gain: three passes) is 1.4-2.2x faster native.
def _native_upfirdn2d_pays(x, up) -> bool:
    return up == 2 or x.shape[2] * x.shape[3] >= 1024 or x.numel() <= 65536


def _check_upfirdn2d(x, kernel, up, down, pad):
    _float_tensor("x", x, 4)
    _float_tensor("kernel", kernel, 2)
    if up not in (1, 2) or down not in (1, 2):
        raise ValueError(f"up and down must be 1 or 2, got up={up}, down={down}")
    if len(pad) not in (2, 4):
        raise ValueError(f"pad must be (p0, p1) or (x0, x1, y0, y1), got {pad!r}")
    pad = tuple(int(p) for p in (pad if len(pad) == 4 else (pad[0], pad[1], pad[0], pad[1])))
    if x.shape[0] == 0:
        raise ValueError("x has an empty batch")
    if 0 in x.shape[1:] or 0 in kernel.shape:
        raise ValueError(f"x and kernel must be non-empty, got {tuple(x.shape)} and {tuple(kernel.shape)}")
    size = (x.shape[2] * up + pad[2] + pad[3], x.shape[3] * up + pad[0] + pad[1])
    if size[0] < kernel.shape[0] or size[1] < kernel.shape[1]:
        raise ValueError(f"the upsampled, padded input {size} is smaller than the kernel {tuple(kernel.shape)}: "
                         f"the output would be empty")
    return pad


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0, 0, 0), impl="auto"):
    """Upsample, pad, FIR-filter, downsample; see `anycost.ops.ref.upfirdn2d`."""
    pad = _check_upfirdn2d(x, kernel, up, down, pad)
    use = resolve_impl(impl, x, kernel, op="upfirdn2d")
    if use == "kernel" and (impl == "kernel" or _native_upfirdn2d_pays(x, up)):
        return _call_native(torch.ops.anycost.upfirdn2d, x, kernel, up, down, list(pad))
    return ref.upfirdn2d(x, kernel, up=up, down=down, pad=pad)


def bias_act(x, bias=None, act="linear", alpha=ref.LRELU_SLOPE, gain=None, impl="auto"):
    """Per-channel bias plus activation; see `anycost.ops.ref.bias_act`."""
    _float_tensor("x", x)
    if bias is not None and (bias.ndim != 1 or x.ndim < 2 or bias.shape[0] != x.shape[1]):
        raise ValueError(f"bias must be [{x.shape[1] if x.ndim > 1 else '?'}], got {tuple(bias.shape)}")
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}: use 'linear' or 'lrelu'")
    use = resolve_impl(impl, x, bias, op="bias_act")
    if use == "kernel" and (impl == "kernel" or act == "lrelu"):  # the shape rules of "auto" above
        return _call_native(torch.ops.anycost.bias_act, x, bias, act, float(alpha),
                            None if gain is None else float(gain))
    return ref.bias_act(x, bias, act, alpha, gain)


def depthwise_conv3x3(x, weight, bias=None, *, reflect=True, normalize=False, eps=1e-5, impl="auto"):
    """Depthwise 3x3 conv (+ bias), then optionally the instance norm of each plane; see `ref.depthwise_conv3x3`.
    "auto" takes the kernel only when no input needs a gradient: it measured 5-10x faster than the reference's
    pad + oneDNN grouped conv (+ instance norm) on the image-to-image students' layers (`bench/bench_i2i_convs.py`),
    while in training the reference's own backward beats re-running it under the kernel's."""
    _float_tensor("x", x, 4)
    _float_tensor("weight", weight, 4)
    c = x.shape[1]
    if tuple(weight.shape) != (c, 1, 3, 3):
        raise ValueError(f"weight must be [{c}, 1, 3, 3] for {c} input channels, got {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (c,):
        raise ValueError(f"bias must be [{c}], got {tuple(bias.shape)}")
    if 0 in x.shape:
        raise ValueError(f"x must be non-empty, got {tuple(x.shape)}")
    if reflect and min(x.shape[2:]) < 2:
        raise ValueError(f"reflection padding needs an image of at least 2x2, got {tuple(x.shape[2:])}")
    _check_norm_size(x, normalize)
    if _i2i_kernel(impl, "depthwise_conv3x3", x, weight, bias):
        return _call_native(torch.ops.anycost.depthwise_conv3x3, x, weight, bias, bool(reflect), bool(normalize),
                            float(eps))
    return ref.depthwise_conv3x3(x, weight, bias, reflect, normalize, eps)


def pointwise_conv(x, weight, bias=None, *, normalize=False, relu=False, eps=1e-5, impl="auto"):
    """1x1 conv (+ bias), then optionally the instance norm of each output plane and a ReLU; see
    `ref.pointwise_conv`. "auto" follows the rule of `depthwise_conv3x3` (the kernel only without gradients)."""
    _float_tensor("x", x, 4)
    _float_tensor("weight", weight, 4)
    c = x.shape[1]
    if weight.shape[1:] != (c, 1, 1):
        raise ValueError(f"weight must be [C_out, {c}, 1, 1] for {c} input channels, got {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must be [{weight.shape[0]}], got {tuple(bias.shape)}")
    if 0 in x.shape:
        raise ValueError(f"x must be non-empty, got {tuple(x.shape)}")
    _check_norm_size(x, normalize)
    if _i2i_kernel(impl, "pointwise_conv", x, weight, bias):
        return _call_native(torch.ops.anycost.pointwise_conv, x, weight, bias, bool(normalize), bool(relu), float(eps))
    return ref.pointwise_conv(x, weight, bias, normalize, relu, eps)


#: Where "auto" takes `small_conv2d`'s kernel (2 threads, AMX Xeon, against the reference: pad + oneDNN conv +
#: instance norm): kernels from SMALL_CONV_MIN_KERNEL, 1.3-2.6x faster on the image-to-image generators' 7x7 stems and
#: heads (3 <-> 3-16 channels, 32 and 256 px); the stride-2 3x3 convs below SMALL_CONV_STRIDED_MAX_C_IN input
#: channels, 1.2-3.0x faster on theirs (8 -> 20, 16 -> 32, 20 -> 40 at 16-256 px), where with 32 inputs it ranged
#: 0.8-1.7x (`small_conv2d` stages rows vectorised and keeps 8 output channels in registers on narrow rows).
SMALL_CONV_MIN_KERNEL = 7
SMALL_CONV_STRIDED_MAX_C_IN = 32


def small_conv_pays(kernel: int, stride: int, c_in: int) -> bool:
    """Whether "auto" runs `small_conv2d`'s kernel for a conv of this kernel size, stride and input width (the rule
    above)."""
    return kernel >= SMALL_CONV_MIN_KERNEL or (stride == 2 and c_in < SMALL_CONV_STRIDED_MAX_C_IN)


def small_conv2d(x, weight, bias=None, *, stride=1, reflect=True, normalize=False, relu=False, eps=1e-5,
                 impl="auto"):
    """Dense K x K conv (K odd, stride 1 or 2, padding K // 2: reflected or zeros) + bias, then optionally the
    instance norm of each output plane and a ReLU; see `ref.small_conv2d`. "auto" takes the kernel for kernels of at
    least SMALL_CONV_MIN_KERNEL, and at stride 2 for fewer than SMALL_CONV_STRIDED_MAX_C_IN input channels, when no
    input needs a gradient (the rule of `depthwise_conv3x3`)."""
    _float_tensor("x", x, 4)
    _float_tensor("weight", weight, 4)
    c, k = x.shape[1], weight.shape[-1]
    if weight.shape[1] != c or weight.shape[2] != k or k % 2 == 0:
        raise ValueError(f"weight must be [C_out, {c}, K, K] with K odd for {c} input channels, got "
                         f"{tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must be [{weight.shape[0]}], got {tuple(bias.shape)}")
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    if 0 in x.shape or 0 in weight.shape:
        raise ValueError(f"x and weight must be non-empty, got {tuple(x.shape)} and {tuple(weight.shape)}")
    if reflect and k // 2 >= min(x.shape[2:]):
        raise ValueError(f"reflection padding of {k // 2} needs an image larger than that, got {tuple(x.shape[2:])}")
    out_hw = [(s + 2 * (k // 2) - k) // stride + 1 for s in x.shape[2:]]
    if normalize and out_hw[0] * out_hw[1] < 2:
        raise ValueError(f"the instance norm needs more than one position per plane, got an output of {out_hw}")
    if (impl != "auto" or small_conv_pays(k, stride, c)) and _i2i_kernel(impl, "small_conv2d", x, weight, bias):
        return _call_native(torch.ops.anycost.small_conv2d, x, weight, bias, int(stride), bool(reflect),
                            bool(normalize), bool(relu), float(eps))
    return ref.small_conv2d(x, weight, bias, stride, reflect, normalize, relu, eps)


def small_conv_transpose2d(x, weight, bias=None, *, normalize=False, relu=False, eps=1e-5, impl="auto"):
    """3x3 transposed conv of stride 2 (padding 1, output padding 1: [H, W] -> [2H, 2W]; weight [C_in, C_out, 3, 3])
    + bias, then optionally the instance norm of each output plane and a ReLU; see `ref.small_conv_transpose2d`.
    "auto" follows the rule of `depthwise_conv3x3` (the kernel only without gradients): it measured 1.1-7.9x faster
    than the reference on the image-to-image generators' upsampling convs (4-64 channels, 8-128 px inputs)."""
    _float_tensor("x", x, 4)
    _float_tensor("weight", weight, 4)
    c = x.shape[1]
    if weight.shape[0] != c or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"weight must be [{c}, C_out, 3, 3] for {c} input channels, got {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[1],):
        raise ValueError(f"bias must be [{weight.shape[1]}], got {tuple(bias.shape)}")
    if 0 in x.shape or 0 in weight.shape:
        raise ValueError(f"x and weight must be non-empty, got {tuple(x.shape)} and {tuple(weight.shape)}")
    if _i2i_kernel(impl, "small_conv_transpose2d", x, weight, bias):
        return _call_native(torch.ops.anycost.small_conv_transpose2d, x, weight, bias, bool(normalize), bool(relu),
                            float(eps))
    return ref.small_conv_transpose2d(x, weight, bias, normalize, relu, eps)


def i2i_forward(x, params, widths, separable: bool, small_native) -> torch.Tensor:
    """The ResNet image-to-image generator of `anycost.models.i2i` at inference, every layer in one native call
    (`I2IGenerator.forward` takes it when it can): `params` the generator's parameters in module order, each layer
    using its leading channels; `widths` one output width per layer (stem, down1, down2, one inner width per residual
    block, up1, up2); `separable` the blocks' kind; `small_native` for each `small_conv2d` layer (stem, down1,
    down2, the dense blocks' two convs each, head) whether it runs the kernel (`small_conv_pays`) or, as the
    reference does, pad + conv + instance norm. Each layer is the call the module would make, without the Python
    and dispatcher costs between them (most of a 32 px student's time). Needs the extension and float32 CPU
    tensors; inference only: runs under no_grad."""
    if not NATIVE:
        raise RuntimeError(f"i2i_forward needs the native extension, but {_ext.reason()}")
    with torch.no_grad():  # each layer's native wrapper checks its tensors (float32, CPU, shapes)
        return torch.ops.anycost.i2i_forward(x, list(params), [int(c) for c in widths], bool(separable),
                                             [bool(b) for b in small_native])


def synthesis(w, names, tensors, full_widths, widths, resolution: int) -> torch.Tensor:
    """The StyleGAN2 synthesis network of `anycost.models.stylegan2` at inference, one config in one native call
    (`Generator.forward` takes it when it can): `w` the styles, W+ [N, entries, style_dim] (already truncated, an
    entry per layer at least) or W [N, style_dim]; `tensors` the generator's, by their state-dict `names` (the
    constant input, every conv's and ToRGB's up to `resolution`, ``w_avg``, and as ``noises.noise_<j>`` the noise of
    conv j, [1 or N, 1, s, s]); `full_widths` and `widths` the generator's and the config's layer widths. Every layer
    is the fused kernel the modules call (the C library's synthesis, csrc/capi/synthesis.cpp), without Python and the
    dispatcher between them. Needs the extension and float32 CPU tensors; inference only: runs under no_grad."""
    if not NATIVE:
        raise RuntimeError(f"synthesis needs the native extension, but {_ext.reason()}")
    with torch.no_grad():  # the op checks every tensor (float32, CPU, its shape; a strided one it copies)
        return torch.ops.anycost.synthesis(w, list(tensors), list(names), [int(c) for c in full_widths],
                                           [int(c) for c in widths], int(resolution))


def _check_norm_size(x, normalize) -> None:
    if normalize and x.shape[2] * x.shape[3] < 2:
        raise ValueError(f"the instance norm needs more than one position per plane, got {tuple(x.shape[2:])}")


def _i2i_kernel(impl, op, x, weight, bias) -> bool:
    """Whether an image-to-image op runs its kernel: "kernel", or "auto" when it covers the inputs and none of
    them needs a gradient."""
    use = resolve_impl(impl, x, weight, bias, op=op)
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias))
    return use == "kernel" and (impl == "kernel" or not grad)


def qconv2d_pack(weight, impl="auto"):
    """(packed, wsum): an int8 weight [C_out, C_in, K, K] (K 1 or 3, values in [-127, 127]; any strides, e.g. a
    sub-generator's slice) in the int8 kernels' layout, and its per-output-channel sums; see `ref.qconv2d_pack`.
    Pack once per (layer, width) and pass both to `qconv2d`."""
    if not isinstance(weight, torch.Tensor) or weight.dtype != torch.int8 or weight.ndim != 4:
        raise TypeError(f"weight must be an int8 [C_out, C_in, K, K] tensor, got {getattr(weight, 'dtype', weight)!r}")
    if weight.shape[2] != weight.shape[3] or weight.shape[2] not in (1, 3) or 0 in weight.shape:
        raise ValueError(f"weight must be [C_out, C_in, K, K] with K 1 or 3, got {tuple(weight.shape)}")
    if resolve_impl(impl, op="qconv2d_pack") == "kernel" and weight.device.type == "cpu":
        return torch.ops.anycost.qconv2d_pack(weight)
    return ref.qconv2d_pack(weight)


def _check_qconv2d(x, styles, act_scale, packed, wsum, out_scale, upsample, noise):
    _float_tensor("x", x, 4)
    _float_tensor("styles", styles, 2)
    _float_tensor("out_scale", out_scale, 2)
    n, c_in = x.shape[:2]
    if not isinstance(wsum, torch.Tensor) or wsum.dtype != torch.int32 or wsum.ndim != 2:
        raise TypeError("wsum must be the int32 [C_out, K*K] tensor of qconv2d_pack")
    c_out = wsum.shape[0]
    want = (-(-c_out // ref.QCONV_TILE), -(-c_in // ref.QCONV_GROUP))
    if (not isinstance(packed, torch.Tensor) or packed.dtype != torch.int8 or packed.ndim != 5
            or tuple(packed.shape[:2]) != want or packed.shape[2] not in (1, 9) or packed.shape[2] != wsum.shape[1]
            or tuple(packed.shape[3:]) != (ref.QCONV_TILE, ref.QCONV_GROUP)):
        raise ValueError(f"packed must be qconv2d_pack's int8 [{want[0]}, {want[1]}, K*K, 8, 4] for C_out={c_out} "
                         f"(wsum) and C_in={c_in} (x), got {getattr(packed, 'shape', packed)}")
    if upsample and packed.shape[2] != 9:
        raise ValueError("upsample needs a 3x3 weight")
    if tuple(styles.shape) != (n, c_in) or tuple(out_scale.shape) != (n, c_out):
        raise ValueError(f"styles must be [{n}, {c_in}] and out_scale [{n}, {c_out}], got {tuple(styles.shape)} and "
                         f"{tuple(out_scale.shape)}")
    if act_scale is not None and (not act_scale > 0 or not math.isfinite(1 / act_scale)):
        raise ValueError(f"act_scale must be positive and finite (or None: dynamic), got {act_scale!r}")
    if noise is not None:
        _float_tensor("noise", noise, 4)
        out_hw = tuple(2 * s for s in x.shape[2:]) if upsample else tuple(x.shape[2:])
        if noise.shape[1] != 1 or noise.shape[0] not in (1, n) or tuple(noise.shape[2:]) != out_hw:
            raise ValueError(f"noise must be [1 or {n}, 1, H_out, W_out] for this output, got {tuple(noise.shape)}")


def qconv2d(x, styles, act_scale, packed, wsum, out_scale, *, upsample=False, noise=None, noise_strength=None,
            bias=None, activate=False, impl="auto"):
    """int8 styled conv: x * styles rounded to int8 by `act_scale`, an int32 conv (stride 1, same padding; with
    `upsample` the stride-2 transposed conv and blur of `modulated_conv2d`) with the `qconv2d_pack`ed weight, then
    act(out_scale[n, o] * acc + noise * noise_strength + bias[o]) in fp32; see `ref.qconv2d`. The caller folds the
    dequantisation (act_scale x weight scale) and the demodulation into out_scale [N, C_out]; with `act_scale=None`
    each sample gets its own scale, its largest |x * styles| / 127 (`ref.qconv2d_dynamic_scale`: one more read of
    x), which the op multiplies into out_scale itself (the caller's holds the rest). `packed` must be that
    of a weight with x's input channels (its shape tells them only up to the padding to groups of 4). Inference
    only: runs under no_grad."""
    _check_qconv2d(x, styles, act_scale, packed, wsum, out_scale, upsample, noise)
    use = resolve_impl(impl, x, styles, out_scale, noise, noise_strength, bias, op="qconv2d")
    with torch.no_grad():
        if use == "kernel":
            act_scale = None if act_scale is None else float(act_scale)
            return torch.ops.anycost.qconv2d(x, styles, act_scale, packed, wsum, out_scale, upsample, noise,
                                             noise_strength, bias, activate)
        return ref.qconv2d(x, styles, act_scale, packed, wsum, out_scale, upsample, noise, noise_strength, bias,
                           activate)


def qconv2d_to_rgb(x, styles, act_scale, packed, wsum, out_scale, *, noise, noise_strength, bias, rgb_weight,
                   rgb_styles, rgb_bias, rgb_weight_scale, skip=None, keep_x=True):
    """A plain int8 styled conv (`qconv2d` with activate) and the ToRGB that reads its output (`to_rgb`) as one
    native op, as `styled_conv_to_rgb` is for the fp32 conv: returns (x, rgb), x None when not `keep_x` (then it is
    never written). Native only, inference only; the definition is `anycost.ops.ref.qconv2d_to_rgb`."""
    _check_qconv2d(x, styles, act_scale, packed, wsum, out_scale, False, noise)
    _check_rgb_head(rgb_weight, rgb_styles, x.shape[0], wsum.shape[0])
    resolve_impl("kernel")  # the error when the native ops are not built
    act_scale = None if act_scale is None else float(act_scale)
    with torch.no_grad():
        out, rgb = torch.ops.anycost.qconv2d_to_rgb(x, styles, act_scale, packed, wsum, out_scale, noise,
                                                    noise_strength, bias, rgb_weight, rgb_styles, rgb_bias,
                                                    rgb_weight_scale, skip, keep_x)
    return (out if keep_x else None), rgb
