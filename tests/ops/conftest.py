"""`cpu_level` / `int8_level`: run a native-vs-reference test once per CPU instruction-set level of the native
kernels, forcing that level in this process; levels this CPU lacks are skipped, naming them. `cpu_level` leaves out
avx512_vnni, whose fp32 kernels are avx512's (only its int8 kernels differ: `int8_level` has every level)."""

import pytest

from anycost import ops

FP32_LEVELS = tuple(level for level in ops.CPU_LEVELS if level != "avx512_vnni")


def _forced(level):
    if not ops.NATIVE:
        pytest.skip("native ops unavailable")
    if level not in ops.cpu_capabilities():
        pytest.skip(f"this CPU lacks the {level} level (it supports {', '.join(ops.cpu_capabilities())})")
    ops._set_cpu_capability_for_testing(level)
    try:
        assert ops.cpu_capability() == level
        yield level
    finally:
        ops._set_cpu_capability_for_testing(None)


@pytest.fixture(params=FP32_LEVELS)
def cpu_level(request):
    yield from _forced(request.param)


@pytest.fixture(params=ops.CPU_LEVELS)
def int8_level(request):
    yield from _forced(request.param)
