"""The official StyleGAN2 / Anycost GAN generator forward, written independently and deliberately plainly.

The official formulation: per-sample modulated weights in one grouped convolution, the upsampling conv a stride-2
transposed conv followed by the FIR blur, every elementwise step its own pass. It works directly on a
checkpoint-style state dict (rosinality / official Anycost GAN keys, as `checkpoints.py` reads them;
`checkpoints.official_state` gives a `Generator`'s) with plain functions, and imports nothing else from ``anycost``:
it is the oracle the tests check the `Generator` against, and the baseline `anycost bench` times ours against (impl
"official") in the same process. So it repeats the channel table and the blur kernel rather than sharing them with
the code it checks.
Sub-networks are the leading channels of the same weights (``widths``, the official channel list) and an early
exit (``resolution``). All computations run in the dtype/device of ``wplus`` (state-dict tensors are cast on use).

Formulas (runtime scales are not stored in the checkpoint):
- mapping: PixelNorm ``x * rsqrt(mean(x^2, 1) + 1e-8)``, then per layer
  ``x = leaky_relu(x @ (W * 0.01 / sqrt(in)).T + b * 0.01, 0.2) * sqrt(2)``.
- modulation: ``s = w @ (Wmod / sqrt(style_dim)).T + bmod`` (computed for all input channels, then sliced).
- modulated conv: ``w = weight[:, :c_out, :c_in] * s / sqrt(c_in_full * k * k)``; demod (3x3 only):
  ``w * rsqrt(sum_{in,kh,kw} w^2 + 1e-8)``; per-sample grouped conv, padding k // 2.
- up conv: ``conv_transpose2d(stride 2, padding 0)`` (2H+1), then blur ``upfirdn2d(k4 * 4, pad=(1, 1))`` (2H).
- styled conv: ``lrelu(conv + noise_weight * noise + bias[:c_out], 0.2) * sqrt(2)``.
- ToRGB: 1x1 modulated conv without demod, ``+ bias``, ``+ upfirdn2d(skip, k4 * 4, up=2, pad=(2, 1))``.
  where ``k4 = outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64``.
"""

import math

import torch
import torch.nn.functional as F

