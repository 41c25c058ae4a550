"""The ``diarize`` command. Each subcommand lives in its own module of this package with
``add_parser(subparsers)`` and ``run(args) -> int``; the library does the work, the CLI
only wraps it. Heavy imports (torch) happen inside ``run`` so ``--help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

import diarize
from diarize.utils import DiarizeError

COMMANDS = ["run", "evaluate", "score", "simulate", "train", "average"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diarize", description="Speaker diarization: who spoke when (EEND-EDA)."
    )
    parser.add_argument("--version", action="version", version=f"diarize {diarize.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if importlib.util.find_spec(f"diarize.cli.{name}") is None:
            continue  # not built yet
        importlib.import_module(f"diarize.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DiarizeError as e:
        print(f"diarize {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"diarize {args.command}: interrupted", file=sys.stderr)
        return 130
