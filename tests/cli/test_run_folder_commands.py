"""`coconut eval RUN_DIR` and `coconut analyze RUN_DIR`: the run's own config.yaml is read (nothing of the training
command repeated), the checkpoint defaults to the one the run tested, and a moved folder is still itself."""

import json
import shutil

import pytest

from coconut.cli.main import main
from coconut.experiment import load_config, to_yaml
from tests.integration.tiny_run import tiny_overrides


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder as training leaves it: config.yaml, run.json, results.json naming the tested checkpoint, and
    checkpoints of an untrained tiny model that differ in their stage (so the one evaluated shows)."""
    import torch

    from coconut.train.build import build_system

    root = tmp_path_factory.mktemp("run_folder")
    overrides = tiny_overrides(root, "name=tiny")
    cfg = load_config("demo_coconut", overrides)
    weights = build_system(cfg)[0].state_dict()
    run = root / "runs" / "tiny"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(cfg))
    (run / "run.json").write_text(json.dumps({"run_id": "test"}))
    for name, stage in (("best", 2), ("last", 3), ("stage1", 1)):
        torch.save({"state_dict": weights, "epoch": stage, "curriculum_stage": stage}, run / "checkpoints" / f"{name}.ckpt")
    (run / "results.json").write_text(json.dumps({"tested_checkpoint": "last", "test": {"test/acc": 0.0}}))
    return root, run, overrides


def printed(capsys) -> dict:
    return dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line)


def test_eval_of_a_run_folder_reads_its_config_and_tests_what_the_run_tested(run_folder, capsys):
    root, run, overrides = run_folder
    assert main(["eval", str(run)]) == 0
    from_folder = printed(capsys)
    assert from_folder["checkpoint"] == str(run / "checkpoints" / "last.ckpt") and from_folder["stage"] == "3"
    # The experiment form with every training override repeated scores the same checkpoint identically.
    assert main(["eval", "demo_coconut", *overrides, f"ckpt={run / 'checkpoints' / 'last.ckpt'}"]) == 0
    assert printed(capsys) == from_folder
    assert main(["eval", str(run), "ckpt=stage1", "split=val"]) == 0
    named = printed(capsys)
    assert named["checkpoint"].endswith("stage1.ckpt") and (named["stage"], named["split"]) == ("1", "val")


def test_default_checkpoint_is_the_tested_one_then_best_then_last(tmp_path):
    from coconut.cli.run_target import default_checkpoint
    from coconut.run_dir import RunDir

    run = RunDir(tmp_path)
    run.checkpoints.mkdir()
    (run.checkpoints / "last.ckpt").write_bytes(b"x")
    assert default_checkpoint(run).name == "last.ckpt"
    (run.checkpoints / "best.ckpt").write_bytes(b"x")
    assert default_checkpoint(run).name == "best.ckpt", "best before last when results.json says nothing"
    run.results.write_text(json.dumps({"tested_checkpoint": "last"}))
    assert default_checkpoint(run).name == "last.ckpt", "the checkpoint the run tested"


def test_analyze_of_a_moved_run_folder_writes_into_it_under_its_lock(run_folder, tmp_path, capsys):
    from coconut.run_lock import RunLock

    _, run, _ = run_folder
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(run, moved)
    with RunLock(moved, "coconut train"):
        assert main(["analyze", str(moved), "what=decoding", "questions=2"]) == 2
    assert "is in use by" in capsys.readouterr().err and not (moved / "analysis").exists()
    assert main(["analyze", str(moved), "what=decoding", "questions=2"]) == 0
    written = json.loads((moved / "analysis" / "last" / "analysis.json").read_text())
    assert written["stage"] == 3 and [r["label"] for r in written["decoding"]][0] == "greedy"
    assert not (run / "analysis").exists(), "the original folder is left alone"
