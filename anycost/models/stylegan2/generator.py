"""The Anycost generator: one set of StyleGAN2 weights, any resolution x any channel widths.

A sub-generator is a `SubnetConfig` passed to `forward`; the module is never mutated to select one,
so two configs can run at once on one model. State-dict keys match the official checkpoints.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from anycost import ops
from anycost.models.stylegan2.arch import GeneratorArch, n_layers
from anycost.models.stylegan2.config import SubnetConfig
from anycost.models.stylegan2.layers import EqualLinear, PixelNorm, StyledConv, ToRGB

NOISE_MODES = ("random", "const")


class Generator(nn.Module):
    """StyleGAN2 (config-e/f family) generator with elastic resolution and channels.

    >>> G = Generator(256, channel_multiplier=2)
    >>> img = G(G.mapping(torch.randn(1, 512)), config=G.subnet(resolution=128, ratio=0.5))
    """

    def __init__(self, resolution: int = 1024, channel_multiplier: float = 2, channel_max: int = 512,
                 style_dim: int = 512, n_mlp: int = 8, lr_mlp: float = 0.01, *, arch: GeneratorArch | None = None):
        super().__init__()
        if arch is None:
            arch = GeneratorArch(resolution, channel_multiplier, channel_max, style_dim, n_mlp, lr_mlp)
        self.arch = arch
        full = arch.full_widths
        self.style = nn.Sequential(
            PixelNorm(),
            *[EqualLinear(arch.style_dim, arch.style_dim, lr_mul=arch.lr_mlp, activation="lrelu")
              for _ in range(arch.n_mlp)],
        )
        self.input = nn.Module()
        self.input.input = nn.Parameter(torch.randn(1, full[0], 4, 4))
        self.conv1 = StyledConv(full[0], full[1], arch.style_dim)
        self.to_rgb1 = ToRGB(full[1], arch.style_dim)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for k in range((len(full) - 2) // 2):
            c_prev, c_up, c_out = full[1 + 2 * k], full[2 + 2 * k], full[3 + 2 * k]
            self.convs.append(StyledConv(c_prev, c_up, arch.style_dim, upsample=True))
            self.convs.append(StyledConv(c_up, c_out, arch.style_dim))
            self.to_rgbs.append(ToRGB(c_out, arch.style_dim))
        self.noises = nn.Module()
        for i in range(arch.n_noises):
            size = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, size, size))
        self.register_buffer("w_avg", torch.zeros(arch.style_dim))
        if self.w_avg.device.type != "meta":  # shape-only models (checkpoint checks) skip the sampling
            self.update_w_avg()

    # -- configs -------------------------------------------------------------------------------
    @property
    def full_config(self) -> SubnetConfig:
        return SubnetConfig.full(self.arch)

    def subnet(self, resolution: int | None = None, ratio: float | None = None,
               channels: Sequence[int] | None = None) -> SubnetConfig:
        """A validated sub-generator config: a uniform `ratio` or explicit per-layer `channels`."""
        if ratio is not None and channels is not None:
            raise ValueError("give either ratio or channels, not both")
        if channels is not None:
            return SubnetConfig.flexible(self.arch, channels, resolution)
        if ratio is not None:
            return SubnetConfig.uniform(self.arch, ratio, resolution)
        return SubnetConfig.full(self.arch, resolution)

    # -- latents -------------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor, impl: str = "ref") -> torch.Tensor:
        """z [..., style_dim] -> w [..., style_dim]. `impl` is that of the layers' bias + leaky ReLU: "ref" by
        default, as the native op has no double backward; "auto" is faster (1 pass instead of 3) where no
        second derivative is taken."""
        if z.shape[-1] != self.arch.style_dim:
            raise ValueError(f"z must end in {self.arch.style_dim} dims, got shape {tuple(z.shape)}")
        x = z.reshape(-1, z.shape[-1])
        for layer in self.style:
            x = layer(x, impl=impl) if isinstance(layer, EqualLinear) else layer(x)
        return x.reshape(z.shape)

    @torch.no_grad()
    def seed_w(self, seeds) -> torch.Tensor:
        """w [len(seeds), style_dim]: one z per seed, drawn independently, so a seed always gives the same
        image whatever else is rendered with it (`anycost generate --seeds`, the app's samples, `anycost edit`)."""
        z = torch.stack([torch.randn(self.arch.style_dim, generator=torch.Generator().manual_seed(int(s)))
                         for s in seeds])
        return self.mapping(z.to(self.w_avg.device, self.w_avg.dtype))

    @torch.no_grad()
    def mean_w(self, n: int = 10000, seed: int = 0, batch: int = 2048) -> torch.Tensor:
        """Mean of the mapping over `n` normal z drawn with `seed` (deterministic)."""
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        device = self.w_avg.device
        rng = torch.Generator(device="cpu").manual_seed(seed)
        total = torch.zeros(self.arch.style_dim, dtype=torch.float64, device=device)
        for start in range(0, n, batch):
            z = torch.randn(min(batch, n - start), self.arch.style_dim, generator=rng).to(device)
            total += self.mapping(z.to(self.w_avg.dtype), impl="auto").double().sum(0)
        return (total / n).to(self.w_avg.dtype)

    def update_w_avg(self, n: int = 10000, seed: int = 0) -> None:
        """Recompute the tracked mean w used by truncation (after loading or editing mapping weights)."""
        self.w_avg.copy_(self.mean_w(n, seed))

    @staticmethod
    def mix_styles(w1: torch.Tensor, w2: torch.Tensor, crossover: int, n_styles: int) -> torch.Tensor:
        """Style mixing: W+ that uses `w1` for the first `crossover` layers and `w2` for the rest."""
        if not 0 <= crossover <= n_styles:
            raise ValueError(f"crossover must be in [0, {n_styles}], got {crossover}")
        if w1.shape != w2.shape or w1.ndim != 2:
            raise ValueError(f"w1 and w2 must both be [N, style_dim], got {tuple(w1.shape)} and {tuple(w2.shape)}")
        idx = torch.arange(n_styles, device=w1.device).reshape(1, -1, 1)
        return torch.where(idx < crossover, w1.unsqueeze(1), w2.unsqueeze(1))

    def make_noise(self, batch: int, resolution: int | None = None, rng: torch.Generator | None = None):
        """Fresh per-layer noise tensors (one per noise input up to `resolution`)."""
        count = n_layers(resolution or self.arch.resolution) - 1
        sizes = [2 ** ((i + 5) // 2) for i in range(count)]
        return [torch.randn(batch, 1, s, s, generator=rng, device=self.w_avg.device, dtype=self.w_avg.dtype)
                for s in sizes]

    # -- forward -------------------------------------------------------------------------------
    def _styles(self, w: torch.Tensor, needed: int, truncation: float) -> torch.Tensor:
        sd, full = self.arch.style_dim, self.arch.n_styles
        if w.ndim == 2 and w.shape[1] == sd:
            w = w.unsqueeze(1).expand(-1, needed, -1)
        elif w.ndim != 3 or w.shape[2] != sd or w.shape[1] not in (needed, full):
            raise ValueError(
                f"w must be W [N, {sd}] or W+ [N, {full} (or {needed} for this resolution), {sd}], "
                f"got shape {tuple(w.shape)}"
            )
        if w.shape[0] == 0:
            raise ValueError("w has an empty batch")
        if truncation != 1:
            w = torch.lerp(self.w_avg.to(w.dtype), w, truncation)
        return w

    def _noise(self, noise, batch: int, count: int, rng):
        if isinstance(noise, str):
            if noise == "const":
                buffers = self.noises._buffers  # not getattr: Module.__getattr__ costs ~1 us a call, per preview frame
                return [buffers[f"noise_{i}"] for i in range(count)]
            if noise == "random":
                return self.make_noise(batch, 2 ** ((count + 3) // 2), rng)
            raise ValueError(f"noise must be one of {NOISE_MODES} or a list of tensors, got {noise!r}")
        noise = list(noise)
        if len(noise) < count:
            raise ValueError(f"this resolution needs {count} noise tensors, got {len(noise)}")
        for i, t in enumerate(noise[:count]):
            size = 2 ** ((i + 5) // 2)
            if t.ndim != 4 or t.shape[1] != 1 or t.shape[2:] != (size, size) or t.shape[0] not in (1, batch):
                raise ValueError(f"noise[{i}] must be [1 or {batch}, 1, {size}, {size}], got {tuple(t.shape)}")
        return noise[:count]

    def forward(self, w: torch.Tensor, config: SubnetConfig | None = None, noise="random", truncation: float = 1.0,
                return_rgbs: bool = False, impl: str = "auto", rng: torch.Generator | None = None,
                precision: str = "fp32"):
        """Render images from W [N, style_dim] or W+ [N, n_styles, style_dim].

        Returns the raw output [N, 3, res, res] (nominally in [-1, 1], never clamped), or
        ``(image, rgbs)`` with the skip image of every scale up to `res` when `return_rgbs`.
        `noise` is "random" (drawn with `rng`), "const" (the stored buffers) or a list of tensors.
        `precision="bf16"` runs the styled convolutions of >= 16 channels and the ToRGB convs after them in bf16
        (oneDNN, fp32 accumulation; activations bf16 between those layers; the model, `w`, the RGB skip images and
        the output stay fp32; CPU only; inference only: no gradient passes those layers); `impl` still picks the
        ops of the layers kept in fp32.
        """
        ops.check_precision(precision)
        if w.dtype != self.w_avg.dtype:
            raise TypeError(f"w is {w.dtype} but the generator is {self.w_avg.dtype}: pass w in the generator's "
                            f"dtype (for bf16 rendering keep both float32 and pass precision='bf16')")
        if config is None:
            config = self.full_config
        elif not isinstance(config, SubnetConfig):
            raise TypeError(f"config must be a SubnetConfig, got {type(config).__name__}")
        elif config.arch != self.arch:
            raise ValueError(f"config is for {config.arch}, this generator is {self.arch}")
        widths = config.widths
        styles = self._styles(w, len(widths), truncation)
        noises = self._noise(noise, styles.shape[0], len(widths) - 1, rng)
        if not return_rgbs and precision == "fp32" and self._runs_native(styles, noises, impl):
            names, tensors = _synthesis_names(len(widths)), self._synthesis_tensors(noises, len(widths))
            more_names, more_tensors = self._native_conv_tensors(widths, impl)
            return ops.synthesis(styles, (*names, *more_names), tensors + more_tensors,
                                 self.arch.full_widths[: len(widths)], widths, config.resolution)
        return self._layers(styles, noises, widths, impl, precision, return_rgbs)

    def _runs_native(self, styles: torch.Tensor, noises: list, impl: str) -> bool:
        """Whether the forward can be one native call (`anycost.ops.synthesis`): impl "kernel", or "auto" with no
        tuning-table entry choosing another fp32 backend; the extension built; styles, weights and noise float32 on
        the CPU; the plain StyledConv / ToRGB layers (or convs `_native_convs` accepts) and no forward hook that
        expects their calls (per-layer timings, a preview session's abort check); no gradient needed; and no
        dispatch mode (e.g. torch's FlopCounterMode) watching the ops, which would see one opaque call."""
        if impl not in ("auto", "kernel") or not ops.NATIVE or torch.compiler.is_compiling():
            return False
        weight = self.conv1.conv.weight
        if not (styles.device.type == weight.device.type == "cpu" and styles.dtype == weight.dtype == torch.float32):
            return False
        if any(n.device.type != "cpu" or n.dtype != torch.float32 for n in noises):
            return False
        convs, rgbs = (self.conv1, *self.convs._modules.values()), (self.to_rgb1, *self.to_rgbs._modules.values())
        if not self._native_convs(convs) or any(type(m) is not ToRGB for m in rgbs):
            return False
        modulations = [m._modules["conv"]._modules["modulation"] for m in convs + rgbs]  # called as modules too
        if _hooked(convs + rgbs) or _hooked(modulations):
            return False
        if impl == "auto" and ops.tuning.overrides_kernel("fp32"):
            return False
        if _get_current_dispatch_mode() is not None:
            return False
        return not torch.is_grad_enabled() or not (styles.requires_grad or any(n.requires_grad for n in noises) or
                                                   any(p.requires_grad for p in self.parameters()))

    def _native_convs(self, convs) -> bool:
        """Whether the native call can run these StyledConvs (the plain class; a subclass that runs its convs
        otherwise says for itself)."""
        return all(type(m) is StyledConv for m in convs)

    def _native_conv_tensors(self, widths: Sequence[int], impl: str) -> tuple[tuple, list]:
        """(names, tensors) the native call takes besides `_synthesis_tensors`' for this config: none for plain
        convs (an int8 model gives its int8 convs' here, `anycost.compression.generator`)."""
        return (), []

    def _synthesis_tensors(self, noises: list, layers: int) -> list:
        """The tensors of `ops.synthesis` for a config of `layers` layer widths, in `_synthesis_names`' order. (The
        modules' own dicts, not attribute access: at a 64 px preview's 0.4 ms the ~100 `nn.Module.__getattr__`
        calls and a ModuleList slice cost half as much again.)"""
        tensors = [self.input._parameters["input"], self._buffers["w_avg"]]
        convs = list(self.convs._modules.values())
        for layer in [self.conv1, *convs[: layers - 2]]:
            conv, mod = layer._modules["conv"], layer._modules["conv"]._modules["modulation"]._parameters
            tensors += [conv._parameters["weight"], mod["weight"], mod["bias"],
                        layer._modules["noise"]._parameters["weight"], layer._modules["activate"]._parameters["bias"]]
        rgbs = list(self.to_rgbs._modules.values())
        for layer in [self.to_rgb1, *rgbs[: (layers - 2) // 2]]:
            conv, mod = layer._modules["conv"], layer._modules["conv"]._modules["modulation"]._parameters
            tensors += [conv._parameters["weight"], mod["weight"], mod["bias"], layer._parameters["bias"]]
        return tensors + list(noises)

    def _layers(self, styles: torch.Tensor, noises: list, widths: Sequence[int], impl: str, precision: str,
                return_rgbs: bool):
        """The forward layer by layer (every op through `anycost.ops`): for training, bf16, the skip images of every
        scale, the reference ops, and wherever the native forward does not apply."""
        x = self.input.input[:, : widths[0]].expand(styles.shape[0], -1, -1, -1)
        if precision == "bf16":  # the activations between layers stay bf16 (the RGB skip images stay fp32)
            x = x.to(torch.bfloat16)
        blocks = (len(widths) - 2) // 2
        x, skip = _conv_to_rgb(self.conv1, self.to_rgb1, x, styles[:, 0], styles[:, 1], widths[1], noises[0], None,
                               impl, precision, last=blocks == 0)
        rgbs = [skip]
        for k in range(blocks):
            up = self.convs[2 * k]
            x = _bf16_input(up, x, widths[2 + 2 * k], impl) if precision == "bf16" else x
            x = up(x, styles[:, 1 + 2 * k], widths[2 + 2 * k], noises[1 + 2 * k], impl, precision)
            x = _bf16_input(self.convs[2 * k + 1], x, widths[3 + 2 * k], impl) if precision == "bf16" else x
            x, skip = _conv_to_rgb(self.convs[2 * k + 1], self.to_rgbs[k], x, styles[:, 2 + 2 * k],
                                   styles[:, 3 + 2 * k], widths[3 + 2 * k], noises[2 + 2 * k], skip, impl, precision,
                                   last=k == blocks - 1)
            rgbs.append(skip)
        return (skip, rgbs) if return_rgbs else skip

    def extra_repr(self) -> str:
        return repr(self.arch)


def _hooked(modules) -> bool:
    """Whether forward hooks would see these modules' calls (their own hooks, or global ones)."""
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


@functools.cache
def _synthesis_names(layers: int) -> tuple[str, ...]:
    """The state-dict names of `Generator._synthesis_tensors(noises, layers)`, in its order."""
    names = ["input.input", "w_avg"]
    for j in range(layers - 1):
        p = "conv1" if j == 0 else f"convs.{j - 1}"
        names += [f"{p}.conv.weight", f"{p}.conv.modulation.weight", f"{p}.conv.modulation.bias", f"{p}.noise.weight",
                  f"{p}.activate.bias"]
    for t in range(layers // 2):
        p = "to_rgb1" if t == 0 else f"to_rgbs.{t - 1}"
        names += [f"{p}.conv.weight", f"{p}.conv.modulation.weight", f"{p}.conv.modulation.bias", f"{p}.bias"]
    return tuple(names + [f"noises.noise_{j}" for j in range(layers - 1)])


def _bf16_input(conv, x, c_out, impl):
    """x as the StyledConv `conv` (to c_out channels) takes it in a bf16 render (`ops.bf16_input`)."""
    return ops.bf16_input(x, conv.conv.sliced(c_out, x.shape[1]), upsample=conv.upsample, impl=impl)


def _conv_to_rgb(conv, to_rgb, x, w_conv, w_rgb, c_out, noise, skip, impl, precision, last):
    """A resolution's plain conv and its ToRGB: (x, rgb), the ToRGB fused into the conv where the ops take both
    (`StyledConv.forward`); the last one's x, which nothing reads, is then not even written (None)."""
    x, rgb = conv(x, w_conv, c_out, noise, impl, precision, (to_rgb, w_rgb, skip, not last))
    if rgb is None:
        rgb = to_rgb(x, w_rgb, skip, impl, precision)
    return x, rgb
