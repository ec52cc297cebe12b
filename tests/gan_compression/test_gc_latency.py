"""The per-conv latency table of the image-to-image supernet: it covers every sub-network, predicts the sum of
its convs, round-trips through JSON, and serves as the search space's cost."""

import random

import pytest
import torch

from anycost.gan_compression.latency import I2ILatencyTable, conv_keys, measure_i2i_latency
from anycost.gan_compression.space import I2ISpace
from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator
from anycost.models.stylegan2 import SubnetConfig


@pytest.fixture(scope="module")
def table():
    torch.manual_seed(0)
    G = I2IGenerator(I2IArch.resnet(4, n_blocks=2, image_size=16, step=4, separable=True))
    return measure_i2i_latency(G, repeats=1, warmup=0)


def test_table_covers_every_sub_network_and_sums_its_convs(table, tmp_path):
    space = I2ISpace(table.arch, cost=table)
    rng = random.Random(0)
    for config in [space.cheapest(), I2IConfig.full(table.arch)] + [space.sample(rng) for _ in range(20)]:
        keys = conv_keys(config)
        assert len(keys) == 3 + 2 * 2 * 2 + 3  # stem, downs, 2 separable blocks of 2 dw + 2 pw, ups, head
        raw = sum(table.entries[k] for k in keys)
        assert space.cost(config) == pytest.approx(max(raw - len(keys) * table.call_overhead_ms, 0.1 * raw))
    assert all(v > 0 for v in table.entries.values())
    assert table.call_overhead_ms >= 0
    loaded = I2ILatencyTable.load(table.save(tmp_path / "latency.json"))
    assert loaded == table and isinstance(loaded, I2ILatencyTable)


def test_the_call_overhead_is_taken_once_per_conv_and_checked(table):
    config = I2IConfig.full(table.arch)
    n = len(conv_keys(config))
    raw = sum(table.entries[k] for k in conv_keys(config))
    data = table.to_dict()
    data["call_overhead_ms"] = 0.5 * min(table.entries.values())
    assert I2ILatencyTable.from_dict(data).predict(config) == pytest.approx(raw - n * data["call_overhead_ms"])
    del data["call_overhead_ms"]  # a table written before the field: no overhead
    assert I2ILatencyTable.from_dict(data).predict(config) == pytest.approx(raw)
    data["call_overhead_ms"] = raw  # more than the whole sum: a tenth of it is left
    assert I2ILatencyTable.from_dict(data).predict(config) == pytest.approx(0.1 * raw)
    for bad in (-1e-3, float("inf"), float("nan")):
        data["call_overhead_ms"] = bad
        with pytest.raises(ValueError, match="call_overhead_ms must be"):
            I2ILatencyTable.from_dict(data)


def test_table_refuses_other_configs(table):
    other = I2IArch.resnet(8, n_blocks=2, image_size=16, step=4, separable=True)
    with pytest.raises(ValueError, match="this table is for"):
        table.predict(I2IConfig.full(other))
    with pytest.raises(TypeError, match="must be a I2IConfig"):
        table.predict(SubnetConfig.__new__(SubnetConfig))
    with pytest.raises(ValueError, match="latency table is for"):
        I2ISpace(other, cost=table)
