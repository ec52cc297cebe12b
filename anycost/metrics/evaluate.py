"""One table for a model card: FID / KID and consistency of every evaluated sub-generator of one or more models.

Real images at a lower resolution are box-downsampled from the full-resolution ones (the pyramid the
multi-resolution training uses), so a 32 px sub-generator is compared with 32 px reals. Consistency is the
perceptual distance and MSE of each sub-generator's output to the (downsampled) full output for the same
latents and noise (`subnet_consistency`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from anycost.metrics.consistency import downsample_to, subnet_consistency
from anycost.metrics.fid import dataset_stats, evaluate_generator
from anycost.models.stylegan2 import UNIFORM_RATIOS, GeneratorArch, SubnetConfig


def evaluation_configs(arch: GeneratorArch, ratios=UNIFORM_RATIOS, resolutions=None) -> list[SubnetConfig]:
    """The full model at every resolution (largest first), then every uniform ratio below 1 at full size."""
    resolutions = sorted(arch.resolutions if resolutions is None else resolutions, reverse=True)
    configs = [SubnetConfig.full(arch, r) for r in resolutions]
    configs += [SubnetConfig.uniform(arch, q) for q in sorted(ratios, reverse=True) if q < 1]
    return configs


def evaluate_model(G, reals: torch.Tensor, data_name: str, configs, n: int = 500, n_real: int = 1000,
                   seed: int = 0, cache_dir=None, perceptual="auto", consistency_n: int = 64,
                   progress: bool = False, label: str = "", extractor=None, fid: bool = True) -> list[dict]:
    """Rows {model, config, resolution, macs, fid, kid_mean, kid_std, perceptual, mse, n} for each config.

    `reals` are the full-resolution real images [N, 3, R, R] in [-1, 1]; reference statistics of
    `n_real` of them (per resolution) are cached in `cache_dir` under `data_name`. `extractor` defaults to
    the Inception network (`InceptionFeatures`). `fid=False` skips FID/KID (NaN), keeping the consistency columns.
    """
    configs = list(configs)
    if reals.ndim != 4 or reals.shape[-1] != G.arch.resolution:
        raise ValueError(f"reals must be [N, 3, {G.arch.resolution}, {G.arch.resolution}], got {tuple(reals.shape)}")
    n_real = min(n_real, len(reals))
    references = {}
    for r in sorted({c.resolution for c in configs}, reverse=True) if fid else ():
        references[r] = dataset_stats(downsample_to(reals, r), n_real, cache_dir, name=f"{data_name}-{r}px",
                                      seed=seed, progress=progress, extractor=extractor)
    consistency = {row.config: row for row in subnet_consistency(G, configs, consistency_n, seed, perceptual)}
    rows = []
    for config in configs:
        scores = {"fid": math.nan, "kid_mean": math.nan, "kid_std": math.nan}
        if fid:
            scores = evaluate_generator(G, references[config.resolution], config, n, seed, progress=progress,
                                        extractor=extractor)
        cons = consistency[config]
        rows.append({
            "model": label, "config": config.describe(), "resolution": config.resolution,
            "gmacs": round(config.macs / 1e9, 4), "fid": scores["fid"], "kid_mean": scores["kid_mean"],
            "kid_std": scores["kid_std"], "perceptual": cons.perceptual, "mse": cons.mse, "n": n, "n_real": n_real,
        })
    return rows


def _fmt(value: float, digits: int) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown_table(rows: list[dict], perceptual_name: str = "") -> str:
    """The rows as a markdown table (KID x 1000)."""
    head = ("| model | config | GMACs | FID | KID x1e3 | perceptual to full | MSE to full |\n"
            "|---|---|---:|---:|---:|---:|---:|\n")
    body = "".join(
        f"| {r['model']} | {r['config']} | {r['gmacs']:.3f} | {_fmt(r['fid'], 1)} | "
        f"{_fmt(r['kid_mean'] * 1e3, 2)} ± {_fmt(r['kid_std'] * 1e3, 2)} | {_fmt(r['perceptual'], 4)} | "
        f"{_fmt(r['mse'], 4)} |\n"
        for r in rows
    )
    note = f"\nPerceptual distance: {perceptual_name}.\n" if perceptual_name else ""
    return head + body + note


def write_report(rows: list[dict], out_dir, meta: dict) -> dict[str, Path]:
    """eval.json (rows + meta) and eval.md in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "eval.json", "md": out_dir / "eval.md"}
    paths["json"].write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    paths["md"].write_text(markdown_table(rows, meta.get("perceptual", "")))
    return paths
