"""Evolutionary search for the sub-generator closest to the full generator under a cost budget.

>>> space = GeneratorSpace(G.arch)                            # per-layer widths (x resolution)
>>> fitness = SubnetFitness(G, n=8)                           # perceptual distance to the full output
>>> result = evolve(space, fitness, budget=0.5 * G.full_config.macs,
...                 population=8, generations=2, parents=4, n_crossover=4, n_mutation=4)  # the paper: 50 x 20
>>> result.best.candidate.macs <= 0.5 * G.full_config.macs
True

A latency budget instead of MACs: ``GeneratorSpace(G.arch, cost=measure_latency_table(G))``.
"""

from anycost.search.evolution import Evaluated, SearchResult, evolve
from anycost.search.fitness import SubnetFitness, paired_difference
from anycost.search.latency import LatencyTable, layer_keys, measure_latency_table
from anycost.search.space import ChoiceSpace, GeneratorSpace, width_choices

__all__ = [
    "ChoiceSpace",
    "Evaluated",
    "GeneratorSpace",
    "LatencyTable",
    "SearchResult",
    "SubnetFitness",
    "evolve",
    "layer_keys",
    "measure_latency_table",
    "paired_difference",
    "width_choices",
]
