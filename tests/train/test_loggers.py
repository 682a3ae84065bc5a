"""The loggers `logger=` names, built under the run folder; the metrics history is always among them."""

from pathlib import Path

import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.profilers import AdvancedProfiler, PyTorchProfiler, SimpleProfiler

from coconut.experiment import load_config
from coconut.run_dir import RunDir
from coconut.train.history import HistoryCSVLogger
from coconut.train.trainer import build_loggers, build_profiler


@pytest.mark.parametrize("override, kinds", [
    (None, [TensorBoardLogger, HistoryCSVLogger]),  # TensorBoard first: trainer.log_dir is its folder
    ("logger=csv", [HistoryCSVLogger]),
    ("logger=tensorboard", [TensorBoardLogger, HistoryCSVLogger]),  # the history even when csv is not named
    ("logger=null", [HistoryCSVLogger]),
])
def test_the_history_is_always_written_and_logger_adds_the_others(tmp_path, override, kinds):
    cfg = load_config("demo_coconut", [f"output_dir={tmp_path}"] + ([override] if override else []))
    loggers = build_loggers(cfg, RunDir(cfg.run_dir))
    assert [type(logger) for logger in loggers] == kinds
    assert all(Path(logger.log_dir).parent == cfg.run_dir for logger in loggers), "every logger writes in the run folder"
    assert not cfg.run_dir.exists(), "building the loggers writes nothing yet"


@pytest.mark.parametrize("name, kind", [("simple", SimpleProfiler), ("advanced", AdvancedProfiler),
                                        ("pytorch", PyTorchProfiler)])
def test_the_profiler_reports_into_the_run_folder(tmp_path, name, kind):
    profiler = build_profiler(name, RunDir(tmp_path / "run"))
    assert type(profiler) is kind and Path(profiler.dirpath) == tmp_path / "run" / "profiler"
    assert build_profiler(None, RunDir(tmp_path / "run")) is None
