"""SlimGAN training (Hou et al., AAAI 2021): one slimmable generator trained at all its widths at once.

- `config`: `SlimTrainConfig`, the run's arch and hyper-parameters (the paper's defaults per backbone);
- `losses`: hinge loss, stepwise / widest inplace distillation;
- `trainer`: `SlimTrainer`, the loop (D losses of all widths accumulated, G's adversarial and distillation
  terms, one optimiser step each), seeded per step, exact resume;
- `samples`: sample grids (rows: widths, columns: classes);
- `cli`: ``anycost slimgan train`` and ``anycost slimgan evaluate``.

The models are `anycost.models.slimgan`; mIC and FID per width are `anycost.metrics.slimgan`.
"""

from anycost.training.slimgan.config import DISTILL, SlimTrainConfig
from anycost.training.slimgan.losses import distillation_loss, hinge_d_loss, hinge_g_loss
from anycost.training.slimgan.samples import save_width_grid, width_grid
from anycost.training.slimgan.trainer import SlimTrainer, load_slim_training_state

__all__ = ["DISTILL", "SlimTrainConfig", "SlimTrainer", "distillation_loss", "hinge_d_loss", "hinge_g_loss",
           "load_slim_training_state", "save_width_grid", "width_grid"]
