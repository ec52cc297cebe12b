"""int8 styled convolutions: s8 weights per output channel, activations rounded to int8 with each sample's own scale
(or a calibrated one per layer), integer convolution in our own kernels (`anycost.ops.qconv2d`: int32 accumulation,
a fused fp32 epilogue).

As in the bf16 path (`anycost.ops.bf16`) the conv runs in its non-fused form: the styles scale the input
activations, the demodulation scales the output channels, so the integer weight is the same for every sample and
is packed once per (layer, width) (`ops.qconv2d_pack`).

- Smoothing (SmoothQuant, Xiao et al. 2023): StyleGAN's modulated activations have outlier channels (the largest
  |x * styles| of a layer is 2-4x its 99th percentile), so one 8-bit scale per tensor leaves the other channels
  a few levels (the bundled model: 24 dB PSNR), and clipping the outliers costs more. Input channel i of a layer
  is divided by a_i = max|x_i * styles_i|^0.5 / max|W[:, i]|^0.5 (calibrated) and the weight's column i
  multiplied by it, which moves half of the range disparity into the weight (per output channel scales absorb
  it there): 31 dB on the bundled model. The division rides on the kernel's per-(sample, channel) multiplier
  (styles / a), so it costs nothing at run time.
- Weights: W * a ~ q * s with q in [-127, 127] and one scale s per output channel over *all* input channels of
  the full weight, so a sub-generator's [c_out, c_in] slice is exact (its q, s and a are slices). The generator
  keeps the dequantised q * s / a as its dense weights (its fp32 path runs the same weights), and q and s are
  re-derived from them and a exactly (the largest |q| of a channel is 127; s keeps 16 significant bits,
  `weight_scales`), as k-means re-derives its codebook.
  A k-means model keeps its clustered weights instead (the file stores their codebook and indices, 1-8 bits per
  weight, plus the smoothing factors): the int8 layers quantise them when they pack them.
- Activations: x * styles / a rounded to int8 in [-127, 127] (symmetric), the kernel doing the rounding fused into
  its input packing. The scale is, by default (`activations="dynamic"`), each sample's own: its largest
  |x * styles / a| / 127, found by the kernel in one more read of x (nothing clamps, no level is wasted); or
  (`"calibrated"`) one per layer, ACT_HEADROOM x the largest such value of the calibration forwards / 127, values
  beyond it clamped (the headroom because a few latents' maxima underestimate other latents' ranges). Dynamic
  scales gave the bundled model 38.2 dB PSNR to fp32 where calibrated ones gave 33.0 (README, int8).
- One call (`ops.qconv2d`) does the rest: integer conv (or the 2x upsampling conv: a stride-2 transposed conv in
  integers, then the [1,3,3,1] blur in fp32), then out_scale[n, o] * acc (out_scale = act_scale x weight scale x
  demodulation, the demodulation from the dequantised weight's sums of squares) + noise + bias, leaky ReLU.
- Where: every 3x3 styled conv (plain and upsampling) whose min(c_in, c_out) >= `min_channels` and input size
  >= `min_size` (defaults MIN_CHANNELS / MIN_SIZE, from `bench/int8_conv.py`; see bench/RESULTS.md, int8),
  the plain ones only on CPU levels with an int8 dot product (`plain_convs_pay`: VNNI; elsewhere the fp32 Winograd
  kernels run them faster, on the dequantised weights); the ToRGB 1x1 convs (summed in the epilogue of the int8
  conv before them, `ops.qconv2d_to_rgb`) and the mapping stay fp32.
"""

from __future__ import annotations

import torch

from anycost import ops
from anycost.models.stylegan2.layers import StyledConv
from anycost.ops import ref

