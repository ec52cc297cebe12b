"""The `anycost` command line, run in-process through `anycost.cli.main`."""

import json

import pytest
from PIL import Image

from anycost import save_generator
from anycost.cli import build_parser, main


@pytest.fixture
def checkpoint(tmp_path, tiny_generator):
    return str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))


def test_info_reproduces_the_config_f_macs(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "| 1024 | 1.0 | 75.385 | 144.37 |" in out
    assert "| 256 | 0.25 | 4.693 | 9.20 |" in out
    assert "native kernels:" in out


def test_info_on_a_checkpoint(capsys, checkpoint):
    assert main(["info", "-c", checkpoint]) == 0
    out = capsys.readouterr().out
    assert "resolution=32" in out and "M parameters" in out and "| 8 | 0.25 |" in out


def test_generate_one_and_several_seeds(tmp_path, checkpoint, capsys):
    one = tmp_path / "one.png"
    assert main(["generate", "-c", checkpoint, "-s", "3", "-r", "16", "--ratio", "0.5", "-o", str(one)]) == 0
    assert Image.open(one).size == (16, 16)
    row = tmp_path / "row.png"
    assert main(["generate", "-c", checkpoint, "-s", "0-2,7", "-o", str(row), "--noise", "random"]) == 0
    assert Image.open(row).size[0] > 4 * 32
    assert "4 image(s), 32 px, full" in capsys.readouterr().out


def test_generate_is_deterministic_per_seed(tmp_path, checkpoint):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for path in (a, b):
        assert main(["generate", "-c", checkpoint, "-s", "5", "-o", str(path)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_generate_with_a_config_file(tmp_path, checkpoint, tiny_generator, capsys):
    config = tiny_generator.subnet(channels=[64, 40, 20, 10, 5, 3])
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    assert main(["generate", "-c", checkpoint, "--config", str(path), "-o", str(tmp_path / "x.png")]) == 0
    assert "16 px, flexible" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**config.to_dict(), "widths": [64, 40, 20, 10, 5, 999]}))
    assert main(["generate", "-c", checkpoint, "--config", str(bad), "-o", str(tmp_path / "y.png")]) == 1
    assert "width of layer 5" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["generate", "--ratio", "1.5"], ["generate", "-s", "a-b"], ["generate", "--ratio", "0.5", "--config", "x"],
    ["nope"], [],
])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    assert "error" in capsys.readouterr().err


def test_runtime_errors_exit_1_with_a_message(tmp_path, checkpoint, capsys):
    assert main(["generate", "-c", str(tmp_path / "missing.pt")]) == 1
    assert "no checkpoint at" in capsys.readouterr().err
    assert main(["generate", "-c", checkpoint, "-r", "48", "-o", str(tmp_path / "x.png")]) == 1
    assert "unknown resolution 48" in capsys.readouterr().err


def test_demo_writes_grid_and_timings(tmp_path, checkpoint, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-c", checkpoint, "-s", "0,1", "--repeats", "1", "-o", str(out)]) == 0
    grid = Image.open(out / "grid.png")
    assert grid.size[0] > 2 * 96
    report = (out / "timings.md").read_text()
    assert "| 32 | 1.0 |" in report and "| 32 | 0.25 |" in report and "speed-up" in report


def test_convert_both_ways(tmp_path, checkpoint, capsys):
    official = tmp_path / "g.pt"
    assert main(["convert", checkpoint, str(official)]) == 0
    back = tmp_path / "back.safetensors"
    assert main(["convert", str(official), str(back)]) == 0
    assert "(anycost format)" in capsys.readouterr().out


def test_every_command_states_each_default_once(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = " ".join(capsys.readouterr().out.split())  # undo the line wrapping
        assert "(default: None)" not in text and "(default: False)" not in text, name
        for chunk in text.split("--")[1:]:  # one option's help each
            assert chunk.lower().count("default") <= 1, (name, chunk)
