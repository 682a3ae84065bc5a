"""The demo's pipeline on a very small setting: both runs, every stage evaluated, the table written."""

import json

import pytest

from coconut.cli.demo import format_table, margin95, run_demo
from tests.integration.tiny_run import tiny_overrides

pytestmark = pytest.mark.slow


def test_demo_pipeline_writes_the_results_table(tmp_path, capsys):
    overrides = tiny_overrides(tmp_path, "trainer.max_epochs=3", "data.test_size=20")
    overrides = [o for o in overrides if not o.startswith("output_dir=")] + [f"output_dir={tmp_path / 'demo'}"]
    results = run_demo(overrides)
    methods = [(r["method"], r["stage"]) for r in results["rows"]]
    assert methods == [("CoT (curriculum stage 0)", 0), ("COCONUT", 1), ("COCONUT", 2), ("No-CoT", 0)]
    thoughts = [r["thoughts"] for r in results["rows"]]
    assert thoughts == [0.0, 1.0, 2.0, 0.0]
    steps = [r["train_steps"] for r in results["rows"]]
    assert steps[:3] == [4, 8, 12], "64 samples / 16 = 4 steps an epoch, a checkpoint at the end of each stage"
    assert steps[3] in (4, 8, 12), "No-CoT: the best validation checkpoint"
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert saved["rows"] == results["rows"] and saved["test_questions"] == 20
    table = (tmp_path / "demo" / "results.md").read_text()
    assert table.strip() == format_table(results) and "| No-CoT | 0 |" in table
    assert "| method | stage | training steps so far | accuracy |" in capsys.readouterr().out


def test_margin_is_the_normal_95_interval():
    assert margin95(0.5, 100) == pytest.approx(0.098, abs=1e-3)
    assert margin95(1.0, 100) < 1e-4
