"""Callbacks: the curriculum controller, final-stage checkpoint selection, accuracy-vs-tokens logging."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from coconut.config import stage_schedule
from coconut.data.curriculum import StageSchedule


def final_stage(cfg) -> int:
    """The stage from which the curriculum no longer changes (0 for methods without one)."""
    if cfg.method.name in ("coconut", "no_thought", "pause_as_thought"):
        return cfg.method.max_latent_stage + 1
    if cfg.method.name == "icot":
        return stage_schedule(cfg).stage(cfg.trainer.max_epochs - 1)
    return 0


class CurriculumCallback(L.Callback):
    """Sets the stage from the epoch, resets the optimizer at stage switches, logs the stage.

    The stage is stored in checkpoints so a resumed run knows it is continuing the same stage (and
    does not reset the optimizer state it just restored). Each epoch also re-seeds torch from
    (seed, epoch), so an epoch interrupted and replayed after a resume draws the same dropout masks.
    """

    def __init__(self, schedule: StageSchedule, reset_optimizer: bool, seed: int, auto_thought_scale: bool = False):
        self.schedule, self.reset_optimizer, self.seed = schedule, reset_optimizer, seed
        self.auto_thought_scale = auto_thought_scale
        self.scale_measured = False
        self.stage: int | None = None
        self.transitions: list[dict] = []

    def on_train_epoch_start(self, trainer, pl_module):
        torch.manual_seed(self.seed * 1_000_003 + trainer.current_epoch)
        stage = self.schedule.stage(trainer.current_epoch)
        if self.stage is not None and stage != self.stage:
            self.transitions.append({"epoch": trainer.current_epoch, "step": trainer.global_step, "from": self.stage, "to": stage})
            if self.reset_optimizer:
                for optimizer in trainer.optimizers:
                    optimizer.state.clear()  # fresh AdamW moments, as the paper resets at each stage
        self.stage = stage
        self._log_stage(trainer, stage)

    def on_train_epoch_end(self, trainer, pl_module):
        self._log_stage(trainer, self.stage)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not self.auto_thought_scale or self.scale_measured:
            return
        # Decided together: under FSDP every rank must make the measuring decoder call, thoughts or not.
        if not trainer.strategy.reduce_boolean_decision(bool((batch["num_thoughts"] > 0).any()), all=False):
            return
        # First batch with thoughts: scale them to the size of token embeddings, averaged over ranks.
        engine = pl_module.engine
        engine.thought_scale.fill_(1.0)
        scale = engine.thought_scale_for(batch["input_ids"], batch["attention_mask"])
        scale = trainer.strategy.reduce(torch.tensor(scale, device=pl_module.device), reduce_op="mean")
        engine.thought_scale.fill_(float(scale))
        self.scale_measured = True
        for logger in trainer.loggers:
            logger.log_metrics({"curriculum/thought_scale": float(scale)}, step=trainer.global_step)

    @staticmethod
    def _log_stage(trainer, stage):
        # Logged straight to the loggers at the global step, so stage switches line up with the losses.
        for logger in trainer.loggers:
            logger.log_metrics({"curriculum/stage": float(stage)}, step=trainer.global_step)

    def state_dict(self):
        return {"stage": self.stage, "transitions": self.transitions, "scale_measured": self.scale_measured}

    def load_state_dict(self, state_dict):
        self.stage = state_dict.get("stage")
        self.transitions = state_dict.get("transitions", [])
        self.scale_measured = state_dict.get("scale_measured", False)


class FinalStageCheckpoint(ModelCheckpoint):
    """Best-by-validation-accuracy checkpoints, chosen among epochs of the final stage only.

    Earlier stages (CoT at stage 0, say) would often win on accuracy alone and hide what the
    curriculum produced. `last.ckpt` comes from a separate plain `ModelCheckpoint` (see train.py).
    """

    def __init__(self, final_stage: int, schedule: StageSchedule, **kwargs):
        super().__init__(**kwargs)
        self.final, self.schedule = final_stage, schedule

    def _save_topk_checkpoint(self, trainer, monitor_candidates):
        if self.schedule.stage(trainer.current_epoch) >= self.final:
            super()._save_topk_checkpoint(trainer, monitor_candidates)


class AccuracyVsTokensLogger(L.Callback):
    """After each validation: a CSV row and a plot of accuracy against generated tokens, per stage."""

    FIELDS = ("epoch", "step", "stage", "val_acc", "val_tokens", "val_language_tokens", "val_thoughts", "val_passes", "val_loss")

    def __init__(self, run_dir: Path, title: str = ""):
        self.run_dir, self.title = Path(run_dir), title
        self.csv_path = self.run_dir / "accuracy_vs_tokens.csv"
        self.png_path = self.run_dir / "accuracy_vs_tokens.png"

    def on_validation_end(self, trainer, pl_module):
        # on_validation_end runs after the module's epoch-end hook has logged the epoch's metrics.
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        row = {
            "epoch": trainer.current_epoch, "step": trainer.global_step, "stage": pl_module.stage,
            **{f"val_{k}": round(float(m[f"val/{k}"]), 5) for k in ("acc", "tokens", "language_tokens", "thoughts", "passes", "loss")},
        }
        rows = [r for r in self.read() if int(r["epoch"]) != row["epoch"]] + [row]  # a resumed epoch replaces its row
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self.plot(rows)
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_text") and pl_module.samples:
                table = "| prompt | generated | answer | correct |\n|---|---|---|---|\n" + "\n".join(
                    f"| {s['prompt']} | {s['generated']} | {s['answer']} | {s['correct']} |" for s in pl_module.samples)
                logger.experiment.add_text("val/samples", table, global_step=trainer.global_step)

    def read(self) -> list[dict]:
        if not self.csv_path.exists():
            return []
        with self.csv_path.open() as f:
            return list(csv.DictReader(f))

    def plot(self, rows) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        stages = [int(r["stage"]) for r in rows]
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        points = left.scatter([float(r["val_tokens"]) for r in rows], [float(r["val_acc"]) for r in rows],
                              c=stages, cmap="viridis", s=40)
        fig.colorbar(points, ax=left, label="curriculum stage")
        left.set_xlabel("mean generated tokens (language + thoughts)")
        left.set_ylabel("validation accuracy")
        left.set_title("accuracy against generated tokens")
        left.set_ylim(-0.02, 1.02)
        right.plot([int(r["epoch"]) for r in rows], [float(r["val_acc"]) for r in rows], marker="o", label="accuracy")
        for i in range(1, len(rows)):
            if stages[i] != stages[i - 1]:
                right.axvline(int(rows[i]["epoch"]) - 0.5, color="grey", linestyle=":")
        right.set_xlabel("epoch (dotted: stage switch)")
        right.set_ylabel("validation accuracy")
        right.set_ylim(-0.02, 1.02)
        right.set_title(self.title)
        fig.tight_layout()
        fig.savefig(self.png_path, dpi=110)
        plt.close(fig)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


class StageCheckpoint(L.Callback):
    """Saves `checkpoints/stage{k}.ckpt` at the end of every stage, to evaluate each stage afterwards."""

    def __init__(self, run_dir: Path, schedule: StageSchedule):
        self.dir, self.schedule = Path(run_dir) / "checkpoints", schedule

    def on_train_epoch_end(self, trainer, pl_module):
        last = trainer.current_epoch == trainer.max_epochs - 1
        if self.schedule.ends_stage(trainer.current_epoch) or last:
            stage = self.schedule.stage(trainer.current_epoch)
            trainer.save_checkpoint(self.dir / f"stage{stage}.ckpt")  # collective under DDP: every rank calls it
