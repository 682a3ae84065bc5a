"""`coconut train` and `coconut eval`: a run from its config, through Lightning, into its run folder.

`train` checks everything before it writes the first byte into the run folder: the folder is free and not in
use (or the run resumes its own checkpoint, or overwrite=true for a folder coconut made), the resume checkpoint
reads and fits the model, the data (unchanged since the run started, for a resume), tokenizer and model load,
and at least one optimizer step will run. Only then does it lock the folder, empty it (overwrite=true) and write
it (coconut.train.run_folder), so a run that fails before training leaves it exactly as it was. A signal during
training saves a resumable last.ckpt and stops (coconut.train.interrupt). `evaluate` writes nothing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time

from coconut.atomic import write_json
from coconut.config import ConfigError, RunConfig
from coconut.run_dir import RunDir

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

    from coconut.atomic import write_text

    run_dir = RunDir(cfg.run_dir)
    run_dir.root.mkdir(parents=True, exist_ok=True)
    write_text(run_dir.config, to_yaml(cfg))
    write_text(run_dir.git_commit, git_commit() + "\n")
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
    every = cfg.trainer.val_check_interval
    if isinstance(every, int) and limited >= 1 and every > limited:  # Lightning would refuse it inside fit
        raise ConfigError(f"trainer.val_check_interval={every} is more than the {limited} training batches of an "
                          f"epoch; validate every {limited} batches or fewer, or give a fraction of the epoch (0.5)")
    if cfg.trainer.epochs_to_train < 1 or limited < 1:
        per = f" over {world} processes" if world > 1 else ""
        fix = (" with data.drop_last=true; use more training data, a smaller data.batch_size or data.drop_last=false"
               if cfg.data.drop_last else "; use more training data")
        cause = (f"trainer.limit_train_batches={cfg.trainer.limit_train_batches} leaves no batch; raise it"
                 if batches >= 1 else f"{examples} training examples{per} fill no batch of data.batch_size="
                 f"{cfg.data.batch_size}{fix}")
        raise ConfigError(f"{cfg.data.files()['train']}: nothing to train: {cause} (trainer.max_epochs="
                          f"{cfg.trainer.max_epochs})")


def train(cfg: RunConfig, resume: str | None = None, extra_callbacks=(), overwrite: bool = False,
          **permissions) -> dict:
    """Train, test the chosen checkpoint, export it; returns the results written to results.json.

    resume: a checkpoint to continue from; overwrite: empty the run folder (after every check) and start again;
    permissions: resume_finished, resume_other_run, allow_changed_data (coconut.train.run_folder.StartRequest).
    A signal during training raises coconut.train.interrupt.RunInterrupted once last.ckpt is saved."""
    import lightning as L

    from coconut.train.build import build_system, load_or_build_tokenizer, save_tokenizer
    from coconut.train.checkpoints import check_checkpoint, check_fits, init_weights
    from coconut.train.run_folder import StartRequest, check_same_data, commit_run_folder, open_run_folder
    from coconut.train.trainer import build_trainer, check_hardware

    from coconut.config.loggers import check_logger_packages

    refuse_release_checkpoint(cfg, "train")
    request = StartRequest(resume, overwrite, **permissions)
    check_hardware(cfg)
    check_logger_packages(cfg.logger)
    if cfg.trainer.fast_dev_run:  # a few batches in a temporary folder: the run folder is not touched
        from coconut.train.dev_run import dev_run

        return dev_run(cfg, request, extra_callbacks)
    log.info("%s", cfg.trainer.effective_batch_text(cfg.data.batch_size))
    started = time.time()
    first = launched_rank() == 0  # the other processes of a launch find the folder written by the first
    run_dir = open_run_folder(cfg, request) if first else RunDir(cfg.run_dir, output_dir=cfg.output_dir)
    state = check_checkpoint(resume) if resume else None
    # The system in memory: data (generated into data/<name>/ when missing), tokenizer, model, data set up.
    own_tokenizer = (bool(resume) and not request.resume_other_run and not overwrite
                     and (run_dir.tokenizer / "tokenizer_config.json").exists())
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    tokenizer = load_or_build_tokenizer(cfg, run_dir, reuse="always" if own_tokenizer else "never")
    files = cfg.data.files()
    if first:
        check_same_data(cfg, run_dir, files, request)
    module, datamodule, _ = build_system(cfg, tokenizer)
    datamodule.setup("fit")
    if resume:
        check_fits(module, state, resume, tokenizer)
    elif cfg.model.init_from:  # a resumed run has its own weights in the checkpoint
        init_weights(module, cfg.model.init_from, tokenizer=tokenizer, init_token=cfg.model.init_token)
    check_steps(cfg, datamodule)
    complete = schedule_reaches_final_stage(cfg, (len(r.steps) for r in datamodule.splits.get("train", ())))
    resumed_step = int(state.get("global_step", 0)) if state else None
    del state  # Lightning reads the checkpoint again in fit
    trainer = build_trainer(cfg, run_dir, extra_callbacks, model=module.engine.model, resumed_step=resumed_step)
    lock, marker = None, {}
    if first:  # the folder's first bytes, once every check has passed
        save = None if own_tokenizer else (lambda folder: save_tokenizer(cfg, tokenizer, folder))
        lock, marker = commit_run_folder(cfg, run_dir, request, files, git_commit(), save)
    if "mlflow" in cfg.logger:  # its client writes as it is built: only into a committed folder
        from coconut.train.trainer import mlflow_logger

        trainer.loggers = [*trainer.loggers, mlflow_logger(cfg, run_dir)]
    try:
        return _fit_and_test(cfg, run_dir, trainer, module, datamodule, tokenizer, resume, marker, complete, started)
    finally:
        if lock is not None:
            lock.release()


def schedule_reaches_final_stage(cfg: RunConfig, step_counts) -> bool:
    """Whether the schedule trains the final stage's samples (which settle early on records of few `step_counts`),
    where best.ckpt is chosen; if not, say which checkpoint will be tested (results.json and the report say so)."""
    from coconut.methods import method

    m = method(cfg.method.name)
    if not m.stepwise or cfg.trainer.last_stage >= m.settled_stage(cfg.method, cfg.final_stage(), step_counts):
        return True
    log.warning("the schedule ends at stage %d, before method %s's final stage %d (trainer.max_epochs=%d): no "
                "checkpoint is chosen by validation in the final stage, so the run is tested at last.ckpt (stage %d)",
                cfg.trainer.last_stage, cfg.method.name, cfg.final_stage(), cfg.trainer.max_epochs,
                cfg.trainer.last_stage)
    return False


def _fit_and_test(cfg, run_dir, trainer, module, datamodule, tokenizer, resume, marker, complete, started) -> dict:
    from coconut.atomic import replace_folder
    from coconut.data.provenance import data_provenance
    from coconut.experiment import shown
    from coconut.train.checkpoints import check_checkpoint, checkpoint_stage, load_weights
    from coconut.train.export import export_model
    from coconut.train.trainer import single_device_tester
    from coconut.train.transitions import transitions_section

    for logger in trainer.loggers:
        logger.log_hyperparams(shown(cfg))
    fit(trainer, module, datamodule, resume)
    results = {"name": cfg.name, "method": cfg.method.name, "run_dir": str(run_dir.root),
               # examples per optimizer step over all processes (the release's numbers: 128), and how
               "effective_batch": cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches,
               "per_device_batch": cfg.data.batch_size, "accumulate_grad_batches": trainer.accumulate_grad_batches}
    if not trainer.is_global_zero:
        return results  # rank 0 alone tests, exports and writes the results
    leave_process_group()
    stop, short = stopped_by_max_steps(cfg, trainer)
    results.update(stop)
    complete = complete and not short  # max_steps stopped before the final stage: last.ckpt is tested
    best = trainer.checkpoint_callback.best_model_path if cfg.eval.checkpoint == "best" else ""
    if cfg.eval.checkpoint == "best" and not best and complete:
        log.warning("no validation ran in the final stage, so there is no best.ckpt: testing last.ckpt")
    chosen = best or str(run_dir.last_checkpoint)
    results.update(run_id=marker.get("run_id"), checkpoint=chosen, tested_checkpoint="best" if best else "last",
                   schedule_complete=complete)
    # One device, no logger: the test set is small, and a second fit-time logger would overwrite the
    # training CSV under ddp_spawn. The metrics go to results.json.
    state = check_checkpoint(chosen)
    load_weights(module, state, chosen)
    datamodule.freeze_stage(checkpoint_stage(state, cfg.trainer.schedule))  # the chosen checkpoint's own stage
    test = single_device_tester(cfg).test(module, datamodule=datamodule, verbose=False)
    results["test"] = {k: round(float(v), 5) for k, v in (test[0] if test else {}).items()}
    results["test_split"] = datamodule.test_split  # "val" when there is no test file (a warning said so)
    if cfg.trainer.limit_test_batches is not None:  # a part of the test split: the figures say so
        results["limit_test_batches"] = cfg.trainer.limit_test_batches
    results["test_stage"] = datamodule.stage
    results["transitions"] = transitions_section(run_dir)  # per stage: entry, exit, drop, recovery (transitions.csv)
    results["data"] = data_provenance(cfg.data)  # per split: file, sha256, records, released/generated/provided
    # The export's card quotes the test's results; results.json itself is still written last.
    replace_folder(run_dir.export, lambda folder: export_model(cfg, folder, module, tokenizer, datamodule.stage,
                                                               results))
    if module.step_decoder is not None:  # beside the export, not in it: `coconut think` reads thoughts with it
        from coconut.engine.step_decoder import save_step_decoder

        replace_folder(run_dir.step_decoder, lambda folder: save_step_decoder(module.step_decoder, folder))
    results["seconds"] = round(time.time() - started)  # the whole run: training, test, export
    write_json(run_dir.results, results)  # last: a run folder with results.json is a finished run
    return results


def stopped_by_max_steps(cfg: RunConfig, trainer) -> tuple[dict, bool]:
    """Where trainer.max_steps stopped training: ({max_steps_reached, stopped_step, stopped_stage} for results.json,
    empty without max_steps; whether it stopped before the method's final stage, which is then said)."""
    from coconut.methods import method
    from coconut.train.callbacks import CurriculumCallback

    limit = cfg.trainer.max_steps
    if limit is None:
        return {}, False
    reached = trainer.global_step >= limit
    stage = next((c.stage for c in trainer.callbacks if isinstance(c, CurriculumCallback)), None)
    out = {"max_steps_reached": reached, "stopped_step": trainer.global_step}
    short = False
    if reached and stage is not None:
        out["stopped_stage"] = stage
        short = method(cfg.method.name).stepwise and stage < cfg.final_stage()
        if short:
            log.warning("trainer.max_steps=%d stopped training in stage %d, before method %s's final stage %d: the "
                        "run is tested at last.ckpt (step %d)", limit, stage, cfg.method.name, cfg.final_stage(),
                        trainer.global_step)
    return out, short


def fit(trainer, module, datamodule, resume) -> None:
    """trainer.fit; Lightning ends a Ctrl-C it catches itself (a second one, during teardown) with sys.exit(1):
    that stop is reported as the interrupt it is."""
    from coconut.train.interrupt import RunInterrupted

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True if resume else None)
    except SystemExit as stop:
        if trainer.interrupted:
            import signal

            raise RunInterrupted(signal.SIGINT) from stop
        raise


