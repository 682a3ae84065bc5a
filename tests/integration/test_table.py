"""`coconut table`: the plan of a data set's table, a real tiny two-method table, skipping finished runs."""

import pytest

from coconut.cli.main import main
from coconut.cli.sweep import plan
from tests.integration.tiny_run import tiny_overrides

TINY_GROUPS = ["model=tiny_llama", "data=prosqa_mini", "trainer=cpu", "optim=tiny"]


def test_plan_covers_every_row_and_seed_with_cot_first_and_seeded_init():
    jobs = plan("gsm8k", [0, 1])
    assert len(jobs) == 16 and jobs[0].experiment == "gsm8k_cot"
    coconut = [j for j in jobs if j.experiment == "gsm8k_coconut"]
    assert [o for o in coconut[1].overrides if o.startswith("model.init_from")] == \
           ["model.init_from=runs/gsm8k_cot_seed1/checkpoints/best.ckpt"]
    assert {j.experiment for j in plan("prosqa", [0])} == {f"prosqa_{m}" for m in (
        "cot", "no_cot", "icot", "pause", "coconut", "no_curriculum", "no_thought", "pause_as_thought")}


def test_table_command_errors(capsys):
    assert main(["table", "mnist", "--dry-run"]) == 2
    assert "no experiments named mnist_<method>" in capsys.readouterr().err
    assert main(["table", "prosqa", "--seeds", "a,b", "--dry-run"]) == 2


@pytest.mark.slow
def test_a_tiny_table_trains_reports_and_skips_finished_runs(tmp_path, capsys):
    args = ["table", "prosqa", *TINY_GROUPS, *tiny_overrides(tmp_path), "--seeds", "0,1", "--methods", "no_cot,coconut"]
    assert main(args) == 0
    out = capsys.readouterr().out
    markdown = (tmp_path / "runs" / "table_prosqa" / "results_table.md").read_text().strip()
    assert markdown in out, "the table printed is the one written"
    rows = [line for line in markdown.splitlines() if line.startswith(("| No-CoT |", "| COCONUT |"))]
    assert len(rows) == 2 and all("[2]" in row for row in rows), "one row per method, both seeds in each"
    assert main(args) == 0
    assert capsys.readouterr().out.count("done, skipped") == 4