BASE = {4: 4096, 8: 2048, 16: 1024, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
LR_MUL = 0.01


def official_channels(res, channel_multiplier=2, channel_max=512):
    """Full width at ``res``: ``min(channel_max, int(BASE[res] * channel_multiplier))``."""
    return min(channel_max, int(BASE[res] * channel_multiplier))


def official_uniform_widths(resolution, ratio, channel_multiplier=2, channel_max=512):
    """Official uniform channel list: ``min(channel_max, int(BASE[r] * ratio * m))`` twice per r in 4..resolution.

    Element 0: constant input, 1: conv1 output, 2 + 2k / 3 + 2k: outputs of convs[2k] / convs[2k + 1].
    """
    out = []
    for lg in range(2, int(math.log2(resolution)) + 1):
        c = min(channel_max, int(BASE[2**lg] * ratio * channel_multiplier))
        out += [c, c]
    return out


def blur_kernel(dtype=torch.float32, device=None):
    """``outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64 * 4`` (the stored ``blur.kernel`` / ``upsample.kernel``)."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    k = torch.outer(k, k)
    return (k / k.sum() * 4).to(dtype=dtype, device=device)


def random_official_state_dict(
    resolution, channel_multiplier=2, channel_max=512, style_dim=512, n_mlp=8, seed=0, dtype=torch.float32
):
    """Random generator state dict with exactly the official keys and shapes (every term non-trivial).

    Mapping weights are ``randn / lr_mul`` (the official init, so the effective weight is ``randn / sqrt(in)``).
    Values are always drawn in float32 and then cast to ``dtype``.
    """
    g = torch.Generator().manual_seed(seed)

    def rn(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=g) * scale + shift).to(dtype)

    log_res = int(math.log2(resolution))
    ch = {2**lg: official_channels(2**lg, channel_multiplier, channel_max) for lg in range(2, log_res + 1)}
    sd = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = rn(style_dim, style_dim, scale=1 / LR_MUL)
        sd[f"style.{i}.bias"] = rn(style_dim, scale=0.3 / LR_MUL)

    def styled(prefix, c_in, c_out, k, up=False, rgb=False):
        sd[f"{prefix}.conv.weight"] = rn(1, c_out, c_in, k, k)
        sd[f"{prefix}.conv.modulation.weight"] = rn(c_in, style_dim)
        sd[f"{prefix}.conv.modulation.bias"] = rn(c_in, scale=0.3, shift=1.0)
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = blur_kernel(dtype)
        if rgb:
            sd[f"{prefix}.bias"] = rn(1, 3, 1, 1, scale=0.5)
        else:
            sd[f"{prefix}.noise.weight"] = rn(1, scale=0.5)
            sd[f"{prefix}.activate.bias"] = rn(c_out, scale=0.5)

    sd["input.input"] = rn(1, ch[4], 4, 4)
    styled("conv1", ch[4], ch[4], 3)
    styled("to_rgb1", ch[4], 3, 1, rgb=True)
    for k, lg in enumerate(range(3, log_res + 1)):
        c_prev, c = ch[2 ** (lg - 1)], ch[2**lg]
        styled(f"convs.{2 * k}", c_prev, c, 3, up=True)
        styled(f"convs.{2 * k + 1}", c, c, 3)
        sd[f"to_rgbs.{k}.upsample.kernel"] = blur_kernel(dtype)
        styled(f"to_rgbs.{k}", c, 3, 1, rgb=True)
    for i in range(2 * log_res - 3):
        r = 2 ** ((i + 5) // 2)
        sd[f"noises.noise_{i}"] = rn(1, 1, r, r)
    return sd


def model_resolution(sd):
    """Model resolution from the keys: ``4 * 2 ** (number of to_rgbs blocks)``."""
    n = len({key.split(".")[1] for key in sd if key.startswith("to_rgbs.")})
    return 4 * 2**n


def upfirdn2d(x, kernel, up=1, pad=(0, 0)):
    """Zero insertion (sample i -> 2i for up=2), pad ``pad[0]`` before / ``pad[1]`` after in H and W, then a
    valid depthwise TRUE convolution with ``kernel`` (cross-correlation with the flipped kernel)."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    k = torch.flip(kernel.to(x), [0, 1])
    return F.conv2d(x, k.expand(c, 1, *k.shape).contiguous(), groups=c)


def fused_lrelu(x, bias):
    """``leaky_relu(x + bias, 0.2) * sqrt(2)`` with bias broadcast over channels (dim 1) if not 1-d."""
    if bias.dim() == 1:
        bias = bias.view(1, -1, *([1] * (x.dim() - 2)))
    return F.leaky_relu(x + bias, 0.2) * math.sqrt(2)


def official_mapping(sd, z):
    """PixelNorm, then n_mlp EqualLinear(lr_mul 0.01) + fused lrelu: ``lrelu(z @ (W*0.01/sqrt(in)).T + b*0.01)``."""
    n_mlp = len([key for key in sd if key.startswith("style.") and key.endswith(".weight")])
    x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        wt = sd[f"style.{i}.weight"].to(z)
        b = sd[f"style.{i}.bias"].to(z)
        x = fused_lrelu(x @ (wt * LR_MUL / math.sqrt(wt.shape[1])).t(), b * LR_MUL)
    return x


def modulated_conv(sd, prefix, x, style, c_out, demodulate=True, up=False):
    """Modulated conv of ``x`` (N, c_in, H, W) with the weight ``sd[prefix + '.weight'][:, :c_out, :c_in]``.

    ``s = style @ (Wmod / sqrt(style_dim)).T + bmod`` for all inputs, sliced to c_in; scale uses the FULL c_in.
    """
    n, c_in, h, w = x.shape
    weight = sd[f"{prefix}.weight"].to(x)
    mod_w = sd[f"{prefix}.modulation.weight"].to(x)
    mod_b = sd[f"{prefix}.modulation.bias"].to(x)
    c_in_full, k = weight.shape[2], weight.shape[-1]
    s = (style @ (mod_w / math.sqrt(mod_w.shape[1])).t() + mod_b)[:, :c_in]
    wt = weight[0, :c_out, :c_in].unsqueeze(0) * s.view(n, 1, c_in, 1, 1) / math.sqrt(c_in_full * k * k)
    if demodulate:
        wt = wt * torch.rsqrt(wt.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    x = x.reshape(1, n * c_in, h, w)
    if up:
        wt = wt.transpose(1, 2).reshape(n * c_in, c_out, k, k)
        out = F.conv_transpose2d(x, wt, stride=2, padding=0, groups=n)
        out = out.view(n, c_out, out.shape[2], out.shape[3])
        return upfirdn2d(out, blur_kernel(), pad=(1, 1))
    out = F.conv2d(x, wt.reshape(n * c_out, c_in, k, k), padding=k // 2, groups=n)
    return out.view(n, c_out, h, w)


def styled_conv(sd, prefix, x, style, c_out, noise, up=False):
    """Modulated 3x3 conv (demod), ``+ noise_weight * noise``, then ``lrelu(. + bias[:c_out]) * sqrt(2)``."""
    out = modulated_conv(sd, f"{prefix}.conv", x, style, c_out, demodulate=True, up=up)
    out = out + sd[f"{prefix}.noise.weight"].to(out) * noise.to(out)
    return fused_lrelu(out, sd[f"{prefix}.activate.bias"].to(out)[:c_out])


def to_rgb(sd, prefix, x, style, skip=None):
    """1x1 modulated conv (no demod) ``+ bias``, ``+ upfirdn2d(skip, k4 * 4, up=2, pad=(2, 1))`` if a skip."""
    out = modulated_conv(sd, f"{prefix}.conv", x, style, 3, demodulate=False) + sd[f"{prefix}.bias"].to(x)
    if skip is not None:
        out = out + upfirdn2d(skip, blur_kernel(), up=2, pad=(2, 1))
    return out


def official_forward(sd, wplus, noise, widths=None, resolution=None, return_rgbs=False):
    """Official generator forward from W+ ``wplus`` (N, n_style, style_dim).

    ``noise``: "const" (the stored ``noises.noise_i``) or a list (noise[0] conv1; noise[1+2k], noise[2+2k] block k).
    ``widths``: None (full) or the official channel list (len >= 2*log2(resolution)-2; extra entries ignored).
    ``resolution``: None (model resolution) or stop after the block at that resolution and return its skip RGB.
    W+ use: conv1 w[:, 0], to_rgb1 w[:, 1]; block k: convs[2k] w[:, 1+2k], convs[2k+1] w[:, 2+2k],
    to_rgbs[k] w[:, 3+2k]. Returns the raw image (N, 3, res, res) (and the list of skip RGBs if return_rgbs).
    """
    model_res = model_resolution(sd)
    res = model_res if resolution is None else resolution
    if res not in BASE or res > model_res:
        raise ValueError(f"resolution {res} not available in a {model_res}-px model")
    n_blocks = int(math.log2(res)) - 2
    n_style = 2 * n_blocks + 2
    if wplus.dim() != 3 or wplus.shape[1] < n_style:
        raise ValueError(f"wplus must be (N, >= {n_style}, style_dim), got {tuple(wplus.shape)}")
    if widths is None:
        widths = [sd["input.input"].shape[1], sd["conv1.conv.weight"].shape[1]]
        for j in range(2 * n_blocks):
            widths.append(sd[f"convs.{j}.conv.weight"].shape[1])
    elif len(widths) < n_style:
        raise ValueError(f"widths needs >= {n_style} entries for {res} px, got {len(widths)}")
    if isinstance(noise, str):
        if noise != "const":
            raise ValueError(f"unknown noise mode {noise!r}")
        noise = [sd[f"noises.noise_{i}"] for i in range(2 * n_blocks + 1)]

    n = wplus.shape[0]
    x = sd["input.input"].to(wplus)[:, : widths[0]].expand(n, -1, -1, -1)
    x = styled_conv(sd, "conv1", x, wplus[:, 0], widths[1], noise[0])
    skip = to_rgb(sd, "to_rgb1", x, wplus[:, 1])
    rgbs = [skip]
    for k in range(n_blocks):
        x = styled_conv(sd, f"convs.{2 * k}", x, wplus[:, 1 + 2 * k], widths[2 + 2 * k], noise[1 + 2 * k], up=True)
        x = styled_conv(sd, f"convs.{2 * k + 1}", x, wplus[:, 2 + 2 * k], widths[3 + 2 * k], noise[2 + 2 * k])
        skip = to_rgb(sd, f"to_rgbs.{k}", x, wplus[:, 3 + 2 * k], skip)
        rgbs.append(skip)
    return (skip, rgbs) if return_rgbs else skip
