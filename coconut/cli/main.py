"""The `coconut` command. Sub-commands import their heavy modules only when they run.

Every failure goes through one place (coconut.cli.errors): one line on stderr and the same exit code in every
command; `--debug` (anywhere on the line) adds the traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from coconut.cli.errors import (EXIT_CODES, EXIT_OK, EXIT_USAGE, Parser, configure_logging, quiet_thread_failures,
                                raise_terminated, report)
from coconut.cli.options import options_help, split_options
from coconut.config.checks import ConfigError
from coconut.methods import METHODS

EXPERIMENT_COMMANDS = ("train", "eval", "analyze")
RUN_FOLDER_COMMANDS = ("eval", "analyze")  # also take a run folder in place of the experiment
COMMANDS = ("quickstart", "list", "bench", "data", *EXPERIMENT_COMMANDS, "report", "table", "think", "demo")


def package_version() -> str:
    """The installed distribution's version (the one whose `coconut` command is ours: PyPI has another project
    called coconut), else the package's own __version__ (a clone used without installing)."""
    from importlib import metadata

    for name in dict.fromkeys(metadata.packages_distributions().get("coconut", [])):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if any(ep.value.startswith("coconut.cli.main:") for ep in dist.entry_points):
            return f"{dist.version} ({dist.metadata['Name']})"
    import coconut

    return coconut.__version__


