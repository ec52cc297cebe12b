"""Helpers of the app tests: a raw HTTP client for the API and the pixels a render must have (within
PIXEL_TOLERANCE)."""

import base64
import http.client
import io
import json

import numpy as np
import torch
from PIL import Image

from anycost.app import ServedModel
from anycost.images import to_uint8


def call(server, method: str, path: str, body=None, *, data: bytes | None = None, headers: dict | None = None,
         timeout: float = 30, source: str | None = None):
    """(status, decoded JSON) of one request; `body` is sent as JSON, `data` as raw bytes. `source` is the
    address to send from: any of 127.0.0.0/8 reaches the server, each one a different client to it."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0) if source else None)
    try:
        if body is not None:
            data = json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def decode_png(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):]))).convert("RGB"))


#: How far (uint8 levels) a served render may be from the same render done by `expected_pixels`. Both run the
#: same float32 network, but the server renders on another thread, and with other CPU kernels (AVX-512, AMX),
#: batch sizes or thread counts the sums are taken in another order: values differ by ~1e-6, which moves a
#: pixel next to a rounding step of to_uint8 by one level, never more. A wrong image is much further off: 10 %
#: more of an edit direction moves pixels by 5 levels or more on the tiny test model.
PIXEL_TOLERANCE = 1


def pixel_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Largest difference of two uint8 images of one shape, in levels."""
    assert a.shape == b.shape, f"images of shapes {a.shape} and {b.shape}"
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def assert_same_pixels(actual: np.ndarray, expected: np.ndarray) -> None:
    distance = pixel_distance(actual, expected)
    assert distance <= PIXEL_TOLERANCE, f"pixels differ by up to {distance} levels (tolerance {PIXEL_TOLERANCE})"


def assert_other_pixels(actual: np.ndarray, other: np.ndarray) -> None:
    """`actual` is not `other` even within the tolerance: the check that makes `assert_same_pixels` mean something."""
    distance = pixel_distance(actual, other)
    assert distance > PIXEL_TOLERANCE, f"pixels differ by only {distance} levels (tolerance {PIXEL_TOLERANCE})"


def expected_pixels(model: ServedModel, seed: int, strengths: dict, config=None) -> np.ndarray:
    """What the server must deliver for this edit, rendered directly."""
    w = model.edit(model.latent_of_seed(seed), strengths)
    with torch.inference_mode():
        return to_uint8(model.G(w, config=config or model.full, noise="const"))[0]
