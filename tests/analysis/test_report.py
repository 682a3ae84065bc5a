"""`coconut report` on fake run folders: grouping by seed, mean +- std, paper figures, clear errors, skipped folders,
runs tested on val marked."""

import csv
import json

import pytest

from coconut.cli.main import main
from coconut.experiment import load_config, to_yaml
from coconut.analysis.report import ReportError, find_runs, read_run, report


def fake_run(root, experiment, seed, acc, tokens, *overrides, **results):
    cfg = load_config(experiment, [f"seed={seed}", f"name={experiment}_seed{seed}", *overrides])
    run = root / cfg.name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(cfg))
    (run / "results.json").write_text(json.dumps({"name": cfg.name, "test": {"test/acc": acc, "test/tokens": tokens},
                                                  **results}))
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
    assert "| No-CoT | 90.0 (3.0) [1] |  | 93.8 (3.0) |  |" in markdown
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
    fake_run(root, "demo_learned_stop", 0, 0.78, 5.1, "eval.thoughts=fixed")  # unpadded: thoughts = gold steps
    rows = {r["method"]: r for r in report([root], tmp_path / "out")["rows"]}
    assert set(rows) == {"COCONUT [demo_coconut]", "COCONUT [demo_analysis]", "COCONUT (Jacobi 2)",
                         "COCONUT (thoughts = gold steps)"}
    assert rows["COCONUT [demo_coconut]"]["runs"] == 2 and rows["COCONUT [demo_coconut]"]["acc"] == pytest.approx(79.0)


def demo_layout(root):
    """What `make demo` leaves: runs/demo/results.json is the demo's summary; its runs are folders below it."""
    demo = root / "demo"
    fake_run(demo, "demo_coconut", 0, 0.78, 6.0)
    fake_run(demo, "demo_no_cot", 0, 0.61, 3.0)
    (demo / "results.json").write_text(json.dumps({"rows": [{"method": "COCONUT"}], "test_questions": 1000}))
    (demo / "results.md").write_text("| method |\n")
    return demo


def test_the_demo_summary_is_skipped_and_said(tmp_path, capsys):
    # `make report` after `make demo` failed: runs/demo was taken for a run folder and had no config.yaml.
    demo = demo_layout(tmp_path / "runs")
    result = report([tmp_path / "runs"], tmp_path / "out")
    assert sorted(r["method"] for r in result["rows"]) == ["COCONUT", "No-CoT"]
    assert result["skipped"] == [f"{demo}: not a run folder (a results.json without config.yaml, such as the demo's "
                                 f"summary)"]
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out2")]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"coconut report: skipped {demo}: not a run folder (a results.json without "
                                f"config.yaml, such as the demo's summary)"]
    assert "2 runs, 1 skipped; written:" in out
    # Named on its own, the demo folder reports the runs inside it.
    assert len(report([demo], tmp_path / "out3")["runs"]) == 2


def bad_config(text):
    return lambda run: (run / "config.yaml").write_text(text)


def bad_results(data):
    return lambda run: (run / "results.json").write_text(data if isinstance(data, str) else json.dumps(data))


@pytest.mark.parametrize("spoil, culprit, message", [
    (bad_config("name: x\nmethod: [coconut\n"), "config.yaml",
     "not valid YAML (did not find expected ',' or ']', line 3)"),
    (bad_config("- a list\n- of things\n"), "config.yaml", "expected a mapping of config keys, got a list"),
    (bad_config("name: x\nseed: 0\n"), "config.yaml", "not a run's config (Missing key method"),
    (bad_config("name: x\nseed: zero\nmethod: {name: cot}\ndata: {generator: prosqa}\n"), "config.yaml",
     "seed is 'zero', not an integer"),
    (bad_results({"test": {"test/acc": "0.97", "test/tokens": 14.0}}), "results.json",
     "field 'test/acc' is '0.97', not a finite number"),
    (bad_results({"test": {"test/acc": 0.97, "test/tokens": True}}), "results.json",
     "field 'test/tokens' is True, not a finite number"),
    (bad_results('{"test": {"test/acc": NaN, "test/tokens": 1}}'), "results.json",
     "field 'test/acc' is nan, not a finite number"),
    (bad_results("{oops"), "results.json", "not valid JSON"),
    (bad_results([1, 2]), "results.json", "expected an object with a field 'test'"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 1}, "test_split": "train"}), "results.json",
     "field 'test_split' is 'train', expected 'test' or 'val'"),
])
def test_an_unreadable_run_is_skipped_with_one_line(tmp_path, capsys, spoil, culprit, message):
    root = tmp_path / "runs"
    fake_run(root, "prosqa_cot", 0, 0.75, 49.0)
    bad = fake_run(root, "prosqa_coconut", 0, 0.97, 14.0)
    spoil(bad)
    result = report([root], tmp_path / "out")
    assert [r["method"] for r in result["rows"]] == ["CoT"], "the readable run is still reported"
    assert len(result["skipped"]) == 1 and result["skipped"][0].startswith(f"{bad / culprit}: ")
    assert message in result["skipped"][0]
    assert main(["report", str(root), "--out", str(tmp_path / "out2")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"coconut report: skipped {bad / culprit}: ") and "Traceback" not in err[0]


def test_nothing_readable_is_an_error_naming_each_run(tmp_path, capsys):
    root = tmp_path / "runs"
    bad_results({"test": {"test/acc": "high", "test/tokens": 1}})(fake_run(root, "prosqa_cot", 0, 0.7, 49.0))
    (root / "summary").mkdir()
    (root / "summary" / "results.json").write_text("{}")
    with pytest.raises(ReportError, match=r"^no run could be read; .*summary: not a run folder.*; "
                                          r".*prosqa_cot_seed0/results.json: field 'test/acc' is 'high'"):
        report([root], tmp_path / "out")
    assert main(["report", str(root), "--out", str(tmp_path / "out2")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_runs_tested_on_val_are_marked(tmp_path):
    # With no test file the run evaluates val and results.json says so; the table must not pass it off as test.
    root = tmp_path / "runs"
    fake_run(root, "prosqa_coconut", 0, 0.96, 14.0, test_split="val")
    fake_run(root, "prosqa_coconut", 1, 0.98, 14.4)
    fake_run(root, "prosqa_cot", 0, 0.75, 49.0, test_split="test")
    out = tmp_path / "out"
    rows = {r["method"]: r for r in report([root], out)["rows"]}
    assert rows["COCONUT"]["val_runs"] == 1 and rows["CoT"]["val_runs"] == 0
    markdown = (out / "results_table.md").read_text().splitlines()
    assert "| COCONUT | 97.0 +- 1.4 (14.2) [2] \u2020 | 97.0 (14.2) |" in markdown
    assert "| CoT | 75.0 (49.0) [1] | 77.5 (49.4) |" in markdown, "a run tested on test has no mark"
    assert markdown[-1].startswith("\u2020 includes runs tested on the val split: their data had no test file")
    table = {r["method"]: r for r in csv.DictReader((out / "results_table.csv").open())}
    assert (table["COCONUT"]["val_runs"], table["CoT"]["val_runs"]) == ("1", "0")


def test_no_mark_without_val_runs(runs, tmp_path):
    report([runs], tmp_path / "out")
    assert "\u2020" not in (tmp_path / "out" / "results_table.md").read_text()
