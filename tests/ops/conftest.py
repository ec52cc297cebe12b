"""`cpu_level`: runs a native-vs-reference test once per CPU instruction-set level of the native kernels,
forcing that level in this process; levels this CPU lacks are skipped, naming them."""

import pytest

from anycost import ops


@pytest.fixture(params=ops.CPU_LEVELS)
def cpu_level(request):
    level = request.param
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
