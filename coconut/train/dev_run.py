"""`trainer.fast_dev_run=true` (or N): Lightning's smoke test of a whole run, which writes nothing into the run folder.

The run is built as `coconut train` builds it (data, tokenizer, model, every callback and the Trainer), then
Lightning trains N batches, validates N and tests N, at the schedule's last stage (where the thoughts are, so the
latent passes run too). Lightning turns checkpoints and loggers off in this mode; the callbacks that write files
(stage checkpoints, the accuracy CSV, the profiler) write into a temporary folder, deleted at the end. So the run
folder is neither created nor changed: no folder that looks started or finished, and no check of it (a dev run
next to a finished run of the same name is fine). Data files a generator makes are written as for any run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from coconut.config import ConfigError, RunConfig
from coconut.run_dir import RunDir


def dev_run(cfg: RunConfig, request, extra_callbacks=()) -> dict:
    """Run the few batches; returns what ran ({fast_dev_run, batches, stage, test, run_dir, written: False})."""
    import lightning as L

    from coconut.train.build import build_system, load_or_build_tokenizer
    from coconut.train.checkpoints import init_weights
    from coconut.train.run import check_steps, fit
    from coconut.train.trainer import build_trainer

    if request.resume or request.overwrite:
        raise ConfigError("trainer.fast_dev_run runs a few batches in a temporary folder and never reads or writes "
                          "the run folder: drop resume= and overwrite= (or trainer.fast_dev_run)")
    batches = 1 if cfg.trainer.fast_dev_run is True else int(cfg.trainer.fast_dev_run)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    with tempfile.TemporaryDirectory(prefix="coconut-fast-dev-run-") as scratch:
        run_dir = RunDir(Path(scratch) / cfg.name)
        tokenizer = load_or_build_tokenizer(cfg, run_dir, reuse="never")
        module, datamodule, _ = build_system(cfg, tokenizer)
        datamodule.setup("fit")
        if cfg.model.init_from:
            init_weights(module, cfg.model.init_from, tokenizer=tokenizer, init_token=cfg.model.init_token)
        check_steps(cfg, datamodule)
        stage = cfg.trainer.last_stage
        datamodule.freeze_stage(stage)  # training, validation and test all at the last stage of the schedule
        trainer = build_trainer(cfg, run_dir, extra_callbacks, model=module.engine.model)
        fit(trainer, module, datamodule, None)
        loss = trainer.callback_metrics.get("train/loss")  # before the test resets the metrics
        test = trainer.test(module, datamodule=datamodule, verbose=False)
    return {"name": cfg.name, "method": cfg.method.name, "run_dir": str(cfg.run_dir), "fast_dev_run": batches,
            "stage": stage, "train_loss": None if loss is None else round(float(loss), 5),
            "test": {k: round(float(v), 5) for k, v in (test[0] if test else {}).items()}, "written": False}
