"""`anycost search`: the evolutionary search for the sub-generator closest to the full one under a budget."""

from __future__ import annotations

from anycost import cli_args
from anycost.models.stylegan2.bundled import generator_or_default
from anycost.search.space import SEARCH_RATIOS


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="evolutionary search for the sub-generator closest to the full one "
                                      "under a MACs or latency budget")
    cli_args.add_model_options(p)
    p.add_argument("--budget-macs", help="MACs budget: a fraction of the full model's (0.5) or MACs (90M, 0.09G)")
    p.add_argument("--budget-ms", type=float, help="latency budget (ms, batch 1) predicted by a per-layer table")
    p.add_argument("--latency-table", help="latency table JSON (default: OUT/latency.json, measured if absent)")
    p.add_argument("--resolution", "-r", type=int, help="output resolution searched (default: the model's)")
    p.add_argument("--population", type=int, default=50)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--parents", type=int, default=10, help="top configs kept per generation")
    p.add_argument("--crossover", type=int, default=25, help="crossover children per generation")
    p.add_argument("--mutation", type=int, default=25, help="mutation children per generation")
    p.add_argument("--p-mutation", type=float, default=0.1, help="per-layer mutation probability")
    p.add_argument("--samples", "-n", type=int, default=32, help="latents of the fixed fitness set")
    p.add_argument("--validate", type=int, default=256, help="latents (another set) on which the final parents and "
                   "the uniform configs within budget are measured again to pick the result (0 = the search's best)")
    p.add_argument("--ratios", type=cli_args.ratio_list, default=SEARCH_RATIOS,
                   help="channel ratios whose widths each layer may take (default: the trained ones and the "
                        "midpoints between them, %(default)s)")
    p.add_argument("--held-out", type=int, default=256, help="latents (a third set) on which the pick and the "
                   "uniform config of equal cost are compared at the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--perceptual", default="auto", help="fitness distance: auto, hed-vgg, lpips-vgg, lpips-alex, mse")
    p.add_argument("--no-uniform-seeds", action="store_true",
                   help="do not put the uniform configs within budget into the initial population")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.json")
    p.add_argument("--out", "-o", type=cli_args.output_folder, default="out/search",
                   help="folder for best.json, pareto.json/png, state.json")
    p.set_defaults(func=cmd_search)


def cmd_search(args) -> None:
    from anycost.search.run import run_search

    cli_args.set_threads(args.threads)
    G, source = generator_or_default(args.checkpoint)
    print(f"model: {source}", flush=True)
    s = run_search(G, args.out, budget_macs=args.budget_macs, budget_ms=args.budget_ms,
                   latency_table=args.latency_table, resolution=args.resolution, population=args.population,
                   generations=args.generations, parents=args.parents, n_crossover=args.crossover,
                   n_mutation=args.mutation, p_mutation=args.p_mutation, n=args.samples, seed=args.seed,
                   perceptual=args.perceptual, impl=args.impl, seed_uniform=not args.no_uniform_seeds,
                   validate=args.validate, held_out=args.held_out, ratios=args.ratios, resume=args.resume,
                   log=lambda line: print(line, flush=True))
    ms = s["budget_ms"] is not None
    for label, e in (("picked  ", s["best"]), ("uniform ", s["nearest_uniform"])):
        if e is None:
            print(f"{label}: no uniform config fits the budget")
            continue
        lat = f", {e['latency_ms']:.2f} ms predicted" if ms else ""
        print(f"{label}: {e['describe']}, {e['macs'] / 1e9:.4f} GMACs{lat}, {s['metric']} {e['fitness']:.5f}, "
              f"widths {e['config']['widths']}")
    h = s["held_out"]
    if h["nearest_uniform"] is not None:
        d = h["versus_uniform"]
        print(f"on {h['n']} held-out latents (seed {h['seed']}): picked {h['best']:.5f}, "
              f"uniform {h['nearest_uniform']:.5f}; picked - uniform {d['difference']:+.5f} "
              f"+- {d['standard_error']:.5f} (paired standard error), {100 * d['relative']:+.1f}%")
    unit = (lambda c: f"{c:.2f} ms") if ms else (lambda c: f"{c / 1e9:.4f} GMACs")
    for row in s["uniform_at_equal_cost"]:
        u, best = row["uniform"], row["searched"]
        found = f"{best['fitness']:.5f} ({unit(best['cost'])})" if best else "none evaluated"
        print(f"search latents, at <= {unit(u['cost'])} ({u['describe']}): uniform {u['fitness']:.5f}, "
              f"best searched {found}")
    print(f"{s['evaluated']} configs evaluated in {s['generations'] + 1} generations; wrote best.json, "
          f"pareto.json, pareto.png, state.json in {args.out}")