class VersionAction(argparse.Action):
    """--version, read only when asked (importlib.metadata scans the installed distributions)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"coconut {package_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def experiment_command(commands, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A sub-command taking an experiment, key=value overrides and options, and --dry-run (train, eval, analyze)."""
    parser = commands.add_parser(name, help=help, description=description, epilog=options_help(name))
    if name in RUN_FOLDER_COMMANDS:
        parser.add_argument("experiment", metavar="RUN_DIR|EXPERIMENT",
                            help="a run folder (it holds config.yaml and run.json: its own config is read), or an "
                                 "experiment: a name under experiments/ (coconut list) or a yaml path")
    else:
        parser.add_argument("experiment", metavar="EXPERIMENT",
                            help="a name under experiments/ (coconut list) or a yaml path")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides (optim.lr=1e-4, model=gpt2) and the options below, in any order")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="coconut",
        description="Train language models to reason in a continuous latent space (COCONUT).",
        epilog=EXIT_CODES + "\n\n--debug, anywhere on the line, shows the traceback of a failure.",
    )
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    quickstart = commands.add_parser(
        "quickstart", help="a first COCONUT run on a CPU in about two minutes, then where to look (make quickstart)",
        description="Train experiments/quickstart.yaml (a tiny model, a short curriculum on generated data) into "
                    "runs/quickstart/quickstart, then print the run folder, its figures and the commands that look "
                    "inside it. A folder holding a run is refused: overwrite=true trains it again.",
        epilog=options_help("quickstart"))
    quickstart.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (trainer.max_epochs=5)")
    from coconut.cli.listing import WHAT

    listing = commands.add_parser(
        "list", help="the experiments with their descriptions; coconut list method|model|data|... for config options",
        description="The experiments under experiments/ (grouped by data set), or the options of one config group, "
                    "each with its one-line description.")
    listing.add_argument("what", nargs="?", default="experiments", choices=WHAT, metavar="WHAT",
                         help=f"experiments (default) or a config group: {', '.join(WHAT[1:])}")
    from coconut.bench.settings import add_bench_arguments

    bench = commands.add_parser(
        "bench", help="benchmark the latent engine against a plain model of the same shape",
        description="Latent training step, peak memory and batched generation against a plain model.")
    add_bench_arguments(bench)
    from coconut.cli.data import add_data_commands

    data = commands.add_parser(
        "data", help="generate data sets, convert formats, print statistics",
        description="Generate ProsQA/ProntoQA-style data, convert formats, compare statistics.")
    add_data_commands(data)
    experiment_command(
        commands, "train", help="train an experiment (experiments/NAME.yaml) with key=value overrides",
        description="Train an experiment. Overrides: group=option (model=gpt2, trainer=ddp) or key=value "
                    "(optim.lr=1e-4, trainer.devices=4). A run folder that holds a run is refused: resume=PATH "
                    "continues it, overwrite=true deletes it and starts again.")
    experiment_command(
        commands, "eval", help="evaluate a checkpoint: coconut eval RUN_DIR [ckpt=best|last|PATH] [split=test|val]",
        description="Evaluate a checkpoint at its curriculum stage (or stage=K) on the test or val split, printing "
                    "the metrics (nothing is written). With a run folder, its own config.yaml is read and ckpt= is "
                    "optional; with an experiment name, give the training overrides again and ckpt=. A checkpoint "
                    f"of a method's own release: {release_examples()}. "
                    "decode=soft_thinking|mixture_of_inputs and eval.thoughts=learned change how it generates.")
    experiment_command(
        commands, "analyze", help="look inside a checkpoint: coconut analyze RUN_DIR [ckpt=...] [what=search,...]",
        description="Analyses of a checkpoint (latent search, decoding rules, learned stop), written to "
                    "RUN_DIR/analysis/CHECKPOINT (JSON, PNG, TensorBoard images). With a run folder, its own "
                    "config.yaml is read and ckpt= is optional.")
    from coconut.cli.report import add_report_arguments

    report_parser = commands.add_parser(
        "report", help="the paper's Table 1 from run folders: coconut report runs/...",
        description="Accuracy (mean +- std over seeds) and generated tokens per method and data set, beside "
                    "the paper's figures; written as Markdown, CSV and a plot.")
    add_report_arguments(report_parser)
    from coconut.cli.sweep import add_table_arguments

    table = commands.add_parser(
        "table", help="train a data set's whole Table 1 for several seeds, then report (make table-prosqa)",
        description="Every DATASET_METHOD experiment for each seed, one coconut train each (finished runs are "
                    "skipped), then coconut report into OUTPUT_DIR/table_DATASET.")
    add_table_arguments(table)
    from coconut.cli.think import add_think_arguments

    think_parser = commands.add_parser(
        "think", help="read a run's continuous thoughts: coconut think RUN_DIR [\"QUESTION\"]",
        description="For each continuous thought, the tokens the LM head reads from it (with their probabilities "
                    "and, on graph questions, each name's distance from the subject), then the generated answer "
                    "and, for a question from the run's data, whether it is right.")
    add_think_arguments(think_parser)
    demo = commands.add_parser("demo", help="the whole idea end to end on a CPU in minutes (make demo)",
                               description="Generate prosqa-mini with phrase steps; train CoT, COCONUT (from CoT's "
                                           "stage 0) and No-CoT for the same number of steps, for each seed; test each "
                                           "at its final checkpoint; print and save the table (mean +- std, each "
                                           "seed, the targets), the plot and one question's thoughts.",
                               epilog=options_help("demo"))
    demo.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every demo run")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse with flags and key=value words in any order (`train X --dry-run optim.lr=1`), then type the
    command's key=value options; every refusal is the sub-command's one-line usage error (exit 2)."""
    args, extra = parser.parse_known_args(argv)
    own = getattr(args, "_parser", parser)  # the innermost sub-command's parser (Parser sets it)
    if extra:
        flags = [word for word in extra if word.startswith("-")]
        if flags or not isinstance(getattr(args, "overrides", None), list):
            own.error(f"unrecognized arguments: {' '.join(flags or extra)}")
        args.overrides = args.overrides + extra  # after the ones argparse took: their order is kept
    if args.command in EXPERIMENT_COMMANDS + ("demo", "quickstart"):
        args.run = None  # the run folder eval and analyze were given in place of an experiment
        try:
            if args.command in RUN_FOLDER_COMMANDS:
                from coconut.cli.run_target import looks_like_run_folder, open_run_folder

                if looks_like_run_folder(args.experiment):
                    args.run = open_run_folder(args.experiment)
            # A method's release checkpoint (model.release_checkpoint=) is evaluated without ckpt=.
            release = args.command == "eval" and any(o.startswith("model.release_checkpoint=") for o in args.overrides)
            args.options, args.overrides = split_options(args.command, args.overrides, getattr(args, "dry_run", False),
                                                         required=args.run is None and not release)
        except ConfigError as err:  # OptionError, NotARunFolder
            own.error(str(err))
    if args.command == "think":
        from coconut.cli.think import check_think_args

        problem = check_think_args(args)
        if problem:
            own.error(problem)
    if args.command == "bench":
        from coconut.bench.settings import check_bench_args

        problem = check_bench_args(args)
        if problem:
            own.error(problem)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # anywhere, also after the sub-command
    argv = [word for word in argv if word != "--debug"]
    command = argv[0] if argv and argv[0] in COMMANDS else ""  # until the parse names it (a Ctrl-C while parsing)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if main_thread else None  # a scheduler's stop: as Ctrl-C
    try:
        parser = build_parser()
        try:
            args = parse(parser, argv)
        except SystemExit as stop:  # --help, --version, a usage error: returned, so that callers of main() see it
            sys.stdout.flush()  # inside the try: a closed stdout (`--help | head -1`) is reported like any other
            return stop.code if isinstance(stop.code, int) else (EXIT_OK if stop.code is None else EXIT_USAGE)
        if args.command is None:  # a usage error: a script calling `coconut` alone has left something out
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        configure_logging(debug)
        quiet_thread_failures(debug)
        command = args.command + (f" {args.data_command}" if args.command == "data" else "")
        code = dispatch(args)
        sys.stdout.flush()  # what is still buffered fails here, not in the interpreter's flush at exit
        return code
    except (Exception, KeyboardInterrupt) as err:
        return report(err, command, debug)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "bench":
        from coconut.bench.run import main as bench_main

        return bench_main(args)
    if args.command == "list":
        from coconut.cli.listing import main as list_main

        return list_main(args)
    if args.command in EXPERIMENT_COMMANDS + ("demo", "quickstart"):
        from coconut.cli.experiment import run_command

        return run_command(args)
    if args.command == "table":
        from coconut.cli.sweep import main as table_main

        return table_main(args)
    if args.command == "think":
        from coconut.cli.think import main as think_main

        return think_main(args)
    if args.command == "report":
        from coconut.cli.report import main as report_main

        return report_main(args)
    from coconut.cli.data import run

    return run(args)


def release_examples() -> str:
    """`coconut eval` commands that read the methods' release checkpoints (coconut.methods.Method.release_example)."""
    return "; ".join(f"coconut eval {m.release_example}" for m in METHODS.values() if m.release_example)


if __name__ == "__main__":
    sys.exit(main())
