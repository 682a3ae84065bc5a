"""The one owner of a run folder's layout (`runs/NAME/`): every file a run writes is named here.

    config.yaml                  the resolved config (fields that apply)
    git_commit.txt               the code it ran with
    tokenizer/                   the run's tokenizer (word-level ones are built from the data)
    tokenizer/built_from.json    what it was built from (a fingerprint of the data files' sha256)
    checkpoints/last.ckpt        the latest epoch
    checkpoints/best.ckpt        best validation accuracy within the final stage
    checkpoints/stage<k>.ckpt    the end of each curriculum stage
    accuracy_vs_tokens.{csv,png} one row per validation
    tensorboard/, csv/           the loggers
    export/                      save_pretrained folder (see coconut.engine.export)
    results.json                 test metrics of the chosen checkpoint (and the split tested), written last
    analysis/<checkpoint>/       coconut analyze

A run folder belongs to one run. `coconut train` checks everything (config, data, tokenizer, model, the
resume checkpoint) before it writes the first byte here, and refuses a folder that already holds files
(`check_free`) unless it resumes (`resume=.../last.ckpt`) or starts again (`overwrite=true`): the folder's
contents are then deleted, once every check has passed, so nothing of the old run mixes with the new one
(not moved aside: a copy with its results.json would be counted again by `coconut report runs/`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from coconut.config.checks import ConfigError

# Loggers and checkpoint callbacks take a folder and a name rather than a path.
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
CSV_LOGS = "csv"
BEST = "best"
LAST = "last"


class RunFolderError(ConfigError):
    """A run folder that cannot be used as asked (it holds another run, or lies outside output_dir)."""


class RunDir:
    """The paths of one run folder; with `output_dir`, a folder outside it is refused."""

    def __init__(self, root, output_dir=None):
        self.root = Path(root)
        if output_dir is not None:
            inside, parent = self.root.resolve(), Path(output_dir).resolve()
            # "name=../x" or "name=." would write beside or over every run (overwrite=true empties the folder).
            if parent not in inside.parents:
                raise RunFolderError(f"run folder {self.root} is not inside output_dir={output_dir}; name= must be "
                                     "a plain folder name (no '..', no absolute path, not empty)")
        self.config = self.root / "config.yaml"
        self.git_commit = self.root / "git_commit.txt"
        self.tokenizer = self.root / "tokenizer"
        self.tokenizer_source = self.tokenizer / "built_from.json"
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

    def contents(self) -> list[str]:
        """The names in the folder (none when it does not exist)."""
        return sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []

    def holds(self, path) -> bool:
        """Whether `path` lies in this folder."""
        return self.root.resolve() in Path(path).resolve().parents

    def check_free(self, resume=None, overwrite: bool = False) -> None:
        """Refuse, in one line, a new run into a folder that holds files, unless resuming or overwriting."""
        if resume and overwrite and self.holds(resume):
            raise RunFolderError(f"resume={resume} lies in {self.root}, which overwrite=true would empty; "
                                 "drop overwrite=true to continue that run")
        if self.root.exists() and not self.root.is_dir():
            raise RunFolderError(f"run folder {self.root} is a file; remove it or choose another name=")
        names = self.contents()
        if resume or overwrite or not names:
            return
        if self.is_finished():
            what = f"a finished run ({self.results.name})"
        elif self.last_checkpoint.exists():
            what = f"a started run ({CHECKPOINTS}/{self.last_checkpoint.name})"
        else:
            what = f"files of another run ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"
        cont = f"resume={self.last_checkpoint} to continue it, " if self.last_checkpoint.exists() else ""
        raise RunFolderError(f"run folder {self.root} already holds {what}; pass {cont}overwrite=true to delete it "
                             "and start again, or choose another name=")

    def clear(self) -> None:
        """Delete everything in the folder (overwrite=true, after every check has passed); links are not followed."""
        for name in self.contents():
            path = self.root / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def write_json(path: Path, data) -> None:
    """Write JSON atomically: a crash mid-write never leaves a half file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
