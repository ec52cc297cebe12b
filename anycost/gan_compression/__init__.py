"""GAN Compression (Li et al., CVPR 2020) for the ResNet image-to-image generators of `anycost.models.i2i`.

- `tasks`: the tasks on offline data (`TASKS`): paired edges -> image (Fashion-MNIST shoes at 32 px, emoji at
  64 px; `validation_pairs(task, n)`, with `edges.canny` for their inputs) and unpaired yellow -> skin-toned
  emoji heads (`load_domains`; `validation_inputs` for either kind);
- `discriminator`: the PatchGAN (conditional on a paired task); `losses`: LSGAN / hinge, L1 reconstruction,
  feature distillation;
- `config`: `RunConfig`, one run (teacher, cyclegan, distill, supernet or finetune); `run`: the run folder,
  checkpoints, resume;
- `teacher`: pix2pix training of the teacher; `cyclegan`: `CycleGANRun`, the teacher of an unpaired task (two
  generators, two discriminators, cycle-consistency and identity L1); `distill`: distillation into a student and
  once-for-all supernet training (one random sub-network per step), from the real targets or from the teacher's
  outputs (pseudo pairs, the only choice on an unpaired task);
- `space`: `I2ISpace`, the supernet's sub-networks for `search.evolve`; `fitness`: `SubnetQuality`, a sub-network
  judged without retraining; `latency`: a per-conv latency table; `search`: `run_search` under a MACs and/or
  latency budget; `finetune`: `FinetuneRun` of the pick exported as a plain network, and `export_subnet`;
- `evaluate`: finished generators side by side (params, MACs, FID, L1, latency); `bundled`: `load_bundled(task,
  role)`, the teacher and compressed generators shipped with the package;
- `cli`: ``anycost gan-compression train-teacher | distill | search | finetune | export | evaluate``.
"""

from anycost.gan_compression.bundled import load_bundled
from anycost.gan_compression.config import RunConfig
from anycost.gan_compression.cyclegan import CycleGANRun
from anycost.gan_compression.discriminator import PatchDiscriminator
from anycost.gan_compression.distill import DistillRun, default_taps, load_teacher, sample_config
from anycost.gan_compression.finetune import FinetuneRun, export_subnet, finetune_config
from anycost.gan_compression.fitness import SubnetQuality
from anycost.gan_compression.search import run_search
from anycost.gan_compression.space import I2ISpace
from anycost.gan_compression.tasks import TASKS, load_domains, load_pairs, validation_inputs, validation_pairs
from anycost.gan_compression.teacher import TeacherRun

__all__ = ["TASKS", "CycleGANRun", "DistillRun", "FinetuneRun", "I2ISpace", "PatchDiscriminator", "RunConfig",
           "SubnetQuality", "TeacherRun", "default_taps", "export_subnet", "finetune_config", "load_bundled",
           "load_domains", "load_pairs", "load_teacher", "run_search", "sample_config", "validation_inputs",
           "validation_pairs"]
