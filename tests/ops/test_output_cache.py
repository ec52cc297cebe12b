"""The native ops' output cache (csrc/output_cache.cpp): freed outputs of 64 KiB and more are handed out again,
page-aligned."""

import gc
import os
import subprocess
import sys

import pytest
import torch

from anycost import ops
from anycost.ops import _ext

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _upfirdn(x):
    return ops.upfirdn2d(x, ops.fir_kernel([1, 3, 3, 1]), up=1, down=1, pad=(1, 2, 1, 2), impl="kernel")


def test_a_freed_output_is_handed_out_again():
    gc.collect()  # outputs of earlier tests in this process must not come back during this one
    ops.clear_output_cache()
    assert ops.output_cache_bytes() == 0
    x = torch.randn(1, 4, 300, 300)  # outputs of 4 x 300 x 300 floats: 1.37 MiB
    out = _upfirdn(x)
    ptr, nbytes = out.data_ptr(), out.untyped_storage().nbytes()
    assert ptr % 4096 == 0  # the image-to-image ops' bands of rows split planes at page boundaries
    expected = out.clone()
    del out
    assert ops.output_cache_bytes() == nbytes
    again = _upfirdn(x)
    assert again.data_ptr() == ptr and ops.output_cache_bytes() == 0
    torch.testing.assert_close(again, expected, rtol=0, atol=0)
    other = _upfirdn(torch.randn(1, 4, 310, 300))  # another size takes a new block
    assert other.data_ptr() != ptr
    del again, other
    assert ops.output_cache_bytes() > nbytes
    ops.clear_output_cache()
    assert ops.output_cache_bytes() == 0


def test_small_outputs_and_resizing():
    gc.collect()
    ops.clear_output_cache()
    small = _upfirdn(torch.randn(1, 2, 20, 20))
    del small
    assert ops.output_cache_bytes() == 0  # under 64 KiB: not cached
    out = _upfirdn(torch.randn(1, 4, 300, 300))
    out.resize_(2, 4, 301, 301).fill_(1.0)  # the storage of a cached output stays resizable
    assert out.sum().item() == 2 * 4 * 301 * 301
    del out
    ops.clear_output_cache()


def _run(value, code):
    env = {**os.environ, "ANYCOST_OUTPUT_CACHE_MB": value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


_CODE = ("import torch; from anycost import ops\n"
         "out = ops.upfirdn2d(torch.randn(1, 4, 300, 300), ops.fir_kernel([1, 3, 3, 1]), up=1, down=1, "
         "pad=(1, 2, 1, 2), impl='kernel'); del out; print(ops.output_cache_bytes())")


@pytest.mark.parametrize(("value", "held"), [("0", 0), ("1", 0), ("2", 4 * 300 * 300 * 4)])
def test_the_cap_comes_from_the_environment(value, held):
    r = _run(value, _CODE)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[-1]) == held


@pytest.mark.parametrize("value", ["-1", "lots", "1.5"])
def test_a_bad_cap_is_a_clear_error(value):
    r = _run(value, _CODE)
    assert r.returncode != 0
    assert "ANYCOST_OUTPUT_CACHE_MB" in r.stderr and f"'{value}'" in r.stderr