MIN_CHANNELS = 1  # min(c_in, c_out) of a layer run in int8 (the measured rule above)
MIN_SIZE = 1  # input height of a layer run in int8
SMOOTHING = 0.5  # the exponent of the activation range in the smoothing factors (SmoothQuant's default)
# The activation range over the calibrated maximum: the bundled model's first layer met up to 2.2x its maximum over
# 16 calibration latents on other latents; of 1, 1.5, 2, 2.5, 3, 1.5 gave the best PSNR (32.2 dB at 64 px, 16
# unseen latents, random noise; 26.9 dB without).
ACT_HEADROOM = 1.5
DOT_PRODUCT_LEVELS = ("avx512_vnni",)  # CPU levels whose int8 micro-kernel has one (`plain_convs_pay`)
ACTIVATIONS = ("dynamic", "calibrated")  # how the activation scale is chosen (module docstring)
CALIBRATION = 16  # calibration latents drawn by default (`anycost compress`; x3 configs)
CALIBRATION_BATCH = 8  # latents per calibration forward (memory stays that of batch 8 whatever N is)
_TINY = torch.finfo(torch.float32).tiny
SCALE_BITS = 16  # significant bits of a weight scale (`weight_scales`)


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel scales [c_out] of a [1, c_out, c_in, k, k] weight: max |W| of the channel / 127, rounded
    to `SCALE_BITS` significant bits.

    The rounding makes the scales a fixed point of dequantising and quantising again: the model keeps q * s / a as
    its dense weight and every int8 layer (and a saved file) re-derives s from it, which comes back within a few
    ulps of s (the divisions by a and 127 round), so at full precision a reloaded model could run scales an ulp
    apart (outputs 1e-2 apart after an activation rounding flips). A few ulps cannot cross the rounding boundary of
    16 bits."""
    scales = weight.detach().abs().amax((0, 2, 3, 4)).float().clamp_min(_TINY) / 127
    dropped = 23 - (SCALE_BITS - 1)  # float32 mantissa bits below the kept ones
    bits = (scales.view(torch.int32) + (1 << (dropped - 1))) & ~((1 << dropped) - 1)  # round half up (all > 0)
    return bits.view(torch.float32)


def quantize_weight(weight: torch.Tensor, smooth: torch.Tensor | None = None):
    """(q int8 [same shape], scales float32 [c_out]): W * smooth (per input channel; 1 without) ~ q * scales, q in
    [-127, 127]."""
    weight = weight.detach()
    if smooth is not None:
        weight = weight * smooth.reshape(1, 1, -1, 1, 1)
    scales = weight_scales(weight)
    q = torch.round(weight / scales.reshape(1, -1, 1, 1, 1)).clamp_(-127, 127).to(torch.int8)
    return q, scales


def dequantize_weight(q: torch.Tensor, scales: torch.Tensor, smooth: torch.Tensor) -> torch.Tensor:
    """The dense fp32 weight [1, c_out, c_in, k, k] a quantised one stands for: q * scales / smooth."""
    return q.float() * scales.reshape(1, -1, 1, 1, 1) / smooth.reshape(1, 1, -1, 1, 1)


def smoothing_factors(act_max: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-input-channel factors a [c_in] = act_max^SMOOTHING / max|W[:, i]|^(1 - SMOOTHING) of a layer whose
    activations reached act_max [c_in] (channels never active are floored at 1e-5 of the largest)."""
    act = act_max.float().clamp_min(float(act_max.max()) * 1e-5 + _TINY)
    w_max = weight.detach().abs().amax((0, 1, 3, 4)).float().clamp_min(_TINY)
    return act ** SMOOTHING / w_max ** (1 - SMOOTHING)


