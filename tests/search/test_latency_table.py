"""Per-layer latency table: measured once per layer and width pair, predicts configs as the sum of their layers."""

import random

import pytest
import torch

from anycost.benchmark import latent, time_forward
from anycost.models.stylegan2 import GeneratorArch, SubnetConfig
from anycost.search import GeneratorSpace, LatencyTable, evolve, layer_keys, measure_latency_table

ARCH = GeneratorArch(32, channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2)  # conftest's tiny arch


@pytest.fixture(scope="module")
def generator():
    from anycost.models.stylegan2 import Generator

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return Generator(arch=ARCH).eval()


@pytest.fixture(scope="module")
def table(generator):
    return measure_latency_table(generator, repeats=3)


def test_layer_keys():
    full = SubnetConfig.full(ARCH)
    keys = layer_keys(full)
    assert len(keys) == 2 + 3 * 3 and keys[:2] == ["conv/4/64/64", "rgb/4/64"]
    assert keys[-3:] == ["upconv/32/64/64", "conv/32/64/64", "rgb_skip/32/64"]
    assert layer_keys(SubnetConfig.full(ARCH, 8)) == keys[:5]


def test_table_covers_the_space_and_is_positive(table):
    assert table.arch == ARCH and table.impl == "auto" and table.threads == torch.get_num_threads()
    assert table.entries and all(ms > 0 for ms in table.entries.values()) and table.mapping_ms > 0
    space = GeneratorSpace(ARCH, resolutions=(8, 16, 32), cost=table)
    rng = random.Random(0)
    for _ in range(100):
        c = space.sample(rng)
        assert table.predict(c) == pytest.approx(sum(ms for _, ms in table.breakdown(c)))
        assert space.cost(c) == table.predict(c) > 0
    for c in space.uniform_configs():
        table.predict(c)
    # a config runs a superset of a lower-resolution config's layers: it can only be predicted slower
    assert table.predict(SubnetConfig.full(ARCH)) > table.predict(SubnetConfig.full(ARCH, 16)) > \
        table.predict(SubnetConfig.full(ARCH, 8))
    assert table.predict(SubnetConfig.full(ARCH), include_mapping=True) > table.predict(SubnetConfig.full(ARCH))


def test_prediction_and_a_measured_forward_are_both_positive(generator, table):
    """No timing bounds here (timings depend on the machine's load): only that both are measured and finite."""
    w = latent(generator)
    for config in (SubnetConfig.full(ARCH), SubnetConfig.uniform(ARCH, 0.25, 16)):
        measured = time_forward(generator, w, config, "auto", repeats=1).median_ms
        assert 0 < table.predict(config) < float("inf") and measured > 0


def _synthetic_table(table):
    """The measured table's keys with deterministic costs (pixels x channels), so searches do not depend on load."""
    def cost(key):
        _, res, *channels = key.split("/")
        return int(res) ** 2 * sum(int(c) for c in channels) * 1e-4

    return LatencyTable.from_dict(dict(table.to_dict(), entries={k: cost(k) for k in table.entries}))


def test_save_load_and_errors(table, tmp_path):
    path = table.save(tmp_path / "lat" / "table.json")
    again = LatencyTable.load(path)
    assert again.entries == table.entries and again.arch == table.arch and again.mapping_ms == table.mapping_ms
    data = table.to_dict()
    with pytest.raises(ValueError, match="kind"):
        LatencyTable.from_dict(dict(data, kind="other"))
    with pytest.raises(ValueError, match="version"):
        LatencyTable.from_dict(dict(data, version=99))
    with pytest.raises(ValueError, match="positive"):
        LatencyTable.from_dict(dict(data, entries={"conv/4/64/64": 0.0}))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="JSON"):
        LatencyTable.load(tmp_path / "bad.json")
    odd = SubnetConfig.flexible(ARCH, [64, 64, 64, 64, 64, 64, 64, 63])
    with pytest.raises(ValueError, match="not measured"):
        table.predict(odd)
    other = GeneratorArch(16, channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2)
    with pytest.raises(ValueError, match="this table is for"):
        table.predict(SubnetConfig.full(other))
    with pytest.raises(ValueError, match="resolution"):
        measure_latency_table(type("FakeG", (), {"arch": ARCH})(), resolution=64)


def test_search_under_a_latency_budget(generator, table):
    table = _synthetic_table(table)
    space = GeneratorSpace(ARCH, cost=table)
    budget = table.predict(SubnetConfig.uniform(ARCH, 0.5))
    result = evolve(space, lambda c: -float(sum(c.widths)), budget, population=8, generations=2, parents=3,
                    n_crossover=3, n_mutation=3, seed=0)
    assert all(table.predict(e.candidate) <= budget for e in result.history)
    with pytest.raises(ValueError, match="cheapest"):
        evolve(space, lambda c: 0.0, table.predict(space.cheapest()) / 2)
