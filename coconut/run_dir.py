"""The one owner of a run folder's layout (`runs/NAME/`): every file a run writes is named here.

    run.json                     the marker: this folder is a coconut run (its id, the data it started on, attempts)
    .lock                        held by the process writing the folder (coconut.run_lock)
    config.yaml                  the resolved config (fields that apply) of the latest attempt
    git_commit.txt               the code it ran with
    tokenizer/                   the run's tokenizer (word-level ones are built from the data)
    tokenizer/built_from.json    what it was built from (a fingerprint of the data files' sha256)
    checkpoints/last.ckpt        the latest epoch, or where a signal stopped the run
    checkpoints/best.ckpt        best validation accuracy within the final stage
    checkpoints/stage<k>.ckpt    the end of each curriculum stage
    accuracy_vs_tokens.{csv,png} one row per validation
    transitions.{csv,png}        per validation and per stage switch: entry and exit of each stage (coconut.train.transitions)
    tensorboard/, csv/           the loggers; csv/metrics.csv keeps every attempt's rows (coconut.train.history)
    wandb/, mlruns/              the optional loggers (logger=wandb,mlflow), offline
    profiler/                    trainer.profiler's report
    export/                      save_pretrained folder (see coconut.engine.export)
    step_decoder/                step supervision's auxiliary decoder (runs with method.step_supervision)
    results.json                 test metrics of the chosen checkpoint (and the split tested), written last
    results.before-resume-<k>.json, export.before-resume-<k>/   a finished run's results, moved aside when it
                                 was continued with resume_finished=true
    config.before-resume-<k>.yaml  the run's config before attempt k resumed it with other settings (run.json's
                                 attempt k names them)
    analysis/<checkpoint>/       coconut analyze

A run folder belongs to one run, written by one process at a time. `coconut train` checks everything (config,
data, tokenizer, model, the resume checkpoint) before it writes the first byte here (`check_start`): a folder
that holds files is refused unless the run resumes from its own checkpoint (`resume=.../last.ckpt`) or starts
again (`overwrite=true`, only for a folder coconut made, holding no data the run reads). Every file is
written whole or not at all (coconut.atomic).
"""

from __future__ import annotations

import re
from pathlib import Path

from coconut.atomic import TEMP_PREFIX
from coconut.config.checks import ConfigError
from coconut.run_lock import LOCK_NAME

# Loggers and checkpoint callbacks take a folder and a name rather than a path.
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
CSV_LOGS = "csv"
PROFILER = "profiler"
MLFLOW = "mlruns"
WANDB = "wandb"
BEST = "best"
LAST = "last"
MARKER = "run.json"
# What a run writes at the top of its folder: a folder holding only these (an older version's run, without the
# marker) may be overwritten too.
RUN_FILES = {MARKER, LOCK_NAME, "config.yaml", "git_commit.txt", "tokenizer", CHECKPOINTS, TENSORBOARD, CSV_LOGS,
             PROFILER, MLFLOW, WANDB, "export", "results.json", "accuracy_vs_tokens.csv", "accuracy_vs_tokens.png",
             "analysis", "transitions.csv", "transitions.png", "step_decoder"}
