"""The built extension keeps each instruction set in the code compiled for it (kernels/cpu/isa_kernels.inc):
disassembled with objdump, every function with AVX-512 (EVEX / zmm) code is in anycost::cpu::avx512 or
::avx512_vnni, every one with a VNNI dot product (vpdpbusd) in ::avx512_vnni, and every one with AVX / AVX2 / FMA
(VEX) code in one of those or ::avx2, so the baseline code and each level run on a CPU without the levels above it.
Skipped without objdump or the extension."""

import importlib.util
import platform

import _disasm  # tests/ops is on sys.path (pytest rootdir import mode)
import pytest

from anycost.ops import _ext

pytestmark = [
    pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}"),
    pytest.mark.skipif(not _disasm.objdump_available(), reason="objdump not found (binutils)"),
    pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 only"),
]


@pytest.fixture(scope="module")
def functions():
    return _disasm.classify(importlib.util.find_spec("anycost._C").origin)


AVX512 = ("anycost::cpu::avx512::", "anycost::cpu::avx512_vnni::")


def test_avx512_code_only_in_the_avx512_namespaces(functions):
    bad = sorted(f for f, kinds in functions.items() if "evex" in kinds and not any(n in f for n in AVX512))
    assert not bad, f"AVX-512 instructions outside anycost::cpu::avx512 / avx512_vnni: {bad[:5]}"


def test_vnni_code_only_in_the_avx512_vnni_namespace(functions):
    bad = sorted(f for f, kinds in functions.items() if "vnni" in kinds and "anycost::cpu::avx512_vnni::" not in f)
    assert not bad, f"VNNI instructions outside anycost::cpu::avx512_vnni: {bad[:5]}"


def test_avx_code_only_in_the_avx_namespaces(functions):
    ns = ("anycost::cpu::avx2::", *AVX512)
    bad = sorted(f for f, kinds in functions.items() if "vex" in kinds and not any(n in f for n in ns))
    assert not bad, f"AVX instructions outside the avx2 / avx512 / avx512_vnni namespaces: {bad[:5]}"


def test_each_level_has_its_vector_code(functions):
    """The levels are really compiled for their instruction sets (16-lane zmm kernels at avx512)."""
    def kernels(ns, kind):
        return [f for f, kinds in functions.items() if f"anycost::cpu::{ns}::" in f and kind in kinds]

    assert any("conv_ukernel<" in f for f in kernels("avx512", "evex"))
    assert any("conv_ukernel<" in f for f in kernels("avx2", "vex"))
    assert any("qconv_ukernel<" in f for f in kernels("avx512_vnni", "vnni"))
    assert any("qconv_ukernel<" in f for f in kernels("avx2", "vex"))
    assert not kernels("portable", "vex") and not kernels("portable", "evex")
