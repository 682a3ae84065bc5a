"""`coconut eval RUN_DIR` and `coconut analyze RUN_DIR`: a finished (or stopped) run folder in place of the
experiment name, read through the run's own config.yaml, so that nothing of the training command is repeated.

What counts as a run folder: a folder holding config.yaml and run.json (the marker a run writes first; a folder
of an older version, holding run files only, counts too), or the path of such a folder's config.yaml. A word that
names an existing folder, or looks like a path (it holds a separator and is no .yaml file), is read as a run
folder and refused in one line when it is not one; any other word is an experiment name as before.

The checkpoint: ckpt=best|last|stageK names a file of the run's checkpoints/ folder (in either form); without
ckpt=, a run folder's default is the checkpoint its results.json says was tested, else best.ckpt, else last.ckpt.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from coconut.cli.options import OptionError, check_checkpoint_file
from coconut.config.checks import ConfigError
from coconut.run_dir import BEST, LAST, RunDir

CHECKPOINT_NAME = re.compile(rf"^({BEST}|{LAST}|stage\d+)$")  # ckpt= words that name a file of checkpoints/
PINNED = ("name", "output_dir")  # what places the run folder: taken from RUN_DIR itself, never overridden


class NotARunFolder(ConfigError):
    """A path given where a run folder is expected that does not hold a coconut run."""


def looks_like_run_folder(word: str) -> bool:
    """Whether the command's first argument is meant as a run folder rather than an experiment name or file."""
    path = Path(word)
    if path.suffix in (".yaml", ".yml"):
        return path.name == "config.yaml" and path.parent.is_dir() and (path.parent / "run.json").exists()
    return path.is_dir() or os.sep in word or (os.altsep is not None and os.altsep in word)


def open_run_folder(word: str) -> RunDir:
    """The run folder `word` names, or one line saying why it is not one."""
    path = Path(word)
    if path.name == "config.yaml" and path.is_file():
        path = path.parent
    hint = "give a run folder written by coconut train (it holds config.yaml and run.json) or an experiment name " \
           "(coconut list)"
    if not path.exists():
        raise NotARunFolder(f"{word}: no such run folder; {hint}")
    if not path.is_dir():
        raise NotARunFolder(f"{word}: is a file, not a run folder; {hint}")
    run = RunDir(Path(os.path.abspath(path)))  # normalised: `.` and `..` have no folder name to pin
    if not run.config.is_file():
        raise NotARunFolder(f"{word}: not a run folder (no config.yaml); {hint}")
    if not run.made_by_coconut():
        raise NotARunFolder(f"{word}: not a run folder coconut made (no run.json beside config.yaml); {hint}")
    return run


def run_config(run: RunDir, overrides: list[str] = ()):
    """The run's own config (config.yaml), with eval-time overrides (decode=..., eval.max_new_tokens=...), placed
    at the folder where it lies now: a run folder moved or copied elsewhere is still read and written there."""
    from coconut.experiment import load_config

    for item in overrides:
        key = item.partition("=")[0]
        if key in PINNED:
            raise OptionError(f"{item}: a run folder's {key} is its own ({run.root}); drop {key}= or give the "
                              "experiment name instead of the run folder")
    pins = [f"output_dir={run.root.parent}", f"name={run.root.name}"]
    return load_config(str(run.config), [*overrides, *pins])


def default_checkpoint(run: RunDir) -> Path:
    """The checkpoint the run tested (results.json), else best.ckpt, else last.ckpt."""
    names = [BEST, LAST]
    try:
        tested = json.loads(run.results.read_text()).get("tested_checkpoint") if run.results.is_file() else None
    except (OSError, ValueError, AttributeError):
        tested = None  # an unreadable results.json: the usual order (`coconut report` names what is wrong with it)
    if tested in names:
        names.remove(tested)
        names.insert(0, tested)
    for name in names:
        path = run.checkpoints / f"{name}.ckpt"
        if path.is_file():
            return path
    raise OptionError(f"{run.checkpoints}: no {BEST}.ckpt or {LAST}.ckpt (the run saved no checkpoint yet); name "
                      "one with ckpt=PATH")


def resolve_checkpoint(value: str | None, run: RunDir) -> str:
    """ckpt= as a checked file path: a name (best, last, stageK) within the run's checkpoints/, a path as given,
    or, when not given, the run's default."""
    if value is None:
        path = default_checkpoint(run)
    elif CHECKPOINT_NAME.match(value):
        path = run.checkpoints / f"{value}.ckpt"
        if not path.is_file():
            have = sorted(p.stem for p in run.checkpoints.glob("*.ckpt")) if run.checkpoints.is_dir() else []
            raise OptionError(f"ckpt={value}: no {path}; the run's checkpoints: {', '.join(have) or 'none'}")
    else:
        return value  # a path, checked when the command line was parsed
    return check_checkpoint_file("ckpt", str(path))
