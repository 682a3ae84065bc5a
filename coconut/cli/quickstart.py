"""`coconut quickstart` (make quickstart): a first COCONUT run on a CPU in about two minutes, then where to look.

It trains experiments/quickstart.yaml as `coconut train quickstart` would (the data is generated into
data/quickstart on first use; the model is a tiny Llama-style one built locally, nothing is downloaded) and
prints the run folder, its figures, and the commands that read it: TensorBoard, `coconut think`, `coconut eval`.
A folder that already holds the run is refused in one line: overwrite=true trains it again (nothing is
overwritten silently).
"""

from __future__ import annotations

from pathlib import Path

from coconut.run_dir import RunDir, RunFolderError

QUICKSTART = "quickstart"  # experiments/quickstart.yaml
# Figures a finished run may hold, in the order worth opening them (the transitions figure is written by
# runs that log the stage transitions; older runs have the accuracy plot only).
FIGURES = ("transitions.png", "accuracy_vs_tokens.png")


def check_folder(cfg, overwrite: bool) -> None:
    """Refuse a folder that holds a run already, naming quickstart's own way to train it again."""
    run = RunDir(cfg.run_dir)
    if overwrite or not run.contents():
        return
    what = "a finished run" if run.is_finished() else "a run"
    raise RunFolderError(f"run folder {run.root} already holds {what}; look inside it (coconut think {run.root}) or "
                         "train it again with coconut quickstart overwrite=true (make quickstart OVERWRITE=true)")


def where_to_look(run_dir) -> str:
    """What to open next, for the finished run in `run_dir`: two aligned columns, what and why."""
    from coconut.cli.listing import table

    run = RunDir(Path(run_dir))
    files = [(str(run.results), "test accuracy and generated tokens of the tested checkpoint")] if run.results.exists() else []
    files += [(str(run.root / name), "the stage transitions" if name.startswith("trans") else
               "accuracy against generated tokens, one point per validation")
              for name in FIGURES if (run.root / name).exists()]
    commands = [
        ("make tensorboard", f"curriculum/stage, losses, accuracy (or: tensorboard --logdir {run.root})"),
        (f"coconut think {run.root}", "what each continuous thought reads as, then the answer"),
        (f"coconut eval {run.root} ckpt=stage1", "a stage's checkpoint on the test split (split=val: validation)"),
        ("coconut list", "the experiments to try next (make demo: CoT, COCONUT and No-CoT compared)"),
    ]
    width = max(len(name) for name, _ in files + commands)
    pad = lambda rows: [(name.ljust(width), text) for name, text in rows]  # one column for both tables
    return "\n".join(["", f"Your run: {run.root}/", *table(pad(files)), "Next:", *table(pad(commands))])
