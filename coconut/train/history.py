"""The metrics history of a run across its attempts: `csv/metrics.csv` keeps every row a resume would lose.

Lightning's CSV logger deletes metrics.csv when it starts, so a resumed run (after a kill, a preemption) loses
every row before it. Here the file is continued instead: each checkpoint records how many rows the file held
when it was saved (the buffered rows are written first), and a run resumed from that checkpoint cuts the file
back to those rows -- the rows a killed attempt logged after its last checkpoint are logged again by the
replayed steps -- then appends. TensorBoard's event files are kept the same way: the resumed run's writer
purges the steps after the checkpoint (`purge_step`), so its curves show each step once.
"""

from __future__ import annotations

import csv
import io

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from coconut.atomic import write_text


def _read_rows(path) -> tuple[list[str], list[dict]]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)
    except FileNotFoundError:
        return [], []


def _csv_text(fields: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class ContinuedWriter(ExperimentWriter):
    """Lightning's CSV writer that continues an existing metrics.csv instead of deleting it."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        fields, rows = _read_rows(self.metrics_file_path)
        self.metrics_keys = sorted(fields)
        self.rows_written = len(rows)

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes the file here
        pass

    def save(self) -> None:
        self.rows_written += len(self.metrics)
        super().save()

    def _rewrite_with_new_header(self, fieldnames) -> None:
        _, rows = _read_rows(self.metrics_file_path)
        write_text(self.metrics_file_path, _csv_text(list(fieldnames), rows))

    def keep_first(self, count: int) -> None:
        """Cut the file back to its first `count` rows (a resume from a checkpoint taken then)."""
        fields, rows = _read_rows(self.metrics_file_path)
        if len(rows) > count:
            write_text(self.metrics_file_path, _csv_text(fields, rows[:count]))
        self.rows_written = min(len(rows), count)


class HistoryCSVLogger(CSVLogger):
    """CSVLogger with a ContinuedWriter."""

    @property
    @rank_zero_experiment  # the other ranks of a launch get a no-op writer, as with Lightning's own
    def experiment(self) -> ContinuedWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuedWriter(log_dir=self.log_dir)
        return self._experiment


class MetricsHistory(L.Callback):
    """Stores metrics.csv's row count in each checkpoint; a resumed run cuts the file back to it."""

    def __init__(self):
        self._keep: int | None = None

    @staticmethod
    def _writer(trainer) -> ContinuedWriter | None:
        for logger in trainer.loggers:
            if isinstance(logger, HistoryCSVLogger) and trainer.is_global_zero:
                return logger.experiment
        return None

    def state_dict(self) -> dict:
        trainer = getattr(self, "_trainer", None)
        writer = self._writer(trainer) if trainer is not None else None
        if writer is None:
            return {}
        writer.save()  # the buffered rows first: the count is of rows on disk
        return {"csv_rows": writer.rows_written}

    def load_state_dict(self, state_dict) -> None:
        self._keep = state_dict.get("csv_rows")

    def setup(self, trainer, pl_module, stage) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer, pl_module) -> None:
        writer = self._writer(trainer)
        if writer is not None and self._keep is not None:
            writer.keep_first(self._keep)
        self._keep = None
