"""int8 styled convolutions: s8 weights per output channel, u8 activations with a calibrated scale, oneDNN's
VNNI int8 conv through torch (`onednn.qconv_prepack` + `onednn.qconv2d_pointwise`, int32 accumulation, fp32 out).

As in the bf16 path (`anycost.ops.bf16`) the conv runs in its non-fused form: the styles scale the input
activations, the demodulation scales the output channels, so the integer weight is the same for every sample and
is prepacked once per (layer, width). Noise, bias and leaky ReLU stay fp32.

- Weights: W ~ q * s with q in [-127, 127] and one scale s per output channel over *all* input channels of the
  full weight, so a sub-generator's [c_out, c_in] slice is exact (its q and s are slices). The generator keeps
  the dequantised q * s as its dense weights (its fp32 path runs the same weights), and q and s are re-derived
  from them exactly (the largest |q| of a channel is 127), as k-means re-derives its codebook.
- Activations: x * styles is quantised per tensor to u8 with zero point 128 and a per-layer scale: the largest
  |x * styles| seen over the calibration forwards / 127 (values beyond it clamp).
- Where: only where int8 paid in `bench/int8_conv.py` (AMD EPYC Zen 4, AVX-512 VNNI, 2 threads): plain 3x3
  layers of >= 256 channels at >= 32 px (512->512 @ 32/64 px 2.4-3.2x, 256->256 @ 128 px 1.6x faster than
  fp32). It lost at 512->512 @ 16 px (fixed costs) and tied at 128->128 @ 256 px (the fp32 output and the
  layout changes cost as much as the faster arithmetic saves). The 2x upsampling layers stay fp32 (no
  transposed int8 conv is used). `min_channels` / `min_size` override the rule (the tests run every plain layer).
"""

from __future__ import annotations

import warnings

import torch

from anycost import ops
from anycost.models.stylegan2.layers import StyledConv
from anycost.ops import ref

