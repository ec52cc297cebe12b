"""Optimisation-based projection and target loading, on the tiny generator."""

import numpy as np
import pytest
import torch
from PIL import Image

from anycost.projection import Projection, load_target, project
from anycost.projection.optimize import noise_regularization


@pytest.fixture
def known(tiny_generator):
    """An image the generator itself renders from a known W code (stored noise)."""
    G = tiny_generator
    w = G.mapping(torch.randn(1, G.arch.style_dim, generator=torch.Generator().manual_seed(3))).detach()
    with torch.no_grad():
        return G(w, noise="const"), w


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_projection_of_a_generated_image_gets_close(tiny_generator, known, optimizer):
    G, (target, _) = tiny_generator, known
    result = project(G, target, steps=25, optimizer=optimizer, perceptual=None)
    assert isinstance(result, Projection) and not result.stopped
    assert result.w_plus.shape == (1, G.arch.n_styles, G.arch.style_dim) and not result.w_plus.requires_grad
    assert result.image.shape == target.shape and len(result.losses) == 25
    with torch.no_grad():
        start_mse = float((G(G.w_avg.expand(1, G.arch.n_styles, -1), noise="const") - target).square().mean())
    assert result.losses[-1] < 0.2 * result.losses[0]
    assert result.distances["full_mse"] < 0.25 * start_mse
    with torch.no_grad():  # the code renders the reported image
        assert torch.allclose(G(result.w_plus, noise="const"), result.image, atol=1e-5)


def test_perceptual_and_consistency_distances(tiny_generator, known):
    from anycost.metrics.perceptual import available_backends, load_perceptual

    if not available_backends()["hed-vgg"]:
        pytest.skip("no offline perceptual backend")
    G, (target, _) = tiny_generator, known
    configs = [G.subnet(ratio=0.25), G.subnet(resolution=16)]
    result = project(G, target, steps=3, perceptual=load_perceptual("hed-vgg", layers=1), consistency_weight=1.0,
                     consistency_configs=configs)
    assert set(result.distances) == {"full_mse", "full_perceptual", "sub:32 px, ratio 0.25",
                                     "sub_mse:32 px, ratio 0.25", "sub:16 px, full", "sub_mse:16 px, full"}
    assert all(v >= 0 for v in result.distances.values())


def test_consistency_term_lowers_the_sub_generator_error(tiny_generator, known):
    G, (target, _) = tiny_generator, known
    config = G.subnet(ratio=0.25)
    plain = project(G, target, steps=15, perceptual=None, consistency_configs=[config])
    tied = project(G, target, steps=15, perceptual=None, consistency_configs=[config],
                   consistency_weight=4.0)
    with torch.no_grad():
        def sub_error(r):
            return float((G(r.w_plus, config=config, noise="const") - target).square().mean())
        assert sub_error(tied) < sub_error(plain)


def test_callback_stops_early(tiny_generator, known):
    seen = []

    def callback(step, loss):
        seen.append((step, loss))
        return step == 2

    result = project(tiny_generator, known[0], steps=50, perceptual=None, callback=callback)
    assert result.stopped and len(result.losses) == 3 and [s for s, _ in seen] == [0, 1, 2]
    assert [l for _, l in seen] == result.losses


def test_noise_optimisation_is_seeded_and_normalised(tiny_generator, known):
    a = project(tiny_generator, known[0], steps=3, perceptual=None, optimize_noise=True, seed=1)
    b = project(tiny_generator, known[0], steps=3, perceptual=None, optimize_noise=True, seed=1)
    c = project(tiny_generator, known[0], steps=3, perceptual=None, optimize_noise=True, seed=2)
    assert len(a.noise) == tiny_generator.arch.n_noises
    assert all(torch.equal(x, y) for x, y in zip(a.noise, b.noise))
    assert not torch.equal(a.noise[0], c.noise[0])
    assert abs(float(a.noise[-1].std()) - 1) < 1e-3 and abs(float(a.noise[-1].mean())) < 1e-4


def test_noise_regularization_penalises_structure_and_keeps_maps_white(tiny_generator, known):
    g = torch.Generator().manual_seed(0)
    white = [torch.randn(2, 1, 32, 32, generator=g)]
    ramp = torch.linspace(-1, 1, 32)
    smooth = [torch.stack([ramp.expand(32, 32), ramp.expand(32, 32).T]).unsqueeze(1)]
    assert noise_regularization(white).shape == (2,)
    assert noise_regularization(white).max() < 1e-2 < noise_regularization(smooth).min()
    free = project(tiny_generator, known[0], steps=15, perceptual=None, optimize_noise=True, noise_weight=0, lr=0.2)
    held = project(tiny_generator, known[0], steps=15, perceptual=None, optimize_noise=True, lr=0.2)
    assert noise_regularization(held.noise) < noise_regularization(free.noise)


def test_bad_arguments(tiny_generator, known):
    with pytest.raises(ValueError, match="optimizer"):
        project(tiny_generator, known[0], optimizer="sgd", perceptual=None)
    with pytest.raises(ValueError, match="noise_weight"):
        project(tiny_generator, known[0], perceptual=None, noise_weight=-1)
    with pytest.raises(ValueError, match="target must be"):
        project(tiny_generator, torch.zeros(1, 3, 16, 16), perceptual=None)


# -- load_target -------------------------------------------------------------------------------------
def test_load_target_crops_and_scales(tmp_path):
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, 10:50] = 255  # the centre square is white, the side bands black
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    x = load_target(tmp_path / "wide.png", 16)
    assert x.shape == (1, 3, 16, 16) and x.dtype == torch.float32
    assert torch.allclose(x, torch.ones_like(x))
    assert torch.equal(load_target(Image.fromarray(pixels), 16), x)


def test_load_target_modes(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent: white
    assert torch.allclose(load_target(rgba, 8), torch.ones(1, 3, 8, 8))
    grey = Image.new("L", (8, 8), 0)
    grey.save(tmp_path / "grey.png")
    assert torch.allclose(load_target(tmp_path / "grey.png", 8), -torch.ones(1, 3, 8, 8))


def test_load_target_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image file"):
        load_target(tmp_path / "missing.png", 16)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_target(tmp_path / "empty.png", 16)
    (tmp_path / "notes.png").write_text("not an image\n")
    with pytest.raises(ValueError, match="not an image"):
        load_target(tmp_path / "notes.png", 16)
    with pytest.raises(IsADirectoryError):
        load_target(tmp_path, 16)
    with pytest.raises(ValueError, match="power of two"):
        load_target(Image.new("RGB", (8, 8)), 12)
