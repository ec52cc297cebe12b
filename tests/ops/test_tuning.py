"""The tuning table (`anycost.ops.tuning`): its key, file round trip, atomic writes, corrupt and foreign files,
`impl="auto"` following an entry (and the fixed rule without one), and `anycost tune` end to end. No timing
asserts: which backend wins a real timing is never checked, only that the winner is the fastest of what was timed."""

import json
import math
import warnings

import pytest
import torch

from anycost import ops
from anycost._version import __version__
from anycost.benchmark import tune
from anycost.cli import main
from anycost.ops import bf16, ref, tuning
from anycost.ops.tuning import Choice, Shape, Table

native = pytest.mark.skipif(not ops.NATIVE, reason="native ops unavailable: the table is used only with them")


@pytest.fixture
def table_file(tmp_path, monkeypatch):
    """The table file in tmp_path (absent at first), with this process's table forgotten before and after."""
    path = tmp_path / "cache" / "tuning.json"
    monkeypatch.setenv(tuning.ENV, str(path))
    tuning.reload()
    yield path
    tuning.reload()


@pytest.fixture
def calls(monkeypatch):
    """Counts the calls reaching each backend: the native op, the reference and the bf16 conv."""
    counts = {"kernel": 0, "ref": 0, "bf16": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    if ops.NATIVE:
        monkeypatch.setattr(torch.ops.anycost, "modulated_conv2d",
                            counting("kernel", torch.ops.anycost.modulated_conv2d))
    monkeypatch.setattr(ref, "modulated_conv2d", counting("ref", ref.modulated_conv2d))
    monkeypatch.setattr(bf16, "styled_conv", counting("bf16", bf16.styled_conv))
    return counts


def _layer(c_in=8, c_out=6, size=5, upsample=False, batch=1, seed=0):
    """Arguments of one styled conv (noise, bias, activation), as the generator passes them."""
    g = torch.Generator().manual_seed(seed)
    out = 2 * size if upsample else size
    return dict(x=torch.randn(batch, c_in, size, size, generator=g), weight=torch.randn(c_out, c_in, 3, 3, generator=g),
                styles=torch.rand(batch, c_in, generator=g) + 0.5, weight_scale=1 / math.sqrt(9 * c_in),
                upsample=upsample, noise=torch.randn(1, 1, out, out, generator=g),
                noise_strength=torch.tensor([0.2]), bias=torch.randn(c_out, generator=g), activate=True)


def _shape(args, precision="fp32") -> Shape:
    x = args["x"]
    return Shape(x.shape[1], args["weight"].shape[0], x.shape[2], x.shape[3], args["upsample"], x.shape[0], precision)


def _write(choices: dict, machine=None) -> None:
    """Save a hand-written table of this machine (or of `machine`)."""
    tuning.save(Table(machine or tuning.machine_key(), choices))


def _choice(backend):
    return Choice(backend, {backend: 1.0}, 1)


# -- key, file ------------------------------------------------------------------------------------------------
def test_machine_key_names_cpu_level_and_versions():
    assert tuning.machine_key() == {"cpu": ops.cpu_model(), "cpu_capability": ops.cpu_capability() or "none",
                                    "torch": torch.__version__, "anycost": __version__}


def test_path_is_the_env_override_else_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(tuning.ENV, str(tmp_path / "t.json"))
    assert tuning.path() == tmp_path / "t.json"
    monkeypatch.delenv(tuning.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tuning.path() == tmp_path / "xdg" / "anycost" / "tuning.json"


def test_shape_key_is_looked_up_by_a_plain_tuple(table_file):
    shape = Shape(64, 32, 16, 16, True, 2, "bf16")
    assert shape == (64, 32, 16, 16, True, 2, "bf16") and shape.describe() == "64->32 @ 16x16 up, batch 2, bf16"
    _write({shape: _choice("kernel")})
    assert tuning.lookup((64, 32, 16, 16, True, 2, "bf16")) == "kernel"
    assert tuning.lookup((64, 32, 16, 16, True, 2, "fp32")) is None  # every field is part of the key
    assert tuning.lookup((64, 32, 16, 16, False, 2, "bf16")) is None


def test_round_trip(table_file):
    table = Table(tuning.machine_key(), {Shape(8, 6, 5, 5, False, 1, "fp32"): Choice("ref", {"kernel": 2.5,
                                                                                               "ref": 1.25}, 2),
                                         Shape(8, 6, 5, 5, True, 3, "bf16"): Choice("bf16", {"bf16": 0.5}, 1)})
    assert tuning.save(table) == table_file
    assert json.loads(table_file.read_text())["kind"] == "anycost-tuning"
    assert tuning.read() == table
    assert tuning.summary() == f"{table_file}, 2 entries"


def test_save_is_atomic(table_file, monkeypatch):
    _write({Shape(8, 6, 5, 5, False, 1, "fp32"): _choice("ref")})
    before = table_file.read_bytes()

    def broken(self):
        raise OSError("disk full")

    monkeypatch.setattr(Table, "to_json", broken)
    with pytest.raises(OSError, match="disk full"):
        tuning.save(Table.new())
    assert table_file.read_bytes() == before
    assert [p.name for p in table_file.parent.iterdir()] == ["tuning.json"]  # no temporary file left


def _good_entry(**change):
    entry = {"shape": Shape(8, 6, 5, 5, False, 1, "fp32")._asdict(), "backend": "ref", "ms": {"ref": 1.0},
             "threads": 1}
    return {**entry, **change}


@pytest.mark.parametrize("entries", [
    [_good_entry(backend="bf16")],  # bf16 is no fp32 candidate
    [_good_entry(backend="magic")],
    [_good_entry(shape={**_good_entry()["shape"], "c_in": 0})],
    [_good_entry(shape={**_good_entry()["shape"], "upsample": 1})],
    [_good_entry(shape={**_good_entry()["shape"], "colour": "red"})],
    [_good_entry(threads="two")],
    [_good_entry(ms={"ref": "fast"})],
    [{"backend": "ref"}],
    "nope",
], ids=["wrong-precision", "unknown-backend", "zero-channels", "int-upsample", "extra-field", "bad-threads", "bad-ms",
        "no-shape", "entries-not-a-list"])
def test_bad_entries_are_refused(table_file, entries):
    table_file.parent.mkdir(parents=True)
    table_file.write_text(json.dumps({"kind": "anycost-tuning", "version": 1, "machine": tuning.machine_key(),
                                      "entries": entries}))
    with pytest.raises(tuning.TableError, match="tuning.json"):
        tuning.read()


@pytest.mark.parametrize("text", ["{not json", "[]", '{"kind": "anycost-bench", "version": 1, "machine": {}, '
                                  '"entries": []}', '{"kind": "anycost-tuning", "version": 9, "machine": {}, '
                                  '"entries": []}', "\udcff"], ids=["json", "list", "kind", "version", "bytes"])
@native
def test_a_corrupt_file_is_ignored_with_a_warning(table_file, calls, text):
    table_file.parent.mkdir(parents=True)
    table_file.write_bytes(text.encode("utf-8", "surrogateescape"))
    args = _layer()
    with pytest.warns(UserWarning, match=f"ignoring the tuning table {table_file}"):
        ops.modulated_conv2d(**args)
    assert calls["kernel"] == 1  # the fixed rule
    assert tuning.summary().startswith(f"ignored: {table_file}")


@pytest.mark.parametrize("field", ["cpu", "cpu_capability", "torch", "anycost"])
@native
def test_a_table_of_another_machine_or_software_is_ignored(table_file, calls, field):
    args = _layer()
    _write({_shape(args): _choice("ref")}, machine={**tuning.machine_key(), field: "something else"})
    with pytest.warns(UserWarning, match=f"{table_file}: measured under .*'something else'"):
        ops.modulated_conv2d(**args)
    assert calls == {"kernel": 1, "ref": 0, "bf16": 0}


# -- impl="auto" -----------------------------------------------------------------------------------------------
@native
def test_auto_follows_an_entry_and_the_rule_without_one(table_file, calls):
    tuned, other = _layer(), _layer(size=6)
    _write({_shape(tuned): _choice("ref")})
    ops.modulated_conv2d(**tuned)
    assert calls == {"kernel": 0, "ref": 1, "bf16": 0}
    ops.modulated_conv2d(**other)  # no entry: the fixed rule (the native kernel)
    assert calls == {"kernel": 1, "ref": 1, "bf16": 0}
    ops.modulated_conv2d(**tuned, impl="kernel")  # an explicit impl is never overridden
    assert calls == {"kernel": 2, "ref": 1, "bf16": 0}


@native
def test_bf16_entries_override_bf16_pays(table_file, calls):
    wide, narrow = _layer(c_in=bf16.MIN_CHANNELS, c_out=bf16.MIN_CHANNELS, size=3), _layer()
    assert bf16.pays(bf16.MIN_CHANNELS, bf16.MIN_CHANNELS) and not bf16.pays(8, 6)

    def backend_of(args):
        before = dict(calls)
        with torch.no_grad():
            ops.modulated_conv2d(**args, precision="bf16")
        (used,) = [name for name in calls if calls[name] != before[name]]
        return used

    assert (backend_of(wide), backend_of(narrow)) == ("bf16", "kernel")  # the rule
    _write({_shape(wide, "bf16"): _choice("kernel"), _shape(narrow, "bf16"): _choice("bf16")})
    assert (backend_of(wide), backend_of(narrow)) == ("kernel", "bf16")


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("backend", tuning.BACKENDS)
@native
def test_every_backend_matches_the_reference(table_file, calls, backend, upsample):
    args = _layer(c_in=12, c_out=10, size=5, upsample=upsample, batch=2)
    precision = "bf16" if backend == "bf16" else "fp32"
    _write({_shape(args, precision): _choice(backend)})
    with torch.no_grad():
        out = ops.modulated_conv2d(**args, precision=precision)
        assert calls[backend] == 1 and sum(calls.values()) == 1
        expected = ops.modulated_conv2d(**args, impl="ref")
    tol = 2e-2 if backend == "bf16" else 1e-4
    torch.testing.assert_close(out, expected, rtol=tol, atol=tol * expected.abs().max().item())


@native
def test_the_table_is_read_once_and_again_after_save_or_clear(table_file, monkeypatch):
    args = _layer()
    _write({_shape(args): _choice("ref")})
    reads = []
    real_read = tuning.read
    monkeypatch.setattr(tuning, "read", lambda *a: reads.append(1) or real_read(*a))
    for _ in range(3):
        assert tuning.lookup(_shape(args)) == "ref"
    assert len(reads) == 1
    _write({_shape(args): _choice("kernel")})  # what `anycost tune` does: the next lookup sees the new file
    assert tuning.lookup(_shape(args)) == "kernel" and len(reads) == 2
    assert tuning.clear() and not table_file.exists()
    assert tuning.lookup(_shape(args)) is None
    assert not tuning.clear()


@native
def test_compiled_graphs_follow_the_fixed_rule(table_file):
    args = _layer()
    _write({_shape(args): _choice("ref")})
    compiled = torch.compile(lambda **kw: ops.modulated_conv2d(**kw) * 2, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(**args), 2 * ops.modulated_conv2d(**args, impl="kernel"))


def test_backend_by_name_refuses_unknown_names():
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.modulated_conv2d_backend("onednn", **_layer())


# -- the tuner and `anycost tune` ------------------------------------------------------------------------------
def _expected_shapes(config) -> set:
    """The styled convs of a config from its widths: conv1 at 4 px, then per block an upsampling conv at half the
    block's size and a plain conv at it."""
    w, shapes = config.widths, set()
    shapes.add((w[0], w[1], 4, 4, False))
    for k in range((len(w) - 2) // 2):
        size = 4 * 2**k
        shapes |= {(w[1 + 2 * k], w[2 + 2 * k], size, size, True), (w[2 + 2 * k], w[3 + 2 * k], 2 * size, 2 * size,
                                                                       False)}
    return shapes


def test_layer_shapes_are_those_of_the_configs(tiny_generator):
    configs = [tiny_generator.subnet(resolution=16, ratio=0.5), tiny_generator.subnet(resolution=32, ratio=0.25)]
    shapes = tune.layer_shapes(tiny_generator, configs, [1, 3], ["fp32", "bf16"])
    layers = _expected_shapes(configs[0]) | _expected_shapes(configs[1])
    assert len(shapes) == len(set(shapes)) == 4 * len(layers)
    assert set(shapes) == {Shape(*s, b, p) for s in layers for b in (1, 3) for p in ("fp32", "bf16")}


def test_layer_inputs_of_bf16_shapes_are_bf16_activations():
    """A bf16 shape is timed on what the generator's bf16 layers pass on: bf16 channels_last activations."""
    fp32, in_bf16 = (tune.layer_inputs(Shape(8, 6, 5, 5, False, 1, p))["x"] for p in ("fp32", "bf16"))
    assert fp32.dtype == torch.float32 and in_bf16.dtype == torch.bfloat16
    assert in_bf16.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(in_bf16.float(), fp32.bfloat16().float())


@native
def test_tune_records_the_fastest_of_what_was_timed(tiny_generator):
    fake = {"fp32": {"kernel": 2.0, "ref": 1.0}, "bf16": {"bf16": 3.0, "kernel": 0.5, "ref": 1.0}}
    table = Table.new()
    old = Shape(64, 64, 4, 4, False, 1, "fp32")
    table.choices[old] = _choice("kernel")
    config = tiny_generator.subnet(resolution=8)
    made = tune.tune(table, tiny_generator, [config], precisions=["fp32", "bf16"], progress=False,
                     timer=lambda shape, repeats, warmup: fake[shape.precision])
    assert old in made and table.choices[old].backend == "ref"  # the older choice replaced
    assert {s.precision: c.backend for s, c in made.items()} == {"fp32": "ref", "bf16": "kernel"}
    assert all(c.ms == fake[s.precision] and c.threads == torch.get_num_threads() for s, c in made.items())


@pytest.fixture
def checkpoint(tmp_path, tiny_generator):
    from anycost import save_generator

    return str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@native
def test_tune_cli_end_to_end(table_file, checkpoint, tiny_generator, restore_threads, capsys):
    argv = ["tune", "-c", checkpoint, "--resolutions", "16", "--ratios", "0.5", "--precision", "fp32,bf16",
            "--repeats", "1", "--warmup", "1", "--threads", "1", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    config = tiny_generator.subnet(resolution=16, ratio=0.5)
    layers = _expected_shapes(config)
    table = tuning.read()
    assert set(table.choices) == {Shape(*s, 1, p) for s in layers for p in ("fp32", "bf16")}
    for shape, choice in table.choices.items():
        assert set(choice.ms) == set(tuning.CANDIDATES[shape.precision]) and choice.threads == 1
        assert choice.backend == min(choice.ms, key=choice.ms.get)
    assert f"wrote {table_file}: {2 * len(layers)} entries" in out and "**" in out

    w = tiny_generator.seed_w([1, 2])
    with torch.no_grad():  # whatever won, the render matches the reference
        for precision, tol in (("fp32", 1e-4), ("bf16", 3e-2)):
            got = tiny_generator(w, config=config, noise="const", precision=precision)
            expected = tiny_generator(w, config=config, noise="const", impl="ref")
            torch.testing.assert_close(got, expected, rtol=tol, atol=tol * expected.abs().max().item())

    assert main(["tune", "--show"]) == 0
    out = capsys.readouterr().out
    assert f"tuning table: {table_file}, {2 * len(layers)} entries" in out and "measured under cpu" in out
    assert main(["info"]) == 0
    assert f"tuning table: {table_file}, {2 * len(layers)} entries" in capsys.readouterr().out
    assert main(["tune", "--clear"]) == 0 and not table_file.exists()
    assert f"removed tuning table {table_file}" in capsys.readouterr().out


@native
def test_tune_cli_replaces_a_corrupt_table(table_file, checkpoint, restore_threads, capsys):
    table_file.parent.mkdir(parents=True)
    table_file.write_text("{broken")
    assert main(["tune", "--show"]) == 0
    assert f"tuning table: ignored: {table_file}: unreadable or corrupt" in capsys.readouterr().out
    argv = ["tune", "-c", checkpoint, "--resolutions", "8", "--ratios", "1", "--precision", "fp32", "--repeats", "1",
            "--warmup", "1", "--threads", "1", "--no-progress"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tune says it replaces the table, it does not warn about it
        assert main(argv) == 0
    assert f"replacing the tuning table {table_file}" in capsys.readouterr().out
    assert len(tuning.read().choices) == 3  # conv1, the upsampling conv to 8 px and the 8 px conv


@pytest.mark.parametrize(("args", "status", "message"), [
    (["--precision", "fp32,fp16"], 1, "unknown precision fp16: use fp32,bf16"),
    (["--ratios", "1.5"], 2, "ratio must be in (0, 1], got 1.5"),
    (["--ratios", "half"], 2, "bad ratio 'half'"),
    (["--resolutions", "12"], 1, "resolution"),
    (["--repeats", "0"], 1, "repeats must be a positive integer, got 0"),
    (["--warmup", "0"], 1, "warmup must be a positive integer, got 0"),
    (["--batch", "0"], 1, "batch must be a positive integer, got 0"),
    (["--threads", "0"], 1, "--threads must be >= 1"),
    (["--config-f", "-c", "g.pt"], 2, "not allowed with argument"),
    (["--show", "--clear"], 2, "not allowed with argument"),
])
@native
def test_tune_cli_bad_inputs(table_file, checkpoint, restore_threads, capsys, args, status, message):
    argv = ["tune", *args] if "--config-f" in args else ["tune", "-c", checkpoint, "--no-progress", *args]
    if status == 2:  # refused by the argument parser
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    else:
        assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert not table_file.exists()


@native
def test_a_bf16_render_returns_to_bf16_after_a_tuned_fp32_layer(table_file, tiny_generator, monkeypatch):
    """A table that runs one layer in the middle of a bf16 render in fp32: the layers after it get bf16 activations
    again (`ops.bf16_input`), not float32 they would copy in and out, and the image is the one without the table to
    bf16 rounding."""
    G, w = tiny_generator, tiny_generator.mapping(torch.randn(1, 32, generator=torch.Generator().manual_seed(0)))
    shapes = [s for s in tune.layer_shapes(G, [G.full_config], [1], ["bf16"]) if bf16.pays(s.c_in, s.c_out)]
    middle = next(s for s in shapes if s.height == 8 and not s.upsample)
    assert len(shapes) > 4 and shapes.index(middle) not in (0, len(shapes) - 1)
    with torch.no_grad():
        untuned = G(w, noise="const", precision="bf16")
        _write({middle: _choice("kernel")})
        seen, styled_conv = [], bf16.styled_conv
        monkeypatch.setattr(bf16, "styled_conv", lambda x, *a, **k: seen.append((x.shape[2], x.dtype)) or
                            styled_conv(x, *a, **k))
        tuned = G(w, noise="const", precision="bf16")
    assert len(seen) == len(shapes) - 1 and all(dtype == torch.bfloat16 for _, dtype in seen)
    assert {size for size, _ in seen} > {8, 16}  # layers before and after the fp32 one
    torch.testing.assert_close(tuned, untuned, rtol=0, atol=0.05 * float(untuned.abs().max()))
