"""`anycost directions` (fit edit directions for a model) and `anycost edit` (apply them to one latent)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from anycost import assets, cli_args
from anycost.editing.directions import DIRECTIONS_NAME, DirectionsError, EditDirections, default_directions
from anycost.editing.validate import DEFAULT_MAX_RATIO, DEFAULT_MIN_MOVE, DEFAULT_SIGMAS, group_names

#: The strengths of a `--sweep` when --strengths is not given.
DEFAULT_SWEEP = (-3.0, -1.5, 0.0, 1.5, 3.0)


def parse_edit(text: str) -> tuple[str, float]:
    """'smiling=2' or 'gender:woman=-1.5' -> (name, strength)."""
    name, sep, value = text.rpartition("=")
    try:
        strength = float(value)
    except ValueError:
        strength = None
    if not sep or not name or strength is None or not np.isfinite(strength):
        raise argparse.ArgumentTypeError(f"bad edit {text!r}: use NAME=STRENGTH, e.g. smiling=2 or pca0=-1.5")
    return name, strength


def parse_strengths(tokens: list[str]) -> list[float]:
    """['-3', '-1.5', '0'] or ['0,1.5,3'] (comma- and/or space-separated numbers) -> floats."""
    try:
        values = [float(t) for token in tokens for t in token.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"bad --strengths {' '.join(tokens)!r}: give numbers, e.g. --strengths=-3,-1.5,0,1.5,3 "
                         "or --strengths -3 -1.5 0 1.5 3") from None
    if not values or not all(np.isfinite(values)):
        raise ValueError(f"--strengths must be finite numbers, got {' '.join(tokens)!r}")
    return values


def add_parser(sub) -> None:
    p = sub.add_parser("directions", help="fit edit directions in W: attribute boundaries (InterFaceGAN) and PCA; "
                                          "keep the boundaries that pass a held-out check")
    p.add_argument("--out", "-o", required=True, help="directions file (.npz); its fit report goes beside it (.json)")
    p.add_argument("--checkpoint", "-c", help="generator file (default: the bundled model)")
    p.add_argument("--classifier", help="attribute classifier (.safetensors) or 'none' for PCA only "
                                        "(default: the bundled emoji classifier)")
    p.add_argument("--n", type=int, default=2000, help="sampled latents")
    p.add_argument("--pca", type=int, default=8, help="principal axes pca0..pca{k-1} (0: none)")
    p.add_argument("--fraction", type=float, default=0.25,
                   help="most confident fraction of the samples kept on each side of a boundary")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-n", type=int, default=500,
                   help="held-out latents every boundary is checked on (see anycost.editing.validate)")
    p.add_argument("--check-seed", type=int, help="seed of the held-out latents (default: --seed + 1)")
    p.add_argument("--sigmas", type=float, default=DEFAULT_SIGMAS,
                   help="check edit strength, in std of w along the direction")
    p.add_argument("--min-move", type=float, default=DEFAULT_MIN_MOVE,
                   help="a kept boundary raises the mean probability of its value by at least this")
    p.add_argument("--max-ratio", type=float, default=DEFAULT_MAX_RATIO,
                   help="... and moves every other attribute at most this fraction of that")
    p.add_argument("--no-conditional", action="store_true",
                   help="drop a failing boundary instead of retrying it orthogonal to what it moved too much")
    p.add_argument("--batch", type=int, default=64, help="latents rendered and classified at once")
    p.add_argument("--impl", choices=("auto", "kernel", "ref"), default="auto", help="op implementation")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_directions)

    p = sub.add_parser("edit", help="edit one latent along named directions: the unedited render, then the edited "
                                    "preview and full render side by side (or --list the directions)")
    p.add_argument("--checkpoint", "-c", help="generator file (default: the bundled model)")
    p.add_argument("--directions", "-d", help="directions file from `anycost directions` (default: the bundled "
                                               "model's; required with --checkpoint)")
    p.add_argument("--list", action="store_true",
                   help="list the directions (kind, held-out accuracy, std, held-out check) and exit")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--seed", "-s", type=int, help="latent of this seed (as `anycost generate --seeds`)")
    group.add_argument("--latent", help=".npy latent: W [style_dim] / [1, style_dim] or W+ [n_styles, style_dim]")
    p.add_argument("--edit", "-e", type=parse_edit, action="append", default=[], metavar="NAME=STRENGTH",
                   help="add STRENGTH x the unit direction NAME (repeatable), e.g. --edit gender:woman=2 "
                        "--edit pca0=-1.5")
    p.add_argument("--keep", default="", metavar="NAMES",
                   help="comma-separated directions the edits are made orthogonal to (conditional editing), "
                        "e.g. --keep gender:woman,skin_tone:light")
    p.add_argument("--sweep", metavar="NAME", help="render a grid along NAME (one row preview, one row full)")
    p.add_argument("--strengths", nargs="+", metavar="S",
                   help="sweep strengths: --strengths=-3,-1.5,0,1.5,3 or --strengths -3 -1.5 0 1.5 3 "
                        f"(default {','.join(f'{s:g}' for s in DEFAULT_SWEEP)})")
    p.add_argument("--preview-resolution", type=int, help="preview resolution (default: half the model's)")
    p.add_argument("--preview-ratio", type=float, default=0.25, help="preview channel ratio")
    p.add_argument("--impl", choices=("auto", "kernel", "ref"), default="auto", help="op implementation")
    p.add_argument("--out", "-o", type=cli_args.image_file, default="edit.png", help="output image (PNG, JPEG, WebP)")
    p.set_defaults(func=cmd_edit)


# -- anycost directions ---------------------------------------------------------------------------------
def cmd_directions(args) -> None:
    from anycost.editing.fit import fit_directions
    from anycost.editing.validate import checks_table
    from anycost.metrics.attributes import AttributeClassifier, default_classifier_path
    from anycost.models.stylegan2 import generator_or_default

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n < 2 or args.pca < 0 or args.batch < 1 or not 0 < args.fraction <= 0.5:
        raise ValueError(f"need --n >= 2, --pca >= 0, --batch >= 1 and 0 < --fraction <= 0.5; got --n {args.n}, "
                         f"--pca {args.pca}, --batch {args.batch}, --fraction {args.fraction}")
    if args.check_n < 1 or not args.sigmas > 0 or not args.min_move > 0 or not 0 < args.max_ratio <= 1:
        raise ValueError(f"need --check-n >= 1, --sigmas > 0, --min-move > 0 and 0 < --max-ratio <= 1; got "
                         f"--check-n {args.check_n}, --sigmas {args.sigmas}, --min-move {args.min_move}, "
                         f"--max-ratio {args.max_ratio}")
    classifier = None
    if args.classifier != "none":
        path = args.classifier or default_classifier_path()
        if path is None:
            raise FileNotFoundError("no bundled attribute classifier: pass --classifier FILE or --classifier none")
        classifier = AttributeClassifier.load(path)
        print(f"classifier: {Path(path).name}, labels {classifier.label_values}")
    G, source = generator_or_default(args.checkpoint)
    print(f"model: {source}", flush=True)
    start = time.perf_counter()
    fitted = fit_directions(G, classifier, args.n, args.pca, args.seed, args.fraction, args.batch, args.impl,
                            progress=not args.no_progress,
                            classifier_name=Path(path).stem if classifier is not None else "",
                            check_n=args.check_n, check_seed=args.check_seed, sigmas=args.sigmas,
                            min_move=args.min_move, max_ratio=args.max_ratio, conditional=not args.no_conditional)
    seconds = time.perf_counter() - start
    fitted = dataclasses.replace(fitted, settings={**fitted.settings, "model": source,
                                                   "threads": torch.get_num_threads(), "seconds": round(seconds, 1)})
    out = fitted.save(args.out)
    if fitted.checks:
        check = fitted.settings["check"]
        baseline = check.get("random_baseline")
        chance = (f"; along {baseline['directions']} random directions no value's mean probability moves more "
                  f"than {baseline['largest_move']:.3f}") if baseline else ""
        print(f"held-out check: +{check['sigmas']:g} std on {check['n']} latents of seed {check['seed']}; kept when "
              f"the target value's mean probability rises >= {check['min_move']:g} and every other attribute "
              f"moves <= {check['max_ratio']:g} x that{chance}")
        print(checks_table(fitted.checks))
        print()
    print(fitted.table())
    print(f"\nwrote {out} ({len(fitted.directions)} directions, {len(fitted.dropped)} dropped) and "
          f"{out.with_suffix('.json')} in {seconds:.1f} s")


# -- anycost edit ---------------------------------------------------------------------------------------
def load_latent(path, G) -> torch.Tensor:
    """A .npy latent as W [1, style_dim] or W+ [1, n_styles, style_dim]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no latent file {path}")
    try:
        w = torch.from_numpy(np.load(path, allow_pickle=False)).float()
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable .npy latent: {err}") from None
    d, s = G.arch.style_dim, G.arch.n_styles
    shape = tuple(w.shape)
    if shape in ((d,), (1, d)):
        return w.reshape(1, d)
    if shape in ((s, d), (1, s, d)):
        return w.reshape(1, s, d)
    raise ValueError(f"{path}: a latent must be W [{d}] / [1, {d}] or W+ [{s}, {d}] / [1, {s}, {d}], got {list(shape)}")


