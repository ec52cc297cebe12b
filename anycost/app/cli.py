"""`anycost serve`: start the local web app (or, with --measure, time a scripted drag against it)."""

from __future__ import annotations

import argparse
import threading

import torch


def build_model(args):
    """The ServedModel the options ask for: checkpoint, directions, preview, idle time, projection steps."""
    from anycost.app.model import ServedModel
    from anycost.editing import EditDirections, default_directions
    from anycost.models.stylegan2.bundled import generator_or_default
    from anycost.projection import default_encoder

    G, source = generator_or_default(args.checkpoint)
    bundled = not args.checkpoint  # the bundled directions and encoder belong to the bundled model only
    if args.directions:
        directions = EditDirections.load(args.directions, style_dim=G.arch.style_dim)
    else:
        directions = default_directions() if bundled else None
    encoder = default_encoder(G) if bundled else None
    return ServedModel(G, source, directions=directions, encoder=encoder, preview_resolution=args.preview_resolution,
                       preview_ratio=args.preview_ratio, idle_s=args.idle_ms / 1000, project_steps=args.project_steps,
                       impl=args.impl)


def cmd_serve(args) -> None:
    from anycost.app.measure import measure_drag
    from anycost.app.server import AppServer

    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(args)
    names = ", ".join(d["name"] for d in model.info()["directions"]) or "none"
    preview = model.preview_config(model.preview)
    print(f"model: {model.source}; edit directions: {names}; preview {preview.describe()} ({preview.macs / 1e9:.3f} "
          f"of {model.full.macs / 1e9:.3f} GMACs); full render after {args.idle_ms:g} ms idle")
    if model.upload_unavailable:
        print(f"uploads are off: {model.upload_unavailable}")
    host, port = ("127.0.0.1", 0) if args.measure else (args.host, args.port)
    server = AppServer(model, host, port, max_clients=args.max_sessions, max_per_client=args.max_sessions_per_client,
                       ttl_s=args.session_ttl, verbose=args.verbose)
    if not args.measure:
        print(f"serving on {server.url}  (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
        finally:
            server.server_close()
        return
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        m = measure_drag(server.url, seconds=args.measure_seconds)
    finally:
        server.shutdown()
        server.server_close()
    print(f"scripted drag ({len(m['runs'])} x {m['seconds']:g} s, edits sent at {m['edits_per_s']:.0f}/s, "
          f"torch threads {torch.get_num_threads()}):")
    print(f"  previews delivered: {m['previews_per_s']:.1f}/s (render {m.get('preview_ms', float('nan')):.1f} ms each)")
    print(f"  last input -> full render: {m['full_delay_ms']:.0f} ms (idle wait {m['idle_ms']} ms + render "
          f"{m['full_ms']:.1f} ms + delivery)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="local web app: edit sliders and a cost control, a fast preview while "
                                     "dragging, the full image when idle")
    p.add_argument("--checkpoint", "-c", help="generator file (default: the bundled model)")
    p.add_argument("--directions", help="edit directions .npz (anycost.editing.EditDirections; default: the bundled "
                                        "model's, if it has some)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1 keeps the app on this machine)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    p.add_argument("--preview-resolution", type=int, help="initial preview resolution (default: half the model's)")
    p.add_argument("--preview-ratio", type=float, default=0.25, help="initial preview channel ratio")
    p.add_argument("--idle-ms", type=float, default=300, help="pause after the last change before the full render")
    p.add_argument("--project-steps", type=_positive_int, default=100, help="optimisation steps per uploaded image")
    p.add_argument("--max-sessions", type=_positive_int, default=16, help="open pages served at once; past it, a "
                   "new page takes the place of the least recently used one that is not rendering")
    p.add_argument("--max-sessions-per-client", type=_positive_int, default=8, help="open pages per remote address "
                   "(all local tabs share 127.0.0.1); past it, a new one takes the place of that address's least "
                   "recently used one that is not rendering")
    p.add_argument("--session-ttl", type=_positive_float, default=600, help="seconds without a request (an open page "
                   "polls every 20 s) after which a session is closed")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--impl", choices=("auto", "kernel", "ref"), default="auto", help="op implementation")
    p.add_argument("--verbose", action="store_true", help="log every request (default: refused ones only)")
    p.add_argument("--measure", action="store_true", help="serve nothing: drag a slider from a script over HTTP "
                   "and print previews/s and the delay from the last input to the full render")
    p.add_argument("--measure-seconds", type=float, default=3.0, help="length of each of the 3 scripted drags")
    p.set_defaults(func=cmd_serve)
