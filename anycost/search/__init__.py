"""Evolutionary search for the sub-generator closest to the full generator under a cost budget.

>>> space = GeneratorSpace(G.arch)                                     # per-layer widths (x resolution)
>>> fitness = SubnetFitness(G, n=32)                                   # perceptual distance to the full output
>>> result = evolve(space, fitness, budget=0.5 * G.full_config.macs)   # paper defaults: 50 x 20 generations
>>> result.best.candidate, result.pareto()

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