def plain_convs_pay() -> bool:
    """Whether the plain 3x3 convs of an int8 model run int8 at the CPU level in use (impl "auto"; the upsampling
    convs always do): where the int8 micro-kernel has a dot-product instruction (`DOT_PRODUCT_LEVELS`). Elsewhere
    (avx2, and avx512 without VNNI) it spends four instructions per 32 products (qconv_microkernel.h), and the fp32
    kernels' F(4x4) Winograd plain convs, run on the model's dequantised weights, are faster: on a Zen 4 held to the
    avx2 level (whole config-f forwards layer by layer, 2 threads) the int8 plain convs took 0.54-0.75x the fp32
    ones' time from 64 px up (512 @ 64 px: 74.9 against 42.8 ms) while the int8 upsampling convs took 1.08-1.30x
    less than the fp32 ones; with VNNI the int8 plain convs were 1.4-2.3x faster."""
    return ops.cpu_capability() in DOT_PRODUCT_LEVELS


def fuses_to_rgb(impl: str, upsample: bool, x: torch.Tensor) -> bool:
    """Whether an int8 layer runs the ToRGB after it in its epilogue (`ops.qconv2d_to_rgb`): every plain conv on the
    native kernels, at every size and width, unlike the fp32 kernels' rule (`ops.fuses_to_rgb`: from 64 x 64 px and,
    keeping the output, 64 channels at most). Whole config-f forwards (Zen 4, 2 threads, 15 alternated rounds,
    medians) took 1024 / 1.0 310.3 ms with the ToRGBs apart, 288.3 fused by that rule, 284.1 fused always; 256 / 0.25
    25.9, 25.1, 24.0."""
    return not upsample and ops.NATIVE and ops.resolve_impl(impl, x, op="qconv2d") == "kernel"


