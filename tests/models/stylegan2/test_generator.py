"""Generator API behaviour on tiny models: configs as forward values, latents, noise, errors."""

import threading

import pytest
import torch

from anycost import Generator, GeneratorArch, SubnetConfig, sort_channels
from anycost.models.stylegan2 import generator as generator_module


def _w(G, n=2, seed=0):
    return G.mapping(torch.randn(n, G.arch.style_dim, generator=torch.Generator().manual_seed(seed)))


def test_w_and_repeated_wplus_agree(tiny_generator):
    G = tiny_generator
    w = _w(G)
    wplus = w.unsqueeze(1).repeat(1, G.arch.n_styles, 1)
    torch.testing.assert_close(G(w, noise="const"), G(wplus, noise="const"))
    # a sub-resolution accepts W+ of exactly its own length too
    config = G.subnet(resolution=16)
    torch.testing.assert_close(G(wplus[:, :6], config=config, noise="const"), G(w, config=config, noise="const"))


def test_truncation_and_mean_w(tiny_generator):
    G = tiny_generator
    w = _w(G)
    torch.testing.assert_close(G.mean_w(), G.w_avg)  # initialised with the same seed and count
    assert not torch.equal(G.mean_w(n=100, seed=1), G.w_avg)
    at_mean = G(G.w_avg.expand(2, -1), noise="const")
    torch.testing.assert_close(G(w, noise="const", truncation=0.0), at_mean)
    half = G(torch.lerp(G.w_avg, w, 0.5), noise="const")
    torch.testing.assert_close(G(w, noise="const", truncation=0.5), half)


def test_style_mixing(tiny_generator):
    G = tiny_generator
    w1, w2 = _w(G, seed=1), _w(G, seed=2)
    mixed = G.mix_styles(w1, w2, 3, G.arch.n_styles)
    assert torch.equal(mixed[:, :3], w1.unsqueeze(1).expand(-1, 3, -1))
    assert torch.equal(mixed[:, 3:], w2.unsqueeze(1).expand(-1, G.arch.n_styles - 3, -1))
    out = G(mixed, noise="const")
    assert not torch.allclose(out, G(w1, noise="const")) and not torch.allclose(out, G(w2, noise="const"))
    with pytest.raises(ValueError, match="crossover"):
        G.mix_styles(w1, w2, 99, G.arch.n_styles)


def test_noise_modes(tiny_generator):
    G = tiny_generator
    with torch.no_grad():  # noise strengths start at zero, as in StyleGAN2
        for layer in (G.conv1, *G.convs):
            layer.noise.weight.fill_(0.5)
    w = _w(G)
    assert torch.equal(G(w, noise="const"), G(w, noise="const"))
    assert not torch.equal(G(w), G(w))  # fresh random noise every call
    rng = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    assert torch.equal(G(w, rng=rng()), G(w, rng=rng()))
    noise = G.make_noise(2, rng=rng())
    assert torch.equal(G(w, noise=noise), G(w, rng=rng()))
    assert not torch.equal(G(w, noise=noise), G(w, noise="const"))


def test_return_rgbs_and_elastic_resolution(tiny_generator):
    G = tiny_generator
    w = _w(G)
    img, rgbs = G(w, noise="const", return_rgbs=True)
    assert [r.shape[-1] for r in rgbs] == [4, 8, 16, 32] and rgbs[-1] is img
    torch.testing.assert_close(G(w, config=G.subnet(resolution=16), noise="const"), rgbs[2])


def test_lower_resolution_runs_nothing_above_it(tiny_generator):
    G = tiny_generator
    calls = []
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: calls.append(k)) for k, m in enumerate(G.convs)]
    G(_w(G), config=G.subnet(resolution=8))
    for h in hooks:
        h.remove()
    assert calls == [0, 1]


def test_subnets_slice_the_full_weights_without_copies(tiny_generator, monkeypatch):
    G = tiny_generator
    seen = []
    real = generator_module.StyledConv.forward.__globals__["ops"].modulated_conv2d

    def spy(x, weight, *args, **kwargs):
        seen.append(weight)
        return real(x, weight, *args, **kwargs)

    monkeypatch.setattr("anycost.ops.modulated_conv2d", spy)
    config = G.subnet(ratio=0.25)
    G(_w(G), config=config)
    convs = [G.conv1, *G.convs]
    assert len(seen) == len(convs)
    for weight, layer, width in zip(seen, convs, config.widths[1:]):
        assert weight._base is layer.conv.weight or weight.untyped_storage().data_ptr() == \
            layer.conv.weight.untyped_storage().data_ptr()
        assert weight.shape[0] == width
    assert seen[-1].shape[:2] == (16, 16) and not seen[-1].is_contiguous()


