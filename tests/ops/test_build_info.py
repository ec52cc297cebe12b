"""The record of what anycost._C was built against (_build_info.json beside it, written by setup.py), and the
refusal to load an extension built for another torch: one line, a RuntimeWarning, the reference ops instead."""

import json

import pytest
import torch

from anycost import cli
from anycost.ops import _ext

FOREIGN = {"anycost": "0.1.0", "torch": "1.0.0+foreign", "torch_git": "0" * 40, "torch_cuda": None,
           "cxx11_abi": True, "python": "3.11.7", "platform": "linux-x86_64", "compiler": "c++ (GCC) 12.2.0",
           "native": False, "cuda": False}


@pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")
def test_the_loaded_extension_records_the_running_torch():
    info = _ext.build_info()
    assert info is not None, f"no {_ext.BUILD_INFO} beside {_ext._origin()}"
    assert info["torch"] == str(torch.__version__)
    assert set(FOREIGN) <= set(info)
    assert _ext.torch_mismatch(info) == ""
    assert f"torch {torch.__version__}" in _ext.describe_build(info)


def test_record_is_read_from_beside_the_extension(tmp_path, monkeypatch):
    (tmp_path / "_C.so").write_bytes(b"")
    (tmp_path / _ext.BUILD_INFO).write_text(json.dumps(FOREIGN))
    monkeypatch.setattr(_ext, "_origin", lambda: str(tmp_path / "_C.so"))
    assert _ext.build_info() == FOREIGN
    (tmp_path / _ext.BUILD_INFO).write_text("{not json")
    assert _ext.build_info() is None
    monkeypatch.setattr(_ext, "_origin", lambda: None)
    assert _ext.build_info() is None


def test_an_extension_for_another_torch_is_refused_in_one_line(monkeypatch):
    monkeypatch.delenv("ANYCOST_NO_EXT", raising=False)
    monkeypatch.setattr(_ext, "_origin", lambda: "/nonexistent/_C.so")  # never opened: refused before
    monkeypatch.setattr(_ext, "build_info", lambda: dict(FOREIGN))
    with pytest.warns(RuntimeWarning, match=r"built against torch 1\.0\.0\+foreign"):
        lib, reason = _ext._load_result.__wrapped__()  # the uncached loader: the process's own result stays
    assert lib is None
    assert "\n" not in reason
    assert f"built against torch 1.0.0+foreign, this is torch {torch.__version__}: not loaded" in reason
    assert "--no-build-isolation" in reason


def test_no_record_is_not_a_mismatch():
    assert _ext.torch_mismatch({"torch": str(torch.__version__)}) == ""
    assert "no build record" in _ext.describe_build(None)


def test_info_prints_the_build_versions_and_the_refusal(monkeypatch, capsys):
    reason = _ext.torch_mismatch(FOREIGN)
    monkeypatch.setattr(_ext, "load", lambda: None)
    monkeypatch.setattr(_ext, "reason", lambda: reason)
    monkeypatch.setattr(_ext, "build_info", lambda: dict(FOREIGN))
    assert cli.main(["info", "--resolution", "32", "--channel-multiplier", "0.125"]) == 0
    out = capsys.readouterr().out
    assert f"native kernels: not in use: {reason}\n" in out
    assert "extension built against: torch 1.0.0+foreign, Python 3.11.7, c++ (GCC) 12.2.0" in out
    assert f"running: torch {torch.__version__}" in out


def test_the_reference_ops_run_when_the_extension_is_refused(tiny_generator):
    """What the refusal falls back to: impl='ref' needs nothing from anycost._C."""
    w = tiny_generator.mapping(torch.randn(2, tiny_generator.arch.style_dim))
    with torch.inference_mode():
        out = tiny_generator(w, config=tiny_generator.subnet(resolution=16, ratio=0.5), impl="ref")
    assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all()
