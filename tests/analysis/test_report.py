"""`coconut report` on fake run folders: grouping by seed, mean +- std, paper figures, clear errors, skipped folders,
impossible figures refused, copies of a run counted once, runs tested on val or with an incomplete schedule marked."""

import csv
import json
import shutil
import uuid

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
    # Figures no run can produce: refused, never shown (an accuracy of 7.5 would read 750 %).
    (bad_results({"test": {"test/acc": 7.5, "test/tokens": 14.0}}), "results.json",
     "field 'test/acc' is 7.5, outside [0, 1] (a fraction of the questions)"),
    (bad_results({"test": {"test/acc": -0.1, "test/tokens": 14.0}}), "results.json",
     "field 'test/acc' is -0.1, outside [0, 1]"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": -2.0}}), "results.json",
     "field 'test/tokens' is -2.0, below 0 (a mean count per question)"),
    (bad_results('{"test": {"test/acc": 0.9, "test/tokens": Infinity}}'), "results.json",
     "field 'test/tokens' is inf, not a finite number"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0, "test/cot_match": 1.5}}), "results.json",
     "field 'test/cot_match' is 1.5, outside [0, 1]"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0, "test/thoughts": -1}}), "results.json",
     "field 'test/thoughts' is -1, below 0"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0}, "effective_batch": 0}), "results.json",
     "field 'effective_batch' is 0, not an integer >= 1 (examples per optimizer step)"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0}, "effective_batch": 2.5}), "results.json",
     "field 'effective_batch' is 2.5, not an integer >= 1"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0}, "test_stage": -1}), "results.json",
     "field 'test_stage' is -1, not an integer >= 0"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0}, "seconds": -5}), "results.json",
     "field 'seconds' is -5, below 0"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0}, "run_id": "copy-1"}), "results.json",
     "field 'run_id' is 'copy-1', not a run id"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0}, "run_id": 7}), "results.json",
     "field 'run_id' is 7, not a run id"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0}, "tested_checkpoint": "stage3"}), "results.json",
     "field 'tested_checkpoint' is \"stage3\", expected \"best\" or \"last\""),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0}, "schedule_complete": 0}), "results.json",
     "field 'schedule_complete' is 0, expected true or false"),
    (bad_results({"test": {"test/acc": 0.9, "test/tokens": 14.0}, "checkpoint": 3}), "results.json",
     "field 'checkpoint' is 3, not a path"),
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
    text = (tmp_path / "out" / "results_table.md").read_text()
    assert "\u2020" not in text and "\u2021" not in text