def _directions(args, G) -> tuple[EditDirections, Path | None]:
    """(directions, their file when known: the fit report is beside it)."""
    if args.directions:
        return EditDirections.load(args.directions, style_dim=G.arch.style_dim), Path(args.directions)
    if args.checkpoint:
        raise ValueError("--directions is required with --checkpoint (directions belong to one model's W); "
                         "make them with `anycost directions --checkpoint ... --out F.npz`")
    dirs = default_directions()
    if dirs is None:
        raise FileNotFoundError("no bundled edit directions: pass --directions F.npz (see `anycost directions`)")
    return dirs, assets.path(DIRECTIONS_NAME)


def read_report(path) -> dict | None:
    """The fit report (.json beside the directions file `path`, as `anycost directions` writes it), or None when
    there is none; ValueError when it is not readable JSON."""
    report = Path(path).with_suffix(".json")
    if not report.is_file():
        return None
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{report} is not a readable fit report: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{report} is not a fit report (a JSON object)")
    return data


def directions_listing(dirs: EditDirections, report: dict | None) -> str:
    """One line per direction: name, kind, held-out accuracy and std (from the fit `report`), and its held-out
    check when the report has one; then the dropped boundaries with the reason."""
    stats = {d.get("name"): d for d in (report or {}).get("directions", []) if isinstance(d, dict)}
    lines = ["| direction | kind | held-out accuracy | std of w along it | target | target move | largest other "
             "move | check |", "|---|---|---:|---:|---|---:|---|---|"]
    for name in dirs.names:
        d = stats.get(name, {})
        kind = d.get("kind", "")
        if d.get("orthogonal_to"):
            kind = f"{kind} (orthogonal to {group_names(d['orthogonal_to'])})"
        elif kind == "pca":
            kind = "pca (unsupervised)"
        acc = f"{d['accuracy']:.3f}" if isinstance(d.get("accuracy"), (int, float)) else ""
        std = f"{d['std']:.3f}" if isinstance(d.get("std"), (int, float)) else ""
        check = d.get("check") or {}
        move = f"{check['target_move']:+.3f}" if isinstance(check.get("target_move"), (int, float)) else ""
        other = (f"{check.get('largest_other', '')} {check['largest_other_move']:.3f}"
                 if isinstance(check.get("largest_other_move"), (int, float)) and check.get("largest_other") else "")
        verdict = {True: "passed", False: "failed", None: "unsupervised"}.get(check.get("passed")) if check else ""
        lines.append(f"| {name} | {kind} | {acc} | {std} | {check.get('target') or ''} | {move} | {other} | "
                     f"{verdict} |")
    if report is None:
        lines.append("(no fit report beside the directions file: no statistics)")
    else:
        settings = (report.get("settings") or {}).get("check")
        if isinstance(settings, dict):
            lines.append(f"check: +{settings.get('sigmas')} std on {settings.get('n')} held-out latents (seed "
                         f"{settings.get('seed')}): target mean probability up >= {settings.get('min_move')}, every "
                         f"other attribute <= {settings.get('max_ratio')} x that")
        for name, reason in (report.get("dropped") or {}).items():
            lines.append(f"dropped (not offered): {name}: {reason}")
    return "\n".join(lines)


