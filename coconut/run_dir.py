"""The one owner of a run folder's layout (`runs/NAME/`): every file a run writes is named here.

    config.yaml                  the resolved config (fields that apply)
    git_commit.txt               the code it ran with
    tokenizer/                   the run's tokenizer (word-level ones are built from the data)
    checkpoints/last.ckpt        the latest epoch
    checkpoints/best.ckpt        best validation accuracy within the final stage
    checkpoints/stage<k>.ckpt    the end of each curriculum stage
    accuracy_vs_tokens.{csv,png} one row per validation
    tensorboard/, csv/           the loggers
    export/                      save_pretrained folder (see coconut.engine.export)
    results.json                 test metrics of the chosen checkpoint, written last
    analysis/<checkpoint>/       coconut analyze
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def git_commit(self) -> Path:
        return self.root / "git_commit.txt"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    def stage_checkpoint(self, stage: int) -> Path:
        return self.checkpoints / f"stage{stage}.ckpt"

    @property
    def accuracy_csv(self) -> Path:
        return self.root / "accuracy_vs_tokens.csv"

    @property
    def accuracy_plot(self) -> Path:
        return self.root / "accuracy_vs_tokens.png"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    def analysis(self, checkpoint) -> Path:
        """One folder per checkpoint analysed."""
        return self.root / "analysis" / Path(checkpoint).stem

    def is_finished(self) -> bool:
        """A run whose results were written (they come last)."""
        return self.results.exists()


# Loggers and checkpoint callbacks take a folder and a name rather than a path.
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
CSV_LOGS = "csv"
BEST = "best"
LAST = "last"


def write_json(path: Path, data) -> None:
    """Write JSON atomically: a crash mid-write never leaves a half file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
