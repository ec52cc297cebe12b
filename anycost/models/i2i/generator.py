"""The ResNet image-to-image generator: one set of weights, any sub-network of it.

A sub-network is an `I2IConfig` passed to `forward`; the module is never mutated to select one, so two
configs can run at once on one model. `export` copies one sub-network out as a plain, smaller generator.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from anycost import ops
from anycost.models.i2i.arch import MIN_SIZE, SIZE_MULTIPLE, I2IArch
from anycost.models.i2i.config import I2IConfig
from anycost.models.i2i.layers import ResidualBlock, SlicedConv2d, SlicedConvTranspose2d


class I2IGenerator(nn.Module):
    """ResNet generator (c7s1, two stride-2 convs, N residual blocks, two transposed convs, c7s1 + tanh) with
    instance norms; input and output in [-1, 1]. Module names match `anycost.models.i2i.macs.conv_specs`.

    >>> G = I2IGenerator(I2IArch.resnet(ngf=16, n_blocks=3, separable=True, image_size=32, step=4))
    >>> G(torch.zeros(1, 3, 32, 32), config=I2IConfig.uniform(G.arch, 0.5)).shape
    torch.Size([1, 3, 32, 32])
    """

    def __init__(self, arch: I2IArch):
        super().__init__()
        if not isinstance(arch, I2IArch):
            raise TypeError(f"arch must be an I2IArch, got {type(arch).__name__}")
        self.arch = arch
        w = arch.widths
        self.stem = SlicedConv2d(arch.in_channels, w[0], 7, reflect=True)
        self.down = nn.ModuleList([SlicedConv2d(w[0], w[1], 3, stride=2), SlicedConv2d(w[1], w[2], 3, stride=2)])
        self.blocks = nn.ModuleList([ResidualBlock(w[2], inner, arch.separable) for inner in w[3:-2]])
        self.up = nn.ModuleList([SlicedConvTranspose2d(w[2], w[-2]), SlicedConvTranspose2d(w[-2], w[-1])])
        self.head = SlicedConv2d(w[-1], arch.out_channels, 7, reflect=True)

    @property
    def full_config(self) -> I2IConfig:
        return I2IConfig.full(self.arch)

    def subnet(self, widths=None, ratio: float | None = None) -> I2IConfig:
        """A validated sub-network: explicit per-layer `widths`, a uniform `ratio`, or (neither) the full one."""
        if widths is not None and ratio is not None:
            raise ValueError("give either widths or ratio, not both")
        if widths is not None:
            return I2IConfig(self.arch, tuple(widths))
        return self.full_config if ratio is None else I2IConfig.uniform(self.arch, ratio)

    def _widths(self, config: I2IConfig | None) -> tuple[int, ...]:
        if config is None:
            return self.arch.widths
        if not isinstance(config, I2IConfig):
            raise TypeError(f"config must be an I2IConfig, got {type(config).__name__}")
        if config.arch != self.arch:
            raise ValueError(f"config is for another generator ({config.arch.describe()}; "
                             f"this one is {self.arch.describe()})")
        return config.widths

    def _check_input(self, x) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"input must be a float tensor [N, {self.arch.in_channels}, H, W], got {got}")
        n, c, h, w = x.shape
        if n == 0:
            raise ValueError("input has an empty batch")
        if c != self.arch.in_channels:
            raise ValueError(f"input has {c} channels, this generator takes {self.arch.in_channels}")
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or min(h, w) < MIN_SIZE:
            raise ValueError(f"input is {h}x{w} px: height and width must be multiples of {SIZE_MULTIPLE} "
                             f"and at least {MIN_SIZE} (two stride-2 convs, undone by two transposed convs)")

    def _check_taps(self, taps) -> tuple[int, ...]:
        taps = tuple(taps)
        for k in taps:
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= self.arch.n_blocks:
                raise ValueError(f"feature taps are residual block counts 0..{self.arch.n_blocks}, got {k!r}")
        return taps

    def forward(self, x: torch.Tensor, config: I2IConfig | None = None, return_features=None):
        """x [N, in_channels, H, W] -> [N, out_channels, H, W] through sub-network `config` (default: full).

        With `return_features` (block counts k in 0..n_blocks) it returns ``(output, features)`` too, where
        ``features[i]`` is the residual trunk [N, widths[2], H/4, W/4] after the first ``return_features[i]``
        blocks (0: the input of the first block), as GAN Compression distils them."""
        w = self._widths(config)
        self._check_input(x)
        if return_features is None and self._runs_native(x):
            return ops.i2i_forward(x, _parameters_in_order(self, []), w, self.arch.separable, self._small_native(w))
        return self._layers(x, w, None if return_features is None else self._check_taps(return_features))

    def _runs_native(self, x: torch.Tensor) -> bool:
        """Whether the whole forward can be one native call (`anycost.ops.i2i_forward`): the extension is built,
        input and weights are float32 on the CPU, no gradient is needed, and no dispatch mode (e.g. torch's
        FlopCounterMode) is watching the ops, which would see one opaque call."""
        weight = self.stem.weight
        if not (ops.NATIVE and x.device.type == weight.device.type == "cpu"
                and x.dtype == weight.dtype == torch.float32) or torch.compiler.is_compiling():
            return False
        if _get_current_dispatch_mode() is not None:
            return False
        return not torch.is_grad_enabled() or not (x.requires_grad or any(p.requires_grad for p in self.parameters()))

    def _small_native(self, w: tuple[int, ...]) -> list[bool]:
        """`ops.small_conv_pays` for each small_conv2d layer of the sub-network with widths `w`, in the order of
        `ops.i2i_forward`'s `small_native`: stem, down1, down2, the dense blocks' convs, head."""
        convs = [(self.stem, self.arch.in_channels), (self.down[0], w[0]), (self.down[1], w[1])]
        if not self.arch.separable:
            for block, inner in zip(self.blocks, w[3:-2]):
                convs += [(block.conv1, w[2]), (block.conv2, inner)]
        convs.append((self.head, w[-1]))
        return [ops.small_conv_pays(conv.weight.shape[-1], conv.stride, c_in) for conv, c_in in convs]

    def _layers(self, x: torch.Tensor, w: tuple[int, ...], taps: tuple[int, ...] | None):
        """The forward layer by layer (Python, every op through `anycost.ops`): for training, for the features
        distillation taps, and where the native forward does not apply."""
        h = self.stem(x, w[0], normalize=True, relu=True)
        for conv, width in zip(self.down, w[1:3]):
            h = conv(h, width, normalize=True, relu=True)
        trunk = [h]  # the trunk after 0, 1, ... blocks; kept only when features are asked for
        for block, inner in zip(self.blocks, w[3:-2]):
            h = block(h, inner)
            if taps is not None:
                trunk.append(h)
        for conv, width in zip(self.up, w[-2:]):
            h = conv(h, width, normalize=True, relu=True)
        out = torch.tanh(self.head(h, self.arch.out_channels))
        return out if taps is None else (out, [trunk[k] for k in taps])


def _parameters_in_order(module: nn.Module, out: list) -> list:
    """`list(module.parameters())` (the same order: a module's own, then its children's, depth first; every layer
    here has its weight and bias) in a sixth of its time, which at 32 px is a tenth of the student's native
    forward."""
    out.extend(module._parameters.values())
    for child in module._modules.values():
        _parameters_in_order(child, out)
    return out


def sliced_state(G: nn.Module, small: nn.Module) -> dict[str, torch.Tensor]:
    """`G`'s parameters cut to `small`'s shapes (any two modules with the same keys, e.g. a supernet and a
    sub-network of it): the leading block of every tensor, copied."""
    full = G.state_dict()
    return {key: full[key][tuple(slice(0, n) for n in ref.shape)].clone()
            for key, ref in small.state_dict().items()}


@torch.no_grad()
def export(G: I2IGenerator, config: I2IConfig) -> I2IGenerator:
    """The sub-network `config` of `G` as a plain generator of its own (its arch's widths are the config's),
    holding copies of the slices of `G`'s weights: the same output as ``G(x, config=config)`` (up to float
    summation order), ``config.params`` parameters and, at full width, ``config.macs`` MACs."""
    G._widths(config)  # the same checks as forward
    with torch.device("meta"):
        small = I2IGenerator(replace(G.arch, widths=config.widths))
    small = small.to_empty(device=G.stem.weight.device).to(G.stem.weight.dtype)
    small.load_state_dict(sliced_state(G, small))
    return small.train(G.training)
