"""`coconut train` and `coconut eval`: a run from its config, through Lightning, into its run folder.

`train` checks everything before it writes the first byte into the run folder: the folder is free (or the
run is resumed, or overwrite=true), the resume checkpoint reads and fits the model, the data, tokenizer and
model load, and at least one optimizer step will run. Only then is the folder emptied (overwrite=true) and
written, so a run that fails before training leaves it exactly as it was (see coconut.run_dir).
`evaluate` writes nothing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time

from coconut.config import ConfigError, RunConfig
from coconut.run_dir import RunDir, write_json

log = logging.getLogger(__name__)
SPLITS = ("test", "val")  # what `evaluate` scores


def git_commit() -> str:
    from coconut.experiment import ROOT

    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def prepare_run_dir(cfg: RunConfig) -> RunDir:
    """Create a run folder with the config and the commit (for `coconut analyze` of a checkpoint without one)."""
    from coconut.experiment import to_yaml

    run_dir = RunDir(cfg.run_dir)
    run_dir.root.mkdir(parents=True, exist_ok=True)
    run_dir.config.write_text(to_yaml(cfg))
    run_dir.git_commit.write_text(git_commit() + "\n")
    return run_dir


def launched_rank() -> int:
    """This process's rank when a launcher started it: torchrun (RANK), SLURM (SLURM_PROCID), or the copies of
    this command Lightning's DDP launcher starts (LOCAL_RANK, NODE_RANK); 0 for a plain command."""
    for key in ("RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return max(int(os.environ.get(key, "0") or 0) for key in ("LOCAL_RANK", "NODE_RANK"))


def check_steps(cfg: RunConfig, datamodule) -> None:
    """At least one optimizer step per epoch; else the run would train nothing and have no checkpoint to test.

    Read from the config, before the Trainer exists (building it prints Lightning's device lines)."""
    from coconut.train.datamodule import limit_batches, train_batches

    world = (cfg.trainer.device_count() or 1) * cfg.trainer.num_nodes  # devices=auto: counted as one
    examples = len(datamodule.splits["train"])
    batches = train_batches(examples, world, cfg.data.batch_size, cfg.data.drop_last)
    limited = limit_batches(batches, cfg.trainer.limit_train_batches)
    if cfg.trainer.epochs_to_train < 1 or limited < 1:
        per = f" over {world} processes" if world > 1 else ""
        fix = (" with data.drop_last=true; use more training data, a smaller data.batch_size or data.drop_last=false"
               if cfg.data.drop_last else "; use more training data")
        cause = (f"trainer.limit_train_batches={cfg.trainer.limit_train_batches} leaves no batch; raise it"
                 if batches >= 1 else f"{examples} training examples{per} fill no batch of data.batch_size="
                 f"{cfg.data.batch_size}{fix}")
        raise ConfigError(f"{cfg.data.files()['train']}: nothing to train: {cause} (trainer.max_epochs="
                          f"{cfg.trainer.max_epochs})")


def train(cfg: RunConfig, resume: str | None = None, extra_callbacks=(), overwrite: bool = False) -> dict:
    """Train, test the chosen checkpoint, export it; returns the results written to results.json.

    resume: a checkpoint to continue from; overwrite: empty the run folder (after every check) and start again."""
    import lightning as L

    from coconut.data.provenance import data_provenance
    from coconut.experiment import shown
    from coconut.train.build import build_system, load_or_build_tokenizer
    from coconut.train.checkpoints import check_checkpoint, check_fits, checkpoint_stage, init_weights, load_weights
    from coconut.train.trainer import build_trainer, check_hardware, single_device_tester

    check_hardware(cfg)
    log.info("%s", cfg.trainer.effective_batch_text(cfg.data.batch_size))
    started = time.time()
    run_dir = RunDir(cfg.run_dir, output_dir=cfg.output_dir)
    first = launched_rank() == 0  # the other processes of a launch find the folder written by the first
    if first:
        run_dir.check_free(resume, overwrite)
    if resume:
        state = check_checkpoint(resume)
    # The system in memory: data (generated into data/<name>/ when missing), tokenizer, model, data set up.
    own_tokenizer = bool(resume) and (run_dir.tokenizer / "tokenizer_config.json").exists() and not overwrite
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    tokenizer = load_or_build_tokenizer(cfg, run_dir, reuse="always" if own_tokenizer else "never")
    module, datamodule, _ = build_system(cfg, tokenizer)
    datamodule.setup("fit")
    if resume:
        check_fits(module, state, resume)
        del state  # Lightning reads it again in fit
    elif cfg.model.init_from:  # a resumed run has its own weights in the checkpoint
        init_weights(module, cfg.model.init_from, tokenizer.convert_tokens_to_ids(cfg.model.init_token or tokenizer.eos_token))
    check_steps(cfg, datamodule)
    trainer = build_trainer(cfg, run_dir, extra_callbacks, model=module.engine.model)  # writes nothing yet
    if first:
        write_run_files(cfg, run_dir, tokenizer, save_tokenizer=not own_tokenizer, overwrite=overwrite)
    for logger in trainer.loggers:
        logger.log_hyperparams(shown(cfg))
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True if resume else None)
    results = {"name": cfg.name, "method": cfg.method.name, "run_dir": str(run_dir.root),
               # examples per optimizer step over all processes (the release's numbers: 128)
               "effective_batch": cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches}
    if not trainer.is_global_zero:
        return results  # rank 0 alone tests, exports and writes the results
    leave_process_group()
    best = trainer.checkpoint_callback.best_model_path if cfg.eval.checkpoint == "best" else ""
    chosen = best or str(run_dir.last_checkpoint)
    results["checkpoint"] = chosen
    # One device, no logger: the test set is small, and a second fit-time logger would overwrite the
    # training CSV under ddp_spawn. The metrics go to results.json.
    state = check_checkpoint(chosen)
    load_weights(module, state, chosen)
    datamodule.freeze_stage(checkpoint_stage(state, cfg.trainer.schedule))  # the chosen checkpoint's own stage
    test = single_device_tester(cfg).test(module, datamodule=datamodule, verbose=False)
    results["test"] = {k: round(float(v), 5) for k, v in (test[0] if test else {}).items()}
    results["test_split"] = datamodule.test_split  # "val" when there is no test file (a warning said so)
    results["test_stage"] = datamodule.stage
    results["data"] = data_provenance(cfg.data)  # per split: file, sha256, records, released/generated/provided
    module.engine.save_pretrained(run_dir.export, tokenizer, method=cfg.method.name,
                                  thoughts_per_step=cfg.method.thoughts_per_step,
                                  max_latent_stage=cfg.method.max_latent_stage)
    results["seconds"] = round(time.time() - started)  # the whole run: training, test, export
    write_json(run_dir.results, results)
    return results


