"""Pure-PyTorch reference implementation of every anycost op.

These are the definitions the native kernels are tested against, written for clarity and
autograd (they follow the official StyleGAN2 formulas: per-sample modulated weights, grouped
convolutions, a transposed conv followed by the FIR blur). Signatures match `anycost.ops`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEMOD_EPS = 1e-8


def fir_kernel(taps=(1.0, 3.0, 3.0, 1.0), gain: float = 1.0, device=None, dtype=torch.float32) -> torch.Tensor:
    """2-D FIR kernel: the outer product of `taps`, normalised to sum to `gain`."""
    k = torch.tensor(taps, dtype=torch.float64)
    k = torch.outer(k, k)
    return (k * (gain / k.sum())).to(device=device, dtype=dtype)


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0, 0, 0)) -> torch.Tensor:
    """Upsample (zero insertion), pad (negative crops), FIR-filter (true convolution), downsample.

    `x` is [N, C, H, W]; `kernel` [kh, kw]; `pad` = (x0, x1, y0, y1) or (p0, p1) for both axes.
    """
    if len(pad) == 2:
        pad = (pad[0], pad[1], pad[0], pad[1])
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = pad
    x = F.pad(x, (max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)))
    x = x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]
    weight = torch.flip(kernel, (0, 1)).to(x.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down]


def bias_act(x: torch.Tensor, bias: torch.Tensor | None = None, act: str = "linear",
             alpha: float = LRELU_SLOPE, gain: float | None = None) -> torch.Tensor:
    """Add a per-channel bias (dim 1), then 'linear' or 'lrelu' (slope `alpha`) times `gain`.

    The default gain is 1 for 'linear' and sqrt(2) for 'lrelu'.
    """
    if bias is not None:
        x = x + bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
        gain = LRELU_GAIN if gain is None else gain
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}: use 'linear' or 'lrelu'")
    return x if gain is None or gain == 1 else x * gain


def depthwise_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, reflect: bool = True,
                      normalize: bool = False, eps: float = 1e-5) -> torch.Tensor:
    """Depthwise 3x3 conv of x [N, C, H, W] with weight [C, 1, 3, 3] (stride 1, padding 1: reflected, else zeros)
    + bias [C]; with `normalize`, then the instance norm of each output plane (no affine, biased variance)."""
    x = F.pad(x, [1] * 4, mode="reflect") if reflect else F.pad(x, [1] * 4)
    out = F.conv2d(x, weight, bias, groups=weight.shape[0])
    return F.instance_norm(out, eps=eps) if normalize else out


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, normalize: bool = False,
                   relu: bool = False, eps: float = 1e-5) -> torch.Tensor:
    """1x1 conv of x [N, C_in, H, W] with weight [C_out, C_in, 1, 1] + bias [C_out]; with `normalize`, then the
    instance norm of each output plane (no affine, biased variance); with `relu`, then a ReLU."""
    out = F.conv2d(x, weight, bias)
    if normalize:
        out = F.instance_norm(out, eps=eps)
    return torch.relu(out) if relu else out


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, weight_scale: float,
                     demodulate: bool = True, upsample: bool = False, noise: torch.Tensor | None = None,
                     noise_strength: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                     activate: bool = False) -> torch.Tensor:
    """Styled (modulated) convolution on the given, possibly sliced, channels.

    x [N, C_in, H, W]; weight [C_out, C_in, K, K] (a view of the full weight); styles [N, C_in];
    `weight_scale` is 1/sqrt(fan-in of the FULL layer). With `upsample` the output is 2H x 2W (a
    stride-2 transposed conv, then the [1,3,3,1] blur with padding 1). Then noise * noise_strength
    (noise [N or 1, 1, H_out, W_out]) and, when `activate`, the scaled leaky ReLU with `bias`; a bias
    without activation is just added.
    """
    # Modulation scales the input channels and demodulation the output channels, which equals convolving each
    # sample with its own modulated weight (the official grouped formulation) but runs one ordinary conv over
    # the batch with the shared weight: much faster forward and backward on the CPU than a grouped conv.
    c_out, _, k, _ = weight.shape
    wgt = weight * weight_scale
    x = x * styles.reshape(*styles.shape, 1, 1).to(x.dtype)
    if upsample:
        out = F.conv_transpose2d(x, wgt.transpose(0, 1), stride=2)
        out = upfirdn2d(out, fir_kernel(gain=4.0, device=x.device), pad=(1, 1))
    else:
        out = F.conv2d(x, wgt, padding=k // 2)
    if demodulate:  # 1 / |w[o] * s|: sum_i s_i^2 sum_k w[o, i, k]^2, per sample and output channel
        demod = torch.rsqrt(styles.square() @ wgt.square().sum((2, 3)).T + DEMOD_EPS)
        out = out * demod.reshape(*demod.shape, 1, 1).to(out.dtype)
    if noise is not None:
        out = out + noise_strength * noise
    if activate:
        return bias_act(out, bias, "lrelu")
    return bias_act(out, bias)


def to_rgb(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor, *, weight_scale: float,
           skip: torch.Tensor | None = None) -> torch.Tensor:
    """ToRGB: 1x1 modulated conv without demodulation, plus bias, plus the 2x-upsampled `skip` image."""
    out = modulated_conv2d(x, weight, styles, weight_scale=weight_scale, demodulate=False, bias=bias.reshape(-1))
    if skip is not None:
        out = out + upfirdn2d(skip, fir_kernel(gain=4.0, device=skip.device), up=2, pad=(2, 1))
    return out


def styled_conv_to_rgb(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, weight_scale: float,
                       noise: torch.Tensor | None, noise_strength: torch.Tensor | None, bias: torch.Tensor | None,
                       rgb_weight: torch.Tensor, rgb_styles: torch.Tensor, rgb_bias: torch.Tensor,
                       rgb_weight_scale: float, skip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A plain styled conv (demodulated, activated) and the ToRGB that reads its output: (x, rgb)."""
    x = modulated_conv2d(x, weight, styles, weight_scale=weight_scale, noise=noise, noise_strength=noise_strength,
                         bias=bias, activate=True)
    return x, to_rgb(x, rgb_weight, rgb_styles, rgb_bias, weight_scale=rgb_weight_scale, skip=skip)


