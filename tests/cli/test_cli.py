"""The command line: fast help, one-line errors, the bench's JSON, the data commands, the config dry run."""

import json
import subprocess
import sys

import pytest

from coconut.cli.main import main


def test_help_does_not_import_torch():
    probe = "import sys\ntry:\n    from coconut.cli.main import main; main(['bench', '--help'])\nexcept SystemExit:\n    pass\nprint('torch loaded:', 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "usage: coconut bench" in out.stdout and "torch loaded: False" in out.stdout


def test_bench_json_is_one_object(capsys):
    args = ["bench", "--json", "--layers", "1", "--width", "16", "--heads", "2", "--vocab", "32", "--batch", "2",
            "--question", "4", "--thoughts", "1", "--after", "2", "--repeats", "1", "--generate-questions", "2"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    c = result["config"]
    assert (c["layers"], c["width"], c["heads"], c["vocab"], c["batch"], c["question"], c["thoughts"], c["after"],
            c["repeats"], c["generate_questions"]) == (1, 16, 2, 32, 2, 4, 1, 2, 1, 2), "the flags reach the config"
    assert result["sequence_length"] == 4 + 1 + 2 + 2
    assert result["peak_memory_ratio_vs_plain"] == pytest.approx(result["latent_peak_mb"] / result["plain_peak_mb"])
    assert result["generate_batched_equals_single"] is True


def test_data_commands_generate_convert_and_compare(tmp_path, capsys):
    out = tmp_path / "mini.jsonl"
    assert main(["data", "prosqa-mini", "--n", "20", "--seed", "1", "--out", str(out)]) == 0
    assert main(["data", "convert", str(out), str(tmp_path / "mini.json")]) == 0
    assert main(["data", "stats", str(tmp_path / "mini.json"), "--against", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| steps distribution |" in table and table.count("| records | 20 | 20 |") == 1
    assert main(["data", "prontoqa", "--n", "3", "--out", str(tmp_path / "p.json")]) == 0
    from coconut.data.records import load_records

    assert load_records(tmp_path / "mini.json") == load_records(out), "convert keeps every record"
    assert len(load_records(out)) == 20 and len(load_records(tmp_path / "p.json")) == 3


def test_data_errors_are_one_line_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"question": "q", "steps": [1], "answer": "a"}]')
    assert main(["data", "stats", str(bad)]) == 2, "a data error is exit 2 in every command"
    err = capsys.readouterr().err
    assert err.strip() == f"coconut data stats: {bad}: record 0: field 'steps[0]': expected a string, got int"


def test_dry_run_prints_the_resolved_config(capsys):
    assert main(["train", "prosqa_coconut", "trainer.devices=2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "devices: 2" in out and "max_latent_stage: 6" in out


def test_cli_errors_are_one_line(capsys):
    assert main(["train", "demo_coconut", "optim.lr=fast"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("coconut train: config in demo_coconut:") and "\n" not in err
    assert main(["eval", "demo_coconut"]) == 2  # a missing option is a usage error, found when parsing
    assert capsys.readouterr().err.strip() == ("coconut eval: ckpt=PATH or model.release_checkpoint=HUB_ID|PATH (a "
                                               "method's release checkpoint) is required with an experiment name (a run "
                                               "folder has a default: coconut eval RUN_DIR) (see coconut eval --help)")


def test_think_refuses_bad_arguments_and_folders_in_one_line(tmp_path, capsys):
    assert main(["think", str(tmp_path), "--top", "0"]) == 2
    assert capsys.readouterr().err.strip() == "coconut think: --top 0: must be >= 1 (see coconut think --help)"
    assert main(["think", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"coconut think: {tmp_path / 'config.yaml'}: no such file; RUN_DIR must be a run folder written "
                   "by coconut train")


def test_gpu_experiment_without_gpu_is_a_clear_message(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["train", "prosqa_coconut", "output_dir=/nonexistent/never-created"]) == 2
    assert "no CUDA GPU is visible" in capsys.readouterr().err


def test_no_command_prints_usage_on_stderr_and_exits_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("usage: coconut") and "quickstart" in out.err and out.out == ""


def test_list_shows_every_experiment_with_its_description_in_one_column(capsys):
    from coconut.cli.listing import description
    from coconut.experiment import EXPERIMENTS_DIR, experiment_names

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert set(rows) == set(experiment_names())
    columns = set()
    for name, line in rows.items():
        text = description(EXPERIMENTS_DIR / f"{name}.yaml")
        assert text and line.endswith(text), name
        columns.add(line.index(text))
    assert len(columns) == 1, "descriptions start in one column"
    assert main(["list", "method"]) == 0
    methods = capsys.readouterr().out
    assert "  pause_as_thought  Pause as thought:" in methods and "  coconut " in methods


def test_help_columns_line_up_with_long_names(capsys):
    assert main(["--help"]) == 0
    top = capsys.readouterr().out.splitlines()
    commands = [line for line in top if line.startswith("    ") and not line.startswith("     ")]
    assert any(line.startswith("    quickstart  ") for line in commands), "the longest name keeps its help beside it"
    assert len({len(line) - len(line[4:].split(" ", 1)[1].lstrip()) for line in commands}) == 1
    assert main(["analyze", "--help"]) == 0
    epilog = capsys.readouterr().out.split("options (key=value")[1].splitlines()[1:]
    starts = {len(line) - len(line.split(None, 1)[1]) for line in epilog if line.strip()}
    assert len(starts) == 1, epilog