def _render(G, w, config, impl) -> tuple[torch.Tensor, float]:
    """(images, median ms of a batch-1 render at `config`)."""
    from anycost.benchmark import time_forward

    with torch.inference_mode():
        images = G(w, config=config, noise="const", impl=impl)
    return images, time_forward(G, w[:1], config, impl, repeats=3).median_ms


def cmd_edit(args) -> None:
    from anycost.editing.fit import orthogonalize
    from anycost.images import image_grid
    from anycost.models.stylegan2.bundled import generator_or_default

    if args.list:
        if args.edit or args.sweep or args.keep or args.strengths:
            raise ValueError("--list only lists the directions: drop --edit, --sweep, --strengths and --keep")
    elif args.seed is None and args.latent is None:
        raise ValueError("give the latent to edit: --seed N or --latent FILE.npy (or --list the directions)")
    G, source = generator_or_default(args.checkpoint)
    dirs, path = _directions(args, G)
    if args.list:
        print(f"{len(dirs)} directions in {path or 'the bundled directions'} ({dirs.source}); model: {source}")
        print(directions_listing(dirs, read_report(path) if path is not None else None))
        return
    edits = dict(args.edit)
    keep = [k.strip() for k in args.keep.split(",") if k.strip()]
    if args.strengths and not args.sweep:
        raise ValueError("--strengths needs --sweep NAME")
    strengths = parse_strengths(args.strengths) if args.strengths else list(DEFAULT_SWEEP)
    edited = list(dict.fromkeys([*edits, *([args.sweep] if args.sweep else [])]))
    unknown = [n for n in [*edited, *keep] if n not in dirs.names]
    if unknown:
        dropped = ((read_report(path) if path is not None else None) or {}).get("dropped") or {}
        why = "".join(f" ({n} was dropped by the held-out check: {dropped[n]})" for n in unknown if n in dropped)
        raise DirectionsError(f"unknown direction(s) {', '.join(unknown)}; known: {', '.join(dirs.names)}{why}")
    both = sorted(set(edited) & set(keep))
    if both:
        raise DirectionsError(f"cannot both edit and keep {', '.join(both)}")
    if keep:
        for name in edited:
            dirs = orthogonalize(dirs, name, keep)
    w = load_latent(args.latent, G) if args.latent else G.seed_w([args.seed])
    res = args.preview_resolution or max(G.arch.resolutions[0], G.arch.resolution // 2)
    preview = G.subnet(resolution=res, ratio=args.preview_ratio)
    full = G.full_config
    n_styles = G.arch.n_styles
    if args.sweep:
        ws = torch.cat([dirs.apply(w, {**edits, args.sweep: s}, n_styles) for s in strengths])
        rows, ms = zip(*(_render(G, ws, config, args.impl) for config in (preview, full)))
        labels = [[f"{s:+g} {kind} {t:.1f}ms" for s in strengths] for kind, t in zip(("prev", "full"), ms)]
        what = f"sweep {args.sweep} over {', '.join(f'{s:g}' for s in strengths)}"
    else:
        w_edit = dirs.apply(w, edits, n_styles)
        (small, preview_ms), (big, full_ms) = (_render(G, w_edit, c, args.impl) for c in (preview, full))
        with torch.inference_mode():
            before = G(w, config=full, noise="const", impl=args.impl)
        up = torch.nn.functional.interpolate(small, size=big.shape[-2:], mode="nearest")
        rows = [torch.cat([before, up, big])]
        labels = [["before: full", f"after: {res}px x{args.preview_ratio:g} {preview_ms:.1f}ms",
                   f"after: full {full_ms:.1f}ms"]]
        ms = (preview_ms, full_ms)
        what = ", ".join(f"{k}={v:g}" for k, v in edits.items()) or "no edit"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image_grid(list(rows), max(G.arch.resolution, 128), labels).save(out)
    conditional = f" (orthogonal to {', '.join(keep)})" if keep else ""
    layout = "" if args.sweep else "; columns: before (unedited full), after (preview), after (full)"
    print(f"{out}: {what}{conditional}; preview ({preview.describe()}) {ms[0]:.1f} ms, full ({full.describe()}) "
          f"{ms[1]:.1f} ms (batch 1, median of 3); model: {source}{layout}")
