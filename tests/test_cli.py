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
    assert "CPU: " in out


def test_info_prints_the_cpu_levels(capsys):
    from anycost import ops

    if not ops.NATIVE:
        pytest.skip("native ops unavailable")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"CPU levels: {', '.join(ops.cpu_capabilities())}; in use: {ops.cpu_capability()}" in out


def test_info_says_what_bf16_runs_on(capsys):
    from anycost.ops import bf16

    assert main(["info"]) == 0
    assert f"bf16 (precision='bf16'): {bf16.HARDWARE[bf16.hardware()]}" in capsys.readouterr().out


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


def _pixels(path):
    import numpy as np

    return np.asarray(Image.open(path), dtype=np.int16)


def test_generate_many_seeds_into_a_folder_in_chunks(tmp_path, checkpoint, capsys):
    """A folder output gets one PNG per seed, rendered `--batch` at a time; each image is the one its seed gives
    alone (uint8 within 1: the batch size changes the summation order of the float convolutions)."""
    out = tmp_path / "many"
    assert main(["generate", "-c", checkpoint, "-s", "0-6", "-b", "3", "--noise", "random", "-o", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"seed{s:06d}.png" for s in range(7)]
    alone = tmp_path / "alone.png"
    assert main(["generate", "-c", checkpoint, "-s", "5", "--noise", "random", "-o", str(alone)]) == 0
    assert abs(_pixels(out / "seed000005.png") - _pixels(alone)).max() <= 1
    assert "7 image(s)" in capsys.readouterr().out


def test_generate_memory_is_bounded_by_the_batch(monkeypatch, tmp_path, checkpoint):
    """No forward sees more than --batch latents, whatever the number of seeds."""
    from anycost.models.stylegan2.generator import Generator

    sizes = []
    forward = Generator.forward
    monkeypatch.setattr(Generator, "forward", lambda self, w, **kw: sizes.append(len(w)) or forward(self, w, **kw))
    assert main(["generate", "-c", checkpoint, "-s", "0-40", "-b", "8", "-o", str(tmp_path / "f")]) == 0
    assert max(sizes) == 8 and sum(sizes) == 41


def test_generate_refuses_a_grid_too_large_and_folders_named_like_images(monkeypatch, tmp_path, checkpoint, capsys):
    from anycost.models.stylegan2 import cli as stylegan2_cli

    monkeypatch.setattr(stylegan2_cli, "MAX_GRID", 4)
    assert main(["generate", "-c", checkpoint, "-s", "0-4", "-o", str(tmp_path / "grid.png")]) == 1
    err = capsys.readouterr().err
    assert "5 seeds do not fit one grid" in err and "one PNG per seed" in err and len(err.splitlines()) == 1
    folder = tmp_path / "looks.png"
    folder.mkdir()
    with pytest.raises(SystemExit):
        main(["generate", "-c", checkpoint, "-o", str(folder)])
    assert "is a folder" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SystemExit):
        main(["generate", "-c", checkpoint, "-o", str(afile)])
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["generate", "-s", "5-2"], "runs backwards: write 2-5"),
    (["demo", "-o", "{file}"], "is a file, not a folder"),
    (["search", "--budget-macs", "0.5", "-o", "{file}"], "is a file, not a folder"),
    (["bench", "-o", "{file}"], "is a file, not a folder"),
    (["evaluate", "x.safetensors", "-o", "{file}"], "is a file, not a folder"),
])
def test_bad_arguments_say_what_is_wrong(argv, message, tmp_path, capsys):
    afile = tmp_path / "existing.txt"
    afile.write_text("keep me")
    with pytest.raises(SystemExit) as err:
        main([a.format(file=afile) for a in argv])
    assert err.value.code == 2 and message in capsys.readouterr().err
    assert afile.read_text() == "keep me"


def test_a_refused_search_leaves_no_folder(tmp_path, checkpoint, capsys):
    """--budget-macs 2 is neither a fraction nor a plausible MAC count: an error before anything is written."""
    out = tmp_path / "search"
    assert main(["search", "-c", checkpoint, "--budget-macs", "2", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "neither a fraction in (0, 1] nor a MAC count" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_os_errors_are_one_line_without_errno():
    from anycost.cli import _one_line

    assert _one_line(FileExistsError(17, "File exists", "runs/x")) == "runs/x: File exists"
    assert _one_line(ValueError("first line\nsecond line\nthird")) == "first line"


def test_demo_warms_every_config_before_timing_any(monkeypatch, tmp_path, checkpoint):
    """The first forwards of a process are slow (kernel loading, first pages): every config the demo shows has
    run once before the first timed one, so the first row's time is not a cold start."""
    from anycost.benchmark import cli as benchmark_cli
    from anycost.benchmark import generator_bench
    from anycost.models.stylegan2.generator import Generator

    ran, warm_at_first_timing = [], []
    forward = Generator.forward
    monkeypatch.setattr(Generator, "forward",
                        lambda self, w, config=None, **kw: ran.append(config) or forward(self, w, config=config, **kw))
    time_forward = generator_bench.time_forward

    def timed(G, w, config, *args, **kw):
        if not warm_at_first_timing:
            warm_at_first_timing.append(set(ran))
        return time_forward(G, w, config, *args, **kw)

    monkeypatch.setattr(generator_bench, "time_forward", timed)
    assert main(["demo", "-c", checkpoint, "-s", "0", "--repeats", "1", "-o", str(tmp_path / "demo")]) == 0
    from anycost import load_generator

    shown = {config for _, config in benchmark_cli.demo_configs(load_generator(checkpoint))}
    assert shown and shown <= warm_at_first_timing[0]
