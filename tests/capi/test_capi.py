"""libanycost (csrc/capi), the C API, through ctypes: it equals the Python generator (`G.mapping`,
`G(w, config=..., noise="const")`, float32) on the bundled model at every uniform config and flexible ones, with
W and W+ and truncation, and on config-f-shaped random weights cut to small resolutions; every bad input gives
its negative code and a message; two threads rendering two configs of one model at once get the serial results;
the example program (examples/c/render.c) runs. The library is built once per source state with CMake (-j2)
into build/capi-test/ (see `_capi.build`); `test_capi_asan.py` runs the checks again under AddressSanitizer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import _capi
import numpy as np
import pytest
import torch

import anycost
from anycost import ops
from anycost.benchmark import random_generator
from anycost.models.stylegan2 import UNIFORM_RATIOS
from anycost.models.stylegan2.bundled import DEFAULT_ARCH

TOL = 1e-4  # of the output range


@pytest.fixture(scope="module")
def G(bundled_path):
    return anycost.load_generator(bundled_path)


@pytest.fixture(scope="module")
def model(lib, bundled_path):
    m = lib.model(bundled_path)
    yield m
    m.close()


def python_render(G, w, config, impl="auto", truncation=1.0) -> np.ndarray:
    return _capi.layer_render(G, w, config, impl, truncation).numpy()


def test_version_capability_and_threads(lib):
    assert lib.raw.anycost_version().decode() == anycost.__version__
    level = lib.raw.anycost_cpu_capability().decode()
    assert level in ops.cpu_capabilities() and level == ops.cpu_capability()
    before = lib.raw.anycost_num_threads()
    assert before >= 1
    try:
        assert lib.raw.anycost_set_num_threads(3) == 0 and lib.raw.anycost_num_threads() == 3
    finally:
        assert lib.raw.anycost_set_num_threads(0) == 0
    assert lib.raw.anycost_num_threads() == before


def test_model_shape_matches_the_architecture(model, G):
    arch = G.arch
    assert (model.style_dim, model.num_styles, model.num_layers) == (arch.style_dim, arch.n_styles, arch.n_styles)
    assert model.resolutions == arch.resolutions
    assert model.full_widths() == model.full_widths(arch.resolution) == arch.full_widths
    assert model.full_widths(16) == arch.full_widths[:6]
    np.testing.assert_array_equal(model.w_avg(), G.w_avg.numpy())


def test_mapping_equals_python(model, G):
    z = torch.randn(5, G.arch.style_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = G.mapping(z).numpy()
    assert _capi.max_rel_diff(model.mapping(z.numpy()), want) < TOL


@pytest.mark.parametrize("ratio", UNIFORM_RATIOS)
@pytest.mark.parametrize("resolution", DEFAULT_ARCH.resolutions)
def test_uniform_config_equals_python(model, G, resolution, ratio):
    w = _capi.latents(G)
    want = python_render(G, w, G.subnet(resolution, ratio))
    code, got, err = model.render(w.numpy(), resolution, ratio=ratio)
    assert code == 0, err
    assert _capi.max_rel_diff(got, want) < TOL


@pytest.mark.parametrize("resolution", [64, 32])
def test_flexible_config_equals_python(model, G, resolution):
    full = G.arch.full_widths[: len(G.subnet(resolution).widths)]
    rng = np.random.default_rng(resolution)
    widths = [int(rng.integers(1, f + 1)) for f in full]  # anything from 1 channel to the full width
    w = _capi.latents(G, seed=3)
    want = python_render(G, w, G.subnet(resolution, channels=widths))
    code, got, err = model.render(w.numpy(), resolution, widths=widths, ratio=0.123)  # ratio unused with widths
    assert code == 0, err
    assert _capi.max_rel_diff(got, want) < TOL


def test_equals_the_reference_ops(model, G):
    """Also against the pure-PyTorch reference formulation (oneDNN convs, FIR blur), not only our kernels."""
    w = _capi.latents(G, seed=4)
    want = python_render(G, w, G.subnet(64, 0.5), impl="ref")
    assert _capi.max_rel_diff(model.render(w.numpy(), 64, ratio=0.5)[1], want) < TOL


@pytest.mark.parametrize("resolution", [64, 16])
def test_w_plus_equals_python(model, G, resolution):
    """Full-length W+ (style mixing): a lower resolution uses its first entries."""
    w_plus = G.mix_styles(_capi.latents(G, seed=5), _capi.latents(G, seed=6), crossover=3, n_styles=G.arch.n_styles)
    want = python_render(G, w_plus, G.subnet(resolution, 0.75))
    code, got, err = model.render(w_plus.numpy(), resolution, ratio=0.75)
    assert code == 0, err
    assert _capi.max_rel_diff(got, want) < TOL


@pytest.mark.parametrize("truncation", [0.5, 1.3])
def test_truncation_equals_python(model, G, truncation):
    w = _capi.latents(G, seed=7)
    want = python_render(G, w, G.subnet(32, 1.0), truncation=truncation)
    code, got, err = model.render(w.numpy(), 32, mean=model.w_avg(), truncation=truncation)
    assert code == 0, err
    assert _capi.max_rel_diff(got, want) < TOL
    w_plus = w.unsqueeze(1).expand(-1, G.arch.n_styles, -1).contiguous()  # W+ truncates entry by entry
    assert _capi.max_rel_diff(model.render(w_plus.numpy(), 32, mean=model.w_avg(), truncation=truncation)[1],
                              want) < TOL


@pytest.fixture(scope="module")
def config_f(tmp_path_factory):
    """Config-f (1024 px, multiplier 2) random weights with nonzero noise strengths, biases and w_avg (which
    `random_generator` leaves at zero), saved as a generator file."""
    G = random_generator(1024, 2, seed=1)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in G.named_parameters():
            rgb_bias = name.startswith("to_rgb") and name.endswith("bias")
            if name.endswith(("noise.weight", "activate.bias")) or rgb_bias:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        G.w_avg.copy_(torch.randn(G.arch.style_dim, generator=gen))
    return G, anycost.save_generator(G, tmp_path_factory.mktemp("capi-config-f") / "config_f.safetensors")


@pytest.mark.parametrize("resolution,ratio,flexible", [(16, 1.0, False), (32, 0.25, False), (32, None, True)])
def test_config_f_cut_equals_python(lib, config_f, resolution, ratio, flexible):
    G, path = config_f
    model = lib.model(path)
    try:
        assert model.full_widths() == G.arch.full_widths and model.num_styles == 18
        z = torch.randn(1, 512, generator=torch.Generator().manual_seed(8))
        with torch.no_grad():
            w = G.mapping(z)
        assert _capi.max_rel_diff(model.mapping(z.numpy()), w.numpy()) < TOL
        if flexible:
            widths = [512, 384, 256, 500, 128, 64, 200, 96]
            config = G.subnet(resolution, channels=widths)
        else:
            widths, config = None, G.subnet(resolution, ratio)
        want = python_render(G, w, config, truncation=0.8)
        code, got, err = model.render(w.numpy(), resolution, ratio=ratio or 1.0, widths=widths, mean=model.w_avg(),
                                      truncation=0.8)
        assert code == 0, err
        assert _capi.max_rel_diff(got, want) < TOL
    finally:
        model.close()


def test_bad_files_give_a_message(lib, bad_files):
    _capi.check_bad_files(lib, bad_files)


def test_bad_arguments_give_a_code_and_a_message(lib, model):
    _capi.check_bad_arguments(lib, model)


def test_two_threads_render_two_configs_at_once(model, G):
    """One model, two threads, two configs, several renders each: every result equals the serial one."""
    w = _capi.latents(G, seed=9).numpy()
    jobs = [dict(resolution=64, ratio=1.0), dict(resolution=32, widths=[96, 64, 128, 17, 100, 64, 33, 40])]
    serial = [model.render(w, **job)[1] for job in jobs]
    barrier = threading.Barrier(len(jobs))
    results: list[list] = [[] for _ in jobs]

    def work(i):
        barrier.wait()
        for _ in range(4):
            results[i].append(model.render(w, **jobs[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, runs in enumerate(results):
        assert len(runs) == 4
        for code, rgb, err in runs:
            assert code == 0, err
            np.testing.assert_array_equal(rgb, serial[i])


def _run_in_fresh_process(lib_path: Path, model_path: Path, env: dict, script: str) -> str:
    """Runs `script` (with `lib` and `model` bound, numpy as np) in a new Python: the CPU level is resolved once
    per process, from ANYCOST_CPU_CAPABILITY."""
    prologue = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import _capi; import numpy as np\n"
                f"lib = _capi.Lib({str(lib_path)!r}); model = lib.model({str(model_path)!r})\n")
    res = subprocess.run([sys.executable, "-c", prologue + script], env={**os.environ, **env}, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_every_cpu_level_and_an_unusable_one(capi_build, bundled_path, model, G, tmp_path):
    w = _capi.latents(G, seed=10).numpy()
    want = model.render(w, 64, ratio=0.5)[1]
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "want.npy", want)
    lib_path = _capi.library_path(capi_build)
    for level in ops.cpu_capabilities():
        out = _run_in_fresh_process(lib_path, bundled_path, {"ANYCOST_CPU_CAPABILITY": level}, (
            f"code, rgb, err = model.render(np.load({str(tmp_path / 'w.npy')!r}), 64, ratio=0.5)\n"
            f"assert code == 0, err\n"
            f"print(lib.raw.anycost_cpu_capability().decode(), _capi.max_rel_diff(rgb, np.load("
            f"{str(tmp_path / 'want.npy')!r})))\n"))
        name, diff = out.split()
        assert name == level and float(diff) < TOL, out
    out = _run_in_fresh_process(lib_path, bundled_path, {"ANYCOST_CPU_CAPABILITY": "bogus"}, (
        "code, _, err = model.render(np.zeros((1, model.style_dim), np.float32), 8)\n"
        "print(lib.raw.anycost_cpu_capability().decode()); print(code); print(err)\n"))
    name, code, err = out.splitlines()
    assert name == "unavailable" and int(code) == _capi.E_INTERNAL
    assert "ANYCOST_CPU_CAPABILITY='bogus' is not a CPU level" in err, err


def test_example_program_runs_under_ctest(capi_build):
    res = subprocess.run(["ctest", "--test-dir", str(capi_build), "-R", "example", "--output-on-failure"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "100% tests passed" in res.stdout, res.stdout + res.stderr
    ppm = (capi_build / "example_seed1_32px_0.25.ppm").read_bytes()
    assert ppm.startswith(b"P6\n32 32\n255\n") and len(ppm) == len(b"P6\n32 32\n255\n") + 32 * 32 * 3


@pytest.mark.parametrize("link", ["shared", "static"])
def test_readme_c_example_compiles_and_runs(capi_build, tmp_path, link):
    """The README's C block, as written, against the shared library (-lanycost) and the static one (the link line
    the README gives)."""
    block = re.findall(r"```c\n(.*?)```", (_capi.ROOT / "README.md").read_text(), flags=re.S)
    assert len(block) == 1, "the README should hold one C example"
    (tmp_path / "app.c").write_text(block[0])
    libs = ["-lanycost", f"-Wl,-rpath,{capi_build}"] if link == "shared" else [
        "-l:libanycost.a", "-fopenmp", "-lstdc++", "-lm"]
    cc = subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", str(tmp_path / "app.c"), "-I",
                         str(_capi.ROOT / "csrc" / "capi"), "-L", str(capi_build), *libs, "-o", str(tmp_path / "app")],
                        capture_output=True, text=True, timeout=300)
    assert cc.returncode == 0, cc.stderr
    run = subprocess.run([str(tmp_path / "app")], cwd=_capi.ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
