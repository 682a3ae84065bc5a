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
from pathlib import Path


# Loggers and checkpoint callbacks take a folder and a name rather than a path.
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
CSV_LOGS = "csv"
BEST = "best"
LAST = "last"


class RunDir:
    """The paths of one run folder."""

    def __init__(self, root):
        self.root = Path(root)
        self.config = self.root / "config.yaml"
        self.git_commit = self.root / "git_commit.txt"
        self.tokenizer = self.root / "tokenizer"
        self.checkpoints = self.root / CHECKPOINTS
        self.last_checkpoint = self.checkpoints / f"{LAST}.ckpt"
        self.accuracy_csv = self.root / "accuracy_vs_tokens.csv"
        self.accuracy_plot = self.root / "accuracy_vs_tokens.png"
        self.tensorboard = self.root / TENSORBOARD
        self.export = self.root / "export"
        self.results = self.root / "results.json"

    def stage_checkpoint(self, stage: int) -> Path:
        return self.checkpoints / f"stage{stage}.ckpt"

    def analysis(self, checkpoint) -> Path:
        """One folder per checkpoint analysed."""
        return self.root / "analysis" / Path(checkpoint).stem

    def is_finished(self) -> bool:
        """A run whose results were written (they come last)."""
        return self.results.exists()




def write_json(path: Path, data) -> None:
    """Write JSON atomically: a crash mid-write never leaves a half file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