#: oneDNN's int8 conv is in this torch build (else the same integer arithmetic runs as an fp32 conv: slow, exact).
ONEDNN = "onednn" in torch.backends.quantized.supported_engines
MIN_CHANNELS = 256  # min(c_in, c_out) of a layer run in int8 (the measured rule above)
MIN_SIZE = 32  # input height of a layer run in int8
ZERO_POINT = 128  # u8 zero point: the modulated activations are signed
CALIBRATION_BATCH = 8  # latents per calibration forward (memory stays that of batch 8 whatever N is)


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel scales [c_out] of a [1, c_out, c_in, k, k] weight: max |W| of the channel / 127."""
    return weight.detach().abs().amax((0, 2, 3, 4)).clamp_min(torch.finfo(torch.float32).tiny) / 127


def quantize_weight(weight: torch.Tensor):
    """(q int8 [same shape], scales float32 [c_out]): W ~ q * scales, q in [-127, 127]."""
    scales = weight_scales(weight)
    q = torch.round(weight.detach() / scales.reshape(1, -1, 1, 1, 1)).clamp_(-127, 127).to(torch.int8)
    return q, scales


class Int8StyledConv(StyledConv):
    """A StyledConv whose plain 3x3 conv runs int8 where the rule holds (`act_scale` set by calibration or a
    loaded file); its parameters and state keys are those of StyledConv. An instance gets this class from
    `attach` (the module is kept, its class swapped). Inference only: the int8 layers run under no_grad."""

    act_scale: float | None = None
    min_channels: int = MIN_CHANNELS
    min_size: int = MIN_SIZE
    observing: bool = False  # calibration: record max |x * styles| into `observed`, run fp32
    observed: float = 0.0

    def runs_int8(self, c_in: int, c_out: int, size: int) -> bool:
        return (self.act_scale is not None and not self.upsample and min(c_in, c_out) >= self.min_channels
                and size >= self.min_size)

    def forward(self, x, w, c_out: int, noise: torch.Tensor, impl: str = "auto", precision: str = "fp32"):
        c_in = x.shape[1]
        if self.observing:
            with torch.no_grad():
                styles = self.conv.modulation(w, c_in, impl=impl)
                self.observed = max(self.observed, float((x * styles[:, :, None, None]).abs().amax()))
        if not self.runs_int8(c_in, c_out, x.shape[2]):
            return super().forward(x, w, c_out, noise, impl, precision)
        with torch.no_grad():
            styles = self.conv.modulation(w, c_in, impl=impl).float()
            out, square_sums = self._conv(x.float(), styles, c_out)
            demod = torch.rsqrt(styles.square() @ square_sums.T + ref.DEMOD_EPS)
            out.mul_(demod[:, :, None, None])
            if noise is not None:
                out.add_(self.noise.weight * noise)
            return ops.bias_act(out, self.activate.bias[:c_out], "lrelu", impl=impl)

    def _packed(self, c_out: int, c_in: int, shape):
        """(prepacked s8 weight, output scales [c_out], fp32 sums of squares [c_out, c_in]) of this slice, built
        once and kept until the weight changes (its version counter) or `act_scale` does."""
        weight = self.conv.weight
        key = (c_out, c_in, weight._version if not weight.is_inference() else -1, self.act_scale)
        cache = self.__dict__.setdefault("_int8_cache", {})
        if key not in cache:
            with torch.no_grad():
                q, scales = quantize_weight(weight)
                q = q[0, :c_out, :c_in].contiguous()
                w_scales = (scales[:c_out] * self.conv.scale).float()
                sliced = self.conv.sliced(c_out, c_in).float() * self.conv.scale
                square_sums = sliced.square().sum((2, 3))
                packed = (torch.ops.onednn.qconv_prepack(q, w_scales, self.act_scale, ZERO_POINT, [1, 1], [1, 1],
                                                         [1, 1], 1, list(shape)) if ONEDNN else q.float())
            for old in [k for k in cache if k[2:] != key[2:]]:  # drop slices of an older weight or scale
                del cache[old]
            cache[key] = (packed, w_scales, square_sums)
        return cache[key]

    def _conv(self, x, styles, c_out: int):
        """conv(quantise(x * styles), q) * act_scale * w_scales: fp32 NCHW [N, c_out, H, W], and the sums of
        squares for the demodulation."""
        packed, w_scales, square_sums = self._packed(c_out, x.shape[1], x.shape)
        xs = (x * styles[:, :, None, None]).contiguous(memory_format=torch.channels_last)
        with warnings.catch_warnings():  # quantize_per_tensor is deprecated (pytorch #184982) but one fused pass
            warnings.simplefilter("ignore", UserWarning)
            q = torch.quantize_per_tensor(xs, self.act_scale, ZERO_POINT, torch.quint8).int_repr()
        if not ONEDNN:
            out = torch.nn.functional.conv2d(q.float() - ZERO_POINT, packed, padding=1)
            return out.mul_(self.act_scale * w_scales[:, None, None]).contiguous(), square_sums
        zeros = torch.zeros(c_out, dtype=torch.int64)
        out = torch.ops.onednn.qconv2d_pointwise(q, self.act_scale, ZERO_POINT, packed, w_scales, zeros, None,
                                                 [1, 1], [1, 1], [1, 1], 1, 1.0, 0, torch.float32, "none", [],
                                                 None)
        return out.contiguous(), square_sums


def attach(G, act_scales: dict[str, float], min_channels: int, min_size: int):
    """Make the StyledConvs named in `act_scales` run int8 with those scales (in place; returns G)."""
    modules = dict(G.named_modules())
    for name, scale in act_scales.items():
        module = modules[name]
        module.__class__ = Int8StyledConv
        module.act_scale, module.min_channels, module.min_size = float(scale), int(min_channels), int(min_size)
    return G


def calibrate(G, calibration: torch.Tensor, configs) -> dict[str, float]:
    """Per-layer activation scales: max |x * styles| over fp32 forwards of `calibration` at each config / 127.
    G's StyledConvs must be Int8StyledConv (their fp32 path runs while observing)."""
    layers = {name: m for name, m in G.named_modules() if isinstance(m, Int8StyledConv)}
    for m in layers.values():
        m.observing, m.observed, m.act_scale = True, 0.0, None
    try:
        with torch.no_grad():
            for config in configs:
                for chunk in calibration.split(CALIBRATION_BATCH):
                    G(chunk, config=config, noise="const")
    finally:
        for m in layers.values():
            m.observing = False
    return {name: max(m.observed, 1e-8) / 127 for name, m in layers.items()}


