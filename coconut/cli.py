"""The `coconut` command. Sub-commands import their heavy modules only when they run."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coconut",
        description="Train language models to reason in a continuous latent space (COCONUT).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = commands.add_parser(
        "bench",
        help="benchmark the latent engine against a plain model of the same shape",
        description="Latent training step, peak memory and batched generation against a plain model.",
    )
    from coconut.bench_args import add_bench_arguments

    add_bench_arguments(bench)
    data = commands.add_parser(
        "data", help="generate data sets, convert formats, print statistics",
        description="Generate ProsQA/ProntoQA-style data, convert formats, compare statistics.",
    )
    from coconut.data.cli import add_data_commands

    add_data_commands(data)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "bench":
        from coconut.bench import main as bench_main

        return bench_main(args)
    if args.command == "data":
        from coconut.data.cli import run

        return run(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
