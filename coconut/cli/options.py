"""The command options written as key=value beside the config overrides (`coconut eval X ckpt=PATH stage=2`).

Each has a type and a range, checked when the command line is parsed, before any config is read or any file
written: `stage=abc`, `questions=0` or `split=bogus` are one line and exit 2, never a traceback or a silent
default. An option another command takes (`train X stage=1`) is refused too rather than ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from coconut.config.checks import ConfigError

SPLITS = ("test", "val")


class OptionError(ConfigError):
    """A bad key=value command option (or a path it names); when parsing, the parser's one-line usage error."""


def _integer(least: int) -> Callable[[str, str], int]:
    def parse(key: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise OptionError(f"{key}={value}: expected an integer >= {least}") from None
        if number < least:
            raise OptionError(f"{key}={value}: must be >= {least}")
        return number
    return parse


def _split(key: str, value: str) -> str:
    if value not in SPLITS:
        raise OptionError(f"{key}={value}: unknown split; choose {' or '.join(SPLITS)}")
    return value


def check_checkpoint_file(key: str, value: str) -> str:
    """`value` names a checkpoint file that exists and is not empty (what torch would fail on deep inside)."""
    path = Path(value)
    if not value:
        raise OptionError(f"{key}=: expected the path of a checkpoint (.ckpt)")
    if path.is_dir():
        raise OptionError(f"{key}={value}: is a folder; name a checkpoint file in it (e.g. "
                          f"{path / 'checkpoints' / 'last.ckpt'})")
    if not path.exists():
        raise OptionError(f"{key}={value}: no such file; name an existing checkpoint (RUN_DIR/checkpoints/*.ckpt)")
    if path.stat().st_size == 0:  # torch would fail on it deep inside; its reading was interrupted
        raise OptionError(f"{key}={value}: empty file (0 bytes), its writing was interrupted; use another checkpoint "
                          "(stage<k>.ckpt, best.ckpt)")
    return value


def _checkpoint(key: str, value: str) -> str:
    """resume=PATH: a checkpoint file."""
    return check_checkpoint_file(key, value)


def _checkpoint_or_name(key: str, value: str) -> str:
    """ckpt=: best, last or stageK (a file of the run folder's checkpoints/, resolved once the run folder is
    known: coconut.cli.run_target), or a checkpoint file."""
    import re

    if re.fullmatch(r"best|last|stage\d+", value):
        return value
    return check_checkpoint_file(key, value)


def _analyses(key: str, value: str) -> tuple[str, ...]:
    from coconut.analysis.run import ANALYSES  # torch-free at import

    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [name for name in chosen if name not in ANALYSES]
    if unknown or not chosen:
        raise OptionError(f"{key}={value}: unknown analysis {', '.join(unknown) or '(none given)'}; choose one or "
                          f"more of {','.join(ANALYSES)} (comma-separated)")
    return chosen


def _boolean(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise OptionError(f"{key}={value}: expected true or false")
    return lowered == "true"


def _seeds(key: str, value: str) -> tuple[int, ...]:
    parts = [part.strip() for part in value.split(",")]
    if not all(part.isdigit() for part in parts):
        raise OptionError(f"{key}={value}: expected comma-separated integers >= 0 (seeds=0,1,2)")
    seeds = tuple(int(part) for part in parts)
    if len(set(seeds)) != len(seeds):
        raise OptionError(f"{key}={value}: a seed is named twice")
    return seeds


def _text(key: str, value: str) -> str:
    return value


@dataclass(frozen=True)
class Option:
    key: str
    parse: Callable[[str, str], object]
    metavar: str
    help: str


OPTIONS = {o.key: o for o in (
    Option("ckpt", _checkpoint_or_name, "best|last|stageK|PATH", "the run's checkpoints/NAME.ckpt or a file "
           "(RUN_DIR: default the one its test used; EXPERIMENT: required)"),
    Option("resume", _checkpoint, "PATH", "continue the run from this checkpoint (its last.ckpt)"),
    Option("overwrite", _boolean, "true|false", "delete the run folder's files (after every check) and start again; "
           "only a folder coconut made"),
    Option("resume_finished", _boolean, "true|false", "continue a run that already finished (its results.json "
           "moves aside to results.before-resume-K.json)"),
    Option("resume_other_run", _boolean, "true|false", "resume= names another run folder's checkpoint: start "
           "this new run from it (weights, optimizer, epoch)"),
    Option("allow_changed_data", _boolean, "true|false", "resume although the data files changed since the run "
           "started"),
    Option("stage", _integer(0), "K", "curriculum stage to evaluate at (default: the checkpoint's own)"),
    Option("split", _split, "test|val", "the split to score (default: test)"),
    Option("questions", _integer(1), "N", "how many questions to analyse (default: all)"),
    Option("what", _analyses, "search,decoding,stop", "which analyses (default: all)"),
    Option("prefix", _text, "WORD", "the frontier probe's step prefix (default: read from the data)"),
    Option("seeds", _seeds, "0,1,2", "train every run for each seed, report mean +- std (default: 0,1,2)"),
)}
COMMAND_OPTIONS = {
    "train": ("resume", "overwrite", "resume_finished", "resume_other_run", "allow_changed_data"),
    "eval": ("ckpt", "stage", "split"),
    "analyze": ("ckpt", "what", "questions", "split", "stage", "prefix"),
    "demo": ("overwrite", "seeds"),
    "quickstart": ("overwrite",),
}
REQUIRED = {"eval": ("ckpt",), "analyze": ("ckpt",)}  # with an experiment name; a run folder has its own default


def options_help(command: str) -> str:
    """The command's options, one per line, their help in one column, for its --help."""
    names = {key: f"{key}={OPTIONS[key].metavar}" for key in COMMAND_OPTIONS[command]}
    width = max(map(len, names.values()))
    lines = [f"  {names[key]:<{width}}  {OPTIONS[key].help}" for key in COMMAND_OPTIONS[command]]
    return "options (key=value, anywhere among the overrides):\n" + "\n".join(lines)


def check_writable_folder(folder, key: str) -> None:
    """`folder` exists as a writable folder, or can be made: its nearest existing ancestor is a writable folder."""
    import os

    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(f"{key}: cannot make the folder {folder}: {existing} is a file; choose another {key}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OptionError(f"{key}: cannot write in {existing} (permission denied); choose another {key}")


def split_options(command: str, items: list[str], dry_run: bool = False,
                  required: bool = True) -> tuple[dict, list[str]]:
    """(typed command options, config overrides) from the key=value words of a command line; required=False:
    the command's required options have defaults here (eval and analyze of a run folder)."""
    own = COMMAND_OPTIONS.get(command, ())
    options, overrides = {}, []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in OPTIONS:
            overrides.append(item)
            continue
        if key not in own:
            takes = f"its options: {', '.join(k + '=' for k in own)}" if own else "it takes no options"
            raise OptionError(f"{key}= is not an option of coconut {command} ({takes})")
        options[key] = OPTIONS[key].parse(key, value)
    missing = [key for key in REQUIRED.get(command, ()) if key not in options]
    if missing and required and not dry_run:
        release = " or model.release_checkpoint=HUB_ID|PATH (a method's release checkpoint)" if command == "eval" else ""
        raise OptionError(f"{' and '.join(k + '=PATH' for k in missing)}{release} is required with an experiment "
                          f"name (a run folder has a default: coconut {command} RUN_DIR)")
    return options, overrides
