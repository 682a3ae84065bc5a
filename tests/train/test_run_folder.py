"""A run folder is never overwritten, mixed or half-written: the checks of `train` before its first byte, the
folder's own refusal, the tokenizer's fingerprint, checkpoint errors in one line. Fast: no training;
tests/integration/test_run_folder.py trains."""

import hashlib
import logging
from pathlib import Path

import pytest
import torch

from coconut.config import ConfigError
from coconut.data.records import DataError
from coconut.experiment import load_config
from coconut.run_dir import RunDir, RunFolderError
from coconut.train.checkpoints import CheckpointError, check_checkpoint, check_fits
from tests.integration.tiny_run import FROM_SCRATCH, TINY


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under a folder, and every folder (as "dir"), by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def config(data_root: Path, runs: Path, *extra: str):
    """The tiny config on the package's generated data, with run folders under `runs` (kept apart from the
    package's shared output folder, whose tokenizer other tests would read)."""
    return load_config("demo_coconut", [f"output_dir={runs}", f"data.data_dir={data_root / 'data'}", *TINY, *FROM_SCRATCH, *extra])


def fake_run(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"{name} of an earlier run\n")


# -- the folder ------------------------------------------------------------------------------------


def test_a_folder_that_holds_files_is_refused_with_what_to_do(tmp_path):
    RunDir(tmp_path / "absent").check_free()
    (tmp_path / "empty").mkdir()
    RunDir(tmp_path / "empty").check_free()  # nothing in it to mix with

    fake_run(tmp_path / "done", "results.json", "checkpoints/last.ckpt", "config.yaml")
    with pytest.raises(RunFolderError) as err:
        RunDir(tmp_path / "done").check_free()
    message = str(err.value)
    assert "\n" not in message and f"run folder {tmp_path / 'done'} already holds a finished run" in message
    assert f"resume={tmp_path / 'done' / 'checkpoints' / 'last.ckpt'} resume_finished=true" in message
    assert "overwrite=true" in message

    fake_run(tmp_path / "started", "config.yaml", "checkpoints/last.ckpt")
    with pytest.raises(RunFolderError, match=r"a started run \(checkpoints/last.ckpt\); pass resume="):
        RunDir(tmp_path / "started").check_free()
    # Killed before its first checkpoint: nothing to resume, so only overwrite=true or another name is offered.
    fake_run(tmp_path / "early", "config.yaml", "tensorboard/events.out.tfevents.1")
    with pytest.raises(RunFolderError, match=r"files of another run \(config.yaml, tensorboard\); pass overwrite=true") as err:
        RunDir(tmp_path / "early").check_free()
    assert "resume=" not in str(err.value)
    with pytest.raises(RunFolderError, match="holds a finished run .* pass resume_finished=true to continue it"):
        RunDir(tmp_path / "done").check_free(resume=str(tmp_path / "done" / "checkpoints" / "last.ckpt"))
    RunDir(tmp_path / "done").check_start(resume=str(tmp_path / "done" / "checkpoints" / "last.ckpt"),
                                          resume_finished=True)
    RunDir(tmp_path / "started").check_free(resume=str(tmp_path / "started" / "checkpoints" / "last.ckpt"))
    RunDir(tmp_path / "done").check_free(overwrite=True)


def test_overwrite_refuses_to_empty_the_folder_it_would_resume_from(tmp_path):
    fake_run(tmp_path / "run", "checkpoints/last.ckpt")
    with pytest.raises(RunFolderError, match="which overwrite=true would empty"):
        RunDir(tmp_path / "run").check_free(resume=str(tmp_path / "run" / "checkpoints" / "last.ckpt"), overwrite=True)
    RunDir(tmp_path / "run").check_start(resume=str(tmp_path / "elsewhere.ckpt"), overwrite=True, resume_other_run=True)


@pytest.mark.parametrize("name", ["../escaped", "/tmp/absolute", ".", "a/../.."])
def test_a_run_folder_outside_output_dir_is_refused(tmp_path, name):
    runs = tmp_path / "runs"
    with pytest.raises(RunFolderError, match="is not inside output_dir=.*name= must be a plain folder name"):
        RunDir(runs / name, output_dir=runs)
    assert RunDir(runs / "group" / "run", output_dir=runs).root == runs / "group" / "run"


