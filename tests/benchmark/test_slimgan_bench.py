"""`anycost bench -c` on a SlimGAN generator file: a row per width, written like the other bench reports (no timing
asserts); bad inputs."""

import json

import pytest
import torch

from anycost import benchmark as B
from anycost.cli import main
from anycost.models.slimgan import SlimArch, build_generator, save_generator


@pytest.fixture
def slim_file(tmp_path):
    """A tiny random class-conditional grey DCGAN (widths 0.25-1.0) saved by the SlimGAN checkpoint writer."""
    torch.manual_seed(0)
    G = build_generator(SlimArch.dcgan32(32, z_dim=8, num_classes=10, img_channels=1))
    return G, save_generator(G, tmp_path / "slim.safetensors")


def test_cli_bench_times_every_width(tmp_path, slim_file, capsys):
    G, path = slim_file
    out = tmp_path / "bench"
    assert main(["bench", "-c", str(path), "--batch", "4", "--repeats", "2", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| width | channels | MMACs per image | ms per batch of 4 | images/s | GFLOP/s |" in printed
    data = json.loads((out / "bench.json").read_text())
    assert data["kind"] == "anycost-slimgan-bench" and data["machine"]["batch"] == 4
    assert data["machine"]["model"] == f"checkpoint {path}"
    rows = data["rows"]
    assert [r["width"] for r in rows] == [0.25, 0.5, 0.75, 1.0]
    assert [r["macs"] for r in rows] == [c.macs for c in G.configs()] and rows[-1]["channels"] == [32, 16, 8, 4]
    assert all(r["ms"] > 0 and r["min_ms"] <= r["ms"] and r["repeats"] == 2 for r in rows)
    md = (out / "bench.md").read_text()
    assert md.startswith("# anycost bench: SlimGAN widths") and "| 0.25x | 8-4-2-1 |" in md
    assert not (out / "bench.png").exists()


def test_default_batch_is_64(slim_file):
    G, _ = slim_file
    result = B.run_slimgan_bench(G, repeats=1, warmup=0)
    assert result.batch == B.SLIM_BATCH == 64 and len(result.rows) == 4
    row = result.rows[0]
    assert row.images_per_s(64) == pytest.approx(64 / (row.ms / 1000))
    assert row.gflops(64) == pytest.approx(B.gflops(64 * row.macs, row.ms / 1000))


def test_bad_inputs(tmp_path, slim_file, tiny_generator, capsys):
    G, path = slim_file
    with pytest.raises(ValueError, match="batch must be"):
        B.run_slimgan_bench(G, batch=0)
    with pytest.raises(TypeError, match="SlimGenerator"):
        B.run_slimgan_bench(tiny_generator)
    assert main(["bench", "-c", str(path), "--batch", "0", "--out", str(tmp_path)]) == 1
    assert "batch must be" in capsys.readouterr().err
    assert main(["bench", "-c", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path)]) == 1
    assert "no checkpoint at" in capsys.readouterr().err
