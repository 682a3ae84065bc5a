"""`coconut train` and `coconut eval`: a run from its config, through Lightning, into its run folder."""

from __future__ import annotations

import logging
import subprocess
import time

from coconut.config import RunConfig
from coconut.run_dir import RunDir, write_json

log = logging.getLogger(__name__)


def git_commit() -> str:
    from coconut.experiment import ROOT

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def prepare_run_dir(cfg: RunConfig) -> RunDir:
    from coconut.experiment import to_yaml

    run_dir = RunDir(cfg.run_dir)
    run_dir.root.mkdir(parents=True, exist_ok=True)
    run_dir.config.write_text(to_yaml(cfg))
    run_dir.git_commit.write_text(git_commit() + "\n")
    return run_dir


def train(cfg: RunConfig, resume: str | None = None, extra_callbacks=()) -> dict:
    """Train, test the chosen checkpoint, export it; returns the results written to results.json."""
    import lightning as L

    from coconut.data.provenance import data_provenance
    from coconut.train.build import build_system
    from coconut.train.checkpoints import check_checkpoint, checkpoint_stage, init_weights, load_weights
    from coconut.train.trainer import build_trainer, check_hardware, single_device_tester

    check_hardware(cfg)
    log.info("%s", cfg.trainer.effective_batch_text(cfg.data.batch_size))
    started = time.time()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    run_dir = prepare_run_dir(cfg)
    if resume:
        check_checkpoint(resume)
    module, datamodule, tokenizer = build_system(cfg)
    if cfg.model.init_from and not resume:  # a resumed run has its own weights in the checkpoint
        init_weights(module, cfg.model.init_from, tokenizer.convert_tokens_to_ids(cfg.model.init_token or tokenizer.eos_token))
    trainer = build_trainer(cfg, run_dir, extra_callbacks, model=module.engine.model)
    from coconut.experiment import shown

    for logger in trainer.loggers:
        logger.log_hyperparams(shown(cfg))
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True if resume else None)
    results = {"name": cfg.name, "method": cfg.method.name, "run_dir": str(run_dir.root),
               # examples per optimizer step over all processes (the release's numbers: 128)
               "effective_batch": cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches}
    if not trainer.is_global_zero:
        return results  # rank 0 alone tests, exports and writes the results
    chosen = trainer.checkpoint_callback.best_model_path or str(run_dir.last_checkpoint)
    results["checkpoint"] = chosen
    # One device, no logger: the test set is small, and a second fit-time logger would overwrite the
    # training CSV under ddp_spawn. The metrics go to results.json.
    state = check_checkpoint(chosen)
    load_weights(module, state, chosen)
    datamodule.freeze_stage(checkpoint_stage(state, cfg.trainer.schedule))  # the chosen checkpoint's own stage
    test = single_device_tester(cfg).test(module, datamodule=datamodule, verbose=False)
    results["test"] = {k: round(float(v), 5) for k, v in (test[0] if test else {}).items()}
    results["test_stage"] = datamodule.stage
    results["data"] = data_provenance(cfg.data)  # per split: file, sha256, records, released/generated/provided
    module.engine.save_pretrained(run_dir.export, tokenizer, method=cfg.method.name,
                                  thoughts_per_step=cfg.method.thoughts_per_step,
                                  max_latent_stage=cfg.method.max_latent_stage)
    results["seconds"] = round(time.time() - started)  # the whole run: training, test, export
    write_json(run_dir.results, results)
    return results


def evaluate(cfg: RunConfig, ckpt: str, stage: int | None = None, split: str = "test") -> dict:
    """Evaluate a checkpoint at its stage (or `stage`) on a split; returns the metrics."""
    from coconut.train.build import build_system
    from coconut.train.checkpoints import check_checkpoint, checkpoint_stage, load_weights
    from coconut.train.trainer import single_device_tester

    state = check_checkpoint(ckpt)
    if not cfg.run_dir.exists():
        prepare_run_dir(cfg)
    module, datamodule, _ = build_system(cfg)
    load_weights(module, state, ckpt)
    datamodule.freeze_stage(stage if stage is not None else checkpoint_stage(state, cfg.trainer.schedule))
    tester = single_device_tester(cfg)
    run = tester.test if split == "test" else tester.validate
    metrics = run(module, datamodule=datamodule, verbose=False)[0]
    return {"stage": datamodule.stage, **{k: round(float(v), 5) for k, v in metrics.items()}}
