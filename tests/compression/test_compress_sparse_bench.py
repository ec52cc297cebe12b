"""The sparse-vs-dense timing: structure only (no timing asserts: the ratios are for the report)."""

from anycost.compression.sparse_bench import CANDIDATES, measure_sparse_vs_dense, sparse_summary


def test_every_layer_and_sparsity_gets_every_candidate(tiny_arch):
    rows = measure_sparse_vs_dense(tiny_arch.full_widths, (0.5, 0.9), repeats=1)
    assert len(rows) == 2 * (len(tiny_arch.full_widths) - 1)
    assert all(set(r.ms) == set(CANDIDATES) and min(r.ms.values()) > 0 for r in rows)
    summary = sparse_summary(rows)
    assert set(summary) == {0.5, 0.9} and all(s["dense_conv"] == 1.0 for s in summary.values())
