"""Fake (meta) kernels and autograd for the native ops in ``torch.ops.anycost``.

Gradients of the native ops are computed by the reference implementation (`anycost.ops.ref`): the
backward re-runs the reference forward on the saved inputs and differentiates it. Native backward
kernels (and double backward, needed by R1 / path-length penalties) are future work, so training
code should use ``impl="ref"``.
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import register_flop_formula

from anycost.ops import ref

_MODCONV_TENSORS = (0, 1, 2, 6, 7, 8)  # x, weight, styles, noise, noise_strength, bias
_TO_RGB_TENSORS = (0, 1, 2, 3, 5)  # x, weight, styles, bias, skip
_UPFIRDN2D_TENSORS = (0, 1)  # x, kernel
_BIAS_ACT_TENSORS = (0, 1)  # x, bias
_I2I_TENSORS = (0, 1, 2)  # x, weight, bias (the image-to-image ops)


def _modconv_fake(x, weight, styles, weight_scale, demodulate, upsample, noise, noise_strength, bias, activate):
    scale = 2 if upsample else 1
    return x.new_empty(x.shape[0], weight.shape[0], x.shape[2] * scale, x.shape[3] * scale)


def _to_rgb_fake(x, weight, styles, bias, weight_scale, skip):
    return x.new_empty(x.shape[0], weight.shape[0], x.shape[2], x.shape[3])


def _styled_conv_to_rgb_fake(x, weight, styles, weight_scale, noise, noise_strength, bias, rgb_weight, rgb_styles,
                             rgb_bias, rgb_weight_scale, skip, keep_x):
    n, _, h, w = x.shape
    return (x.new_empty(n, weight.shape[0], h, w) if keep_x else x.new_empty(0)), x.new_empty(n, 3, h, w)


def _upfirdn2d_fake(x, kernel, up, down, pad):
    x0, x1, y0, y1 = pad
    kh, kw = kernel.shape
    h_out = (x.shape[2] * up + y0 + y1 - kh) // down + 1
    w_out = (x.shape[3] * up + x0 + x1 - kw) // down + 1
    return x.new_empty(x.shape[0], x.shape[1], h_out, w_out)


def _bias_act_fake(x, bias, act, alpha, gain):
    return x.new_empty(x.shape)


def _depthwise_fake(x, weight, bias, reflect, normalize, eps):
    return x.new_empty(x.shape)  # contiguous, as the kernel returns it


def _i2i_forward_fake(x, params, widths, separable, small_native):
    return x.new_empty(x.shape[0], params[-1].shape[0], x.shape[2], x.shape[3])  # params[-1]: the head's bias


def _cached_zeros_fake(like, size, channels_last):
    out = like.new_zeros(size)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def _synthesis_fake(w, tensors, names, full_widths, widths, resolution):
    return w.new_empty(w.shape[0], 3, resolution, resolution)


def _pointwise_fake(x, weight, bias, normalize, relu, eps):
    return x.new_empty(x.shape[0], weight.shape[0], x.shape[2], x.shape[3])


# FLOPs for torch's FlopCounterMode (2 per MAC; the fused norms and ReLU count nothing, as aten's do).
def _depthwise_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * 9 * math.prod(x_shape)


def _pointwise_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * math.prod(x_shape) * w_shape[0]


def _qconv2d_pack_fake(weight):
    c_out, c_in, k, _ = weight.shape
    tiles, groups = -(-c_out // ref.QCONV_TILE), -(-c_in // ref.QCONV_GROUP)
    return (weight.new_empty(tiles, groups, k * k, ref.QCONV_TILE, ref.QCONV_GROUP),
            weight.new_empty(c_out, k * k, dtype=torch.int32))


def _qconv2d_fake(x, styles, act_scale, packed, wsum, out_scale, upsample, noise, noise_strength, bias, activate):
    scale = 2 if upsample else 1
    return x.new_empty(x.shape[0], wsum.shape[0], x.shape[2] * scale, x.shape[3] * scale)


def _qconv2d_to_rgb_fake(x, styles, act_scale, packed, wsum, out_scale, noise, noise_strength, bias, rgb_weight,
                         rgb_styles, rgb_bias, rgb_weight_scale, skip, keep_x):
    n, _, h, w = x.shape
    return (x.new_empty(n, wsum.shape[0], h, w) if keep_x else x.new_empty(0)), x.new_empty(n, 3, h, w)


def _small_conv_fake(x, weight, bias, stride, reflect, normalize, relu, eps):
    k = weight.shape[2]
    h, w = ((s + 2 * (k // 2) - k) // stride + 1 for s in x.shape[2:])
    return x.new_empty(x.shape[0], weight.shape[0], h, w)


def _small_conv_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * math.prod(out_shape) * math.prod(w_shape[1:])


def _small_conv_transpose_fake(x, weight, bias, normalize, relu, eps):
    return x.new_empty(x.shape[0], weight.shape[1], 2 * x.shape[2], 2 * x.shape[3])


def _small_conv_transpose_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * math.prod(x_shape) * math.prod(w_shape[1:])  # every input position meets every weight once


def _bf16_epilogue_fake(x, upsample, scale, bias, noise, noise_strength, activate):
    n, c, h, w = x.shape
    shape = (n, c // 4, 2 * (h - 1), 2 * (w - 1)) if upsample else (n, c, h, w)
    return x.new_empty(shape).contiguous(memory_format=torch.channels_last)


def _bf16_epilogue_to_rgb_fake(x, scale, bias, noise, noise_strength, activate, rgb_weight, rgb_bias, skip, keep_x):
    n, c, h, w = x.shape
    out = x.new_empty(n, c, h, w).contiguous(memory_format=torch.channels_last) if keep_x else x.new_empty(0)
    return out, rgb_weight.new_empty(n, rgb_weight.shape[1], h, w)


def _modconv_ref(x, weight, styles, weight_scale, demodulate, upsample, noise, noise_strength, bias, activate):
    return ref.modulated_conv2d(x, weight, styles, weight_scale=weight_scale, demodulate=demodulate,
                                upsample=upsample, noise=noise, noise_strength=noise_strength, bias=bias,
                                activate=activate)


def _to_rgb_ref(x, weight, styles, bias, weight_scale, skip):
    return ref.to_rgb(x, weight, styles, bias, weight_scale=weight_scale, skip=skip)


def _upfirdn2d_ref(x, kernel, up, down, pad):
    return ref.upfirdn2d(x, kernel, up=up, down=down, pad=tuple(pad))


def _reference_backward(reference, tensor_positions):
    """An autograd formula that differentiates `reference` at the saved inputs."""

    def setup_context(ctx, inputs, output):
        ctx.args = list(inputs)
        ctx.save_for_backward(*(inputs[i] for i in tensor_positions))

    def backward(ctx, grad):
        args = list(ctx.args)
        leaves = []
        for i, saved in zip(tensor_positions, ctx.saved_tensors):
            if saved is not None and ctx.needs_input_grad[i]:
                saved = saved.detach().requires_grad_(True)
                leaves.append((i, saved))
            args[i] = saved
        grads = [None] * len(args)
        if leaves:
            with torch.enable_grad():
                out = reference(*args)
                found = torch.autograd.grad(out, [t for _, t in leaves], grad, allow_unused=True)
            for (i, _), g in zip(leaves, found):
                grads[i] = g
        return tuple(grads)

    return setup_context, backward


def _register_i2i(name: str, fake, flops) -> None:
    """Fake kernel, FLOP formula and the reference's autograd (x, weight, bias) of an image-to-image conv op."""
    torch.library.register_fake(f"anycost::{name}")(fake)
    register_flop_formula(getattr(torch.ops.anycost, name))(flops)
    setup, backward = _reference_backward(getattr(ref, name), _I2I_TENSORS)
    torch.library.register_autograd(f"anycost::{name}", backward, setup_context=setup)


