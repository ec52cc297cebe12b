"""Helpers of the app tests: a raw HTTP client for the API and the pixels a render must have."""

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


def expected_pixels(model: ServedModel, seed: int, strengths: dict, config=None) -> np.ndarray:
    """What the server must deliver for this edit, rendered directly."""
    w = model.edit(model.latent_of_seed(seed), strengths)
    with torch.inference_mode():
        return to_uint8(model.G(w, config=config or model.full, noise="const"))[0]
