"""The compressed-generator file: one ``.safetensors`` whose metadata says ``format`` = `FORMAT`.

Besides the architecture (JSON) it holds the compression `steps` and the `encodings` of the compressed weights.
A weight stored dense keeps its key. An encoded weight W (key K) is stored as
- ``{"kind": "sparse"}``: ``K:mask`` (uint8, the nonzero pattern packed 8 per byte, row-major) and ``K:values``
  (float32, the nonzero values in the same order): 1/8 + 4 (1 - sparsity) bytes per weight instead of 4;
- ``{"kind": "kmeans", "bits": b}``: ``K:codebook`` (float32, at most 2**b values) and ``K:indices`` (uint8, one
  b-bit index per weight, packed): b/8 bytes per weight plus the codebook;
- ``{"kind": "int8", "act_scale": a, "min_channels": c, "min_size": s}`` (`compression.int8`): ``K:q`` (int8,
  flat), ``K:scale`` (float32, one per output channel) and ``K:smooth`` (float32, the smoothing factor of each
  input channel; files written before it had none: factors of 1): W = q * scale / smooth, 1 byte per weight;
  the spec holds the layer's calibrated activation scale (null: each sample's own, found at run time) and the
  rule of where it runs int8;
- a k-means weight run by the int8 kernels: ``{"kind": "kmeans", "bits": b, "int8": {"act_scale": ...,
  "min_channels": ..., "min_size": ...}}``, its k-means parts plus ``K:smooth`` (the int8 weights are derived from
  the clustered ones when the layer packs them).
The encodings are derived from the dense weights at save time (the nonzeros; the distinct values), so what is
saved is exactly what the model computes with. Loads check every part before the model is touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from anycost.compression import int8
from anycost.compression.bitpack import pack_bits, unpack_bits
from anycost.compression.generator import CompressedGenerator, build, run_spec
from anycost.fileio import CheckpointError, check_state, read_tagged_safetensors, write_tagged_safetensors
from anycost.models.stylegan2.arch import GeneratorArch

FORMAT = "anycost-compressed-generator"
FORMAT_VERSION = 1
KINDS = ("sparse", "kmeans", "int8")
PARTS = {"sparse": ("mask", "values"), "kmeans": ("codebook", "indices"), "int8": ("q", "scale", "smooth")}


def _parts(spec: dict) -> tuple[str, ...]:
    """The stored parts of a weight with this encoding."""
    return PARTS[spec["kind"]] + (("smooth",) if "int8" in spec else ())


def _encode(key: str, weight: torch.Tensor, spec: dict, G) -> dict[str, torch.Tensor]:
    flat = weight.detach().reshape(-1).float().cpu()
    if spec["kind"] == "sparse":
        mask = flat != 0
        return {f"{key}:mask": pack_bits(mask, 1), f"{key}:values": flat[mask].contiguous()}
    smooth = {}
    if run_spec(spec) is not None:
        smooth = {f"{key}:smooth": G.get_submodule(key.removesuffix(".conv.weight")).smooth.cpu().contiguous()}
    if spec["kind"] == "int8":
        q, scales = int8.quantize_weight(weight.detach().cpu().float(), smooth[f"{key}:smooth"])
        return {f"{key}:q": q.reshape(-1).contiguous(), f"{key}:scale": scales.contiguous(), **smooth}
    codebook = torch.unique(flat)
    if codebook.numel() > 2 ** spec["bits"]:
        raise ValueError(f"{key} holds {codebook.numel()} distinct values, more than {spec['bits']} bits index")
    return {f"{key}:codebook": codebook, f"{key}:indices": pack_bits(torch.searchsorted(codebook, flat),
                                                                     spec["bits"]), **smooth}


def save_generator(G: CompressedGenerator, path, metadata: dict | None = None) -> Path:
    """Save `G` with its compressed weights encoded (atomically: a failed save keeps the previous file)."""

    if not isinstance(G, CompressedGenerator):
        raise TypeError(f"expected a CompressedGenerator, got {type(G).__name__} (save it with "
                        "anycost.save_generator)")
    tensors = {}
    for key, value in G.state_dict().items():
        spec = G.encodings.get(key)
        tensors.update(_encode(key, value, spec, G) if spec else {key: value.detach().contiguous().cpu()})
    return write_tagged_safetensors(path, tensors, FORMAT, FORMAT_VERSION, metadata, arch=G.arch.to_dict(),
                                    steps=G.steps, encodings=G.encodings)


def _part(stored: dict, key: str, name: str, dtype: torch.dtype, source: str) -> torch.Tensor:
    part = stored.get(f"{key}:{name}")
    if part is None:
        raise CheckpointError(f"{source}: {key!r} is encoded but its {name} ({key}:{name}) is missing")
    if part.dtype != dtype or part.ndim != 1:
        raise CheckpointError(f"{source}: {key}:{name} must be 1-D {dtype}, got {part.dtype} {tuple(part.shape)}")
    return part


def _smooth(stored: dict, key: str, c_in: int, source: str, required: bool) -> torch.Tensor:
    """The int8 smoothing factors [c_in] of `key` (unless `required`, ones for an int8 file written before they
    were stored)."""
    if f"{key}:smooth" not in stored and not required:
        return torch.ones(c_in)
    smooth = _part(stored, key, "smooth", torch.float32, source)
    if smooth.numel() != c_in or not bool(torch.isfinite(smooth).all() and (smooth > 0).all()):
        raise ValueError(f"the smoothing factors must be {c_in} positive finite numbers, got {smooth.numel()} "
                         f"values (min {float(smooth.min()) if smooth.numel() else None})")
    return smooth


def _decode(stored: dict, key: str, spec: dict, shape: torch.Size, source: str) -> torch.Tensor:
    count = shape.numel()
    if not isinstance(spec, dict):
        raise CheckpointError(f"{source}: {key!r} has an encoding that is not a JSON object: {spec!r}")
    try:
        if spec.get("kind") in ("int8", "kmeans") and run_spec(spec) is not None:
            run = run_spec(spec)
            scale = run.get("act_scale", "missing") if isinstance(run, dict) else "missing"
            if scale is not None and (not isinstance(scale, float) or not scale > 0):
                raise ValueError(f"activation scale must be a positive number or null (dynamic), got {scale!r}")
            _smooth(stored, key, shape[2], source, required=spec["kind"] == "kmeans")
        if spec.get("kind") == "sparse":
            mask = unpack_bits(_part(stored, key, "mask", torch.uint8, source), 1, count).bool()
            values = _part(stored, key, "values", torch.float32, source)
            if values.numel() != int(mask.sum()):
                raise ValueError(f"{values.numel()} values for {int(mask.sum())} mask bits")
            return torch.zeros(count).masked_scatter_(mask, values).view(shape)
        if spec.get("kind") == "kmeans" and spec.get("bits") in range(1, 9):
            codebook = _part(stored, key, "codebook", torch.float32, source)
            if not 1 <= codebook.numel() <= 2 ** spec["bits"]:
                raise ValueError(f"a codebook of {codebook.numel()} values for {spec['bits']} bits")
            indices = unpack_bits(_part(stored, key, "indices", torch.uint8, source), spec["bits"], count)
            if int(indices.max()) >= codebook.numel():
                raise ValueError(f"index {int(indices.max())} past the codebook's {codebook.numel()} values")
            return codebook[indices].view(shape)
        if spec.get("kind") == "int8":
            q = _part(stored, key, "q", torch.int8, source)
            scales = _part(stored, key, "scale", torch.float32, source)
            if q.numel() != count or scales.numel() != shape[1]:
                raise ValueError(f"{q.numel()} int8 weights and {scales.numel()} scales for a weight of shape "
                                 f"{tuple(shape)} (needs {count} and {shape[1]})")
            smooth = _smooth(stored, key, shape[2], source, required=False)
            return int8.dequantize_weight(q.view(shape), scales, smooth).contiguous()
    except ValueError as err:
        raise CheckpointError(f"{source}: {key!r}: {err}") from None
    raise CheckpointError(f"{source}: {key!r} has an unknown encoding {spec!r} (this anycost reads {KINDS})")


def load_generator(path, map_location: str | torch.device = "cpu") -> CompressedGenerator:
    """The CompressedGenerator saved at `path` (eval mode, on `map_location`); CheckpointError naming what is
    wrong for a corrupt, incomplete or mismatched file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    meta, stored = read_tagged_safetensors(path, FORMAT, FORMAT_VERSION, "compressed generator")
    try:
        arch = GeneratorArch.from_dict(json.loads(meta["arch"]))
        steps, encodings = json.loads(meta["steps"]), json.loads(meta["encodings"])
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad compression metadata ({err})") from None
    with torch.device("meta"):
        expected = CompressedGenerator(arch=arch).state_dict()
    unknown = sorted(set(encodings) - set(expected))
    if unknown:
        raise CheckpointError(f"{path}: encoding for unknown weight {unknown[0]!r}")
    state = {k: v for k, v in stored.items() if ":" not in k}
    for key, spec in encodings.items():
        state[key] = _decode(stored, key, spec, expected[key].shape, str(path))
    parts = {f"{k}:{p}" for k, s in encodings.items() for p in _parts(s)}
    extra = sorted(k for k in stored if ":" in k and k not in parts)
    if extra:
        raise CheckpointError(f"{path}: unexpected tensor {extra[0]!r}")
    check_state(state, expected, str(path))
    G = build(arch, state, steps, encodings)
    for key, spec in encodings.items():
        run = run_spec(spec)
        if run is not None:
            smooth = _smooth(stored, key, expected[key].shape[2], str(path), required=spec["kind"] != "int8")
            int8.attach(G, {key.removesuffix(".conv.weight"): (run["act_scale"], smooth)},
                        run.get("min_channels", int8.MIN_CHANNELS), run.get("min_size", int8.MIN_SIZE))
    return G.to(map_location)

