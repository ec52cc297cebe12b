"""GAN Compression (Li et al., CVPR 2020) for the ResNet image-to-image generators of `anycost.models.i2i`.

- `tasks`: the paired tasks on offline data (`validation_pairs(task, n)`), with `edges.canny` for their inputs;
- `discriminator`: the conditional PatchGAN; `losses`: LSGAN / hinge, L1 reconstruction, feature distillation;
- `config`: `RunConfig`, one run (teacher, distill or supernet); `run`: the run folder, checkpoints, resume;
- `teacher`: pix2pix training of the teacher; `distill`: distillation into a student and once-for-all supernet
  training (one random sub-network per step);
- `space`: `I2ISpace`, the supernet's sub-networks for `search.evolve`; `fitness`: `SubnetQuality`, a sub-network
  judged without retraining; `latency`: a per-conv latency table; `search`: `run_search` under a MACs and/or
  latency budget; `finetune`: `FinetuneRun` of the pick exported as a plain network, and `export_subnet`;
- `cli`: ``anycost gan-compression train-teacher | distill | search | finetune | export``.
"""

from anycost.gan_compression.config import RunConfig
from anycost.gan_compression.discriminator import PatchDiscriminator
from anycost.gan_compression.distill import DistillRun, default_taps, load_teacher, sample_config
from anycost.gan_compression.finetune import FinetuneRun, export_subnet, finetune_config
from anycost.gan_compression.fitness import SubnetQuality
from anycost.gan_compression.search import run_search
from anycost.gan_compression.space import I2ISpace
from anycost.gan_compression.tasks import TASKS, load_pairs, validation_pairs
from anycost.gan_compression.teacher import TeacherRun

__all__ = ["TASKS", "DistillRun", "FinetuneRun", "I2ISpace", "PatchDiscriminator", "RunConfig", "SubnetQuality",
           "TeacherRun", "default_taps", "export_subnet", "finetune_config", "load_pairs", "load_teacher",
           "run_search", "sample_config", "validation_pairs"]
