"""The run-time choice of the CPU instruction-set level: what is reported, what is forced, the errors."""

import os
import subprocess
import sys

import pytest
import torch

from anycost import ops
from anycost.ops import _ext

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


@pytest.fixture
def restore_level(monkeypatch):
    monkeypatch.delenv("ANYCOST_CPU_CAPABILITY", raising=False)
    ops._set_cpu_capability_for_testing(None)
    yield
    _ext.limit_cpu_capabilities_for_testing(None)
    ops._set_cpu_capability_for_testing(None)


def _run(env_level, code):
    env = {**os.environ, "ANYCOST_CPU_CAPABILITY": env_level}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_default_is_the_best_level_of_this_cpu(restore_level):
    levels = ops.cpu_capabilities()
    assert levels[0] == "portable" and set(levels) <= set(ops.CPU_LEVELS)
    assert list(levels) == sorted(levels, key=ops.CPU_LEVELS.index)
    assert ops.cpu_capability() == levels[-1]


@pytest.mark.parametrize("level", ops.CPU_LEVELS)
def test_environment_forces_a_level(level):
    if level not in ops.cpu_capabilities():
        pytest.skip(f"this CPU lacks the {level} level")
    res = _run(level, "import anycost.ops as o; print(o.cpu_capability())")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == level


def test_unknown_level_in_environment_is_a_clear_error_at_first_use():
    code = ("import torch, anycost.ops as o\n"
            "try:\n    o.bias_act(torch.randn(2, 3), act='lrelu', impl='kernel')\n"
            "except RuntimeError as e:\n    print('op:', str(e).splitlines()[0])\n"
            "try:\n    o.cpu_capability()\n"
            "except RuntimeError as e:\n    print('query:', e)\n")
    res = _run("avx1024", code)
    assert res.returncode == 0, res.stderr
    for prefix in ("op:", "query:"):
        assert f"{prefix} anycost: ANYCOST_CPU_CAPABILITY='avx1024' is not a CPU level" in res.stdout


def test_level_the_cpu_lacks_names_it_and_the_cpu_levels(restore_level, monkeypatch):
    _ext.limit_cpu_capabilities_for_testing("avx2")  # pretend: an AVX2-only CPU
    assert ops.cpu_capabilities() == ("portable", "avx2")
    with pytest.raises(RuntimeError, match="level=avx512 asks for a level this CPU lacks; it supports portable, avx2"):
        ops._set_cpu_capability_for_testing("avx512")
    monkeypatch.setenv("ANYCOST_CPU_CAPABILITY", "avx512")
    ops._set_cpu_capability_for_testing(None)  # resolve from the environment on the next use
    message = "ANYCOST_CPU_CAPABILITY=avx512 asks for a level this CPU lacks; it supports portable, avx2"
    with pytest.raises(RuntimeError, match=message):
        ops.cpu_capability()
    x = torch.randn(1, 3, 4, 4)
    with pytest.raises(RuntimeError, match=message):
        ops.upfirdn2d(x, ops.fir_kernel(), impl="kernel")


def test_forcing_for_tests_validates_the_name(restore_level):
    with pytest.raises(ValueError, match="unknown CPU level 'sse9'"):
        ops._set_cpu_capability_for_testing("sse9")
    ops._set_cpu_capability_for_testing("portable")
    assert ops.cpu_capability() == "portable"
    ops._set_cpu_capability_for_testing(None)
    assert ops.cpu_capability() == ops.cpu_capabilities()[-1]


def test_levels_agree_on_a_generator_layer(restore_level):
    """Every supported level computes the same layer (fp32 rounding apart)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 64, 16, 16, generator=g)
    w, s = torch.randn(48, 64, 3, 3, generator=g), torch.randn(1, 64, generator=g)
    outs = {}
    for level in ops.cpu_capabilities():
        ops._set_cpu_capability_for_testing(level)
        outs[level] = ops.modulated_conv2d(x, w, s, weight_scale=1 / 24, upsample=True, impl="kernel")
    ref = ops.modulated_conv2d(x, w, s, weight_scale=1 / 24, upsample=True, impl="ref")
    for level, out in outs.items():
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4, msg=lambda m, level=level: f"{level}: {m}")
