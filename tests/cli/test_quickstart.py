"""`coconut quickstart`: the first run trains end to end into its run folder and says where to look; a second
one into the same folder is refused with the way to train it again, and changes nothing."""

import json

import pytest

from coconut.cli.main import main

# The quick start's own schedule, shrunk so that the test takes seconds: the same experiment, curriculum and
# commands, a smaller model and data set.
SMALL = ["model.layers=1", "model.hidden=16", "model.heads=2", "model.intermediate=32", "data.train_size=128",
         "data.val_size=16", "data.test_size=16", "data.batch_size=32", "data.eval_batch_size=16",
         "trainer.limit_train_batches=2", "trainer.progress_bar=false"]


@pytest.mark.slow
def test_quickstart_trains_to_results_and_prints_where_to_look(tmp_path, capsys):
    where = [f"output_dir={tmp_path / 'runs'}", f"data.data_dir={tmp_path / 'data'}"]
    assert main(["quickstart", *where, *SMALL]) == 0
    run = tmp_path / "runs" / "quickstart"
    results = json.loads((run / "results.json").read_text())
    assert results["method"] == "coconut" and results["test_stage"] >= 3
    out = capsys.readouterr().out
    assert f"coconut think {run}" in out and "make tensorboard" in out and f"{run / 'accuracy_vs_tokens.png'}" in out
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    assert main(["quickstart", *where, *SMALL]) == 2
    assert "coconut quickstart overwrite=true" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before