def leave_process_group() -> None:
    """After a launch whose other ranks ran this command too (torchrun, SLURM, Lightning's DDP launcher), they
    have returned: the test on rank 0 alone must not wait for them (torchmetrics syncs over any process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def refuse_release_checkpoint(cfg: RunConfig, command: str) -> None:
    if cfg.model.release_checkpoint is not None:
        raise ConfigError(f"model.release_checkpoint={cfg.model.release_checkpoint}: a release checkpoint is "
                          f"evaluated (coconut eval), not read by coconut {command}; drop model.release_checkpoint")


def evaluate(cfg: RunConfig, ckpt: str | None, stage: int | None = None, split: str = "test") -> dict:
    """Evaluate a checkpoint at its stage (or `stage`) on a split; returns the split really scored ("val" when a
    test split was asked for and there is no test file), the stage and the metrics. With model.release_checkpoint
    (and no `ckpt`), the method's release checkpoint, at the method's final stage."""
    from coconut.train.build import build_system
    from coconut.train.checkpoints import check_checkpoint, check_eval_stage, checkpoint_stage, load_weights
    from coconut.train.trainer import single_device_tester

    from coconut.train.hardware import check_single_device

    if split not in SPLITS:
        raise ConfigError(f"split={split}: unknown split; choose {' or '.join(SPLITS)}")
    check_eval_stage(cfg, stage)
    check_single_device(cfg)  # the precision a one-device evaluation runs in (16-mixed on a CPU would run bf16)
    if cfg.model.release_checkpoint is not None:
        if ckpt is not None:
            raise ConfigError(f"ckpt={ckpt} and model.release_checkpoint={cfg.model.release_checkpoint}: give one of them")
        module, datamodule, _ = build_system(cfg)
        datamodule.setup("test")
        datamodule.freeze_stage(stage if stage is not None else cfg.final_stage())
    else:
        if ckpt is None:
            raise ConfigError("evaluate: give a checkpoint (ckpt) or model.release_checkpoint")
        state = check_checkpoint(ckpt)
        module, datamodule, tokenizer = build_system(cfg)
        load_weights(module, state, ckpt, tokenizer)
        datamodule.setup("test")
        datamodule.freeze_stage(stage if stage is not None else checkpoint_stage(state, cfg.trainer.schedule))
    tester = single_device_tester(cfg)
    run = tester.test if split == "test" else tester.validate
    metrics = run(module, datamodule=datamodule, verbose=False)[0]
    used = datamodule.test_split if split == "test" else split
    return {"stage": datamodule.stage, "split": used, **{k: round(float(v), 5) for k, v in metrics.items()}}
