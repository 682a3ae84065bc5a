"""The train, eval, analyze, demo and quickstart commands. Their options come typed from coconut.cli.options; every
failure goes up to coconut.cli.main, which prints one line (coconut.cli.errors)."""

from __future__ import annotations


def run_command(args) -> int:
    from coconut.experiment import load_config, to_yaml

    options = args.options
    if args.command == "demo":
        from coconut.cli.demo import DEFAULT_SEEDS, run_demo

        run_demo(args.overrides, overwrite=options.get("overwrite", False), seeds=options.get("seeds", DEFAULT_SEEDS))
        return 0
    if args.command == "quickstart":
        from coconut.cli.quickstart import QUICKSTART, check_folder, where_to_look

        cfg = load_config(QUICKSTART, args.overrides)
        check_folder(cfg, options.get("overwrite", False))
        train_run(cfg, options)
        print(where_to_look(cfg.run_dir))
        return 0
    run = getattr(args, "run", None)  # eval and analyze of a run folder: its own config, its checkpoints
    if run is not None:
        from coconut.cli.run_target import run_config

        cfg = run_config(run, args.overrides)
    else:
        cfg = load_config(args.experiment, args.overrides)
    if args.dry_run:
        print(to_yaml(cfg))
        print(f"# {cfg.trainer.effective_batch_text(cfg.data.batch_size)}")
        return 0
    if args.command == "train":
        train_run(cfg, options)
        return 0
    release = cfg.model.release_checkpoint if args.command == "eval" else None  # a release checkpoint, no ckpt=
    if (run is not None and release is None) or "ckpt" in options:
        from coconut.cli.run_target import resolve_checkpoint
        from coconut.run_dir import RunDir

        options = {**options, "ckpt": resolve_checkpoint(options.get("ckpt"), run or RunDir(cfg.run_dir))}
    if args.command == "analyze":
        from coconut.analysis.run import ANALYSES, analyze
        from coconut.analysis.summary import format_analysis

        results = analyze(cfg, options["ckpt"], what=options.get("what", ANALYSES), questions=options.get("questions"),
                          split=options.get("split", "test"), prefix=options.get("prefix"), stage=options.get("stage"))
        print(format_analysis(results))
        return 0
    from coconut.methods import method
    from coconut.train.run import evaluate

    metrics = evaluate(cfg, options.get("ckpt"), stage=options.get("stage"), split=options.get("split", "test"))
    checkpoint = options.get("ckpt") or f"{release} (a checkpoint of the {method(cfg.method.name).label} release)"
    for key, value in {"checkpoint": checkpoint, **metrics}.items():
        print(f"{key}: {value}")
    return 0


PERMISSIONS = ("resume_finished", "resume_other_run", "allow_changed_data")  # train's explicit permissions


def train_run(cfg, options: dict) -> dict:
    """`coconut train` (and quickstart): every check first, then train, test, export; one line with the result."""
    from coconut.train.run import launched_rank, train  # Lightning loads inside train()

    if launched_rank() == 0:  # the other processes of a launch find the folder the first one wrote
        check_run_inputs(cfg, options)
    permissions = {key: options[key] for key in PERMISSIONS if key in options}
    results = train(cfg, resume=options.get("resume"), overwrite=options.get("overwrite", False), **permissions)
    if results.get("fast_dev_run"):
        print(f"fast_dev_run: {results['fast_dev_run']} batch(es) of training, validation and test ran at stage "
              f"{results['stage']} (train loss {results['train_loss']}, test accuracy "
              f"{results['test'].get('test/acc', float('nan')):.3f}); no checkpoint, no logs: nothing was "
              f"written to {results['run_dir']}")
    elif "test" in results:  # only the first process of a launch tests and writes results.json
        test, split = results["test"], results.get("test_split", "test")  # "val" when there is no test file
        print(f"done: {results['run_dir']} ({split} accuracy {test.get('test/acc', float('nan')):.3f}, "
              f"tokens {test.get('test/tokens', float('nan')):.1f})")
    return results


def check_run_inputs(cfg, options: dict) -> None:
    """What a run would refuse after seconds of imports, refused at once: a run folder in use or holding another
    run, an output_dir or data folder that cannot be written. `train` checks the folder again (it is the API)."""
    from coconut.cli.options import check_writable_folder
    from coconut.train.run_folder import StartRequest, open_run_folder

    permissions = {key: options[key] for key in PERMISSIONS if key in options}
    if not cfg.trainer.fast_dev_run:  # a dev run neither reads nor writes the run folder (coconut.train.dev_run)
        open_run_folder(cfg, StartRequest(options.get("resume"), options.get("overwrite", False), **permissions))
        check_writable_folder(cfg.run_dir, "output_dir")
    if cfg.data.generator is not None and cfg.data.allow_generated:  # missing split files are generated there
        for split, path in cfg.data.files().items():
            if not path.exists():
                named = getattr(cfg.data, f"{split}_file") is not None
                check_writable_folder(path.parent, f"data.{split}_file" if named else "data.data_dir")
