"""Runs stopped the way clusters stop them, then resumed: the result is the uninterrupted run's.

- SIGKILL in the middle of a checkpoint write, with the run folder on another file system than the temporary
  folder: the previous checkpoint survives, the resumed run ends with the uninterrupted run's weights, and
  csv/metrics.csv holds every row once;
- SIGTERM in a checkpoint write, SIGTERM mid-epoch, Ctrl-C in a gradient-accumulation group: one line, exit
  143 / 130, a resumable last.ckpt, then the same weights and metrics as without the stop;
- two `coconut train` of the same name at once: one refuses, the other finishes a whole, unmixed run.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from coconut.experiment import load_config
from coconut.train.run import train
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]
SCRIPT = Path(__file__).parent / "interrupted_run.py"
STEPS_PER_EPOCH = 64 // 16


@pytest.fixture
def other_fs_tmp(tmp_path):
    """A temporary folder on another file system than the run folder's (tmpfs), where Lightning's own writer would
    stage checkpoints and copy them across."""
    import shutil

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system (/dev/shm) on this machine")
    folder = shm / f"coconut-test-{os.getpid()}-{tmp_path.name}"
    folder.mkdir(exist_ok=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def metrics_rows(run_dir: Path) -> list[dict]:
    """The rows of the metrics history, without the wall-clock figures (`*_seconds`): no two runs share those."""
    with (run_dir / "csv" / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if v != "" and not k.endswith("_seconds")} for row in csv.DictReader(f)]


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted runs (without and with gradient accumulation)."""
    runs = {}
    for extra in ((), ("trainer.accumulate_grad_batches=2",)):
        root = tmp_path_factory.mktemp("reference")
        cfg = load_config("demo_coconut", tiny_overrides(root, *extra))
        train(cfg)
        runs[extra] = (metrics_rows(cfg.run_dir), weights(cfg.run_dir))
    return runs


def interrupt(root: Path, mode: str, step: int, *overrides: str, tmp: Path | None = None):
    path = os.pathsep.join([str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    env = {**os.environ, "PYTHONPATH": path, **({"TMPDIR": str(tmp)} if tmp else {})}
    return subprocess.run([sys.executable, str(SCRIPT), str(root), mode, str(step), *overrides], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def resume_and_compare(root: Path, reference, *overrides: str) -> None:
    cfg = load_config("demo_coconut", tiny_overrides(root, *overrides))
    train(cfg, resume=str(cfg.run_dir / "checkpoints" / "last.ckpt"))
    rows, final = reference[tuple(overrides)]
    assert metrics_rows(cfg.run_dir) == rows, "the metrics history is the uninterrupted run's, each row once"
    mine = weights(cfg.run_dir)
    assert all(torch.equal(mine[k], final[k]) for k in final), "the final weights are the uninterrupted run's"
    assert not list(cfg.run_dir.rglob(".partial-*")), "what the killed write left is gone"
    marker = json.loads((cfg.run_dir / "run.json").read_text())
    assert len(marker["attempts"]) == 2 and marker["attempts"][1]["resume"].endswith("last.ckpt")
    assert all(a["machine"]["cpu"] and a["machine"]["kernels"] for a in marker["attempts"]), "where each ran"
    assert json.loads((cfg.run_dir / "results.json").read_text())["run_id"] == marker["run_id"]


def test_sigkill_in_a_checkpoint_write_across_file_systems_then_resume(reference, tmp_path, other_fs_tmp):
    tmp = other_fs_tmp
    step = 2 * STEPS_PER_EPOCH  # the end of epoch 1: last.ckpt of epoch 0 exists, epoch 1's is being written
    proc = interrupt(tmp_path, "kill-in-write", step, tmp=tmp)
    assert proc.returncode == -9, proc.stderr[-3000:]
    ckpts = tmp_path / "runs" / "demo_coconut" / "checkpoints"
    partial = list(ckpts.glob(".partial-last.ckpt.*"))
    assert partial and partial[0].stat().st_size > 0, "killed in the middle of writing last.ckpt"
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == STEPS_PER_EPOCH, "the previous one"
    assert not list(tmp.iterdir()), "nothing staged in the temporary folder"
    resume_and_compare(tmp_path, reference)


@pytest.mark.parametrize("mode, step, code, where, extra", [
    ("term-in-write", 2 * STEPS_PER_EPOCH, 143, "(end of epoch 1)", ()),
    ("term-at-batch", 6, 143, "(epoch 1, step 6)", ()),
    # batch 5 opens an accumulation group of 2 (epoch 1's first): the stop waits for its step
    ("int-at-batch", 5, 130, "(epoch 1, step 3)", ("trainer.accumulate_grad_batches=2",)),
])
def test_a_signal_saves_a_resumable_checkpoint_and_says_so(reference, tmp_path, other_fs_tmp, mode, step, code, where,
                                                          extra):
    tmp = other_fs_tmp if mode.endswith("-in-write") else None
    proc = interrupt(tmp_path, mode, step, *extra, tmp=tmp)
    last = tmp_path / "runs" / "demo_coconut" / "checkpoints" / "last.ckpt"
    lines = [line for line in proc.stderr.splitlines() if line.startswith("coconut train:")]
    assert proc.returncode == code, proc.stderr[-3000:]
    name = "SIGTERM" if code == 143 else "SIGINT (Ctrl-C)"
    assert lines == [f"coconut train: stopped by {name}: saved {last} {where}; continue with resume={last}"]
    assert not (tmp_path / "runs" / "demo_coconut" / "results.json").exists(), "results only on completion"
    resume_and_compare(tmp_path, reference, *extra)


def test_two_runs_of_the_same_name_at_once_one_refuses_the_other_is_whole(tmp_path):
    command = [sys.executable, "-m", "coconut", "train", "demo_coconut", *tiny_overrides(tmp_path)]
    path = os.pathsep.join([str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    env = {**os.environ, "PYTHONPATH": path, "TQDM_DISABLE": "1"}
    procs = [subprocess.Popen(command + [f"seed={seed}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    outs = [proc.communicate(timeout=600) for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 2], [err[-2000:] for _, err in outs]
    refused = outs[[proc.returncode for proc in procs].index(2)][1].strip().splitlines()[-1]
    assert "is in use by pid" in refused or "already holds" in refused, refused
    winner = (1, 2)[[proc.returncode for proc in procs].index(0)]
    run = tmp_path / "runs" / "demo_coconut"
    assert f"seed: {winner}" in (run / "config.yaml").read_text()
    marker = json.loads((run / "run.json").read_text())
    assert len(marker["attempts"]) == 1 and json.loads((run / "results.json").read_text())["run_id"] == marker["run_id"]
    steps = [int(r["step"]) for r in metrics_rows(run) if "train/loss" in r]
    assert steps == sorted(steps) and len(steps) == len(set(steps)), "one run's rows, not two interleaved"
    last, final_stage = weights(run), torch.load(run / "checkpoints" / "stage3.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(last[k], final_stage[k]) for k in last), "the last epoch's checkpoints from one run"
