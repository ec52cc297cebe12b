"""Fine-tuning of a searched sub-network, and its export as a plain small generator.

The paper's last step: the sub-network chosen by the search (evaluated with the supernet's weights, no
retraining) is exported as a network of its own and trained a little more with the same objective as the
supernet (GAN + L1 to the target + intermediate-feature distillation from the teacher). `FinetuneRun` is a
`DistillRun` of role "finetune" whose student is `models.i2i.export` of the sub-network (real, smaller weights:
the sub-network's arch) and which starts from the supernet run's last state: the student's weights, the
adapters' leading input channels (the sub-network's trunk) and the discriminator. That start depends on the
config alone, so a resumed run (whose latest.pt then replaces it) takes exactly the uninterrupted run's steps.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from anycost.gan_compression.config import RunConfig
from anycost.gan_compression.distill import DistillRun, make_adapters
from anycost.gan_compression.run import load_run_state
from anycost.gan_compression.search import config_in, load_supernet
from anycost.models.i2i import I2IConfig, I2IGenerator, export, save_generator
from anycost.models.i2i.generator import sliced_state


def finetune_config(supernet_dir, config_data: dict, **fields) -> RunConfig:
    """The config of a new finetune run of the sub-network `config_data` (best.json's JSON) of the supernet run
    in `supernet_dir`: its task, teacher, discriminator and L1 target come from that run; `fields` set the
    schedule and loss weights (those not given: the task's defaults, `RunConfig.for_task`)."""
    G, super_cfg = load_supernet(supernet_dir)
    config = config_in(G.arch, config_data)
    return RunConfig.for_task(super_cfg.task, role="finetune", generator=replace(G.arch, widths=config.widths),
                              teacher=super_cfg.teacher, teacher_arch=super_cfg.teacher_arch, ndf=super_cfg.ndf,
                              d_layers=super_cfg.d_layers, recon_target=super_cfg.recon_target,
                              supernet=str(Path(supernet_dir).resolve()), **fields)


class FinetuneRun(DistillRun):
    """Fine-tuning of the sub-network whose arch is `cfg.generator`, from the supernet run `cfg.supernet`."""

    ROLES = ("finetune",)

    def __init__(self, cfg: RunConfig, out_dir, progress: bool = True):
        super().__init__(cfg, out_dir, progress)
        self._start_from_supernet()

    @torch.no_grad()
    def _start_from_supernet(self) -> None:
        """The student, adapters and D from the supernet run's latest.pt, sliced to the sub-network."""
        folder = Path(self.cfg.supernet)
        state = load_run_state(folder / "latest.pt")
        super_cfg = RunConfig.from_json(state["config"])
        if super_cfg.role != "supernet" or super_cfg.teacher_arch != self.cfg.teacher_arch:
            raise ValueError(f"{folder} is not the supernet run this fine-tune started from")
        arch = super_cfg.generator
        config = I2IConfig(arch, self.cfg.generator.widths)  # a one-line error when a width is above the supernet's
        if replace(arch, widths=config.widths) != self.cfg.generator:
            raise ValueError(f"the sub-network ({self.cfg.generator.describe()}) is not of the supernet in {folder}")
        supernet = I2IGenerator(arch)
        supernet.load_state_dict(state["modules"]["G"])
        self.G.load_state_dict(export(supernet, config).state_dict())
        adapters = make_adapters(arch, super_cfg.teacher_arch)
        adapters.load_state_dict(state["modules"]["A"])
        self.adapters.load_state_dict(sliced_state(adapters, self.adapters))
        self.D.load_state_dict(state["modules"]["D"])


def export_subnet(supernet_dir, config_data: dict, path) -> Path:
    """Write sub-network `config_data` of the supernet run in `supernet_dir` as a plain generator file at `path`
    (as evaluated by the search: the supernet's weights, not fine-tuned)."""
    G, cfg = load_supernet(supernet_dir)
    config = config_in(G.arch, config_data)
    info = {"trained_by": "anycost gan-compression export (a supernet sub-network, not fine-tuned)",
            "task": cfg.task, "supernet": str(Path(supernet_dir).resolve()), "widths": list(config.widths),
            "macs": config.macs, "paper_macs": config.paper_macs}
    return save_generator(export(G, config), path, metadata=info)