def test_clear_empties_the_folder_without_following_links(tmp_path):
    outside = tmp_path / "keep"
    fake_run(outside, "precious.txt")
    fake_run(tmp_path / "run", "results.json", "checkpoints/stage3.ckpt")
    (tmp_path / "run" / "link").symlink_to(outside, target_is_directory=True)
    RunDir(tmp_path / "run").clear()
    assert RunDir(tmp_path / "run").contents() == [] and (outside / "precious.txt").exists()


# -- checkpoints -----------------------------------------------------------------------------------


def test_an_empty_or_unreadable_checkpoint_is_one_clear_line(tmp_path, monkeypatch):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.ckpt: empty file \(0 bytes\)"):
        check_checkpoint(empty)

    def fails(*args, **kwargs):
        raise RuntimeError("")  # some loader errors carry no message: the handler must not fail on it

    monkeypatch.setattr(torch, "load", fails)
    (tmp_path / "x.ckpt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"x.ckpt: cannot be read safely \(RuntimeError\); give a .ckpt file"):
        check_checkpoint(tmp_path / "x.ckpt")


def test_a_checkpoint_of_another_shape_names_the_first_tensor_and_both_shapes(tiny_system, tmp_path):
    _, small, _, _ = tiny_system()
    _, wide, _, _ = tiny_system("model.hidden=32", "model.intermediate=64")
    state = {"state_dict": wide.state_dict()}
    first = next(k for k, v in wide.state_dict().items() if v.shape != small.state_dict()[k].shape)
    with pytest.raises(CheckpointError) as err:
        check_fits(small, state, "wide.ckpt")
    want = (f"checkpoint wide.ckpt: {first} has shape {list(wide.state_dict()[first].shape)} there but "
            f"{list(small.state_dict()[first].shape)} in this model")
    assert str(err.value).startswith(want) and "\n" not in str(err.value)
    check_fits(small, {"state_dict": small.state_dict()}, "same.ckpt")
    with pytest.raises(CheckpointError, match=r"missing 1 keys, e.g. \['engine.thought_scale'\]"):
        check_fits(small, {"state_dict": {k: v for k, v in small.state_dict().items() if k != "engine.thought_scale"}}, "x")


# -- the tokenizer ---------------------------------------------------------------------------------


def test_a_saved_tokenizer_is_reused_only_when_built_from_the_same_data(tiny_root, tmp_path, caplog):
    from coconut.train.build import load_or_build_tokenizer, save_tokenizer

    cfg = config(tiny_root, tmp_path / "runs")
    run_dir = RunDir(cfg.run_dir)
    tokenizer = load_or_build_tokenizer(cfg, run_dir)
    assert not cfg.run_dir.exists(), "building writes nothing into the run folder"
    tokenizer.add_tokens(["reuse-marker"])  # tells a reused tokenizer from a rebuilt one
    save_tokenizer(cfg, tokenizer, run_dir)

    def reused(cfg, reuse="matching"):
        return "reuse-marker" in load_or_build_tokenizer(cfg, run_dir, reuse).get_vocab()

    assert reused(cfg), "same data: the run's own tokenizer"
    other = config(tiny_root, tmp_path / "runs", f"data.data_dir={tmp_path / 'other'}", "data.seed=7")
    with caplog.at_level(logging.WARNING):
        assert not reused(other), "other data: rebuilt, not a vocabulary that maps the new words to <unk>"
    assert "was built from other data or settings than now: building a new tokenizer" in caplog.text
    assert reused(other, "always"), "resuming keeps the run's own tokenizer"
    assert not reused(cfg, "never")
    run_dir.tokenizer_source.unlink()  # a folder of an older version, without the fingerprint
    assert reused(other), "kept as before"


# -- train: every check before the first byte ------------------------------------------------------


def test_a_fresh_run_with_a_missing_data_file_leaves_no_folder(tmp_path):
    from coconut.train.run import train

    cfg = config(tmp_path, tmp_path / "runs", "data.generator=null", f"data.train_file={tmp_path / 'nope.json'}")
    with pytest.raises(DataError, match="nope.json: no such file"):
        train(cfg)
    assert not (tmp_path / "runs").exists()


def test_a_train_set_smaller_than_a_batch_is_refused_before_the_folder_is_written(tiny_root, tmp_path):
    from coconut.train.build import build_system
    from coconut.train.run import check_steps, train

    cfg = config(tiny_root, tmp_path / "runs", "data.batch_size=100", "data.drop_last=true")  # 64 training records
    with pytest.raises(ConfigError) as err:
        train(cfg)
    message = str(err.value)
    assert message.startswith(f"{tiny_root / 'data' / 'train.json'}: nothing to train: 64 training examples fill "
                              "no batch of data.batch_size=100 with data.drop_last=true; use more training data, "
                              "a smaller data.batch_size or data.drop_last=false") and "\n" not in message
    # Without drop_last (the default, as the release) the 64 records are one partial batch: a step to train.
    cfg = config(tiny_root, tmp_path / "runs", "data.batch_size=100", "data.drop_last=false")  # demo_coconut's: true
    _, datamodule, _ = build_system(cfg)
    datamodule.setup("fit")
    check_steps(cfg, datamodule)
    assert not (tmp_path / "runs").exists(), "checked after the system and the Trainer are built, before writing"
    cfg = config(tiny_root, tmp_path / "runs", "trainer.limit_train_batches=0.1")  # of 4 batches
    with pytest.raises(ConfigError, match=r"trainer.limit_train_batches=0.1 leaves no batch; raise it"):
        train(cfg)
    assert not (tmp_path / "runs").exists()


def test_a_failing_resume_leaves_an_existing_folder_as_it_was(tiny_root, tmp_path):
    from coconut.train.run import train

    cfg = config(tiny_root, tmp_path / "runs")
    fake_run(cfg.run_dir, "results.json", "config.yaml", "checkpoints/last.ckpt")
    (cfg.run_dir / "checkpoints" / "empty.ckpt").write_bytes(b"")
    before = snapshot(cfg.run_dir)
    ckpts = cfg.run_dir / "checkpoints"
    for resume, error in ((ckpts / "typo.ckpt", "typo.ckpt: no such file"), (ckpts / "empty.ckpt", "empty file")):
        with pytest.raises(CheckpointError, match=error):
            train(cfg, resume=str(resume), resume_finished=True)
        assert snapshot(cfg.run_dir) == before
    with pytest.raises(RunFolderError, match="is not a checkpoint of run folder"):  # another run's, not asked for
        train(cfg, resume=str(tmp_path / "elsewhere.ckpt"))
    with pytest.raises(RunFolderError, match="holds a finished run"):  # finished, not asked for
        train(cfg, resume=str(ckpts / "last.ckpt"))
    assert snapshot(cfg.run_dir) == before


def test_evaluate_refuses_an_unknown_split_first(tiny_root, tmp_path):
    from coconut.train.run import evaluate

    with pytest.raises(ConfigError, match="split=bogus: unknown split; choose test or val"):
        evaluate(config(tiny_root, tmp_path / "runs"), str(tmp_path / "missing.ckpt"), split="bogus")


@pytest.mark.parametrize("env, rank", [({}, 0), ({"LOCAL_RANK": "1"}, 1), ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, 1),
                                       ({"RANK": "3", "LOCAL_RANK": "1"}, 3), ({"SLURM_PROCID": "0"}, 0)])
def test_only_the_first_process_of_a_launch_checks_and_writes_the_folder(monkeypatch, env, rank):
    from coconut.train.run import launched_rank

    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert launched_rank() == rank


def test_the_table_continues_an_interrupted_run_instead_of_being_refused(tmp_path):
    from coconut.cli.sweep import Job

    job = Job("prosqa_coconut", 0, ["seed=0"], tmp_path / "prosqa_coconut_seed0")
    assert not any(a.startswith("resume=") for a in job.command()), "a new run starts fresh"
    fake_run(job.run_dir, "config.yaml", "checkpoints/last.ckpt")
    assert job.command()[-1] == f"resume={job.run_dir / 'checkpoints' / 'last.ckpt'}"
