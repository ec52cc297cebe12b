"""The model an `anycost serve` app serves: generator, edit directions, cost table, uploads, projection.

One `ServedModel` is shared read-only by every client of the server. It turns the JSON of the API into
tensors and configs (`preview_config`, `latent_of_seed`, `edit`), says what the page may offer (`info`),
checks uploaded images (`decode_upload`) and projects them into W+ on one background thread
(`start_projection`), so an upload never blocks a request and two uploads never compete for the CPU.
Every invalid input raises `ApiError` with the HTTP status the server answers with.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

import torch
from PIL import Image, UnidentifiedImageError

from anycost.models.stylegan2 import UNIFORM_RATIOS, SubnetConfig

#: Largest accepted upload (bytes) and image size (pixels, checked before decoding).
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
MAX_UPLOAD_PIXELS = 25_000_000
#: Accepted upload types: Content-Type -> the format Pillow must find in the bytes.
UPLOAD_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
#: Largest accepted seed (seeds are non-negative).
MAX_SEED = 2**31 - 1
#: Edit sliders span +-STRENGTH_SIGMAS standard deviations of w along each direction.
STRENGTH_SIGMAS = 3.0


#: A default object repr, e.g. "<_io.BytesIO object at 0x7f3a...>": it tells a user nothing and leaks an address.
_OBJECT_REPR = re.compile(r"\s*<[^<>]*\bat 0x[0-9a-fA-F]+>")


def public_message(err: BaseException | str) -> str:
    """The text of `err` as a user may see it: without object reprs (the exception's type if nothing is left)."""
    text = _OBJECT_REPR.sub("", str(err)).strip()
    return text or (type(err).__name__ if isinstance(err, BaseException) else "unknown error")


class ApiError(ValueError):
    """A request the API refuses: `status` is the HTTP status, the message is shown to the user, `headers` go
    with the answer (e.g. Allow for a 405, Retry-After for a 503)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(400, f"{what} must be a finite number, got {value!r}")
    return float(value)


def strength_limits(G, directions, n: int = 2000, seed: int = 0) -> dict[str, float]:
    """Slider range per direction: STRENGTH_SIGMAS x the spread of mapped w along it (>= 0.1)."""
    if directions is None:
        return {}
    from anycost.editing.fit import sample_latents

    w, _ = sample_latents(G, n, seed)
    spread = (w @ directions.vectors.T).std(0)
    return {name: max(0.1, round(STRENGTH_SIGMAS * float(s), 1)) for name, s in zip(directions.names, spread)}


def check_upload_type(content_type: str) -> None:
    """ApiError 415 unless `content_type` is one of UPLOAD_TYPES."""
    if content_type not in UPLOAD_TYPES:
        raise ApiError(415, f"uploads must be PNG or JPEG (Content-Type {' or '.join(UPLOAD_TYPES)}), "
                            f"got {content_type or 'no Content-Type'}")


def decode_upload(data: bytes, content_type: str) -> Image.Image:
    """The uploaded bytes as a fully decoded Pillow image; ApiError (413/415/400) for anything else."""
    check_upload_type(content_type)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(413, f"the upload is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    if not data:
        raise ApiError(400, "the upload is empty")
    try:
        image = Image.open(io.BytesIO(data))
        if image.format != UPLOAD_TYPES[content_type]:
            raise ApiError(415, f"the file is {image.format or 'of an unknown format'}, not the "
                                f"{UPLOAD_TYPES[content_type]} its Content-Type says")
        if image.width * image.height > MAX_UPLOAD_PIXELS:
            raise ApiError(413, f"the image is {image.width}x{image.height} pixels; the limit is "
                                f"{MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels")
        image.load()
    except ApiError:
        raise
    except UnidentifiedImageError:  # its message is "cannot identify image file <_io.BytesIO object at 0x...>"
        raise ApiError(400, f"the upload is not a readable {UPLOAD_TYPES[content_type]} image: its bytes are in no "
                            "image format Pillow knows") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ApiError(400, f"the upload is not a readable {UPLOAD_TYPES[content_type]} image: "
                            f"{public_message(err)}") from None
    return image


class ServedModel:
    """`G` with its optional `directions` (EditDirections) and projection `encoder`, for every client.

    `preview_resolution` x `preview_ratio` is the default preview (default: half the model's resolution
    x 0.25; the page may pick any other uniform config), `idle_s` the pause after the last edit before
    the full render, `project_steps` the optimisation steps of an upload's projection. Projection (the
    `anycost.projection` package) is imported when the model is built; without it uploads are refused
    with the reason in `info()["upload"]`.
    """

    def __init__(self, G, source: str, *, directions=None, encoder=None, preview_resolution: int | None = None,
                 preview_ratio: float = 0.25, idle_s: float = 0.3, project_steps: int = 100, impl: str = "auto"):
        if directions is not None and directions.style_dim != G.arch.style_dim:
            raise ValueError(f"the edit directions are for style_dim {directions.style_dim}, "
                             f"the model has {G.arch.style_dim}")
        if not idle_s >= 0:
            raise ValueError(f"the idle time must be >= 0 s, got {idle_s}")
        if isinstance(project_steps, bool) or not isinstance(project_steps, int) or project_steps < 1:
            raise ValueError(f"project_steps must be a positive integer, got {project_steps!r}")
        self.G, self.source, self.directions, self.encoder = G, source, directions, encoder
        self.idle_s, self.project_steps, self.impl = idle_s, project_steps, impl
        self.full = G.full_config
        if preview_resolution is None:
            preview_resolution = max(G.arch.resolutions[0], G.arch.resolution // 2)
        self.preview = {"resolution": preview_resolution, "ratio": preview_ratio}
        self.preview_config(self.preview)  # validates
        self.limits = strength_limits(G, directions)
        try:
            from anycost.projection import load_target, project
        except ImportError as err:
            self._projection, self.upload_unavailable = None, f"projection is not available ({err})"
        else:
            self._projection, self.upload_unavailable = (load_target, project), None
        self._projector = ThreadPoolExecutor(1, thread_name_prefix="anycost-project")

    # -- what the page offers ------------------------------------------------------------------
    def info(self) -> dict:
        """Model description, edit sliders, preview cost table and upload limits, as JSON for the page."""
        return {
            "source": self.source,
            "resolution": self.G.arch.resolution,
            "full_gmacs": self.full.macs / 1e9,
            "idle_ms": round(self.idle_s * 1000),
            "directions": [{"name": n, "limit": self.limits[n]} for n in self.limits],
            "costs": [{"resolution": r, "ratio": q, "gmacs": SubnetConfig.uniform(self.G.arch, q, r).macs / 1e9}
                      for r in self.G.arch.resolutions for q in UNIFORM_RATIOS],
            "preview": self.preview,
            "max_seed": MAX_SEED,
            "upload": {"available": self.upload_unavailable is None, "reason": self.upload_unavailable,
                       "max_bytes": MAX_UPLOAD_BYTES, "types": list(UPLOAD_TYPES)},
        }

    # -- JSON -> tensors and configs -----------------------------------------------------------
    def preview_config(self, spec) -> SubnetConfig:
        """{"resolution": int, "ratio": one of UNIFORM_RATIOS} -> a uniform SubnetConfig."""
        if not isinstance(spec, dict) or set(spec) != {"resolution", "ratio"}:
            raise ApiError(400, f"preview must be an object {{\"resolution\": ..., \"ratio\": ...}}, got {spec!r}")
        res, ratio = spec["resolution"], _number(spec["ratio"], "preview ratio")
        if isinstance(res, bool) or not isinstance(res, int) or res not in self.G.arch.resolutions:
            raise ApiError(400, f"preview resolution must be one of {list(self.G.arch.resolutions)}, got {res!r}")
        if ratio not in UNIFORM_RATIOS:
            raise ApiError(400, f"preview ratio must be one of {list(UNIFORM_RATIOS)}, got {ratio!r}")
        return SubnetConfig.uniform(self.G.arch, ratio, res)

    def latent_of_seed(self, seed) -> torch.Tensor:
        """W [1, style_dim] of sample `seed`: the image `anycost generate --seeds SEED` renders."""
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ApiError(400, f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
        return self.G.seed_w([seed])

    def edit(self, w: torch.Tensor, strengths) -> torch.Tensor:
        """`w` moved along the named directions; strengths outside the sliders' range are refused."""
        if not isinstance(strengths, dict):
            raise ApiError(400, f"strengths must be an object {{name: number}}, got {strengths!r}")
        for name, value in strengths.items():
            if name not in self.limits:
                known = ", ".join(self.limits) or "none: the server has no edit directions"
                raise ApiError(400, f"unknown edit direction {name!r} (known: {known})")
            if abs(_number(value, f"strength of {name!r}")) > self.limits[name]:
                raise ApiError(400, f"strength of {name!r} must be within +-{self.limits[name]}, got {value}")
        if not any(strengths.values()):
            return w
        return self.directions.apply(w, strengths, n_styles=self.G.arch.n_styles)

    # -- uploads -------------------------------------------------------------------------------
    def check_upload(self, content_type: str | None = None) -> None:
        """ApiError 501 when this server cannot project uploads, 415 for a `content_type` it refuses."""
        if self._projection is None:
            raise ApiError(501, f"uploads are disabled: {self.upload_unavailable}")
        if content_type is not None:
            check_upload_type(content_type)

    def start_projection(self, image: Image.Image, callback: Callable[[int, int], bool]) -> Future:
        """Queue the projection of `image`; the future's result is W+ [1, n_styles, style_dim].

        `callback(step, steps)` runs when the projection starts (step 0) and after every step, on the
        projection thread; True stops it.
        """
        self.check_upload()
        load_target, project = self._projection

        def run() -> torch.Tensor:
            if callback(0, self.project_steps):
                raise CancelledError("the upload was dropped before its projection started")
            target = load_target(image, self.G.arch.resolution)
            # MSE only: a perceptual distance made each step ~3.5x slower (64 px, 2-core CPU): seconds, not a minute.
            result = project(self.G, target, encoder=self.encoder, steps=self.project_steps, perceptual=None,
                             progress=False, callback=lambda step, loss: callback(step + 1, self.project_steps))
            return result.w_plus

        return self._projector.submit(run)

    def close(self) -> None:
        """Cancel queued projections (one in progress stops when its callback says so)."""
        self._projector.shutdown(wait=False, cancel_futures=True)
