"""Image -> W+ encoder: a small ResNet (torchvision `BasicBlock`s) predicting the offset from `G.w_avg`.

Layout for an R px generator: a stride-2 3x3 stem to R/2, then one `BasicBlock` per scale from R/2 down to
8 px (widths `width`, 2x`width`, ... capped at `max_width`, stride 2 after the first), global average
pooling and one linear head to [n_styles, style_dim]. The head starts at zero, so an untrained encoder
returns `w_avg` for every image. GroupNorm instead of BatchNorm: an image's code does not depend on the
rest of its batch, and train and eval modes agree. For the bundled 64 px model (10 styles x 256) the
default widths give 0.65 M parameters (2.6 MB fp32) and about 60 M MACs per image.

Files: safetensors whose metadata holds a format tag, the encoder's hyper-parameters, the architecture of
the generator it was trained for and a fingerprint of that generator's weights. Loading for another
architecture is refused; loading for a generator with other weights (a retrained model) warns, since the
codes then land somewhere else.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from anycost.fileio import CheckpointError, check_state, read_tagged_safetensors, write_tagged_safetensors
from anycost.models.stylegan2 import GeneratorArch

FORMAT = "anycost-encoder"
FORMAT_VERSION = 1


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 16), channels)


def generator_fingerprint(G) -> str:
    """A short hash of `G`'s weights (names, shapes and values): tells which trained generator a code is for."""
    h = hashlib.sha256()
    for name, tensor in sorted(G.state_dict().items()):
        t = tensor.detach().float().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


class Encoder(nn.Module):
    """images [N, 3, R, R] in [-1, 1] -> W+ offsets [N, n_styles, style_dim] from the generator's mean w."""

    def __init__(self, arch: GeneratorArch, width: int = 32, max_width: int = 128):
        super().__init__()
        if not isinstance(arch, GeneratorArch):
            raise TypeError(f"arch must be a GeneratorArch, got {type(arch).__name__}")
        for label, value in (("width", width), ("max_width", max_width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 16:
                raise ValueError(f"{label} must be an integer >= 16, got {value!r}")
        from torchvision.models.resnet import BasicBlock  # imported here: torchvision's models take a second to load

        self.arch, self.width, self.max_width = arch, width, max_width
        c = min(width, max_width)
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False), _group_norm(c),
                                   nn.ReLU(inplace=True)]
        res, stride = arch.resolution // 2, 1
        while res >= 8:
            c_out = min(max_width, width * 2 ** (len(layers) - 3))
            down = None
            if stride != 1 or c_out != c:
                down = nn.Sequential(nn.Conv2d(c, c_out, 1, stride=stride, bias=False), _group_norm(c_out))
            layers.append(BasicBlock(c, c_out, stride, down, norm_layer=_group_norm))
            c, stride, res = c_out, 2, res // 2
        self.backbone = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c, arch.n_styles * arch.style_dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """W+ offsets from `w_avg`; see `encode` for the codes themselves."""
        r = self.arch.resolution
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, r, r):
            raise ValueError(f"the encoder takes images [N, 3, {r}, {r}] in [-1, 1], got {tuple(images.shape)}")
        return self.head(self.backbone(images)).view(-1, self.arch.n_styles, self.arch.style_dim)

    def encode(self, G, images: torch.Tensor) -> torch.Tensor:
        """W+ codes [N, n_styles, style_dim] = G.w_avg + offsets (G must have this encoder's architecture)."""
        self.check_generator(G)
        return G.w_avg + self(images)

    def check_generator(self, G) -> None:
        """ValueError unless `G` has the architecture this encoder was built for."""
        if G.arch != self.arch:
            raise ValueError(f"this encoder is for a generator {self.arch}, not {G.arch}")

    def extra_repr(self) -> str:
        return f"width={self.width}, max_width={self.max_width}, arch={self.arch}"


def save_encoder(encoder: Encoder, path, G=None, metadata: dict | None = None) -> Path:
    """Write `encoder` as safetensors (atomically); `G`, the generator it was trained for, gives the fingerprint."""

    if G is not None:
        encoder.check_generator(G)
    return write_tagged_safetensors(path, encoder.state_dict(), FORMAT, FORMAT_VERSION, metadata,
                                    arch=encoder.arch.to_dict(),
                                    encoder={"width": encoder.width, "max_width": encoder.max_width},
                                    generator_fingerprint=generator_fingerprint(G) if G is not None else "")


def load_encoder(path, G=None) -> Encoder:
    """Load an encoder file (eval mode, CPU). With `G`: refuse another architecture (CheckpointError) and warn
    when `G`'s weights are not the ones the encoder was trained for."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no encoder file at {path}")
    meta, state = read_tagged_safetensors(path, FORMAT, FORMAT_VERSION, "encoder")
    try:
        arch = GeneratorArch.from_dict(json.loads(meta["arch"]))
        encoder = Encoder(arch, **json.loads(meta["encoder"]))
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad encoder metadata ({err})") from None
    if G is not None:
        if G.arch != arch:
            raise CheckpointError(f"{path} is an encoder for a generator {arch}; this generator is {G.arch}")
        trained_for = meta.get("generator_fingerprint", "")
        if trained_for and trained_for != generator_fingerprint(G):
            warnings.warn(f"{path} was trained for other generator weights (fingerprint {trained_for}, this one "
                          f"{generator_fingerprint(G)}): its codes are a poor start; retrain it "
                          "(anycost train-encoder)", stacklevel=2)
    check_state(state, encoder.state_dict(), str(path))
    encoder.load_state_dict(state)
    return encoder.eval()


def read_encoder_metadata(path) -> dict:
    """The provenance dict saved with an encoder file."""
    meta, _ = read_tagged_safetensors(path, FORMAT, FORMAT_VERSION, "encoder", tensors=False)
    try:
        return json.loads(meta.get("info", "{}"))
    except ValueError as err:
        raise CheckpointError(f"{path}: bad metadata ({err})") from None


#: The consistency-aware encoder bundled for the bundled model (`python -m anycost.projection.ablation` makes it).
ENCODER_NAME = "emoji64_encoder.safetensors"


def default_encoder(G=None) -> Encoder | None:
    """The bundled image -> W+ encoder, or None when this build has none.

    With `G`: refused (CheckpointError) for another architecture, a warning for other weights.
    """
    from anycost import assets

    path = assets.path(ENCODER_NAME)
    return load_encoder(path, G) if path is not None else None
