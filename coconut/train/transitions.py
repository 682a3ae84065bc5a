"""Stage transitions, logged at every validation: language steps written, and each stage's entry and exit.

At each validation the callback counts the reasoning steps each generation still writes in language against
those the stage leaves in language (the same count on the target text), and logs their means. When a
validation at an epoch's end ends a stage (stepwise methods), it scores the validation questions once more at
the next stage's inputs with the weights it has now: the new stage's entry, before any training on them. Rows
go to `transitions.csv` (one per validation, one per entry, with any `thoughts/...` metric logged at that
validation); `transitions.png` and results.json's `transitions` summarise them per stage
(coconut.analysis.transitions).

TensorBoard tags: transition/explicit_steps and transition/expected_steps at each validation's step;
transition/exit_acc, exit_tokens, exit_explicit_steps and recovery at the last validation of a stage;
transition/entry_acc, entry_tokens, entry_explicit_steps, entry_expected_steps, drop and entry_seconds at the
switch's step (the new stage's first training step).
"""

from __future__ import annotations

import csv
import io
import time

import lightning as L
import torch

from coconut.analysis.transitions import FIELDS, THOUGHTS, count_steps, stage_summary, transitions_figure
from coconut.atomic import write_text, write_with
from coconut.data.tokenize import TextFormat
from coconut.engine.loss import IGNORE_INDEX
from coconut.run_dir import RunDir
from coconut.schedule import StageSchedule
from coconut.train.metrics import EvalMetrics


class StepCounts:
    """Weighted sums over the questions of one evaluation: steps written, steps the stage leaves, questions."""

    def __init__(self, fmt: TextFormat):
        self.fmt = fmt
        self.sums = [0.0, 0.0, 0.0]

    def update(self, generated: list[str], targets: list[str], weights) -> None:
        weights = [1.0] * len(generated) if weights is None else [float(w) for w in weights]
        for text, target, weight in zip(generated, targets, weights):
            self.sums[0] += weight * count_steps(text, self.fmt)
            self.sums[1] += weight * count_steps(target, self.fmt)
            self.sums[2] += weight

    def means(self, strategy, device) -> dict:
        """(explicit, expected) means and the question count over every rank (a collective under DDP)."""
        total = strategy.reduce(torch.tensor(self.sums, dtype=torch.float64, device=device), reduce_op="sum")
        explicit, expected, questions = (float(v) for v in total)
        per = max(questions, 1.0)
        return {"explicit_steps": round(explicit / per, 5), "expected_steps": round(expected / per, 5),
                "questions": int(round(questions))}


def target_texts(tokenizer, batch) -> list[str]:
    """What each question should generate at its stage (remaining steps, answer), as text."""
    return tokenizer.batch_decode([t[t != IGNORE_INDEX].tolist() for t in batch["prompt_target_ids"]],
                                  skip_special_tokens=True)