def leave_process_group() -> None:
    """After a launch whose other ranks ran this command too (torchrun, SLURM, Lightning's DDP launcher), they
    have returned: the test on rank 0 alone must not wait for them (torchmetrics syncs over any process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def write_run_files(cfg: RunConfig, run_dir: RunDir, tokenizer, save_tokenizer: bool, overwrite: bool) -> None:
    """The run folder's first bytes, once every check has passed: emptied first with overwrite=true."""
    from coconut.experiment import to_yaml
    from coconut.train import build

    commit = git_commit()
    if overwrite:
        log.warning("overwrite=true: deleting the contents of %s", run_dir.root)
        run_dir.clear()
    run_dir.root.mkdir(parents=True, exist_ok=True)
    run_dir.config.write_text(to_yaml(cfg))
    run_dir.git_commit.write_text(commit + "\n")
    if save_tokenizer:  # a resumed run keeps its own
        build.save_tokenizer(cfg, tokenizer, run_dir)


def evaluate(cfg: RunConfig, ckpt: str, stage: int | None = None, split: str = "test") -> dict:
    """Evaluate a checkpoint at its stage (or `stage`) on a split; returns the split really scored ("val" when a
    test split was asked for and there is no test file), the stage and the metrics."""
    from coconut.train.build import build_system
    from coconut.train.checkpoints import check_checkpoint, checkpoint_stage, load_weights
    from coconut.train.trainer import single_device_tester

    if split not in SPLITS:
        raise ConfigError(f"split={split}: unknown split; choose {' or '.join(SPLITS)}")
    state = check_checkpoint(ckpt)
    module, datamodule, _ = build_system(cfg)
    load_weights(module, state, ckpt)
    datamodule.setup("test")
    datamodule.freeze_stage(stage if stage is not None else checkpoint_stage(state, cfg.trainer.schedule))
    tester = single_device_tester(cfg)
    run = tester.test if split == "test" else tester.validate
    metrics = run(module, datamodule=datamodule, verbose=False)[0]
    used = datamodule.test_split if split == "test" else split
    return {"stage": datamodule.stage, "split": used, **{k: round(float(v), 5) for k, v in metrics.items()}}
