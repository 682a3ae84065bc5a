"""`coconut report` on fake run folders: grouping by seed, mean +- std, paper figures, clear errors."""

import csv
import json

import pytest

from coconut.cli.main import main
from coconut.experiment import load_config, to_yaml
from coconut.analysis.report import ReportError, find_runs, read_run, report


def fake_run(root, experiment, seed, acc, tokens, *overrides):
    cfg = load_config(experiment, [f"seed={seed}", f"name={experiment}_seed{seed}", *overrides])
    run = root / cfg.name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(cfg))
    (run / "results.json").write_text(json.dumps({"name": cfg.name, "test": {"test/acc": acc, "test/tokens": tokens}}))
    return run


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, acc, tokens in ((0, 0.96, 14.0), (1, 0.98, 14.4), (2, 0.97, 14.2)):
        fake_run(root, "prosqa_coconut", seed, acc, tokens)
    fake_run(root, "prosqa_cot", 0, 0.75, 49.0)
    fake_run(root, "prosqa_cot", 1, 0.79, 50.0)
    fake_run(root, "prontoqa_no_cot", 0, 0.9, 3.0)
    fake_run(root, "prosqa_cot", 5, 0.7, 30.0, "decode=soft_thinking")
    return root


def test_report_groups_seeds_and_writes_markdown_csv_and_plot(runs, tmp_path):
    out = tmp_path / "report"
    result = report([runs], out)
    rows = {(r["dataset"], r["method"]): r for r in result["rows"]}
    coconut = rows[("prosqa", "COCONUT")]
    assert coconut["runs"] == 3 and coconut["seeds"] == [0, 1, 2]
    assert coconut["acc"] == pytest.approx(97.0) and coconut["acc_std"] == pytest.approx(1.0)
    assert coconut["tokens"] == pytest.approx(14.2)
    assert (coconut["paper_acc"], coconut["paper_tokens"]) == (97.0, 14.2)
    cot = rows[("prosqa", "CoT")]
    assert cot["acc"] == pytest.approx(77.0) and cot["acc_std"] == pytest.approx(2.83, abs=0.01)
    soft = rows[("prosqa", "CoT (soft thinking)")]
    assert soft["runs"] == 1 and soft["paper_acc"] is None, "a decoding variant is its own row, not the paper's"
    markdown = (out / "results_table.md").read_text().splitlines()
    assert markdown[0] == ("| method | prontoqa: accuracy % (tokens) [runs] | prosqa: accuracy % (tokens) [runs] "
                           "| paper prontoqa | paper prosqa |")
    assert markdown[2].startswith("| CoT |") and "77.0 +- 2.8 (49.5) [2]" in markdown[2]
    assert markdown[3].startswith("| CoT (soft thinking) |")
    assert "| No-CoT | 90.0 +- 0.0 (3.0) [1] |  | 93.8 (3.0) |  |" in markdown
    assert "| COCONUT |  | 97.0 +- 1.0 (14.2) [3] |  | 97.0 (14.2) |" in markdown
    table = list(csv.DictReader((out / "results_table.csv").open()))
    assert len(table) == 4 and table[0]["dataset"] == "prontoqa"
    import matplotlib.image

    # One panel per data set, 5.5 x 4.2 inches each, at 110 dpi: two panels are 1210 x 462 RGBA pixels.
    image = matplotlib.image.imread(out / "results_table.png")
    assert image.shape == (462, 1210, 4)
    assert result["files"]["plot"] == str(out / "results_table.png")
    assert float(image[..., :3].std()) > 0.05, "the figure has content, not a blank canvas"


def test_report_command_prints_the_table(runs, tmp_path, capsys):
    assert main(["report", str(runs / "prosqa_coconut_seed0"), str(runs / "prosqa_coconut_seed1"),
                 "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "| COCONUT | 97.0 +- 1.4 (14.2) [2] | 97.0 (14.2) |" in out and "2 runs" in out


def test_report_errors_name_the_file_and_field(runs, tmp_path, capsys):
    broken = runs / "prosqa_cot_seed0" / "results.json"
    broken.write_text(json.dumps({"test": {"test/tokens": 3.0}}))
    with pytest.raises(ReportError, match=r"prosqa_cot_seed0/results.json: field 'test' has no 'test/acc'"):
        read_run(broken.parent)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="empty: no results.json in it or below"):
        find_runs([tmp_path / "empty"])
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err


def test_runs_of_other_settings_get_rows_of_their_own(tmp_path):
    root = tmp_path / "runs"
    fake_run(root, "demo_coconut", 0, 0.78, 6.0)
    fake_run(root, "demo_coconut", 1, 0.80, 6.0)
    fake_run(root, "demo_analysis", 0, 0.85, 6.0)
    fake_run(root, "demo_jacobi", 0, 0.76, 6.0)
    rows = {r["method"]: r for r in report([root], tmp_path / "out")["rows"]}
    assert set(rows) == {"COCONUT [demo_coconut]", "COCONUT [demo_analysis]", "COCONUT (Jacobi 2)"}
    assert rows["COCONUT [demo_coconut]"]["runs"] == 2 and rows["COCONUT [demo_coconut]"]["acc"] == pytest.approx(79.0)