def read_rows(path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def transitions_section(run_dir: RunDir) -> list[dict]:
    """results.json's `transitions`: the per-stage summary of the run's transitions.csv ([] without one)."""
    return stage_summary(read_rows(run_dir.transitions_csv))


class TransitionDiagnostics(L.Callback):
    def __init__(self, run_dir: RunDir, schedule: StageSchedule, fmt: TextFormat, stepwise: bool,
                 entry: bool = True, questions: int = 0, title: str = ""):
        self.run_dir, self.schedule, self.fmt, self.title = run_dir, schedule, fmt, title
        self.entry_enabled, self.questions = entry and stepwise, questions
        self.counts = StepCounts(fmt)
        self.steps: dict | None = None
        self.entry: dict | None = None

    # -- every rank: counting and scoring --------------------------------------------------------------

    def on_validation_epoch_start(self, trainer, pl_module):
        self.counts, self.steps, self.entry = StepCounts(self.fmt), None, None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if isinstance(outputs, dict) and "generated" in outputs:
            self.counts.update(outputs["generated"], target_texts(pl_module.tokenizer, batch), batch.get("weights"))

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self.steps = self.counts.means(trainer.strategy, pl_module.device)
        if self.entry_due(trainer):
            self.entry = self.score_entry(trainer, pl_module, self.schedule.stage(trainer.current_epoch + 1))

    def entry_due(self, trainer) -> bool:
        """This validation closes the epoch that ends a stage, and the next stage will be trained."""
        epoch = trainer.current_epoch
        at_epoch_end = trainer.fit_loop.epoch_loop.batch_progress.current.ready >= trainer.num_training_batches
        return (self.entry_enabled and trainer.state.fn == "fit" and at_epoch_end and self.schedule.ends_stage(epoch)
                and epoch + 1 < trainer.max_epochs)

    def score_entry(self, trainer, pl_module, stage: int) -> dict:
        """The validation questions (the same batches validation scored, or the first eval.transition_questions)
        at `stage`'s inputs, with the weights as they are."""
        started = time.perf_counter()
        metrics, counts = EvalMetrics().to(pl_module.device), StepCounts(self.fmt)
        batches = trainer.num_val_batches[0] if trainer.num_val_batches else float("inf")
        datamodule = trainer.datamodule
        with datamodule.evaluating_at(stage):
            loader = datamodule.eval_loader("val", self.questions or None)
        for index, batch in enumerate(loader):
            if index >= batches:
                break
            batch = trainer.strategy.batch_to_device(batch)
            texts = pl_module.score_batch(batch, metrics)
            counts.update(texts, target_texts(pl_module.tokenizer, batch), batch.get("weights"))
        values = metrics.values()  # synchronised over the ranks by torchmetrics
        return {"stage": stage, "acc": values["acc"], "tokens": values["tokens"], "cot_match": values["cot_match"],
                **counts.means(trainer.strategy, pl_module.device), "seconds": time.perf_counter() - started}

    # -- rank 0: rows, TensorBoard, figure -------------------------------------------------------------

    def on_train_start(self, trainer, pl_module):
        """A resumed run drops the rows a killed attempt wrote after its checkpoint (they are validated again)."""
        if trainer.is_global_zero:
            rows = read_rows(self.run_dir.transitions_csv)
            kept = [r for r in rows if int(r["step"]) <= trainer.global_step]
            if len(kept) != len(rows):
                self.write(kept)

    def on_validation_end(self, trainer, pl_module):
        # After the module's epoch-end hook: val/acc and any thoughts/ metric are in callback_metrics.
        if trainer.sanity_checking or not trainer.is_global_zero or self.steps is None:
            return
        m, epoch, stage = trainer.callback_metrics, trainer.current_epoch, trainer.datamodule.stage
        step = trainer.fit_loop.epoch_loop._batches_that_stepped  # the validation's own step, as Lightning logs it
        row = {"kind": "val", "epoch": epoch, "step": step, "stage": stage,
               **{k: round(float(m[f"val/{k}"]), 5) for k in ("acc", "tokens", "cot_match")}, **self.steps,
               **{k: round(float(v), 5) for k, v in m.items() if k.startswith(THOUGHTS)}}
        rows = [r for r in read_rows(self.run_dir.transitions_csv)
                if not (int(r["step"]) >= step and r["kind"] in ("val", "entry"))] + [row]
        log = {"transition/explicit_steps": row["explicit_steps"], "transition/expected_steps": row["expected_steps"]}
        at_end = trainer.fit_loop.epoch_loop.batch_progress.current.ready >= trainer.num_training_batches
        ends = at_end and (self.schedule.ends_stage(epoch) or epoch + 1 >= trainer.max_epochs)
        if ends:
            summary = {s["stage"]: s for s in stage_summary(rows)}[stage]
            log.update({"transition/exit_acc": row["acc"], "transition/exit_tokens": row["tokens"],
                        "transition/exit_explicit_steps": row["explicit_steps"]})
            if summary["recovery"] is not None:
                log["transition/recovery"] = summary["recovery"]
        self._log(trainer, log, step)
        if self.entry is not None:
            entry = {"kind": "entry", "epoch": epoch + 1, "step": trainer.global_step, **self.entry}
            rows.append({k: v for k, v in entry.items() if k != "seconds"})
            self._log(trainer, {"transition/entry_acc": entry["acc"], "transition/entry_tokens": entry["tokens"],
                                "transition/entry_explicit_steps": entry["explicit_steps"],
                                "transition/entry_expected_steps": entry["expected_steps"],
                                "transition/drop": round(row["acc"] - entry["acc"], 5),
                                "transition/entry_seconds": entry["seconds"]}, trainer.global_step)
        self.write(rows)
        if ends:
            self.plot(rows)

    def on_train_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            self.plot(read_rows(self.run_dir.transitions_csv))

    @staticmethod
    def _log(trainer, metrics: dict, step: int) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    def write(self, rows: list[dict]) -> None:
        fields = list(FIELDS) + sorted({k for r in rows for k in r if k not in FIELDS})
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.run_dir.transitions_csv, text.getvalue())  # whole or not at all

    def plot(self, rows: list[dict]) -> None:
        if not rows:
            return
        import matplotlib.pyplot as plt

        fig = transitions_figure(stage_summary(rows), title=self.title)
        write_with(self.run_dir.transitions_plot, lambda out: fig.savefig(out, dpi=100, format="png"))
        plt.close(fig)
