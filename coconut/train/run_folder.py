"""A run folder as a transaction: every check before the first byte, one writer, the run's identity and data.

`StartRequest` says how a run wants the folder (resume from which checkpoint, overwrite, the explicit
permissions); `open_run_folder` checks what can be checked before anything is built, `commit_run_folder` takes the
lock once the run is built and checked, checks the folder again under the lock (a run started meanwhile), then
writes the run's first files. The marker `run.json` carries the run's id (results.json repeats it, so a copied
folder is not a second seed in a report), the sha256 of the data it started on (a resume on other data is
refused unless allowed) and one entry per attempt (when, where, on which processor and kernels, from which
commit).
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from coconut.atomic import write_json, write_text
from coconut.config import RunConfig
from coconut.data.errors import DataError
from coconut.machine import describe as describe_machine
from coconut.run_dir import RunDir
from coconut.run_lock import RunLock, command_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartRequest:
    """How `coconut train` was asked to use the run folder."""

    resume: str | None = None  # a checkpoint to continue from
    overwrite: bool = False  # empty the folder (one coconut made) and start again
    resume_finished: bool = False  # continue a run that has results.json (they move aside)
    resume_other_run: bool = False  # start this run from another run folder's checkpoint
    allow_changed_data: bool = False  # resume though the data files changed since the run started


def in_use(cfg: RunConfig, request: StartRequest) -> dict:
    """{config key: path} of what the run reads: overwrite=true must not delete any of it."""
    paths = {f"data.{split}_file": path for split, path in cfg.data.files().items()}
    paths["data.data_dir"] = Path(cfg.data.data_dir)
    for key, value in (("model.init_from", cfg.model.init_from), ("model.name_or_path", cfg.model.name_or_path),
                       ("data.tokenizer", cfg.data.tokenizer), ("resume", request.resume)):
        if value and Path(str(value)).exists():
            paths[key] = Path(str(value))
    return paths


def open_run_folder(cfg: RunConfig, request: StartRequest) -> RunDir:
    """The read-only checks of the folder: inside output_dir, not in use by a live process, usable as asked."""
    run_dir = RunDir(cfg.run_dir, output_dir=cfg.output_dir)
    RunLock(run_dir.root).probe()
    run_dir.check_start(request.resume, request.overwrite, request.resume_finished, request.resume_other_run,
                        in_use(cfg, request))
    return run_dir


def read_marker(run_dir: RunDir) -> dict | None:
    import json

    try:
        marker = json.loads(run_dir.marker.read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def data_digests(files: dict) -> dict:
    """{split: sha256} of the split files that exist."""
    from coconut.data.release import file_digests

    return {split: file_digests(path)[0] for split, path in files.items() if Path(path).exists()}


def check_same_data(cfg: RunConfig, run_dir: RunDir, files: dict, request: StartRequest) -> None:
    """A resume trains on the data the run started on, unless allow_changed_data=true."""
    if not request.resume or request.resume_other_run:
        return
    marker = read_marker(run_dir) or {}
    then = marker.get("data")
    if then is None:  # an older run: its word tokenizer's fingerprint names the files' sha256
        from coconut.train.build import _read_json

        then = ((_read_json(run_dir.tokenizer_source) or {}).get("inputs") or {}).get("data")
    if not isinstance(then, dict):
        return
    now = data_digests(files)
    changed = [split for split in now if split in then and then[split] != now[split]]
    if changed and not request.allow_changed_data:
        split = changed[0]
        raise DataError(files[split], None, None,
                        f"changed since run {run_dir.root} started (sha256 {then[split][:12]}... then, "
                        f"{now[split][:12]}... now); the resumed run would train on other records with the run's "
                        f"tokenizer: pass allow_changed_data=true to go on anyway, or start a new run (name=)")
    if changed:
        log.warning("allow_changed_data=true: %s changed since the run started; resuming on the new records",
                    ", ".join(str(files[s]) for s in changed))


def commit_run_folder(cfg: RunConfig, run_dir: RunDir, request: StartRequest, files: dict, commit: str,
                      save_tokenizer) -> tuple[RunLock, dict]:
    """Lock the folder, check it again under the lock, then write its first files; returns (lock, marker).

    save_tokenizer(run_dir) writes the tokenizer, or is None (a resumed run keeps its own)."""
    from coconut.experiment import to_yaml

    lock = RunLock(run_dir.root, command_line()).acquire()
    try:
        # Another run may have started or finished in this folder since the first check.
        run_dir.check_start(request.resume, request.overwrite, request.resume_finished, request.resume_other_run,
                            in_use(cfg, request))
        marker = None if request.overwrite else read_marker(run_dir)
        for leftover in run_dir.remove_partial_writes():  # a killed attempt's unfinished files (never the good ones)
            log.info("removed %s, left by a write that was interrupted", leftover)
        if request.overwrite and run_dir.contents():
            log.warning("overwrite=true: deleting the contents of %s", run_dir.root)
            run_dir.clear()
        if request.resume and run_dir.is_finished():  # resume_finished=true: the results are kept aside
            k = run_dir.move_finished_aside()
            log.warning("resume_finished=true: the finished run's results are kept as results.before-resume-%d.json", k)
        if marker is None or request.resume_other_run:
            marker = {"run_id": uuid.uuid4().hex, "name": cfg.name, "created": time.time(), "data": data_digests(files),
                      "attempts": []}
        attempts = marker.setdefault("attempts", [])
        attempts.append({"started": time.time(), "host": socket.gethostname(), "machine": describe_machine(),
                         "commit": commit, "resume": request.resume})
        if request.resume and not request.resume_other_run:
            changed = keep_earlier_config(cfg, run_dir, len(attempts))
            if changed:
                attempts[-1]["changed"] = {key: [then, now] for key, then, now in changed}
        write_json(run_dir.marker, marker)  # first: the folder is a coconut run from its first byte on
        write_text(run_dir.config, to_yaml(cfg))
        write_text(run_dir.git_commit, commit + "\n")
        if save_tokenizer is not None:
            save_tokenizer(run_dir)
    except BaseException:
        lock.release()
        raise
    return lock, marker


def keep_earlier_config(cfg: RunConfig, run_dir: RunDir, attempt: int) -> list[tuple[str, object, object]]:
    """A resume with settings other than the run's (`coconut.experiment.changes_since`): the run's config.yaml is
    kept as config.before-resume-<attempt>.yaml before the new one replaces it, and a warning names the settings, so
    a run trained under two configs says so. Returns the changes (none: nothing is written)."""
    from coconut.config import ConfigError
    from coconut.experiment import changes_since

    if not run_dir.config.is_file():
        return []
    try:
        changed = changes_since(run_dir.config, cfg)
    except ConfigError as err:
        changed = [("config.yaml", f"does not load with this version: {err}", "this run's config")]
    if changed:
        kept = run_dir.root / f"config.before-resume-{attempt}.yaml"
        write_text(kept, run_dir.config.read_text())
        log.warning("resuming with settings other than the run's: %s; its earlier config is kept as %s",
                    ", ".join(f"{key} {then} -> {now}" for key, then, now in changed), kept.name)
    return changed

