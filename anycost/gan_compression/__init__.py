"""GAN Compression (Li et al., CVPR 2020) for the ResNet image-to-image generators of `anycost.models.i2i`.

- `tasks`: the paired tasks on offline data (`validation_pairs(task, n)`), with `edges.canny` for their inputs;
- `discriminator`: the conditional PatchGAN; `losses`: LSGAN / hinge, L1 reconstruction, feature distillation;
- `config`: `RunConfig`, one run (teacher, distill or supernet); `run`: the run folder, checkpoints, resume;
- `teacher`: pix2pix training of the teacher; `distill`: distillation into a student and once-for-all supernet
  training (one random sub-network per step);
- `cli`: ``anycost gan-compression train-teacher | distill``.
"""

from anycost.gan_compression.config import RunConfig
from anycost.gan_compression.discriminator import PatchDiscriminator
from anycost.gan_compression.distill import DistillRun, default_taps, load_teacher, sample_config
from anycost.gan_compression.tasks import TASKS, load_pairs, validation_pairs
from anycost.gan_compression.teacher import TeacherRun

__all__ = ["TASKS", "DistillRun", "PatchDiscriminator", "RunConfig", "TeacherRun", "default_taps", "load_pairs",
           "load_teacher", "sample_config", "validation_pairs"]
