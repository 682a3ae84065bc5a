"""Tiny runs through Lightning's own knobs: max_steps stops mid-curriculum and is tested honestly, logger=csv
writes no TensorBoard folder, val_check_interval validates within an epoch, the profiler reports into the run
folder, and fast_dev_run checks the whole run without writing into the run folder."""

import csv

import pytest
import torch

from coconut.cli.main import main
from coconut.experiment import load_config
from coconut.train.run import train
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow

STEPS_PER_EPOCH = 64 // 16  # the tiny run's training set and batch


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """Stopped by max_steps=5: one step into epoch 1 (stage 1 of 0..3), validated twice per epoch, CSV logs only."""
    root = tmp_path_factory.mktemp("max_steps")
    cfg = load_config("demo_coconut", tiny_overrides(root, "trainer.max_steps=5", "logger=csv",
                                                     "trainer.val_check_interval=0.5", "trainer.profiler=simple"))
    return cfg, train(cfg)


def test_max_steps_stops_there_and_tests_the_last_checkpoint_saying_so(stopped):
    cfg, results = stopped
    assert (results["max_steps_reached"], results["stopped_step"], results["stopped_stage"]) == (True, 5, 1)
    assert results["tested_checkpoint"] == "last" and results["schedule_complete"] is False
    assert results["test_stage"] == 1
    last = torch.load(cfg.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 5, "last.ckpt holds the weights where training stopped"
    assert (cfg.run_dir / "checkpoints" / "stage0.ckpt").exists()
    assert not (cfg.run_dir / "checkpoints" / "stage1.ckpt").exists(), "stage 1 did not end: no checkpoint of it"
    assert (cfg.run_dir / "results.json").exists()


def test_results_record_the_batch_per_device_and_the_accumulation(stopped):
    _, results = stopped
    assert (results["effective_batch"], results["per_device_batch"], results["accumulate_grad_batches"]) == (16, 16, 1)


def test_logger_csv_writes_the_history_and_no_tensorboard_folder(stopped):
    cfg, _ = stopped
    assert not (cfg.run_dir / "tensorboard").exists()
    rows = list(csv.DictReader((cfg.run_dir / "csv" / "metrics.csv").open()))
    assert any(row.get("train/loss") for row in rows) and any(row.get("curriculum/stage") for row in rows)


def test_val_check_interval_validates_within_the_epoch_one_row_each(stopped):
    cfg, _ = stopped
    rows = list(csv.DictReader((cfg.run_dir / "accuracy_vs_tokens.csv").open()))
    # Every half epoch (2 batches): steps 2 and 4 in epoch 0; max_steps stops epoch 1 after one step.
    assert [(int(r["epoch"]), int(r["step"])) for r in rows] == [(0, 2), (0, STEPS_PER_EPOCH)]


def test_the_profiler_report_is_in_the_run_folder(stopped):
    cfg, _ = stopped
    report = (cfg.run_dir / "profiler" / "fit-profile.txt").read_text()
    assert "run_training_epoch" in report


def test_fast_dev_run_checks_the_run_and_writes_nothing_into_the_run_folder(tmp_path, capsys):
    overrides = tiny_overrides(tmp_path, "trainer.fast_dev_run=true", "name=dev")
    assert main(["train", "demo_coconut", *overrides]) == 0
    out = capsys.readouterr().out
    assert "fast_dev_run: 1 batch(es) of training, validation and test ran at stage 3" in out
    assert f"nothing was written to {tmp_path / 'runs' / 'dev'}" in out
    assert not (tmp_path / "runs").exists(), "no run folder, not even an empty one"
