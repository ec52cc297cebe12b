import torch

from anycost.default_model import DEFAULT_ARCH, default_generator, default_model_path


def test_default_generator_is_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    G1, description = default_generator()
    assert torch.equal(torch.rand(3), expected)
    G2, _ = default_generator()
    assert torch.equal(G1.input.input, G2.input.input)
    if default_model_path() is None:
        assert "RANDOM WEIGHTS" in description and G1.arch == DEFAULT_ARCH
