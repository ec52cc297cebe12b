"""Encoder ablation (the Anycost GAN paper's Table 6 analogue) and the bundled encoder, in one command:

    nice -n 10 python -m anycost.projection.ablation --out /work/runs/encoder-ablation --steps 200 --bundle

It trains two encoders for the bundled generator with the same settings, steps and seed (or resumes /
reuses the runs already in OUT/consistency and OUT/full-only): the consistency-aware one and the
`--full-only` ablation, on the images the bundled model was trained on (`bundled.training_data`).
Both hold out the same seeded 10% of them (`holdout_split`), which
are the evaluation set: for each encoder, with and without a short Adam projection after it (on the
first `--opt-images` held-out images), the full generator's distance to the input (perceptual, MSE)
and each preview sub-generator's perceptual distance to the full output (`default_configs`: uniform
0.75, 0.5, 0.25 and half resolution). It writes OUT/ablation.md and OUT/ablation.json; `--bundle`
copies the consistency-aware encoder to `anycost/assets/emoji64_encoder.safetensors`. `--sub-weight` sets the
weight of the consistency-aware encoder's sub-generator term; a run already in OUT with other settings is
an error, except that the full-only run (which has no such term) serves every weight. Rerun it
whenever the bundled generator changes (the encoder file records the generator it was trained for).
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from anycost.fileio import atomic_write
from anycost.projection.encoder import load_encoder, read_encoder_metadata
from anycost.projection.optimize import default_configs, measure, project
from anycost.projection.train_encoder import EncoderTrainConfig, holdout_split, run

VARIANTS = (("consistency", False), ("full-only", True))


def evaluate(G, encoder, images, perceptual, opt_steps: int, opt_images: int, batch: int = 32) -> dict:
    """{"encoder": distances, "encoder+opt": distances} on `images` (float [N, 3, R, R] in [-1, 1])."""
    configs = default_configs(G.arch)
    total: dict[str, float] = {}
    for start in range(0, len(images), batch):
        x = images[start:start + batch]
        with torch.no_grad():
            row = measure(G, encoder.encode(G, x), x, perceptual, configs)
        for k, v in row.items():
            total[k] = total.get(k, 0.0) + v * len(x) / len(images)
    opt = project(G, images[:opt_images], encoder=encoder, steps=opt_steps, perceptual=perceptual,
                  consistency_configs=configs, progress=True)
    return {"encoder": total, "encoder+opt": opt.distances}


def markdown(results: dict, G, meta: dict) -> str:
    configs = default_configs(G.arch)
    head = ["encoder", "projection", "full perceptual", "full MSE"] + [f"{c.describe()}" for c in configs]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for variant, rows in results.items():
        for label, d in rows.items():
            n = meta["n_heldout"] if label == "encoder" else meta["opt_images"]
            how = f"encoder only (n={n})" if label == "encoder" else f"+{meta['opt_steps']} Adam steps (n={n})"
            cells = [variant, how, f"{d['full_perceptual']:.4f}", f"{d['full_mse']:.4f}"]
            cells += [f"{d[f'sub:{c.describe()}']:.4f}" for c in configs]
            lines.append("| " + " | ".join(cells) + " |")
    note = (f"\nFull columns: distance of the full generator's reconstruction to the held-out input. Sub-generator "
            f"columns: perceptual distance of that sub-generator's output to the full output (box-downsampled to "
            f"its resolution); lower is more consistent. Perceptual distance: {meta['perceptual']}. Encoders: "
            f"{meta['steps']} steps, batch {meta['batch']}, seed {meta['seed']}, sub-generator weight "
            f"{meta['sub_weight']:g}; generator: {meta['generator']}.\n")
    return "\n".join(lines) + "\n" + note


def ablate(G, images: torch.Tensor, out, cfg: EncoderTrainConfig, perceptual, opt_steps: int = 10,
           opt_images: int = 8, source: str = "") -> tuple[str, dict]:
    """Train (or continue up to `cfg.steps`) both encoders of `G` on `images` (uint8 [N, 3, R, R]) in
    OUT/consistency and OUT/full-only, evaluate them on the held-out split with `perceptual`, write
    OUT/ablation.md and OUT/ablation.json; returns (markdown table, {"meta", "results"})."""
    out = Path(out)
    for name, full_only in VARIANTS:
        run_dir = out / name  # a run already there is continued (or left as is) up to cfg.steps
        wanted, resume = replace(cfg, full_only=full_only), (run_dir / "latest.pt").exists()
        if full_only:  # no sub term: one full-only run serves every sub_weight
            wanted = replace(wanted, sub_weight=EncoderTrainConfig.sub_weight)
        if resume:
            had = EncoderTrainConfig.from_json((run_dir / "config.json").read_text())
            if replace(had, steps=cfg.steps) != wanted:
                differ = sorted(k for k, v in vars(wanted).items() if getattr(had, k) != v and k != "steps")
                raise ValueError(f"{run_dir} was trained with other settings ({', '.join(differ)}): "
                                 "choose another --out")
        run(wanted, G, images, run_dir, resume=resume, steps=cfg.steps, generator_source=source, progress=True)
    trained = {name: read_encoder_metadata(out / name / "encoder.safetensors").get("steps") for name, _ in VARIANTS}
    if len(set(trained.values())) != 1:
        raise RuntimeError(f"the encoders were trained for different numbers of steps {trained}: not comparable")
    _, held = holdout_split(len(images), cfg.holdout, cfg.split_seed)
    heldout = images[held].float() / 127.5 - 1
    results = {name: evaluate(G, load_encoder(out / name / "encoder.safetensors", G), heldout, perceptual,
                              opt_steps, opt_images) for name, _ in VARIANTS}
    meta = {"n_heldout": len(heldout), "opt_images": min(opt_images, len(heldout)), "opt_steps": opt_steps,
            "perceptual": perceptual.name, "steps": trained["consistency"], "batch": cfg.batch, "seed": cfg.seed,
            "sub_weight": cfg.sub_weight,
            "generator": source}
    table = markdown(results, G, meta)
    atomic_write(out / "ablation.md", lambda tmp: Path(tmp).write_text(table))
    report = {"meta": meta, "results": results}
    text = json.dumps(report, indent=1)
    atomic_write(out / "ablation.json", lambda tmp: Path(tmp).write_text(text))
    return table, report


def main(argv=None) -> int:
    from anycost.data.named import load_images
    from anycost.metrics.perceptual import perceptual_from_spec
    from anycost.models.stylegan2.bundled import default_generator, training_data
    from anycost.projection.encoder import ENCODER_NAME

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for the two runs and the table")
    p.add_argument("--steps", type=int, default=EncoderTrainConfig.steps)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sub-weight", type=float, default=EncoderTrainConfig.sub_weight,
                   help="weight of the consistency-aware encoder's sub-generator term")
    p.add_argument("--opt-steps", type=int, default=10, help="Adam steps of the short projection after the encoder")
    p.add_argument("--opt-images", type=int, default=8, help="held-out images projected with optimisation")
    p.add_argument("--perceptual", default="auto", help="evaluation distance (NAME[:STAGES])")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bundle", action="store_true", help="copy the consistency-aware encoder into anycost/assets")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    G, source = default_generator()
    data = training_data()  # the bundled model's own training images
    images = load_images(data, G.arch.resolution, progress=False)
    table, _ = ablate(G, images, out, EncoderTrainConfig(data=data, steps=args.steps, seed=args.seed,
                                                        sub_weight=args.sub_weight),
                      perceptual_from_spec(args.perceptual), args.opt_steps, args.opt_images, source)
    print(table)
    if args.bundle:
        import anycost.assets

        dest = Path(anycost.assets.__file__).parent / ENCODER_NAME
        atomic_write(dest, lambda tmp: shutil.copyfile(out / "consistency" / "encoder.safetensors", tmp))
        print(f"bundled {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