class Int8StyledConv(StyledConv):
    """A StyledConv that runs int8 where the rule holds (`act_scale` set by calibration or a loaded file); its
    parameters and state keys are those of StyledConv. An instance gets this class from `attach` (the module is
    kept, its class swapped). Inference only: the int8 layers run under no_grad."""

    act_scale: float | None = None  # the calibrated activation scale; None: each sample's own (dynamic)
    smooth: torch.Tensor | None = None  # [c_in of the full layer]: the smoothing factors; None: fp32 layer
    min_channels: int = MIN_CHANNELS
    min_size: int = MIN_SIZE
    observing: bool = False  # calibration: record max |x * styles| per input channel into `observed`, run fp32
    observed: torch.Tensor | None = None

    def runs_int8(self, c_in: int, c_out: int, size: int, impl: str = "auto") -> bool:
        """Whether this call runs int8: the model's rule (`min_channels`, `min_size`) and, with impl "auto", for a
        plain conv the CPU level's (`plain_convs_pay`); "kernel" and "ref" run every layer of the rule in int8."""
        if self.smooth is None or min(c_in, c_out) < self.min_channels or size < self.min_size:
            return False
        return self.upsample or impl != "auto" or plain_convs_pay()

    def forward(self, x, w, c_out: int, noise: torch.Tensor, impl: str = "auto", precision: str = "fp32",
                to_rgb: tuple | None = None):
        """As `StyledConv.forward`: with `to_rgb`, a plain int8 layer sums that ToRGB in its epilogue
        (`ops.qconv2d_to_rgb`) where `fuses_to_rgb` says so."""
        c_in = x.shape[1]
        if self.observing:
            with torch.no_grad():
                styles = self.conv.modulation(w, c_in, impl=impl)
                seen = (x * styles[:, :, None, None]).abs().amax((0, 2, 3)).float()
                self.observed[:c_in] = torch.maximum(self.observed[:c_in], seen)
        if not self.runs_int8(c_in, c_out, x.shape[2], impl):
            return super().forward(x, w, c_out, noise, impl, precision, to_rgb)
        with torch.no_grad():
            styles = self.conv.modulation(w, c_in, impl=impl).float()
            packed, wsum, w_scales, square_sums = self._packed(c_out, c_in)
            demod = torch.rsqrt(styles.square() @ square_sums.T + ref.DEMOD_EPS)
            # dynamic (act_scale None): the op finds each sample's scale and multiplies it into out_scale
            out_scale = demod.mul_(w_scales if self.act_scale is None else w_scales * self.act_scale)
            x, bias, mult = x.float(), self.activate.bias[:c_out], styles / self.smooth[:c_in]
            if to_rgb is not None and fuses_to_rgb(impl, self.upsample, x):
                layer, w_rgb, skip, keep_x = to_rgb
                return ops.qconv2d_to_rgb(
                    x, mult, self.act_scale, packed, wsum, out_scale, noise=noise, noise_strength=self.noise.weight,
                    bias=bias, rgb_weight=layer.conv.sliced(3, c_out),
                    rgb_styles=layer.conv.modulation(w_rgb, c_out, impl=impl), rgb_bias=layer.bias.reshape(3),
                    rgb_weight_scale=layer.conv.scale, skip=skip, keep_x=keep_x)
            out = ops.qconv2d(x, mult, self.act_scale, packed, wsum, out_scale, upsample=self.upsample, noise=noise,
                              noise_strength=self.noise.weight, bias=bias, activate=True, impl=impl)
        return out if to_rgb is None else (out, None)

    def native_tensors(self, c_out: int, c_in: int, size: int, impl: str) -> list[tuple[str, torch.Tensor]]:
        """(part, tensor) of this conv at [c_out, c_in] for an input of `size` px in the generator's one native
        call (`ops.synthesis`, csrc/synthesis_cpu.cpp), which then computes what `forward` does in one int8 conv
        (and fuses the ToRGB after a plain one at every size, as `fuses_to_rgb`); none where it runs fp32
        (`runs_int8`)."""
        if not self.runs_int8(c_in, c_out, size, impl):
            return []
        packed, wsum, w_scales, square_sums = self._packed(c_out, c_in)
        parts = [("packed", packed), ("wsum", wsum), ("square_sums", square_sums), ("smooth", self.smooth[:c_in])]
        if self.act_scale is None:
            return parts + [("scales", w_scales)]
        return parts + [("scales", w_scales * self.act_scale), ("act_scale", torch.tensor([self.act_scale]))]

    def _packed(self, c_out: int, c_in: int):
        """(packed int8 weight and its sums (`ops.qconv2d_pack`), weight scales x weight_scale [c_out], fp32 sums of
        squares [c_out, c_in] of the scaled weight) of this slice, built once and kept until the weight changes (its
        version counter; `attach` drops the slices of other smoothing factors)."""
        weight = self.conv.weight
        key = (c_out, c_in, weight._version if not weight.is_inference() else -1)
        cache = self.__dict__.setdefault("_int8_cache", {})
        if key not in cache:
            with torch.no_grad():
                q, scales = quantize_weight(weight, self.smooth)
                packed, wsum = ops.qconv2d_pack(q[0, :c_out, :c_in])
                w_scales = (scales[:c_out] * self.conv.scale).float()
                square_sums = (self.conv.sliced(c_out, c_in).float() * self.conv.scale).square().sum((2, 3))
            for old in [k for k in cache if k[2:] != key[2:]]:  # drop slices of an older weight
                del cache[old]
            cache[key] = (packed, wsum, w_scales, square_sums)
        return cache[key]


def attach(G, layers: dict[str, tuple[float | None, torch.Tensor]], min_channels: int, min_size: int):
    """Make the StyledConvs named in `layers` run int8 with their (activation scale, None for dynamic; smoothing
    factors) (in place; returns G)."""
    modules = dict(G.named_modules())
    for name, (scale, smooth) in layers.items():
        module = modules[name]
        module.__class__ = Int8StyledConv
        module.act_scale = None if scale is None else float(scale)
        module.smooth = smooth.detach().float().contiguous()
        module.min_channels, module.min_size = int(min_channels), int(min_size)
        module.__dict__.pop("_int8_cache", None)  # packed for other factors
    return G


