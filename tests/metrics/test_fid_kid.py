"""FID / KID on features (hand-computable cases, naive references), the stats cache, generator sampling.

A cheap stand-in feature extractor keeps these tests fast; the real Inception network is tested in
test_inception_features.py.
"""

import itertools
import json
import math

import numpy as np
import pytest
import torch

from anycost.metrics import (
    KID,
    FeatureStats,
    dataset_stats,
    evaluate_generator,
    fid,
    frechet_distance,
    generator_features,
    kid,
)


class TinyFeatures:
    """Per-channel mean, std and 2x2-pooled pixels of images: a fast, deterministic 'feature extractor'."""

    identifier = "tiny-test-features"

    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        pooled = torch.nn.functional.adaptive_avg_pool2d(images.float(), 2).flatten(1)
        return torch.cat([images.mean((2, 3)), images.std((2, 3)), pooled], 1)


# -- FID -------------------------------------------------------------------------------------------
def test_fid_identical_stats_is_zero():
    feats = np.random.default_rng(0).standard_normal((50, 8))
    st = FeatureStats.from_features(feats)
    assert fid(st, st) == pytest.approx(0, abs=1e-10)
    assert fid(feats, feats) == pytest.approx(0, abs=1e-10)


def test_fid_diagonal_hand_computed():
    # |mu1 - mu2|^2 = 1 + 4; trace term = sum (sqrt(a) - sqrt(b))^2 = (1 - 2)^2 + (2 - 3)^2 = 2
    mu1, mu2 = np.zeros(2), np.array([1.0, 2.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 9.0])
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(7.0, abs=1e-12)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(7.0, abs=1e-12)


def test_fid_rotation_invariant_and_mean_shift():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40, 5))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert fid(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    b = rng.standard_normal((40, 5)) * 2
    assert fid(a @ q, b @ q) == pytest.approx(fid(a, b), rel=1e-9)


def test_fid_matches_scipy_sqrtm_on_non_commuting_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((300, 6)), rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    mu1, mu2 = x.mean(0), y.mean(0)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_singular_covariance_fewer_samples_than_dims():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((5, 32)), rng.standard_normal((5, 32))
    assert fid(a, a) == pytest.approx(0, abs=1e-9)
    value = fid(a, b)
    assert math.isfinite(value) and value > 0


def test_fid_bad_inputs():
    with pytest.raises(ValueError, match="means"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        fid(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        fid(np.zeros((1, 3)), np.zeros((4, 3)))


# -- KID -------------------------------------------------------------------------------------------
def naive_mmd2(x, y):
    m, d = len(x), x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_naive_double_loop():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 3)) + 0.3
    # one subset of all samples: a permutation of each set, which MMD^2 does not see
    result = kid(x, y, n_subsets=1, subset_size=7)
    assert result.mean == pytest.approx(naive_mmd2(x, y), rel=1e-12)
    assert result.std == 0 and result.n_subsets == 1 and result.subset_size == 7


def test_kid_same_distribution_near_zero_shifted_positive():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((200, 16)), rng.standard_normal((200, 16))
    same = kid(a, b, n_subsets=20, subset_size=100)
    shifted = kid(a, b + 0.5, n_subsets=20, subset_size=100)
    assert isinstance(same, KID)
    assert abs(same.mean) < 2 * same.std + 0.02
    assert shifted.mean > 0.5 and shifted.mean > 10 * abs(same.mean)


def test_kid_deterministic_and_bad_inputs():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((20, 4))
    assert kid(a, b, 5, 10, seed=3) == kid(a, b, 5, 10, seed=3)
    assert kid(a, b, n_subsets=3).subset_size == 20  # default: the smaller set
    with pytest.raises(ValueError, match="subset_size"):
        kid(a, b, subset_size=21)
    with pytest.raises(ValueError, match="subset_size"):
        kid(a, b, subset_size=1)
    with pytest.raises(ValueError, match="n_subsets"):
        kid(a, b, n_subsets=0)
    with pytest.raises(ValueError, match="feature sizes"):
        kid(a, rng.standard_normal((20, 5)))
    no_feats = FeatureStats.from_features(b, keep_features=False)
    with pytest.raises(ValueError, match="KID needs the features"):
        kid(a, no_feats)


# -- cached dataset statistics ----------------------------------------------------------------------
def test_dataset_stats_cache_round_trip_and_invalidation(tmp_path):
    images = torch.rand(12, 3, 8, 8) * 2 - 1
    ext = TinyFeatures()
    path = tmp_path / "ref.npz"
    first = dataset_stats(images, n=10, cache_path=path, name="rand", extractor=ext, batch=4)
    assert path.is_file() and ext.calls == 3  # 10 images in batches of 4
    assert first.n == 10 and first.features.shape == (10, ext(images[:1]).shape[1])
    assert "name=rand" in first.key and "res=8" in first.key and "n=10" in first.key
    ext.calls = 0
    again = dataset_stats(images, n=10, cache_path=path, name="rand", extractor=ext, batch=4)
    assert ext.calls == 0  # served from the cache
    assert np.array_equal(again.mu, first.mu) and np.array_equal(again.sigma, first.sigma)
    assert np.array_equal(again.features, first.features) and again.key == first.key
    # another count (or name) changes the key: recomputed and the file overwritten
    other = dataset_stats(images, n=8, cache_path=path, name="rand", extractor=ext, batch=4)
    assert ext.calls > 0 and other.n == 8
    assert FeatureStats.load(path).key == other.key
    assert [p.name for p in tmp_path.iterdir()] == ["ref.npz"]  # no temporary files left


def test_dataset_stats_folder_cache_and_datasets_of_tuples(tmp_path):
    class Pairs(torch.utils.data.Dataset):
        subset = "pairs"

        def __init__(self):
            self.x = torch.rand(6, 3, 8, 8) * 2 - 1

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i], i

    ext = TinyFeatures()
    a = dataset_stats(Pairs(), cache_path=tmp_path, extractor=ext)
    b = dataset_stats(Pairs(), n=4, cache_path=tmp_path, extractor=ext)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and all(n.startswith("Pairs-pairs_8px_n") for n in names)
    assert a.n == 6 and b.n == 4 and a.key != b.key
    assert fid(a, a) == pytest.approx(0, abs=1e-9)