_MOVED_ASIDE = re.compile(r"^(results\.before-resume-\d+\.json|export\.before-resume-\d+|config\.before-resume-\d+\.yaml)$")


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
        self.marker = self.root / MARKER
        self.config = self.root / "config.yaml"
        self.git_commit = self.root / "git_commit.txt"
        self.tokenizer = self.root / "tokenizer"
        self.tokenizer_source = self.tokenizer / "built_from.json"
        self.checkpoints = self.root / CHECKPOINTS
        self.last_checkpoint = self.checkpoints / f"{LAST}.ckpt"
        self.accuracy_csv = self.root / "accuracy_vs_tokens.csv"
        self.accuracy_plot = self.root / "accuracy_vs_tokens.png"
        self.transitions_csv = self.root / "transitions.csv"
        self.transitions_plot = self.root / "transitions.png"
        self.tensorboard = self.root / TENSORBOARD
        self.metrics_csv = self.root / CSV_LOGS / "metrics.csv"
        self.profiler = self.root / PROFILER
        self.mlflow = self.root / MLFLOW
        self.export = self.root / "export"
        self.step_decoder = self.root / "step_decoder"  # step supervision's auxiliary decoder, kept out of export/
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
        """The names in the folder (none when it does not exist); the lock file is not a run's content."""
        return sorted(p.name for p in self.root.iterdir() if p.name != LOCK_NAME) if self.root.is_dir() else []

    def holds(self, path) -> bool:
        """Whether `path` lies in this folder."""
        return self.root.resolve() in Path(path).resolve().parents

    def made_by_coconut(self) -> bool:
        """The folder carries the marker a run writes first, or (an older version's run) holds run files only."""
        names = self.contents()
        return self.marker.is_file() or all(
            n in RUN_FILES or n.startswith(TEMP_PREFIX) or _MOVED_ASIDE.match(n) for n in names)

    def check_start(self, resume=None, overwrite: bool = False, resume_finished: bool = False,
                    resume_other_run: bool = False, in_use: dict | None = None) -> None:
        """Refuse, in one line, a run this folder cannot take as asked.

        resume: a checkpoint of this folder's run continues it; one of another run only with resume_other_run
        (into a free folder). A finished run is continued only with resume_finished. overwrite: empty the
        folder first, only one coconut made and holding none of `in_use` ({config key: path} the run reads)."""
        if self.root.exists() and not self.root.is_dir():
            raise RunFolderError(f"run folder {self.root} is a file; remove it or choose another name=")
        names = self.contents()
        if resume and not self.holds(resume):
            if not resume_other_run:
                raise RunFolderError(f"resume={resume} is not a checkpoint of run folder {self.root}; to start "
                                     "this run from another run's checkpoint pass resume_other_run=true (or "
                                     f"model.init_from={resume} to take its weights alone)")
            if names and not overwrite:
                raise RunFolderError(f"run folder {self.root} already holds {self._what(names)}; resume_other_run "
                                     "starts a new run: choose another name= (or overwrite=true)")
        if resume and overwrite and self.holds(resume):
            raise RunFolderError(f"resume={resume} lies in {self.root}, which overwrite=true would empty; "
                                 "drop overwrite=true to continue that run")
        if resume and self.holds(resume) and self.is_finished() and not resume_finished:
            raise RunFolderError(f"run folder {self.root} holds a finished run ({self.results.name}); resuming would "
                                 "train on and replace its results: pass resume_finished=true to continue it anyway "
                                 f"(its results move aside), or choose another name=")
        if overwrite and names:
            self._check_overwrite(in_use or {})
        if resume or overwrite or not names:
            return
        cont = ""
        if self.last_checkpoint.exists():
            cont = f"resume={self.last_checkpoint}{' resume_finished=true' if self.is_finished() else ''} to continue it, "
        raise RunFolderError(f"run folder {self.root} already holds {self._what(names)}; pass {cont}overwrite=true "
                             "to delete it and start again, or choose another name=")

    def check_free(self, resume=None, overwrite: bool = False) -> None:
        """`check_start` with the defaults (kept for callers that only resume their own runs)."""
        self.check_start(resume, overwrite)

    def _what(self, names: list[str]) -> str:
        if self.is_finished():
            return f"a finished run ({self.results.name})"
        if self.last_checkpoint.exists():
            return f"a started run ({CHECKPOINTS}/{self.last_checkpoint.name})"
        return f"files of another run ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"

    def _check_overwrite(self, in_use: dict) -> None:
        if not self.made_by_coconut():
            foreign = [n for n in self.contents() if n not in RUN_FILES][:3]
            raise RunFolderError(f"overwrite=true empties only a run folder coconut made; {self.root} has no "
                                 f"{MARKER} and holds other files ({', '.join(foreign)}): move them away or choose "
                                 "another name=")
        for key, path in in_use.items():
            if path is not None and (self.holds(path) or Path(path).resolve() == self.root.resolve()):
                raise RunFolderError(f"overwrite=true would delete {key}={path}, which lies in run folder {self.root}; "
                                     f"keep data and checkpoints outside run folders, or choose another name=")

    def clear(self) -> None:
        """Delete everything in the folder but its lock (overwrite=true, after every check); links are not followed."""
        import shutil

        for name in self.contents():
            path = self.root / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def remove_partial_writes(self) -> list[Path]:
        """Delete what writes killed midway left (`.partial-*` beside their targets); only under the folder's lock,
        when no other process can be writing one."""
        import shutil

        found = sorted(self.root.rglob(f"{TEMP_PREFIX}*")) if self.root.is_dir() else []
        for path in found:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
        return found

    def move_finished_aside(self) -> int:
        """results.json (and export/) renamed to `*.before-resume-<k>`, so a continued run's results never
        replace them; returns k."""
        k = 1
        while (self.root / f"results.before-resume-{k}.json").exists() or (self.root / f"export.before-resume-{k}").exists():
            k += 1
        if self.export.exists():
            self.export.rename(self.root / f"export.before-resume-{k}")
        self.results.rename(self.root / f"results.before-resume-{k}.json")
        return k
