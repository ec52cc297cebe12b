"""`anycost compress` on the tiny generator, run in-process."""

import json

import pytest

from anycost import save_generator
from anycost.cli import main
from anycost.compression import load_generator


@pytest.fixture
def checkpoint(tmp_path, tiny_generator):
    return str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))


def test_compress_writes_every_model_and_the_report(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compress", "-c", checkpoint, "--method", "prune,channels,kmeans", "--sparsity", "0.5",
                 "--scope", "global,layer", "--keep", "0.5", "--bits", "2", "--cheap", "16:0.25", "-n", "2",
                 "--perceptual", "none", "--rounds", "1", "--no-progress", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    settings = [(r["method"], r["setting"]) for r in report["rows"]]
    assert settings == [("none", "uncompressed"), ("prune", "50% global"), ("prune", "50% layer"),
                        ("channels", "keep 0.5"), ("kmeans", "2 bits")]
    for name in ("prune-global-0.5", "prune-layer-0.5", "channels-0.5", "kmeans-2bit"):
        assert load_generator(out / f"{name}.safetensors").steps
    channels = report["rows"][3]
    assert channels["macs_ratio"] < 1 and channels["distance"]["16 px, ratio 0.25"]["mse"] < 1e-9
    assert "| kmeans | 2 bits |" in (out / "report.md").read_text()
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--method", "svd"], "unknown method 'svd'"),
    (["--method", "kmeans", "--bits", "9"], "bits must be an integer in 1..8, got 9"),
    (["--method", "prune", "--sparsity", "1"], "sparsity must be in [0, 1), got 1.0"),
    (["--method", "channels", "--keep", "0"], "keep must be in (0, 1], got 0.0"),
])
def test_bad_settings_are_one_line_errors(checkpoint, tmp_path, capsys, args, message):
    assert main(["compress", "-c", checkpoint, "--out", str(tmp_path / "o"), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"anycost compress: error: {message}" or (message in err and "\n" not in err)