def test_dataset_stats_bad_inputs(tmp_path):
    ext = TinyFeatures()
    with pytest.raises(ValueError, match="name"):
        dataset_stats(torch.zeros(4, 3, 8, 8), cache_path=tmp_path / "x.npz", extractor=ext)
    with pytest.raises(ValueError, match="n must be"):
        dataset_stats(torch.zeros(4, 3, 8, 8), n=5, extractor=ext)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        dataset_stats(torch.zeros(4, 1, 8, 8), extractor=ext)
    with pytest.raises(ValueError, match="dataset item"):
        dataset_stats([torch.zeros(8, 8)] * 3, extractor=ext)


def test_unreadable_cache_is_recomputed(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip")
    ext = TinyFeatures()
    with pytest.warns(UserWarning, match="unreadable"):
        st = dataset_stats(torch.rand(4, 3, 8, 8), cache_path=path, name="r", extractor=ext)
    assert FeatureStats.load(path).key == st.key


# -- generator sampling ------------------------------------------------------------------------------
def test_generator_features_deterministic(tiny_generator):
    G = tiny_generator
    ext = TinyFeatures()
    config = G.subnet(resolution=16, ratio=0.5)
    a = generator_features(G, config, n=5, seed=1, batch=2, extractor=ext)
    b = generator_features(G, config, n=5, seed=1, batch=2, extractor=ext)
    c = generator_features(G, config, n=5, seed=2, batch=2, extractor=ext)
    assert a.shape == (5, 18) and torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="n must be"):
        generator_features(G, config, n=0, extractor=ext)


def test_evaluate_generator(tiny_generator):
    G = tiny_generator
    ext = TinyFeatures()
    with torch.no_grad():
        reals = G(G.mapping(torch.randn(16, G.arch.style_dim)), config=G.subnet(resolution=16))
    ref = dataset_stats(reals, name="self16", extractor=ext)
    out = evaluate_generator(G, ref, G.subnet(resolution=16), n=8, batch=4, extractor=ext, kid_subsets=4)
    assert math.isfinite(out["fid"]) and out["fid"] >= 0 and math.isfinite(out["kid_mean"])
    assert out["resolution"] == 16 and out["n"] == 8
    json.dumps(out)
    with pytest.raises(ValueError, match="16 px"):
        evaluate_generator(G, ref, None, n=4, extractor=ext)
    with pytest.raises(ValueError, match="reference features come from"):
        other = type("Other", (TinyFeatures,), {"identifier": "other"})()
        evaluate_generator(G, ref, G.subnet(resolution=16), n=4, extractor=other)
