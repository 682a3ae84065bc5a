"""The Lightning Trainer of a run: strategy, precision, loggers and the curriculum's callbacks."""

from __future__ import annotations

from coconut.config import RunConfig
from coconut.methods import method
from coconut.run_dir import BEST, CSV_LOGS, LAST, TENSORBOARD, RunDir


def check_hardware(cfg: RunConfig) -> None:
    """What this machine cannot run (an accelerator, GPU count or precision it lacks, nodes no launcher started):
    one ConfigError naming the key, before anything is built (coconut.train.hardware)."""
    from coconut.train.hardware import check_hardware as check

    check(cfg)


def build_trainer(cfg: RunConfig, run_dir: RunDir, extra_callbacks=(), model=None, resumed_step: int | None = None):
    """The Lightning Trainer; `model` (the HF model) tells FSDP which layers to wrap; `resumed_step`: the global
    step of the checkpoint a resumed run continues from (TensorBoard hides the steps a killed attempt logged
    after it)."""
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    from coconut.data.tokenize import TEXT_FORMATS
    from coconut.train.accuracy_log import AccuracyVsTokensLogger
    from coconut.train.callbacks import CurriculumCallback, FinalStageCheckpoint, StageCheckpoint
    from coconut.train.checkpoint_io import AtomicCheckpointIO
    from coconut.train.history import MetricsHistory
    from coconut.train.interrupt import GracefulStop
    from coconut.train.quiet import install as quiet_library_lines
    from coconut.train.strategies import build_strategy
    from coconut.train.thought_diagnostics import ThoughtDiagnostics
    from coconut.train.transitions import TransitionDiagnostics
    from coconut.train.summary import ParameterSummary

    quiet_library_lines()  # also for runs started from Python, not through the command
    t = cfg.trainer
    m = method(cfg.method.name)
    # A batch-dependent removal (iCoT) resets AdamW at each increment of its removal count, not per epoch/stage.
    by_removal = m.batch_dependent
    callbacks = [
        GracefulStop(run_dir.last_checkpoint),  # first: it stops a run before the other hooks of a batch log anything
        CurriculumCallback("never" if by_removal else cfg.optim.reset, cfg.seed, cfg.latent.auto_thought_scale),
        # The first ModelCheckpoint: `trainer.checkpoint_callback`, whose best model the run tests and exports.
        FinalStageCheckpoint(dirpath=run_dir.checkpoints, filename=BEST, monitor="val/acc", mode="max", save_top_k=1,
                             enable_version_counter=False),
        # At every epoch's end (and where max_steps stops), whenever validation runs: within the epoch
        # (val_check_interval) or every few epochs (val_every_n_epochs), the tested last.ckpt lags no batch.
        ModelCheckpoint(dirpath=run_dir.checkpoints, filename=LAST, save_top_k=1, enable_version_counter=False,
                        save_on_train_epoch_end=True),
        StageCheckpoint(run_dir, t.schedule),
        AccuracyVsTokensLogger(run_dir, title=cfg.name),
        ThoughtDiagnostics(),  # thoughts/* at each validation with thoughts; before the summary that reads them
        TransitionDiagnostics(run_dir, t.schedule, TEXT_FORMATS[cfg.data.text_format],
                              stepwise=m.stepwise, entry=cfg.eval.transition_entry,
                              questions=cfg.eval.transition_questions, title=cfg.name),
        LearningRateMonitor(logging_interval="step"),
        MetricsHistory(),
        ParameterSummary(),  # Lightning's counts in one line (enable_model_summary=False below)
        *extra_callbacks,
    ]
    if by_removal:
        from coconut.train.icot import IcotOptimizerReset

        callbacks.append(IcotOptimizerReset())
    # A projection, a stop head or step supervision's decoder gets no gradient at stage 0 (no thought yet).
    unused = cfg.latent.projection or cfg.latent.stop_classifier or cfg.method.step_supervision
    strategy = build_strategy(t, model, unused_parameters=unused, latent_passes=m.latent_passes)
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=strategy,
        precision=t.precision, max_epochs=t.epochs_to_train, max_steps=-1 if t.max_steps is None else t.max_steps,
        accumulate_grad_batches=t.accumulate_grad_batches, gradient_clip_val=cfg.optim.grad_clip,
        limit_train_batches=t.limit_train_batches, limit_val_batches=t.limit_val_batches,
        limit_test_batches=t.limit_test_batches, check_val_every_n_epoch=t.val_every_n_epochs,
        val_check_interval=t.val_check_interval, log_every_n_steps=t.log_every_n_steps,
        fast_dev_run=t.fast_dev_run, profiler=build_profiler(t.profiler, run_dir), deterministic=t.deterministic,
        enable_progress_bar=t.progress_bar, enable_model_summary=False, reload_dataloaders_every_n_epochs=1,
        num_sanity_val_steps=0, callbacks=callbacks, logger=build_loggers(cfg, run_dir, resumed_step), default_root_dir=run_dir.root,
        plugins=[AtomicCheckpointIO()],
    )


