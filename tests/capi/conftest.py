"""Fixtures of the libanycost tests: the library (built once per source state, see `_capi.build`), the bundled
model, and a folder of files that must not load (each named by what is wrong with it)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import _capi  # tests/capi is on sys.path (pytest rootdir import mode)
import numpy as np
import pytest

from anycost.models.stylegan2.bundled import default_model_path


@pytest.fixture(scope="session")
def capi_build():
    """The release build folder of libanycost (skips when no source tree, cmake or compiler; fails when the
    build fails)."""
    reason = _capi.missing_prerequisite()
    if reason:
        pytest.skip(reason)
    return _capi.build("release", targets=("anycost_shared", "anycost_static", "anycost_render_example"))


@pytest.fixture(scope="session")
def lib(capi_build):
    return _capi.Lib(_capi.library_path(capi_build))


@pytest.fixture(scope="session")
def bundled_path() -> Path:
    path = default_model_path()
    if path is None:
        pytest.skip("no bundled model in this build")
    return path


def _header(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + size]), raw[8 + size:]


def _write(path: Path, header: dict, data: bytes) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def _with_tensor(header: dict, data: bytes, name: str, array: np.ndarray, dtype: str) -> tuple[dict, bytes]:
    """`header` / `data` with tensor `name` replaced by `array` stored as `dtype` (appended to the data)."""
    header = json.loads(json.dumps(header))
    header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [len(data), len(data) + array.nbytes]}
    return header, data + array.tobytes()


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory, bundled_path) -> dict[str, Path]:
    """name -> a path anycost_load must refuse (see `_capi.check_bad_files` for the message each must give)."""
    root = tmp_path_factory.mktemp("capi-bad-files")
    assets = bundled_path.parent
    raw = bundled_path.read_bytes()
    header, data = _header(bundled_path)
    meta = header["__metadata__"]
    arch = json.loads(meta["arch"])
    files = {"missing": root / "missing.safetensors", "directory": root,
             "png": assets / "emoji64_samples.png", "slimgan": assets / "slimgan_fmnist32.safetensors",
             "gan_compression": assets / "fmnist_edges2shoes_compressed.safetensors",
             "encoder": assets / "emoji64_encoder.safetensors"}
    for name, content in {"empty": b"", "truncated": raw[: len(raw) // 2], "cut_header": raw[:100],
                          "huge_header": struct.pack("<Q", 1 << 60) + raw[8:]}.items():
        files[name] = root / f"{name}.safetensors"
        files[name].write_bytes(content)
    corrupt = bytearray(raw)
    corrupt[raw.index(b'":', 8) + 1] = ord(";")  # the first name-value colon of the JSON header
    files["corrupt_header"] = root / "corrupt_header.safetensors"
    files["corrupt_header"].write_bytes(bytes(corrupt))

    def variant(name, **meta_changes):
        changed = {**header, "__metadata__": {**meta, **meta_changes}}
        files[name] = _write(root / f"{name}.safetensors", changed, data)

    variant("wrong_arch", arch=json.dumps({**arch, "resolution": 128}))
    variant("bad_arch_json", arch="{not json")
    variant("unknown_arch_field", arch=json.dumps({**arch, "depth": 3}))
    files["no_metadata"] = _write(root / "no_metadata.safetensors",
                                  {k: v for k, v in header.items() if k != "__metadata__"}, data)
    w_avg = np.frombuffer(data, np.float32, 256, header["w_avg"]["data_offsets"][0]).copy()
    for name, array, dtype in [("nan", np.where(np.arange(256) == 7, np.nan, w_avg).astype(np.float32), "F32"),
                               ("wrong_shape", w_avg[:128], "F32"), ("int_tensor", w_avg.astype(np.int32), "I32")]:
        files[name] = _write(root / f"{name}.safetensors", *_with_tensor(header, data, "w_avg", array, dtype))
    shifted = json.loads(json.dumps(header))
    shifted["w_avg"]["data_offsets"][1] -= 4
    files["bad_offsets"] = _write(root / "bad_offsets.safetensors", shifted, data)
    files.update(_bad_compressed_files(root, bundled_path))
    return files


def _bad_compressed_files(root: Path, bundled_path: Path) -> dict[str, Path]:
    """Compressed generator files (anycost.compression) of the bundled model, each broken in one part."""
    import anycost
    from anycost import compression

    G = anycost.load_generator(bundled_path)
    models = {"int8": compression.quantize_int8(G, calibration=_capi.latents(G, 4)),
              "kmeans": compression.kmeans_quantize(G, 4), "sparse": compression.prune(G, sparsity=0.5)}
    parsed = {k: _header(anycost.save_generator(m, root / f"good_{k}.safetensors")) for k, m in models.items()}
    files = {}

    def variant(name, kind, change):
        header, data = parsed[kind]
        header = json.loads(json.dumps(header))
        header, data = change(header, data) or (header, data)
        files[name] = _write(root / f"{name}.safetensors", header, data)

    def encodings(update):
        def change(header, data):
            enc = json.loads(header["__metadata__"]["encodings"])
            update(enc)
            header["__metadata__"]["encodings"] = json.dumps(enc)
        return change

    key = "convs.0.conv.weight"
    variant("compressed_missing_part", "int8", lambda h, d: h.pop(f"{key}:scale") and None)
    variant("compressed_extra_part", "int8",
            lambda h, d: _with_tensor(h, d, f"{key}:junk", np.ones(1, np.float32), "F32"))
    variant("compressed_unknown_kind", "int8", encodings(lambda e: e[key].update(kind="zstd")))
    variant("compressed_unknown_weight", "sparse", encodings(lambda e: e.update({"no.such.weight": e[key]})))
    variant("compressed_bad_act_scale", "int8", encodings(lambda e: e[key].update(act_scale=-1.0)))
    variant("compressed_q_dtype", "int8", lambda h, d: h[f"{key}:q"].update(dtype="U8") and None)
    variant("compressed_bad_smooth", "int8",
            lambda h, d: _with_tensor(h, d, f"{key}:smooth", np.zeros(h[f"{key}:smooth"]["shape"], np.float32), "F32"))
    variant("compressed_big_codebook", "kmeans",
            lambda h, d: _with_tensor(h, d, f"{key}:codebook", np.arange(17, dtype=np.float32), "F32"))
    variant("compressed_short_indices", "kmeans",
            lambda h, d: _with_tensor(h, d, f"{key}:indices", np.zeros(5, np.uint8), "U8"))
    variant("compressed_mask_count", "sparse",
            lambda h, d: _with_tensor(h, d, f"{key}:values", np.ones(3, np.float32), "F32"))
    return files
