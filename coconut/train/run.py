"""`coconut train` and `coconut eval`: build everything from a RunConfig and run it with Lightning."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path

from coconut.config import ROOT, RunConfig, to_yaml

log = logging.getLogger(__name__)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def prepare_run_dir(cfg: RunConfig) -> Path:
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    (run_dir / "git_commit.txt").write_text(git_commit() + "\n")
    return run_dir


def load_or_build_tokenizer(cfg: RunConfig, run_dir: Path):
    """The tokenizer saved with the run, or a new one (saved there) when the run is new."""
    from transformers import AutoTokenizer

    from coconut.train.datamodule import ensure_data
    from coconut.data.records import load_records
    from coconut.engine.models import build_tokenizer, tokenizer_dir

    saved = tokenizer_dir(run_dir)
    if (saved / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(saved)
    files = ensure_data(cfg)
    records = [r for path in files.values() if path.exists() for r in load_records(path)]
    tokenizer = build_tokenizer(cfg, records)
    tokenizer.save_pretrained(saved)
    return tokenizer


def build_system(cfg: RunConfig, run_dir: Path):
    """(module, datamodule, tokenizer) for a config."""
    from coconut.train.datamodule import CurriculumDataModule
    from coconut.engine.reasoner import LatentReasoner
    from coconut.engine.models import build_model, context_length
    from coconut.train.module import CoconutModule

    tokenizer = load_or_build_tokenizer(cfg, run_dir)
    model = build_model(cfg, tokenizer)
    if cfg.model.lora_rank > 0:
        from coconut.engine.lora import apply_lora
        from coconut.engine.special_tokens import PAUSE, latent_token_ids

        special = [i for k, i in latent_token_ids(tokenizer).items() if k != "eos_id"]
        pause = tokenizer.get_vocab().get(PAUSE)
        model = apply_lora(model, cfg.model, special + ([pause] if pause is not None else []))
    engine = LatentReasoner.from_tokenizer(model, tokenizer, latent_projection=cfg.model.latent_projection,
                                           thought_scale=cfg.model.thought_scale,
                                           stop_classifier=cfg.model.stop_classifier,
                                           jacobi_iterations=cfg.model.jacobi_iterations)
    if cfg.trainer.activation_checkpointing:
        from coconut.train.strategies import enable_mlp_checkpointing

        enable_mlp_checkpointing(model)
    max_length = cfg.data.max_length or context_length(model)
    datamodule = CurriculumDataModule(cfg, tokenizer, max_length=max_length)
    return CoconutModule(engine, tokenizer, cfg), datamodule, tokenizer


def build_trainer(cfg: RunConfig, run_dir: Path, extra_callbacks=(), model=None):
    """The Lightning Trainer; `model` (the HF model) tells FSDP which layers to wrap."""
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from coconut.config import stage_schedule
    from coconut.train.strategies import build_strategy
    from coconut.train.callbacks import (
        AccuracyVsTokensLogger, CurriculumCallback, FinalStageCheckpoint, StageCheckpoint, final_stage,
    )

    t = cfg.trainer
    schedule = stage_schedule(cfg)
    ckpt_dir = run_dir / "checkpoints"
    callbacks = [
        CurriculumCallback(schedule, cfg.optim.reset_each_stage, cfg.seed, cfg.model.auto_thought_scale),
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, enable_version_counter=False),
        FinalStageCheckpoint(final_stage(cfg), schedule, dirpath=ckpt_dir, filename="best",
                             monitor="val/acc", mode="max", save_top_k=1, enable_version_counter=False),
        StageCheckpoint(run_dir, schedule),
        AccuracyVsTokensLogger(run_dir, title=cfg.name),
        LearningRateMonitor(logging_interval="step"),
        *extra_callbacks,
    ]
    strategy = build_strategy(cfg, model)
    loggers = [TensorBoardLogger(run_dir, name="tensorboard", version="", default_hp_metric=False),
               CSVLogger(run_dir, name="csv", version="")]
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=strategy,
        precision=t.precision, max_epochs=t.max_epochs, accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=cfg.optim.grad_clip, limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches, check_val_every_n_epoch=t.val_every_n_epochs,
        log_every_n_steps=t.log_every_n_steps, deterministic=t.deterministic,
        enable_progress_bar=t.progress_bar, reload_dataloaders_every_n_epochs=1, num_sanity_val_steps=0,
        callbacks=callbacks, logger=loggers, default_root_dir=run_dir,
    )


def check_hardware(cfg: RunConfig) -> None:
    """A GPU config on a machine without one: say so before anything is built."""
    import torch

    from coconut.config import ConfigError

    if cfg.trainer.strategy == "fsdp" and not torch.cuda.is_available():
        raise ConfigError("trainer.strategy=fsdp needs CUDA GPUs (Lightning's FSDP runs on GPUs only); on a CPU "
                          "use trainer=ddp_cpu")
    if cfg.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={cfg.trainer.accelerator} but no CUDA GPU is visible on this machine; "
            "run on a GPU machine, or add trainer=cpu for a (slow) CPU run"
        )


def train(cfg: RunConfig, resume: str | None = None, extra_callbacks=()) -> dict:
    """Train, test the chosen checkpoint, export it; returns the results written to results.json."""
    import lightning as L

    from coconut.train.callbacks import write_json
    from coconut.train.checkpoints import check_checkpoint, load_weights

    check_hardware(cfg)
    started = time.time()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    run_dir = prepare_run_dir(cfg)
    if resume:
        check_checkpoint(resume)
    module, datamodule, tokenizer = build_system(cfg, run_dir)
    if cfg.model.init_from and not resume:  # a resumed run has its own weights in the checkpoint
        from coconut.train.checkpoints import init_weights

        init_weights(module, cfg.model.init_from)
    trainer = build_trainer(cfg, run_dir, extra_callbacks, model=module.engine.model)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True if resume else None)
    results = {"name": cfg.name, "method": cfg.method.name, "run_dir": str(run_dir)}
    if not trainer.is_global_zero:
        return results  # rank 0 alone tests, exports and writes the results
    best = trainer.checkpoint_callbacks[1].best_model_path if len(trainer.checkpoint_callbacks) > 1 else ""
    chosen = best or str(run_dir / "checkpoints" / "last.ckpt")
    results["checkpoint"] = chosen
    # One device, no logger: the test set is small, and a second fit-time logger would overwrite the
    # training CSV under ddp_spawn. The metrics go to results.json.
    state = check_checkpoint(chosen)
    load_weights(module, state, chosen)
    datamodule.eval_stage = checkpoint_stage(state, cfg)  # the chosen checkpoint's own stage
    tester = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, logger=False, enable_checkpointing=False,
                       enable_progress_bar=cfg.trainer.progress_bar, precision=cfg.trainer.precision)
    test = tester.test(module, datamodule=datamodule, verbose=False)
    results["test"] = {k: round(float(v), 5) for k, v in (test[0] if test else {}).items()}
    results["test_stage"] = datamodule.eval_stage
    export(module, tokenizer, run_dir / "export", cfg)
    results["seconds"] = round(time.time() - started)  # the whole run: training, test, export
    write_json(run_dir / "results.json", results)
    return results


def export(module, tokenizer, folder: Path, cfg: RunConfig) -> None:
    """save_pretrained of model and tokenizer, loadable with plain transformers, plus the latent settings."""
    from coconut.engine.lora import is_lora, merged

    folder.mkdir(parents=True, exist_ok=True)
    engine = module.engine
    if is_lora(engine.model):  # the adapters alone, then folded into plain weights for plain transformers
        engine.model.save_pretrained(folder / "lora_adapter")
        engine.model = merged(engine.model)
    engine.model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    settings = {"latent_id": engine.latent_id, "start_id": engine.start_id, "end_id": engine.end_id,
                "eos_id": engine.eos_id, "pad_id": engine.pad_id, "latent_projection": engine.projection is not None,
                "thought_scale": float(engine.thought_scale), "stop_classifier": engine.stop_head is not None,
                "jacobi_iterations": engine.jacobi_iterations,
                "method": cfg.method.name, "thoughts_per_step": cfg.method.thoughts_per_step,
                "max_latent_stage": cfg.method.max_latent_stage}
    (folder / "coconut.json").write_text(json.dumps(settings, indent=2) + "\n")
    import torch

    if engine.projection is not None:
        torch.save(engine.projection.state_dict(), folder / "latent_projection.pt")
    if engine.stop_head is not None:
        torch.save(engine.stop_head.state_dict(), folder / "stop_classifier.pt")


def evaluate(cfg: RunConfig, ckpt: str, stage: int | None = None, split: str = "test") -> dict:
    """Evaluate a checkpoint at its stage (or `stage`) on a split; prints and returns the metrics."""
    import lightning as L

    from coconut.train.checkpoints import check_checkpoint, load_weights

    state = check_checkpoint(ckpt)
    run_dir = prepare_run_dir(cfg) if not cfg.run_dir.exists() else cfg.run_dir
    module, datamodule, _ = build_system(cfg, run_dir)
    load_weights(module, state, ckpt)
    datamodule.eval_stage = stage if stage is not None else checkpoint_stage(state, cfg)
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, logger=False,
                        enable_progress_bar=cfg.trainer.progress_bar, enable_checkpointing=False)
    run = trainer.test if split == "test" else trainer.validate
    metrics = run(module, datamodule=datamodule, verbose=False)[0]
    return {"stage": datamodule.eval_stage, **{k: round(float(v), 5) for k, v in metrics.items()}}


def checkpoint_stage(state: dict, cfg: RunConfig) -> int:
    from coconut.config import stage_schedule

    for key, value in state.get("callbacks", {}).items():
        if key.startswith("CurriculumCallback") and value.get("stage") is not None:
            return int(value["stage"])
    return stage_schedule(cfg).stage(int(state.get("epoch", 0)))
