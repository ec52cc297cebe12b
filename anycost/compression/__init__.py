"""Compression of trained StyleGAN2 Anycost generators, with an optional distillation fine-tune.

- `prune(G, sparsity, scope, weights)`: fine-grained magnitude pruning of the 3x3 convs or of every weight matrix,
  stored as bitmask + values, run dense;
- `prune_channels(G, keep)`: structured pruning to the leading channels (a smaller architecture);
- `kmeans_quantize(G, bits)`: per-layer k-means weight sharing, stored as codebook + packed indices;
- `quantize_int8(G, calibration)`: s8 weights per output channel, s8 activations scaled per sample at run time
  (or per layer from calibration), our own int8 conv kernels (`int8`);
- `finetune(Gc, G, steps)`: a short distillation of a pruned, channel-pruned or k-means model from the original
  (`distill`), keeping the mask / the clusters;
- `CompressedGenerator`: what they return (a `Generator` plus its steps and weight encodings);
- `files`: its file format (`FORMAT`, `save_generator`, `load_generator`);
- `report`: distance (and optionally FID) to the uncompressed output, file size and latency ratio of each method
  and setting;
- `sparse_bench`: torch's sparse CPU matmuls against dense on a generator's conv shapes.
"""

from anycost.compression import files
from anycost.compression.distill import finetune
from anycost.compression.files import FORMAT, load_generator, save_generator
from anycost.compression.generator import CompressedGenerator
from anycost.compression.int8 import quantize_int8
from anycost.compression.kmeans import kmeans_1d, kmeans_quantize
from anycost.compression.pruning import config_for, prune, prune_channels
from anycost.models import files as model_files

__all__ = [
    "FORMAT",
    "CompressedGenerator",
    "config_for",
    "finetune",
    "kmeans_1d",
    "kmeans_quantize",
    "load_generator",
    "prune",
    "prune_channels",
    "quantize_int8",
    "save_generator",
]

# `anycost.load_generator` / `save_generator` read and write compressed generators too (the package root imports
# this package, so the format is known whatever a program imports first).
model_files.register(files, CompressedGenerator)
