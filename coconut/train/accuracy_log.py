"""After each validation: a CSV row and a plot of accuracy against generated tokens, and sample generations."""

from __future__ import annotations

import csv
import io

import lightning as L

from coconut.atomic import write_text, write_with
from coconut.run_dir import RunDir


SAMPLE_COLUMNS = ("prompt", "generated", "answer", "correct")


def markdown_cell(value) -> str:
    """`value` as the text of one Markdown table cell: TensorBoard's Markdown splits a row on every bare `|` (the
    one in `<|latent|>`, in prosqa-mini's `p1 : c17 | c4`) and ends it at a line break. Backslashes first, so that
    a `\\` already in the text cannot swallow the escape of the `|` after it."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r\n", "<br>").replace("\n", "<br>").replace("\r", "<br>")


def samples_table(samples: list[dict]) -> str:
    """A few validation generations as a Markdown table, one row each."""
    lines = ["| " + " | ".join(SAMPLE_COLUMNS) + " |", "|" + "---|" * len(SAMPLE_COLUMNS)]
    lines += ["| " + " | ".join(markdown_cell(s[c]) for c in SAMPLE_COLUMNS) + " |" for s in samples]
    return "\n".join(lines)


class AccuracyVsTokensLogger(L.Callback):
    """After each validation: a CSV row and a plot of accuracy against generated tokens, per stage.

    One row per validation, in the order they ran: several per epoch with trainer.val_check_interval, so rows are
    told apart by their global step, not their epoch. A resumed run first drops the rows logged after its
    checkpoint's step (a killed attempt's, which the replayed steps log again)."""

    FIELDS = ("epoch", "step", "stage", "val_acc", "val_tokens", "val_language_tokens", "val_language_tokens_with_eos",
              "val_thoughts", "val_passes", "val_loss")

    def __init__(self, run_dir: RunDir, title: str = ""):
        self.title = title
        self.csv_path = run_dir.accuracy_csv
        self.png_path = run_dir.accuracy_plot

    def on_validation_end(self, trainer, pl_module):
        # on_validation_end runs after the module's epoch-end hook has logged the epoch's metrics.
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        row = {
            "epoch": trainer.current_epoch, "step": trainer.global_step, "stage": trainer.datamodule.stage,
            **{f"val_{k}": round(float(m[f"val/{k}"]), 5)
               for k in ("acc", "tokens", "language_tokens", "language_tokens_with_eos", "thoughts", "passes", "loss")},
        }
        rows = self.read() + [row]
        self.write(rows)
        self.plot(rows)
        for logger in trainer.loggers:
            if hasattr(logger.experiment, "add_text") and pl_module.samples:
                logger.experiment.add_text("val/samples", samples_table(pl_module.samples), global_step=trainer.global_step)

    def on_train_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        rows = self.read()
        kept = [r for r in rows if int(r["step"]) <= trainer.global_step]  # the step the run (re)starts from
        if len(kept) < len(rows):
            self.write(kept)

    def write(self, rows: list[dict]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.csv_path, text.getvalue())  # whole or not at all: a kill keeps the previous rows

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
        steps = [int(r["step"]) for r in rows]
        right.plot(steps, [float(r["val_acc"]) for r in rows], marker="o", label="accuracy")
        for i in range(1, len(rows)):
            if stages[i] != stages[i - 1]:
                right.axvline((steps[i - 1] + steps[i]) / 2, color="grey", linestyle=":")
        right.set_xlabel("optimizer step (dotted: stage switch)")
        right.set_ylabel("validation accuracy")
        right.set_ylim(-0.02, 1.02)
        right.set_title(self.title)
        fig.tight_layout()
        write_with(self.png_path, lambda out: fig.savefig(out, dpi=110, format="png"))
        plt.close(fig)