def test_an_impossible_accuracy_is_refused_never_shown_as_a_percentage(tmp_path, capsys):
    root = tmp_path / "runs"
    run = fake_run(root, "prosqa_coconut", 0, 7.5, 14.0)
    assert main(["report", str(root), "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert "750" not in out + err and not (tmp_path / "out").exists()
    assert err.splitlines() == [f"coconut report: no run could be read; {run / 'results.json'}: field 'test/acc' is "
                                "7.5, outside [0, 1] (a fraction of the questions); the run is not counted: was "
                                "results.json edited or written by another program?"]
    fake_run(root, "prosqa_coconut", 1, 0.97, 14.0)  # beside a sound run, it is skipped and the other reported
    result = report([root], tmp_path / "out")
    assert [(r["runs"], r["acc"]) for r in result["rows"]] == [(1, 97.0)]


@pytest.mark.parametrize("run_id", [uuid.uuid4().hex, None], ids=["run_id", "older-run-without-run_id"])
def test_a_copied_run_folder_is_one_seed_with_a_line_naming_both(tmp_path, capsys, run_id):
    root = tmp_path / "runs"
    ids = {"run_id": run_id} if run_id else {}
    original = fake_run(root, "prosqa_coconut", 0, 0.96, 14.0, **ids)
    fake_run(root, "prosqa_coconut", 1, 0.98, 14.4, **({"run_id": uuid.uuid4().hex} if run_id else {}))
    copy = root / "prosqa_coconut_seed0 (copy)"
    shutil.copytree(original, copy)
    result = report([root], tmp_path / "out")
    assert [(r["runs"], r["seeds"], r["acc"]) for r in result["rows"]] == [(2, [0, 1], 97.0)]
    same = f"run_id {run_id}" if run_id else "the same results.json byte for byte, no run_id"
    line = f"{copy}: a copy of the run in {original} ({same}); counted once, not as another seed"
    assert result["skipped"] == [line] and result["runs"] == [str(original), str(root / "prosqa_coconut_seed1")]
    assert main(["report", str(root), "--out", str(tmp_path / "out2")]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"coconut report: skipped {line}"] and "2 runs, 1 skipped" in out


def test_runs_are_known_by_run_id_not_by_their_figures(tmp_path):
    """Two runs with equal figures are two runs; a copy edited afterwards is still the same run."""
    root = tmp_path / "runs"
    run_id = str(uuid.uuid4())  # the dashed form names the same run as its 32 hex digits
    fake_run(root, "prosqa_coconut", 0, 0.96, 14.0, run_id=run_id)
    fake_run(root, "prosqa_coconut", 1, 0.96, 14.0, run_id=uuid.uuid4().hex)
    copy = fake_run(root / "x_copies", "prosqa_coconut", 0, 0.5, 14.0, run_id=uuid.UUID(run_id).hex)
    result = report([root], tmp_path / "out")
    assert result["rows"][0]["runs"] == 2 and result["rows"][0]["acc"] == pytest.approx(96.0)
    assert len(result["skipped"]) == 1 and result["skipped"][0].startswith(f"{copy}: a copy of the run in ")


def test_runs_tested_at_last_with_an_incomplete_schedule_are_marked(tmp_path):
    root = tmp_path / "runs"
    fake_run(root, "prosqa_coconut", 0, 0.96, 14.0, checkpoint="runs/x/checkpoints/best.ckpt",
             tested_checkpoint="best", schedule_complete=True)
    fake_run(root, "prosqa_coconut", 1, 0.40, 14.4, checkpoint="runs/y/checkpoints/last.ckpt",
             tested_checkpoint="last", schedule_complete=False)
    fake_run(root, "prosqa_cot", 0, 0.75, 49.0)  # written before these keys: shown as before
    # eval.checkpoint=last on a complete schedule: no mark.
    fake_run(root, "prosqa_no_cot", 0, 0.7, 8.0, tested_checkpoint="last", schedule_complete=True)
    out = tmp_path / "out"
    rows = {r["method"]: r for r in report([root], out)["rows"]}
    assert rows["COCONUT"]["incomplete_runs"] == 1 and rows["COCONUT"]["tested_checkpoints"] == "best last"
    assert (rows["CoT"]["incomplete_runs"], rows["CoT"]["tested_checkpoints"]) == (0, "")
    markdown = (out / "results_table.md").read_text().splitlines()
    assert "| COCONUT | 68.0 +- 39.6 (14.2) [2] \u2021 | 97.0 (14.2) |" in markdown
    assert "| CoT | 75.0 (49.0) [1] | 77.5 (49.4) |" in markdown
    assert "| No-CoT | 70.0 (8.0) [1] | 76.7 (8.2) |" in markdown, "last.ckpt of a complete schedule is no mark"
    assert markdown[-1].startswith("\u2021 includes runs whose schedule ended before the method's final stage: they "
                                   "tested last.ckpt, a checkpoint of an earlier stage")
    assert "\u2020" not in "\n".join(markdown)
    table = {r["method"]: r for r in csv.DictReader((out / "results_table.csv").open())}
    assert (table["COCONUT"]["incomplete_runs"], table["COCONUT"]["tested_checkpoints"]) == ("1", "best last")
    assert (table["CoT"]["incomplete_runs"], table["CoT"]["tested_checkpoints"]) == ("0", "")
    assert (table["No-CoT"]["incomplete_runs"], table["No-CoT"]["tested_checkpoints"]) == ("0", "last")


def test_codi_beside_its_published_accuracy(tmp_path):
    root = tmp_path / "runs"
    fake_run(root, "gsm8k_codi", 0, 0.40, 9.0)
    fake_run(root, "gsm8k_coconut", 0, 0.33, 8.0)
    out = report([root], tmp_path / "out")
    row = next(r for r in out["rows"] if r["method"] == "CODI")
    assert (row["paper_acc"], row["paper_tokens"]) == (43.7, None)
    line = next(l for l in (tmp_path / "out").rglob("*.md").__next__().read_text().splitlines() if l.startswith("| CODI"))
    assert line.endswith("| 43.7 |"), "accuracy only: CODI's paper gives no token count"


def test_runs_resumed_with_other_settings_are_marked(tmp_path):
    root = tmp_path / "runs"
    changed = fake_run(root, "prosqa_coconut", 0, 0.96, 14.0)
    (changed / "run.json").write_text(json.dumps({"run_id": uuid.uuid4().hex, "attempts": [
        {"started": 1}, {"started": 2, "changed": {"optim.lr": [0.0001, 0.0005]}}]}))
    same = fake_run(root, "prosqa_coconut", 1, 0.98, 14.4)
    (same / "run.json").write_text(json.dumps({"run_id": uuid.uuid4().hex, "attempts": [{"started": 1}, {"started": 2}]}))
    fake_run(root, "prosqa_cot", 0, 0.75, 49.0)  # no run.json (an older run): no mark
    out = tmp_path / "out"
    rows = {r["method"]: r for r in report([root], out)["rows"]}
    assert (rows["COCONUT"]["changed_runs"], rows["CoT"]["changed_runs"]) == (1, 0)
    markdown = (out / "results_table.md").read_text().splitlines()
    assert "| COCONUT | 97.0 +- 1.4 (14.2) [2] \u00a7 | 97.0 (14.2) |" in markdown
    assert markdown[-1].startswith("\u00a7 includes runs resumed with other settings than they started with")
    table = {r["method"]: r for r in csv.DictReader((out / "results_table.csv").open())}
    assert (table["COCONUT"]["changed_runs"], table["CoT"]["changed_runs"]) == ("1", "0")