def check_calibration_count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of calibration latents must be an integer >= 1, got {n!r}")
    return n


@torch.no_grad()
def calibration_latents(G, n: int, seed: int) -> torch.Tensor:
    """`n` W latents of `G` (its mapping of z ~ N(0, I) from a generator seeded by `seed`), to calibrate on."""
    z = torch.randn(check_calibration_count(n), G.arch.style_dim, generator=torch.Generator().manual_seed(seed))
    return G.mapping(z.to(G.w_avg.dtype))


@torch.no_grad()
def int8_layer_count(Gq, config) -> tuple[int, int]:
    """(3x3 styled convs that run int8, 3x3 styled convs run) in a forward of `Gq` at `config`: how much of the
    model the integer path covers (by the rule of the module docstring, the rest runs fp32)."""
    ran = []
    hooks = [m.register_forward_hook(lambda m, args, out: ran.append(m.runs_int8(args[0].shape[1], out.shape[1],
                                                                                 args[0].shape[2])))
             for m in Gq.modules() if isinstance(m, Int8StyledConv)]
    try:
        Gq(Gq.w_avg[None], config=config, noise="const")
    finally:
        for hook in hooks:
            hook.remove()
    return sum(ran), len(ran)


def _check_calibration(G, calibration) -> torch.Tensor:
    """The calibration latents as given, or ValueError / TypeError naming what is wrong."""
    if not isinstance(calibration, torch.Tensor) or not calibration.is_floating_point():
        raise TypeError(f"calibration must be a float tensor of W latents, got {type(calibration).__name__}"
                        + (f" {calibration.dtype}" if isinstance(calibration, torch.Tensor) else ""))
    dim, n_styles, shape = G.arch.style_dim, G.arch.n_styles, tuple(calibration.shape)
    ok = (len(shape) == 2 and shape[1] == dim) or (len(shape) == 3 and shape[1:] == (n_styles, dim))
    if not ok or shape[0] == 0:
        raise ValueError(f"calibration must be W latents [N >= 1, {dim}] or W+ [N, {n_styles}, {dim}], got {shape}")
    return calibration.to(G.w_avg.dtype)


def quantize_int8(G, calibration: torch.Tensor, configs=None, min_channels: int = MIN_CHANNELS,
                  min_size: int = MIN_SIZE):
    """A CompressedGenerator with s8 per-output-channel 3x3 styled-conv weights that runs its large plain 3x3
    layers in int8 (see the module docstring for the rule; `min_channels` / `min_size` change it).

    `calibration`: W or W+ latents; the activation scale of every layer is the largest |x * styles| of fp32
    forwards of them (noise="const") at each of `configs` (default: the full generator and the uniform ratios
    0.25 and 0.5, so the sub-generators' ranges are covered too)."""
    from anycost.compression.generator import build, compressible_keys, start_from

    steps, encodings = start_from(G)
    calibration = _check_calibration(G, calibration)
    state = {k: v.detach().clone() for k, v in G.state_dict().items()}
    for key in compressible_keys(G):
        q, scales = quantize_weight(state[key])
        state[key] = q.float() * scales.reshape(1, -1, 1, 1, 1)
    Gq = build(G.arch, state, steps, encodings)
    layers = [name for name, m in Gq.named_modules() if isinstance(m, StyledConv)]
    attach(Gq, dict.fromkeys(layers, 1.0), min_channels, min_size)
    if configs is None:
        configs = [Gq.full_config] + [Gq.subnet(ratio=r) for r in (0.25, 0.5)]
    act_scales = calibrate(Gq, calibration, configs)
    attach(Gq, act_scales, min_channels, min_size)
    for name in layers:
        encodings[f"{name}.conv.weight"] = {"kind": "int8", "act_scale": act_scales[name],
                                           "min_channels": int(min_channels), "min_size": int(min_size)}
    Gq.steps = steps + [{"method": "int8", "calibration": list(calibration.shape), "min_channels": min_channels,
                         "min_size": min_size, "onednn": ONEDNN}]
    Gq.encodings = encodings
    return Gq
