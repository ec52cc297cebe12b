"""The `anycost` command line. Each package owns its commands (`add_parser(sub)` in its ``cli.py``); this
module only puts them together and turns errors into one line on stderr and exit status 1."""

from __future__ import annotations

import argparse
import sys

from anycost import memory
from anycost.app import cli as app_cli
from anycost.benchmark import cli as benchmark_cli
from anycost.cli_args import HelpFormatter
from anycost.compression import cli as compression_cli
from anycost.editing import cli as editing_cli
from anycost.gan_compression import cli as gan_compression_cli
from anycost.metrics import cli as metrics_cli
from anycost.models.stylegan2 import cli as stylegan2_cli
from anycost.projection import cli as projection_cli
from anycost.search import cli as search_cli
from anycost.training import cli as training_cli
from anycost.training.slimgan import cli as slimgan_cli

#: The packages whose commands make up `anycost`, in the order `anycost --help` lists them.
COMMAND_MODULES = (stylegan2_cli, benchmark_cli, training_cli, slimgan_cli, gan_compression_cli, compression_cli,
                   metrics_cli, search_cli, editing_cli, projection_cli, app_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anycost", description="Generators that run at any cost.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parser(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    memory.apply_cli_policy()
    try:
        args.func(args)
    except (ValueError, TypeError, OSError, RuntimeError) as err:
        print(f"anycost {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    return 0


def _one_line(err: Exception) -> str:
    """The error's message on one line: "PATH: reason" for an OS error (not "[Errno 17] ..."), else its first
    line (a library's long message keeps its gist)."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror}"
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
