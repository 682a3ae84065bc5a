"""A user's runs are sacred, on real tiny runs: a second run into a finished folder is refused and changes no
file, a failed resume changes no file (config.yaml included), a finished run continued keeps its results aside and
its metrics history, a resume on changed data is refused, overwrite=true starts clean with a tokenizer of the new
data, and results.json says which split and which checkpoint were tested."""

import csv
import json
import logging
import shutil

import pytest
import torch

from coconut.experiment import load_config
from coconut.run_dir import RunFolderError
from coconut.train.checkpoints import CheckpointError
from coconut.train.run import evaluate, train
from tests.integration.tiny_run import tiny_overrides
from tests.train.test_run_folder import snapshot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run of 3 epochs: stage0/1/2.ckpt, results.json."""
    root = tmp_path_factory.mktemp("run")
    cfg = load_config("demo_coconut", tiny_overrides(root, "trainer.max_epochs=3"))
    train(cfg)
    return root, cfg


def test_a_second_run_into_a_finished_folder_is_refused_and_changes_no_file(finished, capsys):
    from coconut.cli.main import main

    root, cfg = finished
    before = snapshot(cfg.run_dir)
    assert "checkpoints/stage2.ckpt" in before and "results.json" in before
    with pytest.raises(RunFolderError) as err:
        train(cfg)
    assert str(err.value) == (f"run folder {cfg.run_dir} already holds a finished run (results.json); pass "
                              f"resume={cfg.run_dir / 'checkpoints' / 'last.ckpt'} resume_finished=true to continue it, overwrite=true to "
                              "delete it and start again, or choose another name=")
    assert main(["train", "demo_coconut", *tiny_overrides(root, "trainer.max_epochs=3")]) == 2, "a ConfigError: exit 2"
    assert capsys.readouterr().err.strip().endswith(str(err.value))
    assert snapshot(cfg.run_dir) == before


def test_a_failed_resume_changes_no_file_not_even_config_yaml(finished, tmp_path):
    from coconut.train.build import build_system

    root, _ = finished
    # Another config, which a resume that went on would write into config.yaml.
    cfg = load_config("demo_coconut", tiny_overrides(root, "trainer.max_epochs=5"))
    # Broken checkpoints inside the run's own folder: the resumes pass the folder's checks and fail on them.
    empty = cfg.run_dir / "checkpoints" / "empty.ckpt"
    empty.write_bytes(b"")
    wide_cfg = load_config("demo_coconut", tiny_overrides(tmp_path, "model.hidden=32", "model.intermediate=64"))
    wide = cfg.run_dir / "checkpoints" / "wide.ckpt"
    torch.save({"state_dict": build_system(wide_cfg)[0].state_dict(), "epoch": 1}, wide)
    before = snapshot(cfg.run_dir)
    embedding = "engine.model.model.embed_tokens.weight"
    cases = [(cfg.run_dir / "checkpoints" / "lats.ckpt", "lats.ckpt: no such file"),
             (empty, r"empty.ckpt: empty file \(0 bytes\)"),
             (wide, rf"wide.ckpt: {embedding} has shape \[\d+, 32\] there but \[\d+, 16\] in this model")]
    try:
        for resume, message in cases:
            with pytest.raises(CheckpointError, match=message):
                train(cfg, resume=str(resume), resume_finished=True)
            assert snapshot(cfg.run_dir) == before, resume
    finally:
        empty.unlink(), wide.unlink()


def test_a_schedule_short_of_the_final_stage_says_which_checkpoint_it_tested(finished):
    _, cfg = finished  # 3 epochs: stages 0-2, while the method's final stage is 3
    saved = json.loads((cfg.run_dir / "results.json").read_text())
    assert saved["schedule_complete"] is False and saved["tested_checkpoint"] == "last"
    assert saved["checkpoint"].endswith("last.ckpt") and not (cfg.run_dir / "checkpoints" / "best.ckpt").exists()


def copy_of(cfg, tmp_path, *extra):
    """The finished run copied under tmp_path (its data too), and its config there."""
    data = tmp_path / "data"
    shutil.copytree(cfg.data.data_dir, data, ignore=shutil.ignore_patterns(".cache"))
    shutil.copytree(cfg.run_dir, tmp_path / "runs" / cfg.name)
    return load_config("demo_coconut", tiny_overrides(tmp_path, *extra))


def test_a_finished_run_is_continued_only_when_asked_and_keeps_its_results_and_history(finished, tmp_path):
    _, old_cfg = finished
    cfg = copy_of(old_cfg, tmp_path, "trainer.max_epochs=5")  # two more epochs: the final stage
    last = str(cfg.run_dir / "checkpoints" / "last.ckpt")
    before = snapshot(cfg.run_dir)
    with pytest.raises(RunFolderError, match="holds a finished run"):
        train(cfg, resume=last)
    assert snapshot(cfg.run_dir) == before
    old_results = (cfg.run_dir / "results.json").read_text()
    old_rows = list(csv.DictReader((cfg.run_dir / "csv" / "metrics.csv").open()))
    results = train(cfg, resume=last, resume_finished=True)
    assert (cfg.run_dir / "results.before-resume-1.json").read_text() == old_results, "moved aside, unchanged"
    assert (cfg.run_dir / "export.before-resume-1" / "coconut.json").exists()
    assert results["schedule_complete"] is True and results["tested_checkpoint"] == "best"
    assert results["run_id"] == json.loads(old_results)["run_id"], "the same run, continued"
    rows = list(csv.DictReader((cfg.run_dir / "csv" / "metrics.csv").open()))
    assert [r["step"] for r in rows[:len(old_rows)]] == [r["step"] for r in old_rows], "the history before is kept"
    assert max(int(r["step"]) for r in rows) > max(int(r["step"]) for r in old_rows)


def test_a_resume_on_changed_data_is_refused_and_changes_nothing(finished, tmp_path):
    from coconut.data.errors import DataError
    from coconut.data.generators import generate
    from coconut.data.records import write_records

    _, old_cfg = finished
    cfg = copy_of(old_cfg, tmp_path, "trainer.max_epochs=5")
    write_records(generate("prosqa-mini", 64, 99), tmp_path / "data" / "train.json")  # other records, same name
    before = snapshot(tmp_path / "runs")
    with pytest.raises(DataError, match=r"train.json: changed since run .* allow_changed_data=true"):
        train(cfg, resume=str(cfg.run_dir / "checkpoints" / "last.ckpt"), resume_finished=True)
    assert snapshot(tmp_path / "runs") == before


def test_overwrite_with_other_data_starts_clean_and_records_the_split_tested(finished, tmp_path, caplog):
    from coconut.data.generators import generate
    from coconut.data.records import write_records

    _, old_cfg = finished
    # A copy of the finished run, so the other tests keep theirs.
    shutil.copytree(old_cfg.run_dir, tmp_path / "runs" / old_cfg.name)
    # Other data under the same run name: ProntoQA, whose words the ProsQA-mini tokenizer has never seen. No
    # test file: the test after training falls back to val, and says so.
    data = tmp_path / "prontoqa"
    data.mkdir()
    write_records(generate("prontoqa", 64, 11), data / "train.json")
    write_records(generate("prontoqa", 24, 12), data / "val.json")
    overrides = tiny_overrides(tmp_path, "data.generator=null", f"data.data_dir={data}",
                               f"data.train_file={data / 'train.json'}", f"data.val_file={data / 'val.json'}",
                               "model.max_positions=512", "trainer.max_epochs=2")
    cfg = load_config("demo_coconut", overrides)
    assert cfg.run_dir == tmp_path / "runs" / old_cfg.name
    with pytest.raises(RunFolderError, match="already holds a finished run"):
        train(cfg)
    with caplog.at_level(logging.WARNING):
        results = train(cfg, overwrite=True)
    run = cfg.run_dir
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt", "stage0.ckpt", "stage1.ckpt"], \
        "no stage2.ckpt of the old 3-epoch run"
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1, "one run, one event file"
    rows = list(csv.DictReader((run / "accuracy_vs_tokens.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1], "only the new run's validations"
    assert len(list(csv.DictReader((run / "csv" / "metrics.csv").open()))) > 0
    assert str(data / "train.json") in (run / "config.yaml").read_text()

    # The tokenizer was built from the new data: every word of its questions is known.
    from transformers import AutoTokenizer

    from coconut.train.build import fingerprint, tokenizer_inputs

    tokenizer = AutoTokenizer.from_pretrained(run / "tokenizer")
    questions = [r["question"] for r in json.loads((data / "train.json").read_text())]
    ids = [i for q in questions for i in tokenizer(q)["input_ids"]]
    assert tokenizer.unk_token_id not in ids and len(ids) > 1000
    saved = json.loads((run / "tokenizer" / "built_from.json").read_text())
    assert saved["fingerprint"] == fingerprint(tokenizer_inputs(cfg, cfg.data.files()))

    # The split really tested is recorded, and was announced.
    saved = json.loads((run / "results.json").read_text())
    assert saved["test_split"] == results["test_split"] == "val"
    assert saved["data"]["train"]["path"] == str(data / "train.json")
    assert f"no test split (data.test_file {data / 'test.json'} does not exist): testing on val" in caplog.text
    assert evaluate(cfg, str(run / "checkpoints" / "last.ckpt"))["split"] == "val"


def test_a_ddp_launch_whose_ranks_rerun_the_command_trains_tests_and_overwrites(tmp_path):
    """Lightning's DDP launcher starts the other ranks by running this same command again, after rank 0 wrote the
    folder: they must neither refuse it nor empty it (overwrite=true), and the test on rank 0 alone must not wait
    for them (it hung in torchmetrics' sync)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).parents[2])
    command = [sys.executable, __file__, str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": repo}
    run = tmp_path / "runs" / "demo_coconut"
    for attempt in ("fresh", "overwrite"):
        proc = subprocess.run(command + ([attempt] if attempt == "overwrite" else []), cwd=repo, env=env,
                              capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stderr[-3000:]
        saved = json.loads((run / "results.json").read_text())
        assert saved["test"]["test/thoughts"] == 1.0 and saved["effective_batch"] == 32, "2 ranks x 16"
        assert (run / "config.yaml").exists() and (run / "tokenizer" / "built_from.json").exists(), attempt
        assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1, attempt


if __name__ == "__main__":
    # python test_run_folder.py ROOT [overwrite]: a 2-process DDP run through Lightning's subprocess launcher, which
    # starts rank 1 by running this command again (unlike ddp_spawn, whose children run the fit alone).
    import sys
    from pathlib import Path

    root = Path(sys.argv[1])
    cfg = load_config("demo_coconut", tiny_overrides(root, "trainer=ddp_cpu", "trainer.strategy=ddp",
                                                     "trainer.max_epochs=2"))
    train(cfg, overwrite=sys.argv[2:] == ["overwrite"])