def test_two_configs_concurrently_on_one_model(tiny_generator):
    G = tiny_generator
    w = _w(G)
    configs = [G.subnet(ratio=0.25), G.full_config, G.subnet(resolution=16, ratio=0.5)]
    expected = [G(w, config=c, noise="const") for c in configs]
    # The threads' renders may run the convolutions with another intra-op thread count than this thread's (a
    # per-thread OpenMP setting), so float32 sums in another order: a few ulps per layer, ~3e-6 on these images
    # (|x| up to ~5). A render that picked up another thread's widths differs by ~1 (checked below).
    tol = dict(rtol=0, atol=1e-4)
    assert not torch.allclose(expected[0], expected[1], **tol)
    results, errors = {}, []

    def run(i):
        try:
            for _ in range(5):
                results[i] = G(w, config=configs[i % 3], noise="const")
                torch.testing.assert_close(results[i], expected[i % 3], **tol)
        except Exception as err:  # a wrong image, or a shape error from another thread's widths
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(results) == list(range(6))


def test_channels_change_the_output_and_gradients_flow(tiny_generator):
    G = tiny_generator
    w = _w(G)
    full, small = G(w, noise="const"), G(w, config=G.subnet(ratio=0.25), noise="const")
    assert not torch.allclose(full, small)
    small.square().mean().backward()
    assert G.convs[-1].conv.weight.grad[0, 16:].abs().sum() == 0  # unused channels get no gradient
    assert G.convs[-1].conv.weight.grad[0, :16].abs().sum() > 0


def test_sort_channels_keeps_the_full_output_and_helps_subnets(tiny_generator):
    G = tiny_generator
    w = _w(G, n=8)
    before_full = G(w, noise="const")
    config = G.subnet(ratio=0.25)
    before_sub = G(w, config=config, noise="const")
    sort_channels(G, n_samples=2000)
    after_full = G(w, noise="const")
    # The permuted channels make every convolution add its Cin x 9 products in another order, so float32
    # rounding moves each layer's output by a few ulps, compounding over the 11 modulated layers: 6.2e-6 here
    # (|image| up to 6.1, AMD Zen 4). Allow 128 ulps (eps = 2**-23) of the image's largest value, ~9e-5; the
    # old atol 1e-5 + rtol 1e-5 left under 2x room where pixels are near 0. A mis-permuted layer moves it >1e-2.
    atol = 128 * torch.finfo(before_full.dtype).eps * before_full.abs().max().item()
    torch.testing.assert_close(after_full, before_full, atol=atol, rtol=0)
    after_sub = G(w, config=config, noise="const")
    assert not torch.allclose(after_sub, before_sub)


def test_bad_inputs_give_clear_errors(tiny_generator):
    G = tiny_generator
    w = _w(G)
    other = SubnetConfig.full(GeneratorArch(32, channel_multiplier=0.25, channel_max=64, style_dim=32, n_mlp=2))
    with pytest.raises(ValueError, match="config is for"):
        G(w, config=other)
    with pytest.raises(TypeError, match="config must be a SubnetConfig"):
        G(w, config=0.5)
    with pytest.raises(ValueError, match=r"w must be W \[N, 32\]"):
        G(torch.randn(2, 31))
    with pytest.raises(ValueError, match="w must be"):
        G(torch.randn(2, 5, 32))
    with pytest.raises(ValueError, match="empty batch"):
        G(torch.randn(0, 32))
    with pytest.raises(ValueError, match="noise must be one of"):
        G(w, noise="zeros")
    with pytest.raises(ValueError, match="needs 7 noise tensors"):
        G(w, noise=[])
    with pytest.raises(ValueError, match=r"noise\[0\] must be"):
        G(w, noise=[torch.randn(2, 1, 5, 5)] * 7)
    with pytest.raises(ValueError, match="either ratio or channels"):
        G.subnet(ratio=0.5, channels=[1] * 8)
    with pytest.raises(ValueError, match="z must end in 32"):
        G.mapping(torch.randn(3, 4))
    with pytest.raises(ValueError, match="impl must be one of"):
        G(w, impl="fast")


def test_constructor_arguments_build_the_arch():
    G = Generator(16, channel_multiplier=0.25, channel_max=32, style_dim=8, n_mlp=1)
    assert G.arch == GeneratorArch(16, 0.25, 32, 8, 1)
    assert G.full_config.widths == (32, 32, 32, 32, 32, 32)
    assert G(torch.randn(1, 8)).shape == (1, 3, 16, 16)