#: int8 conv layout (kernels/cpu/qconv_params.h): output channels per packed tile, input channels per 32-bit word.
QCONV_TILE, QCONV_GROUP = 8, 4
#: int8 activations and weights are symmetric: q in [-QMAX, QMAX].
QMAX = 127


def qconv2d_pack(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An int8 conv weight [C_out, C_in, K, K] (values in [-127, 127]) in the int8 kernels' layout
    [ceil(C_out/8), ceil(C_in/4), K*K, 8, 4] (zero past C_out / C_in), and its sums over the input channels (int32
    [C_out, K*K]: the native kernels' zero-point compensation, per tap for the upsampling conv's phases)."""
    if weight.dtype != torch.int8 or weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
        raise ValueError(f"qconv2d_pack needs an int8 [C_out, C_in, K, K] weight, got {weight.dtype} "
                         f"{tuple(weight.shape)}")
    if weight.numel() and int(weight.min()) < -QMAX:
        raise ValueError("int8 conv weights must lie in [-127, 127]; the weight holds -128")
    c_out, c_in, k, _ = weight.shape
    tiles, groups = -(-c_out // QCONV_TILE), -(-c_in // QCONV_GROUP)
    padded = weight.new_zeros(tiles * QCONV_TILE, groups * QCONV_GROUP, k, k)
    padded[:c_out, :c_in] = weight
    packed = padded.reshape(tiles, QCONV_TILE, groups, QCONV_GROUP, k * k).permute(0, 2, 4, 1, 3).contiguous()
    return packed, weight.sum(1, dtype=torch.int32).reshape(c_out, k * k)


def qconv2d_unpack(packed: torch.Tensor, c_out: int, c_in: int) -> torch.Tensor:
    """The int8 weight [c_out, c_in, K, K] of a `qconv2d_pack` layout."""
    tiles, groups, taps = packed.shape[:3]
    k = math.isqrt(taps)
    weight = packed.permute(0, 3, 1, 4, 2).reshape(tiles * QCONV_TILE, groups * QCONV_GROUP, k, k)
    return weight[:c_out, :c_in]


def qconv2d_dynamic_scale(x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """`qconv2d`'s activation scale per sample [N] when act_scale is None: max over (i, y, x) of |x[n, i] *
    styles[n, i]|, as float32(max_yx |x[n, i]| * |styles[n, i]|) (the same number: rounding is monotonic), / 127,
    at least the smallest normal float32."""
    peak = (x.float().abs().amax((2, 3)) * styles.float().abs()).amax(1)
    return (peak / QMAX).clamp_min(torch.finfo(torch.float32).tiny)


def qconv2d_quantize(x: torch.Tensor, styles: torch.Tensor, act_scale) -> torch.Tensor:
    """The int8 activations of `qconv2d` (as float32 integers): round(x * float32(styles * (1 / act_scale))),
    ties to even, clamped to [-127, 127]; every product in float32 as the kernels compute it. `act_scale`: a
    number or one per sample ([N])."""
    inv = torch.tensor(1.0, dtype=torch.float32) / torch.as_tensor(act_scale, dtype=torch.float32).reshape(-1, 1)
    mult = styles.float() * inv
    return torch.round(x.float() * mult[:, :, None, None]).clamp_(-QMAX, QMAX)


def qconv2d(x: torch.Tensor, styles: torch.Tensor, act_scale: float | None, packed: torch.Tensor, wsum: torch.Tensor,
            out_scale: torch.Tensor, upsample: bool = False, noise: torch.Tensor | None = None,
            noise_strength: torch.Tensor | None = None, bias: torch.Tensor | None = None,
            activate: bool = False) -> torch.Tensor:
    """int8 styled conv: the activations `qconv2d_quantize(x, styles, act_scale)`, an int64 conv (stride 1, same
    padding) with the packed int8 weight (C_out = len(wsum)) or, with `upsample`, an int64 stride-2 transposed conv
    followed by `modulated_conv2d`'s blur (in float32, of the integers), then act(out_scale[n, o] * acc + noise *
    noise_strength + bias[o]) in float32 (the leaky ReLU of `bias_act` when `activate`); `act_scale` None: each
    sample's `qconv2d_dynamic_scale`, multiplied into out_scale. Inference only."""
    c_out, (n, c_in, h, w) = wsum.shape[0], x.shape
    weight = qconv2d_unpack(packed, c_out, c_in).to(torch.int64)
    k = weight.shape[2]
    if act_scale is None:
        act_scale = qconv2d_dynamic_scale(x, styles)
        out_scale = out_scale.float() * act_scale[:, None]
    q = qconv2d_quantize(x, styles, act_scale)
    if upsample:
        t = torch.zeros(n, c_out, 2 * h + 1, 2 * w + 1, dtype=torch.int64)
        q = q.to(torch.int64)
        for ky in range(3):
            for kx in range(3):
                t[:, :, ky:ky + 2 * h:2, kx:kx + 2 * w:2] += torch.einsum("oi,nihw->nohw", weight[:, :, ky, kx], q)
        acc = upfirdn2d(t.float(), fir_kernel(gain=4.0), pad=(1, 1))
    else:
        cols = F.unfold(q, k, padding=k // 2).to(torch.int64)  # exact integers
        acc = (weight.reshape(c_out, -1) @ cols).reshape(n, c_out, h, w).float()
    out = acc * out_scale.float()[:, :, None, None]
    if noise is not None:
        out = out + noise_strength.float() * noise.float()
    return bias_act(out, bias, "lrelu" if activate else "linear")


def qconv2d_to_rgb(x: torch.Tensor, styles: torch.Tensor, act_scale: float | None, packed: torch.Tensor,
                   wsum: torch.Tensor, out_scale: torch.Tensor, *, noise: torch.Tensor | None,
                   noise_strength: torch.Tensor | None, bias: torch.Tensor | None, rgb_weight: torch.Tensor,
                   rgb_styles: torch.Tensor, rgb_bias: torch.Tensor, rgb_weight_scale: float,
                   skip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A plain int8 styled conv (`qconv2d`, activated) and the ToRGB that reads its output: (x, rgb)."""
    x = qconv2d(x, styles, act_scale, packed, wsum, out_scale, noise=noise, noise_strength=noise_strength, bias=bias,
                activate=True)
    return x, to_rgb(x, rgb_weight, rgb_styles, rgb_bias, weight_scale=rgb_weight_scale, skip=skip)


def upsample_phase_weight(weight: torch.Tensor) -> torch.Tensor:
    """The [4 * C_out, C_in, 2, 2] weight whose ordinary conv (padding 1) of an [N, C_in, H, W] input gives the four
    sub-pixel phases of `modulated_conv2d`'s stride-2 transposed conv with the [C_out, C_in, 3, 3] `weight`, as
    [N, 4 * C_out, H + 1, W + 1] with channel (2 * phase_y + phase_x) * C_out + o (the layout `bf16_epilogue`
    reads). Per axis, output 2m is w[0] x[m] + w[2] x[m - 1] and output 2m + 1 is w[1] x[m]; as a 2-tap correlation
    over the padded input (taps x[m - 1], x[m]) that is [w[2], w[0]] and [0, w[1]]."""
    c_out, c_in = weight.shape[:2]
    taps = ((2, 0), (None, 1))  # phase -> the 3x3 index each of the 2 taps reads (None: zero)
    out = weight.new_zeros(2, 2, c_out, c_in, 2, 2)
    for py in range(2):
        for px in range(2):
            for ky, iy in enumerate(taps[py]):
                for kx, ix in enumerate(taps[px]):
                    if iy is not None and ix is not None:
                        out[py, px, :, :, ky, kx] = weight[:, :, iy, ix]
    return out.reshape(4 * c_out, c_in, 2, 2)


def bf16_epilogue(x: torch.Tensor, upsample: bool, scale: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  noise: torch.Tensor | None = None, noise_strength: float = 0.0,
                  activate: bool = False) -> torch.Tensor:
    """The epilogue of the bf16 styled conv, in float32 and rounded to bf16 once: v = x (with `upsample`, x holds the
    phase planes of `upsample_phase_weight`'s conv: they are interleaved into the transposed conv's
    [2H + 1, 2W + 1] output and blurred as `modulated_conv2d` does), then act(v * scale[n, c] + bias[c] + noise *
    noise_strength), act the leaky ReLU with slope LRELU_SLOPE and *no* gain; bf16, channels_last."""
    v = x.float()
    if upsample:
        n, c4, h1, w1 = v.shape
        c = c4 // 4
        t = v.reshape(n, 2, 2, c, h1, w1).permute(0, 3, 4, 1, 5, 2).reshape(n, c, 2 * h1, 2 * w1)
        v = upfirdn2d(t[:, :, :-1, :-1], fir_kernel(gain=4.0), pad=(1, 1))
    if scale is not None:
        v = v * scale.float()[:, :, None, None]
    if bias is not None:
        v = v + bias.float()[None, :, None, None]
    if noise is not None:
        v = v + noise.float() * noise_strength
    if activate:
        v = F.leaky_relu(v, LRELU_SLOPE)
    return v.to(torch.bfloat16, memory_format=torch.channels_last)


def bf16_epilogue_to_rgb(x: torch.Tensor, scale: torch.Tensor | None, bias: torch.Tensor | None,
                         noise: torch.Tensor | None, noise_strength: float, activate: bool, rgb_weight: torch.Tensor,
                         rgb_bias: torch.Tensor, skip: torch.Tensor | None = None,
                         keep_x: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """`bf16_epilogue` of a plain layer and the ToRGB of its (bf16) output in float32: (out, or an empty tensor
    without `keep_x`; rgb = rgb_bias + skip + sum_c rgb_weight[n, :, c] * out[n, c]) with rgb_weight [N, 3, C] the
    modulated ToRGB weight and skip [N, 3, H, W] the upsampled RGB of the scale before."""
    out = bf16_epilogue(x, False, scale, bias, noise, noise_strength, activate)
    rgb = torch.einsum("noc,nchw->nohw", rgb_weight.float(), out.float()) + rgb_bias.float().reshape(1, -1, 1, 1)
    if skip is not None:
        rgb = rgb + skip.float()
    return (out if keep_x else out.new_empty(0)), rgb.contiguous()


def small_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1,
                 reflect: bool = True, normalize: bool = False, relu: bool = False, eps: float = 1e-5) -> torch.Tensor:
    """K x K conv of x [N, C_in, H, W] with weight [C_out, C_in, K, K] (K odd; stride 1 or 2; padding K // 2,
    reflected or zeros) + bias [C_out]; with `normalize`, then the instance norm of each output plane (no affine,
    biased variance); with `relu`, then a ReLU."""
    pad = weight.shape[-1] // 2
    if reflect and pad:
        out = F.conv2d(F.pad(x, [pad] * 4, mode="reflect"), weight, bias, stride)
    else:
        out = F.conv2d(x, weight, bias, stride, pad)
    if normalize:
        out = F.instance_norm(out, eps=eps)
    return torch.relu(out) if relu else out


def small_conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                           normalize: bool = False, relu: bool = False, eps: float = 1e-5) -> torch.Tensor:
    """3x3 transposed conv of x [N, C_in, H, W] with weight [C_in, C_out, 3, 3] (stride 2, padding 1, output
    padding 1: [N, C_out, 2H, 2W]) + bias [C_out]; with `normalize`, then the instance norm of each output plane
    (no affine, biased variance); with `relu`, then a ReLU."""
    out = F.conv_transpose2d(x, weight, bias, stride=2, padding=1, output_padding=1)
    if normalize:
        out = F.instance_norm(out, eps=eps)
    return torch.relu(out) if relu else out