def register() -> None:
    """Attach fake kernels and autograd to the loaded native ops (called once by `anycost.ops._ext`)."""
    torch.library.register_fake("anycost::modulated_conv2d")(_modconv_fake)
    torch.library.register_fake("anycost::to_rgb")(_to_rgb_fake)
    setup, backward = _reference_backward(_modconv_ref, _MODCONV_TENSORS)
    torch.library.register_autograd("anycost::modulated_conv2d", backward, setup_context=setup)
    setup, backward = _reference_backward(_to_rgb_ref, _TO_RGB_TENSORS)
    torch.library.register_autograd("anycost::to_rgb", backward, setup_context=setup)
    torch.library.register_fake("anycost::styled_conv_to_rgb")(_styled_conv_to_rgb_fake)  # inference only
    torch.library.register_fake("anycost::upfirdn2d")(_upfirdn2d_fake)
    setup, backward = _reference_backward(_upfirdn2d_ref, _UPFIRDN2D_TENSORS)
    torch.library.register_autograd("anycost::upfirdn2d", backward, setup_context=setup)
    torch.library.register_fake("anycost::bias_act")(_bias_act_fake)
    setup, backward = _reference_backward(ref.bias_act, _BIAS_ACT_TENSORS)
    torch.library.register_autograd("anycost::bias_act", backward, setup_context=setup)
    for name, fake, flops in (("depthwise_conv3x3", _depthwise_fake, _depthwise_flops),
                              ("pointwise_conv", _pointwise_fake, _pointwise_flops),
                              ("small_conv2d", _small_conv_fake, _small_conv_flops),
                              ("small_conv_transpose2d", _small_conv_transpose_fake, _small_conv_transpose_flops)):
        _register_i2i(name, fake, flops)
    # The int8 conv is inference only (integer weights and activations have no gradient): no autograd.
    torch.library.register_fake("anycost::qconv2d_pack")(_qconv2d_pack_fake)
    torch.library.register_fake("anycost::qconv2d")(_qconv2d_fake)
    torch.library.register_fake("anycost::qconv2d_to_rgb")(_qconv2d_to_rgb_fake)  # inference only
    torch.library.register_fake("anycost::bf16_epilogue")(_bf16_epilogue_fake)  # inference only, as the bf16 path
    torch.library.register_fake("anycost::bf16_epilogue_to_rgb")(_bf16_epilogue_to_rgb_fake)  # inference only
    torch.library.register_fake("anycost::i2i_forward")(_i2i_forward_fake)  # inference only
    torch.library.register_fake("anycost::synthesis")(_synthesis_fake)  # inference only
    torch.library.register_fake("anycost::cached_zeros")(_cached_zeros_fake)