def calibrate(G, calibration: torch.Tensor, configs) -> dict[str, torch.Tensor]:
    """Per-layer, per-input-channel maxima of |x * styles| [c_in] over fp32 forwards of `calibration` at each
    config. G's StyledConvs must be Int8StyledConv (their fp32 path runs while observing)."""
    layers = {name: m for name, m in G.named_modules() if isinstance(m, Int8StyledConv)}
    for m in layers.values():
        m.observing, m.observed, m.smooth = True, torch.zeros(m.conv.weight.shape[2]), None
    try:
        with torch.no_grad():
            for config in configs:
                for chunk in calibration.split(CALIBRATION_BATCH):
                    G(chunk, config=config, noise="const")
    finally:
        for m in layers.values():
            m.observing = False
    return {name: m.observed for name, m in layers.items()}


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
    model the integer path covers at the CPU level in use (by the rule of the module docstring, the rest runs fp32)."""
    ran = []
    hooks = [m.register_forward_hook(lambda m, args, out: ran.append(m.runs_int8(args[0].shape[1], args[2],
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
                  min_size: int = MIN_SIZE, activations: str = "dynamic"):
    """A CompressedGenerator with s8 per-output-channel 3x3 styled-conv weights that runs its 3x3 styled convs in
    int8 (see the module docstring for the rule; `min_channels` / `min_size` change it).

    `calibration`: W or W+ latents. The per-channel activation ranges (for the smoothing factors and the activation
    scales) are the largest |x * styles| of fp32 forwards of G itself on them (noise="const") at each of `configs`
    (default: the full generator and the uniform ratios 0.25 and 0.5, so the sub-generators' ranges are covered
    too). `activations`: "dynamic" (each sample's own scale, found at run time) or "calibrated" (one per layer,
    from those ranges). `G` may be a k-means model (`kmeans_quantize`): its clustered weights then run int8 and
    stay stored as codebook + indices."""
    from anycost.compression.generator import build, start_from

    if activations not in ACTIVATIONS:
        raise ValueError(f"activations must be one of {', '.join(ACTIVATIONS)}, got {activations!r}")
    steps, encodings = start_from(G, allow=("kmeans",))
    calibration = _check_calibration(G, calibration)
    Gq = build(G.arch, {k: v.detach().clone() for k, v in G.state_dict().items()}, steps, encodings)
    names = [name for name, m in Gq.named_modules() if isinstance(m, StyledConv)]
    attach(Gq, {name: (1.0, torch.ones(1)) for name in names}, min_channels, min_size)
    if configs is None:
        configs = [Gq.full_config] + [Gq.subnet(ratio=r) for r in (0.25, 0.5)]
    act_max = calibrate(Gq, calibration, configs)  # on G's own weights, before they are quantised
    layers = {}
    with torch.no_grad():
        for name in names:
            weight = Gq.get_parameter(f"{name}.conv.weight")
            smooth = smoothing_factors(act_max[name], weight)
            if f"{name}.conv.weight" not in encodings:  # (k-means weights stay: the packing quantises them)
                weight.copy_(dequantize_weight(*quantize_weight(weight, smooth), smooth))
            calibrated = ACT_HEADROOM * max(float((act_max[name] / smooth).max()), 1e-8) / 127
            layers[name] = (calibrated if activations == "calibrated" else None, smooth)
    attach(Gq, layers, min_channels, min_size)
    for name, (scale, _) in layers.items():
        key, spec = f"{name}.conv.weight", {"act_scale": scale, "min_channels": int(min_channels),
                                            "min_size": int(min_size)}
        encodings[key] = {**encodings[key], "int8": spec} if key in encodings else {"kind": "int8", **spec}
    Gq.steps = steps + [{"method": "int8", "calibration": list(calibration.shape), "min_channels": min_channels,
                         "min_size": min_size, "smoothing": SMOOTHING, "activations": activations}
                        | ({"headroom": ACT_HEADROOM} if activations == "calibrated" else {})]
    Gq.encodings = encodings
    return Gq
