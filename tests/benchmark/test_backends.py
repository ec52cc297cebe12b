"""`anycost.benchmark.backends`: the backend every styled conv of a forward took, as `anycost.ops` chose it."""

import pytest
import torch

from anycost import benchmark as B
from anycost import ops
from anycost.ops import bf16, tuning
from anycost.ops.tuning import Choice, Shape, Table

native = pytest.mark.skipif(not ops.NATIVE, reason="native ops unavailable: impl='kernel' / the table need them")

#: The styled convs of the tiny 32 px generator, in call order.
LAYERS_32 = ["conv1", "convs.0", "convs.1", "convs.2", "convs.3", "convs.4", "convs.5"]


@pytest.fixture
def table_file(tmp_path, monkeypatch):
    """The tuning table file in tmp_path (absent at first), this process's table forgotten before and after."""
    monkeypatch.setenv(tuning.ENV, str(tmp_path / "tuning.json"))
    tuning.reload()
    yield
    tuning.reload()


def test_every_styled_conv_is_named_in_call_order(tiny_generator):
    G = tiny_generator
    w = B.latent(G)
    taken = B.layer_backends(G, w, G.subnet(ratio=0.5), "ref")
    assert list(taken) == LAYERS_32 and set(taken.values()) == {"ref"}
    assert list(B.layer_backends(G, w, G.subnet(resolution=16), "ref")) == LAYERS_32[:5]
    assert B.backend_codes(taken) == "r" * 7


@native
def test_bf16_where_it_pays_else_the_kernel(tiny_generator, monkeypatch):
    """With the bf16 threshold raised to the tiny model's 64 channels, the layers of ratio 0.5 that keep 64
    channels run bf16 and the two 32-channel ones stay on the kernel."""
    monkeypatch.setattr(bf16, "MIN_CHANNELS", 64)
    G = tiny_generator
    taken = B.layer_backends(G, B.latent(G), G.subnet(ratio=0.5), "kernel", "bf16")
    assert B.backend_codes(taken) == "bbbbbkk"
    assert B.backend_codes(B.layer_backends(G, B.latent(G), G.subnet(ratio=0.5), "kernel")) == "k" * 7


@native
def test_auto_follows_the_tuning_table(tiny_generator, table_file):
    """An entry for conv1's shape (64 -> 64 at 4x4, batch 1, fp32) sends it to the reference; the other layers'
    shapes are not in the table, so the fixed rule gives them the kernel."""
    tuning.save(Table(tuning.machine_key(), {Shape(64, 64, 4, 4, False, 1, "fp32"): Choice("ref", {"ref": 1.0}, 1)}))
    G = tiny_generator
    taken = B.layer_backends(G, B.latent(G), G.full_config, "auto")
    assert taken == {"conv1": "ref", **{name: "kernel" for name in LAYERS_32[1:]}}


def test_the_wrapper_and_hooks_are_gone_afterwards_even_after_an_error(tiny_generator):
    G = tiny_generator
    choose = ops._modconv_backend
    with pytest.raises(ValueError, match="precision"):
        B.layer_backends(G, B.latent(G), G.full_config, "ref", "fp16")
    B.layer_backends(G, B.latent(G), G.full_config, "ref")
    assert ops._modconv_backend is choose and ops.synthesis.__name__ == "synthesis"
    assert not any(m._forward_pre_hooks for m in G.modules())
    with torch.inference_mode():  # and the model still runs
        G(B.latent(G), noise="const", impl="ref")
