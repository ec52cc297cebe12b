"""libanycost under AddressSanitizer: the library and its example built with -DANYCOST_SANITIZE=address (a cache
folder of its own under build/capi-test/), then
  * `_asan_driver.py` in a fresh Python with the ASan runtime preloaded: every bad file and bad argument of
    test_capi.py, renders of six configs (uniform, flexible, W+, truncation) and the mapping against the Python
    generator's outputs computed here, two threads rendering at once, and an int8 model (compressed file) at a
    uniform and a flexible config;
  * the example program under ctest with leak detection on (load, mapping, render, free leak nothing).
Skipped without a source tree, cmake, a compiler or the compiler's libasan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _capi
import numpy as np
import pytest
import torch

import anycost
from anycost import compression


def _runtime(name: str) -> str | None:
    """The path of the C++ compiler's `name` (libasan.so, libstdc++.so), or None."""
    try:
        out = subprocess.run(["c++", f"-print-file-name={name}"], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    path = out.stdout.strip()
    return path if out.returncode == 0 and os.path.isabs(path) and os.path.exists(path) else None


@pytest.fixture(scope="module")
def asan():
    reason = _capi.missing_prerequisite()
    if reason:
        pytest.skip(reason)
    runtimes = [_runtime("libasan.so"), _runtime("libstdc++.so")]
    if None in runtimes:
        pytest.skip("the compiler has no AddressSanitizer runtime (libasan.so) or no libstdc++.so")
    # Preloaded into Python: ASan first; libstdc++ too, or ASan's __cxa_throw interceptor finds no real one (Python
    # loads libstdc++ only later, with the library) and aborts at the first C++ exception.
    return _capi.build("asan", targets=("anycost_shared", "anycost_render_example")), " ".join(runtimes)


def _references(G, folder: Path) -> tuple[Path, list[dict]]:
    """Render cases and the Python generator's outputs for them (npz beside the spec)."""
    gen = torch.Generator().manual_seed(11)
    cases = [dict(resolution=64, ratio=1.0), dict(resolution=32, widths=[96, 64, 128, 17, 100, 64, 33, 40]),
             dict(resolution=8, ratio=0.25), dict(resolution=64, ratio=0.5, mean=True, truncation=0.6),
             dict(resolution=16, ratio=0.75, w_plus=True), dict(resolution=64, widths=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])]
    arrays = {}
    with torch.no_grad():
        z = torch.randn(3, G.arch.style_dim, generator=gen)
        arrays["z"], arrays["w"] = z.numpy(), G.mapping(z).numpy()
        for i, case in enumerate(cases):
            w = G.mapping(torch.randn(2, G.arch.style_dim, generator=gen))
            if case.pop("w_plus", False):
                w = G.mix_styles(w, w.flip(0), crossover=2, n_styles=G.arch.n_styles)
            if "widths" in case:
                config = G.subnet(case["resolution"], channels=case["widths"])
            else:
                config = G.subnet(case["resolution"], case["ratio"])
            arrays[f"case{i}_w"] = w.numpy()
            arrays[f"case{i}_want"] = _capi.layer_render(G, w, config, truncation=case.get("truncation", 1.0)).numpy()
    np.savez(folder / "refs.npz", **arrays)
    return folder / "refs.npz", cases


def _int8_references(G, folder: Path) -> dict:
    """The int8 model of G saved (path) and its Python renders at two configs (npz), for the driver's "int8"."""
    path = anycost.save_generator(compression.quantize_int8(G, calibration=_capi.latents(G, 4, seed=12)),
                                  folder / "int8.safetensors")
    Gq = anycost.load_generator(path)
    w = _capi.latents(G, 2, seed=13)
    cases = [dict(resolution=64, ratio=0.5), dict(resolution=32, widths=[96, 64, 128, 17, 100, 64, 33, 40])]
    arrays = {"w": w.numpy()}
    for i, case in enumerate(cases):
        config = G.subnet(32, channels=case["widths"]) if "widths" in case else G.subnet(64, 0.5)
        arrays[f"case{i}_want"] = _capi.layer_render(Gq, w, config).numpy()
    np.savez(folder / "int8_refs.npz", **arrays)
    return {"model": str(path), "refs": str(folder / "int8_refs.npz"), "cases": cases}


def test_checks_pass_under_address_sanitizer(asan, bundled_path, bad_files, tmp_path):
    folder, runtime = asan
    G = anycost.load_generator(bundled_path)
    refs, cases = _references(G, tmp_path)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"model": str(bundled_path), "bad_files": {k: str(v) for k, v in bad_files.items()},
                                "refs": str(refs), "cases": cases, "int8": _int8_references(G, tmp_path)}))
    # Python itself is not instrumented and keeps memory to the end: leaks are checked in the C example below.
    env = {**os.environ, "LD_PRELOAD": runtime, "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1"}
    res = subprocess.run([sys.executable, str(Path(__file__).parent / "_asan_driver.py"),
                          str(_capi.library_path(folder)), str(spec)], env=env, capture_output=True, text=True,
                         timeout=900)
    report = res.stderr[res.stderr.find("ERROR: AddressSanitizer"):] if "AddressSanitizer" in res.stderr else res.stderr
    assert res.returncode == 0 and "AddressSanitizer" not in res.stderr, res.stdout + report[:6000]
    assert "asan driver:" in res.stdout


def test_example_leaks_nothing_under_address_sanitizer(asan):
    folder, _ = asan
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1"}
    res = subprocess.run(["ctest", "--test-dir", str(folder), "-R", "example", "--output-on-failure"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0 and "100% tests passed" in res.stdout, res.stdout + res.stderr