def build_loggers(cfg: RunConfig, run_dir: RunDir, resumed_step: int | None = None) -> list:
    """The loggers `logger=` names, each writing under the run folder, and the metrics history (always: a resumed
    run continues it). wandb runs offline unless WANDB_MODE=online (wandb's own variable; `wandb sync` uploads
    an offline run later). mlflow is added once the run folder is written (`mlflow_logger`)."""
    import os

    from coconut.train.history import HistoryCSVLogger

    loggers = []
    if "tensorboard" in cfg.logger:  # first: trainer.log_dir, where Lightning puts what it writes, is its folder
        from lightning.pytorch.loggers import TensorBoardLogger

        purge = {} if resumed_step is None else {"purge_step": resumed_step + 1}
        loggers.append(TensorBoardLogger(run_dir.root, name=TENSORBOARD, version="", default_hp_metric=False, **purge))
    loggers.append(HistoryCSVLogger(run_dir.root, name=CSV_LOGS, version=""))
    if "wandb" in cfg.logger:
        from lightning.pytorch.loggers import WandbLogger

        loggers.append(WandbLogger(name=cfg.name, save_dir=str(run_dir.root), project=os.environ.get(
            "WANDB_PROJECT", "coconut"), offline=os.environ.get("WANDB_MODE", "offline") != "online"))
    return loggers


def mlflow_logger(cfg: RunConfig, run_dir: RunDir):
    """logger=mlflow: MLflow's client creates its file store as it is built, so it is added to the Trainer only
    once the run folder is committed (coconut.train.run.train), never into a folder a refused run leaves."""
    import os

    from lightning.pytorch.loggers import MLFlowLogger

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:  # a file store in the run folder: no server, no database package (MLflow 3 asks to opt in)
        uri = run_dir.mlflow.resolve().as_uri()
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MLFlowLogger(experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME", "coconut"), run_name=cfg.name,
                        tracking_uri=uri)


def build_profiler(name: str | None, run_dir: RunDir):
    """trainer.profiler: Lightning's profiler of that name, its report written to RUN_DIR/profiler/."""
    if name is None:
        return None
    from lightning.pytorch.profilers import AdvancedProfiler, PyTorchProfiler, SimpleProfiler

    kind = {"simple": SimpleProfiler, "advanced": AdvancedProfiler, "pytorch": PyTorchProfiler}[name]
    return kind(dirpath=run_dir.profiler, filename="profile")


def single_device_tester(cfg: RunConfig):
    """A Trainer for testing or validating on one device, without loggers or checkpoints.

    In the run's own precision, so the test after training and a later `coconut eval` of the same checkpoint
    give the same numbers (the release also evaluates in its training precision)."""
    import lightning as L

    from coconut.train.quiet import install as quiet_library_lines

    quiet_library_lines()
    return L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=cfg.trainer.progress_bar, precision=cfg.trainer.precision,
                     limit_test_batches=cfg.trainer.limit_test_batches)
