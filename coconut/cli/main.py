"""The `coconut` command. Sub-commands import their heavy modules only when they run."""

from __future__ import annotations

import argparse
import sys


def experiment_command(commands, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A sub-command taking an experiment, key=value overrides and --dry-run (train, eval, analyze)."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("experiment", help="a name under experiments/ or a yaml path")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    return parser


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
    from coconut.bench.settings import add_bench_arguments

    add_bench_arguments(bench)
    data = commands.add_parser(
        "data", help="generate data sets, convert formats, print statistics",
        description="Generate ProsQA/ProntoQA-style data, convert formats, compare statistics.",
    )
    from coconut.cli.data import add_data_commands

    add_data_commands(data)

    experiment_command(
        commands, "train", help="train an experiment (experiments/NAME.yaml) with key=value overrides",
        description="Train an experiment. Overrides: group=option (model=gpt2, trainer=ddp) or key=value "
                    "(optim.lr=1e-4, trainer.devices=4). resume=PATH continues from a checkpoint.",
    )
    experiment_command(
        commands, "eval", help="evaluate a checkpoint: coconut eval EXPERIMENT ckpt=PATH [stage=K] [split=test|val]",
        description="Evaluate a checkpoint at its curriculum stage (or stage=K) on the test or val split. "
                    "decode=soft_thinking|mixture_of_inputs and eval.thoughts=learned change how it generates.",
    )
    experiment_command(
        commands, "analyze", help="look inside a checkpoint: latent search, decoding rules, learned stop",
        description="Analyses of a checkpoint, written to RUN_DIR/analysis/CHECKPOINT (JSON, PNG, TensorBoard "
                    "images). Options: ckpt=PATH (required), what=search,decoding,stop (default all), questions=N, "
                    "split=test|val, stage=K, prefix=WORD (the frontier probe's step prefix).",
    )

    report = commands.add_parser(
        "report", help="the paper's Table 1 from run folders: coconut report runs/...",
        description="Accuracy (mean +- std over seeds) and generated tokens per method and data set, beside "
                    "the paper's figures; written as Markdown, CSV and a plot.",
    )
    from coconut.cli.report import add_report_arguments

    add_report_arguments(report)

    table = commands.add_parser(
        "table", help="train a data set's whole Table 1 for several seeds, then report (make table-prosqa)",
        description="Every DATASET_METHOD experiment for each seed, one coconut train each (finished runs are "
                    "skipped), then coconut report into OUTPUT_DIR/table_DATASET.",
    )
    from coconut.cli.sweep import add_table_arguments

    add_table_arguments(table)

    demo = commands.add_parser("demo", help="the whole idea end to end on a CPU in minutes (make demo)",
                               description="Generate prosqa-mini, train CoT -> COCONUT and the No-CoT baseline, "
                                           "print and save the results table.")
    demo.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every demo run")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "bench":
        from coconut.bench.run import main as bench_main

        return bench_main(args)
    if args.command in ("train", "eval", "demo", "analyze"):
        from coconut.cli.experiment import run_command

        return run_command(args)
    if args.command == "table":
        from coconut.cli.sweep import main as table_main

        return table_main(args)
    if args.command == "report":
        from coconut.cli.report import main as report_main

        return report_main(args)
    if args.command == "data":
        from coconut.cli.data import run

        return run(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
