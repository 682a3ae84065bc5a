"""The train, eval and demo commands: configuration errors and bad inputs become one clear line."""

from __future__ import annotations

import logging
import sys

RUN_KEYS = ("ckpt", "resume", "stage", "split", "what", "questions", "prefix")  # command options written as key=value beside the overrides


def _split_options(overrides: list[str]) -> tuple[dict, list[str]]:
    options, rest = {}, []
    for item in overrides:
        key = item.split("=", 1)[0]
        if key in RUN_KEYS and "=" in item:
            options[key] = item.split("=", 1)[1]
        else:
            rest.append(item)
    return options, rest


def run_command(args) -> int:
    from coconut.config import ConfigError
    from coconut.data.records import DataError
    from coconut.experiment import load_config, to_yaml
    from coconut.train.checkpoints import CheckpointError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "demo":
            from coconut.cli.demo import run_demo

            run_demo(args.overrides)
            return 0
        options, overrides = _split_options(args.overrides)
        cfg = load_config(args.experiment, overrides)
        if args.dry_run:
            print(to_yaml(cfg))
            print(f"# {cfg.trainer.effective_batch_text(cfg.data.batch_size)}")
            return 0
        if args.command == "train":
            from coconut.train.run import train

            results = train(cfg, resume=options.get("resume"))
            print(f"done: {results['run_dir']} (test accuracy {results['test'].get('test/acc', float('nan')):.3f}, "
                  f"tokens {results['test'].get('test/tokens', float('nan')):.1f})")
            return 0
        if "ckpt" not in options:
            raise ConfigError(f"coconut {args.command} needs ckpt=PATH")
        if args.command == "analyze":
            from coconut.analysis.run import ANALYSES, analyze
            from coconut.analysis.summary import format_analysis

            results = analyze(cfg, options["ckpt"], what=tuple(options.get("what", ",".join(ANALYSES)).split(",")),
                              questions=int(options["questions"]) if "questions" in options else None,
                              split=options.get("split", "test"), prefix=options.get("prefix"),
                              stage=int(options["stage"]) if "stage" in options else None)
            print(format_analysis(results))
            return 0
        from coconut.train.run import evaluate

        stage = int(options["stage"]) if "stage" in options else None
        metrics = evaluate(cfg, options["ckpt"], stage=stage, split=options.get("split", "test"))
        for key, value in metrics.items():
            print(f"{key}: {value}")
        return 0
    except (ConfigError, DataError, CheckpointError) as err:
        print(f"coconut {args.command}: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from coconut.train.module import NonFiniteLossError

        if isinstance(err, NonFiniteLossError):
            print(f"coconut {args.command}: {err}", file=sys.stderr)
            return 3
        raise
