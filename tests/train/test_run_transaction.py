"""The run folder as a transaction, without training: whole-or-nothing writes, one writer, the folder rules
(overwrite only for a folder coconut made, resume only from the run's own checkpoint unless asked), the metrics
history across attempts and a loader that resumes mid-epoch. tests/integration/test_preemption.py trains."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coconut.atomic import TEMP_PREFIX, replace_folder, replacing, write_text
from coconut.run_dir import RunDir, RunFolderError
from coconut.run_lock import RunFolderInUse, RunLock
from tests.train.test_run_folder import fake_run, snapshot

# -- whole or nothing -------------------------------------------------------------------------------


def test_a_write_that_fails_midway_keeps_the_previous_file_and_leaves_no_part(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"the previous good checkpoint")
    with pytest.raises(OSError, match="No space left"):
        with replacing(target) as out:
            out.write(b"half of the new one")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"the previous good checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "no temporary file left behind"
    write_text(target, "new")
    assert target.read_text() == "new"


def test_the_temporary_file_lies_beside_the_target_not_in_the_system_temporary_folder(tmp_path, monkeypatch):
    elsewhere = tmp_path / "system_tmp"
    elsewhere.mkdir()
    monkeypatch.setenv("TMPDIR", str(elsewhere))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    seen = []
    with replacing(tmp_path / "run" / "x.bin") as out:
        seen = [p.name for p in (tmp_path / "run").iterdir()]
        out.write(b"x")
    assert len(seen) == 1 and seen[0].startswith(f"{TEMP_PREFIX}x.bin.") and not list(elsewhere.iterdir())


def test_a_folder_replaced_keeps_the_previous_one_when_filling_fails(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model.safetensors").write_text("old weights")

    def fails(new: Path):
        (new / "model.safetensors").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        replace_folder(folder, fails)
    assert (folder / "model.safetensors").read_text() == "old weights" and len(list(tmp_path.iterdir())) == 1
    replace_folder(folder, lambda new: (new / "model.safetensors").write_text("new weights"))
    assert (folder / "model.safetensors").read_text() == "new weights" and len(list(tmp_path.iterdir())) == 1


def test_a_checkpoint_write_interrupted_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import torch

    from coconut.train.checkpoint_io import AtomicCheckpointIO

    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, path)

    def full_disk(obj, out):
        out.write(b"PK\x03\x04 truncated")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


# -- one writer -------------------------------------------------------------------------------------

HOLDER = """
import sys, time
from coconut.run_lock import RunLock
RunLock(sys.argv[1], "coconut train holder").acquire()
print("held", flush=True)
time.sleep(120)
"""


def start_holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parents[2])
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_until_it_dies(tmp_path):
    folder = tmp_path / "run"
    holder = start_holder(folder)
    try:
        for attempt in (RunLock(folder).probe, RunLock(folder).acquire):
            with pytest.raises(RunFolderInUse) as err:
                attempt()
            message = str(err.value)
            assert f"run folder {folder} is in use by pid {holder.pid} on " in message and "coconut train holder" in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    RunLock(folder).probe()  # a killed holder holds nothing: no stale lock to remove by hand
    with RunLock(folder, "coconut train second") as lock:
        assert lock.held and json.loads((folder / ".lock").read_text())["pid"] == os.getpid()


def test_without_kernel_locks_a_dead_holder_on_this_host_is_taken_over(tmp_path, monkeypatch):
    import fcntl
    import socket

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    folder = tmp_path / "run"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = {"pid": int(dead.stdout), "host": socket.gethostname(), "command": "coconut train", "since": time.time()}
    (folder / ".lock").write_text(json.dumps(record))
    RunLock(folder).acquire().release()  # its process is gone
    (folder / ".lock").write_text(json.dumps({**record, "pid": os.getpid()}))  # a live one (this test)
    with pytest.raises(RunFolderInUse, match=f"pid {os.getpid()}"):
        RunLock(folder).acquire()


def test_the_lock_file_is_not_a_run_file(tmp_path):
    with RunLock(tmp_path / "run"):
        assert RunDir(tmp_path / "run").contents() == []
        RunDir(tmp_path / "run").check_start()  # a folder holding only a lock is free


# -- the folder rules -------------------------------------------------------------------------------


def test_overwrite_empties_only_a_folder_coconut_made(tmp_path):
    fake_run(tmp_path / "user", "notes.txt", "train.json")
    with pytest.raises(RunFolderError, match=r"empties only a run folder coconut made; .* \(notes.txt, train.json\)"):
        RunDir(tmp_path / "user").check_start(overwrite=True)
    fake_run(tmp_path / "marked", "run.json", "notes.txt")  # the marker says coconut made it
    RunDir(tmp_path / "marked").check_start(overwrite=True)
    fake_run(tmp_path / "older", "config.yaml", "checkpoints/last.ckpt", "results.json", "csv/metrics.csv")
    RunDir(tmp_path / "older").check_start(overwrite=True)  # an older version's run: run files only


def test_overwrite_never_deletes_what_the_run_reads(tmp_path):
    fake_run(tmp_path / "run", "run.json", "data/train.json")
    in_use = {"data.train_file": tmp_path / "run" / "data" / "train.json", "data.data_dir": tmp_path / "data"}
    with pytest.raises(RunFolderError, match=r"would delete data.train_file=.*train.json, which lies in run folder"):
        RunDir(tmp_path / "run").check_start(overwrite=True, in_use=in_use)
    with pytest.raises(RunFolderError, match="would delete data.data_dir="):
        RunDir(tmp_path / "run").check_start(overwrite=True, in_use={"data.data_dir": tmp_path / "run"})


def test_resume_takes_the_runs_own_checkpoint_unless_another_is_asked_for(tmp_path):
    fake_run(tmp_path / "a", "run.json", "checkpoints/last.ckpt")
    fake_run(tmp_path / "b", "run.json", "checkpoints/last.ckpt")
    other = str(tmp_path / "b" / "checkpoints" / "last.ckpt")
    with pytest.raises(RunFolderError, match=r"is not a checkpoint of run folder .*/a; .* resume_other_run=true"):
        RunDir(tmp_path / "a").check_start(resume=other)
    with pytest.raises(RunFolderError, match="resume_other_run starts a new run: choose another name="):
        RunDir(tmp_path / "a").check_start(resume=other, resume_other_run=True)
    RunDir(tmp_path / "fresh").check_start(resume=other, resume_other_run=True)
    RunDir(tmp_path / "a").check_start(resume=str(tmp_path / "a" / "checkpoints" / "last.ckpt"))


def test_a_finished_run_continued_keeps_its_results_aside(tmp_path):
    fake_run(tmp_path / "done", "run.json", "results.json", "export/model.safetensors", "checkpoints/last.ckpt")
    run = RunDir(tmp_path / "done")
    with pytest.raises(RunFolderError, match="holds a finished run .* resume_finished=true"):
        run.check_start(resume=str(run.last_checkpoint))
    run.check_start(resume=str(run.last_checkpoint), resume_finished=True)
    assert run.move_finished_aside() == 1
    assert (run.root / "results.before-resume-1.json").read_text() == "results.json of an earlier run\n"
    assert (run.root / "export.before-resume-1" / "model.safetensors").exists() and not run.is_finished()
    fake_run(tmp_path / "again", "results.json")
    (tmp_path / "again" / "results.before-resume-1.json").write_text("{}")
    assert RunDir(tmp_path / "again").move_finished_aside() == 2, "never over an earlier one"


def test_a_resume_on_changed_data_is_refused_unless_allowed(tmp_path, caplog):
    from coconut.data.errors import DataError
    from coconut.experiment import load_config
    from coconut.train.run_folder import StartRequest, check_same_data, data_digests

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.json").write_text("[]")
    cfg = load_config("demo_coconut", [f"output_dir={tmp_path / 'runs'}", f"data.data_dir={data}"])
    run = RunDir(cfg.run_dir)
    run.root.mkdir(parents=True)
    run.marker.write_text(json.dumps({"run_id": "0" * 32, "data": data_digests(cfg.data.files())}))
    request = StartRequest(resume=str(run.last_checkpoint))
    check_same_data(cfg, run, cfg.data.files(), request)  # unchanged
    (data / "train.json").write_text("[ ]")
    with pytest.raises(DataError, match=r"train.json: changed since run .* started .* allow_changed_data=true"):
        check_same_data(cfg, run, cfg.data.files(), request)
    check_same_data(cfg, run, cfg.data.files(), StartRequest(resume=request.resume, allow_changed_data=True))
    assert "allow_changed_data=true" in caplog.text
    check_same_data(cfg, run, cfg.data.files(), StartRequest())  # a new run: nothing to compare


def test_a_resume_with_other_settings_keeps_the_earlier_config_and_names_what_changed(tmp_path, caplog):
    from coconut.experiment import load_config, to_yaml
    from coconut.train.run_folder import StartRequest, commit_run_folder

    def config(*extra):
        return load_config("demo_coconut", [f"output_dir={tmp_path / 'runs'}", f"data.data_dir={tmp_path}", *extra])

    first = config()
    run = RunDir(first.run_dir)
    run.root.mkdir(parents=True)
    run.marker.write_text(json.dumps({"run_id": "0" * 32, "attempts": [{"started": 0}]}))
    # Saved by an earlier version: without data.distractor, which has been added since (its default: no change).
    run.config.write_text(to_yaml(first).replace("  distractor: null\n", ""))
    run.checkpoints.mkdir()
    run.last_checkpoint.write_bytes(b"a checkpoint")
    resume = StartRequest(resume=str(run.last_checkpoint))
    lock, _ = commit_run_folder(config(), run, resume, {}, "abc", None)
    lock.release()
    assert not list(run.root.glob("config.before-resume-*")) and "changed" not in json.loads(run.marker.read_text())[
        "attempts"][-1], "the same settings: nothing kept, nothing named"
    earlier = run.config.read_text()
    lock, _ = commit_run_folder(config("optim.lr=0.5", "trainer.max_epochs=20"), run, resume, {}, "abc", None)
    lock.release()
    assert (run.root / "config.before-resume-3.yaml").read_text() == earlier
    assert "lr: 0.5" in run.config.read_text()
    attempt = json.loads(run.marker.read_text())["attempts"][-1]
    assert attempt["changed"] == {"optim.lr": [first.optim.lr, 0.5], "trainer.max_epochs": [16, 20]}
    assert "resuming with settings other than the run's: optim.lr" in caplog.text
    assert "config.before-resume-3.yaml" in caplog.text
    run.check_start(resume.resume)  # the kept config is one of the run's files


# -- the metrics history ----------------------------------------------------------------------------


def test_metrics_csv_is_continued_and_cut_back_to_a_checkpoints_rows(tmp_path):
    from coconut.train.history import ContinuedWriter

    folder = tmp_path / "csv"
    first = ContinuedWriter(str(folder))
    for step in range(4):
        first.log_metrics({"train/loss": 1.0 / (step + 1)}, step)
    first.save()
    first.log_metrics({"val/acc": 0.5}, 3)  # a new column: the file is written again with both
    first.save()
    assert first.rows_written == 5
    second = ContinuedWriter(str(folder))  # a resumed run: Lightning's writer would delete the file here
    assert second.rows_written == 5 and second.metrics_keys == ["step", "train/loss", "val/acc"]
    second.keep_first(3)  # the checkpoint it resumes from had seen three rows
    second.log_metrics({"train/loss": 0.3}, 3)
    second.save()
    rows = (folder / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,train/loss,val/acc" and [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3"]


# -- the loader resumes mid-epoch ---------------------------------------------------------------------


def test_the_loader_skips_the_batches_its_epoch_had_trained():
    from coconut.train.resumable import ResumableLoader

    loader = ResumableLoader(list(range(10)), batch_size=3)
    loader.epoch, loader.batches_done = 4, lambda: 2
    assert loader.state_dict() == {"epoch": 4, "batches_done": 2} and len(loader) == 4
    loader.load_state_dict({"epoch": 3, "batches_done": 2})  # another epoch's state: the epoch starts afresh
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    loader.load_state_dict({"epoch": 4, "batches_done": 2})
    assert [b.tolist() for b in loader] == [[6, 7, 8], [9]], "the epoch's last batches, once"
    assert len(list(loader)) == 4, "the next pass is whole"


def test_a_stop_is_reported_with_where_to_resume_and_the_schedulers_exit_code(tmp_path):
    from coconut.cli.errors import describe
    from coconut.train.interrupt import RunInterrupted

    stop = RunInterrupted(signal.SIGTERM, tmp_path / "last.ckpt", " (epoch 1, step 6)")
    assert describe(stop, "train") == (143, f"stopped by SIGTERM: saved {tmp_path / 'last.ckpt'} (epoch 1, step 6); "
                                             f"continue with resume={tmp_path / 'last.ckpt'}")
    assert describe(RunInterrupted(signal.SIGINT), "train")[0] == 130


def test_refused_runs_leave_the_folder_as_it_was(tmp_path):
    fake_run(tmp_path / "run", "run.json", "results.json", "checkpoints/last.ckpt")
    before = snapshot(tmp_path)
    for kwargs in ({}, {"resume": str(tmp_path / "elsewhere.ckpt")}, {"resume": str(tmp_path / "run" / "checkpoints" / "last.ckpt")}):
        with pytest.raises(RunFolderError):
            RunDir(tmp_path / "run").check_start(**kwargs)
    assert snapshot(tmp_path) == before
