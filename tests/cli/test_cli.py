"""The command line: fast help, and a tiny benchmark whose figures are consistent."""

import json
import subprocess
import sys

from coconut.bench.run import format_table, run_bench
from coconut.bench.settings import BenchConfig
from coconut.cli.main import main


def test_help_does_not_import_torch():
    probe = "import sys\ntry:\n    from coconut.cli.main import main; main(['bench', '--help'])\nexcept SystemExit:\n    pass\nprint('torch loaded:', 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "usage: coconut bench" in out.stdout and "torch loaded: False" in out.stdout


def test_tiny_bench_reports_every_figure(capsys):
    cfg = BenchConfig(layers=1, width=32, heads=2, vocab=64, batch=4, question=6, thoughts=2, after=3,
                      repeats=1, generate_questions=3)
    result = run_bench(cfg, progress=False)
    for key in ("train_step_ratio_vs_plain", "generate_speedup_batched_vs_single",
                "peak_memory_ratio_vs_plain", "max_abs_diff_vs_recompute"):
        assert result[key] > 0 or key == "max_abs_diff_vs_recompute"
    assert result["max_abs_diff_vs_recompute"] < 1e-5
    assert result["generate_batched_equals_single"] is True
    assert result["sequence_length"] == 6 + 2 + 2 + 3
    table = format_table(result)
    assert "| train_step_ratio_vs_plain |" in table and "max_abs_diff_vs_recompute" in table


def test_bench_compares_jacobi_thoughts_and_runs_bf16():
    cfg = BenchConfig(layers=1, width=32, heads=2, vocab=64, batch=4, question=6, thoughts=3, after=3,
                      repeats=1, generate_questions=2, jacobi_iterations=3, precision="bf16")
    result = run_bench(cfg, progress=False)
    assert result["jacobi_step_ratio_vs_sequential"] > 0
    assert result["jacobi_loss_diff_vs_sequential"] < 1e-5, "3 iterations settle 3 thoughts exactly"
    assert "jacobi_step_ratio_vs_sequential (3 iterations)" in format_table(result)
    assert "cpu bf16" in format_table(result)


def test_bench_json_is_one_object(capsys):
    args = ["bench", "--json", "--layers", "1", "--width", "16", "--heads", "2", "--vocab", "32", "--batch", "2",
            "--question", "4", "--thoughts", "1", "--after", "2", "--repeats", "1", "--generate-questions", "2"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["thoughts"] == 1 and "peak_memory_ratio_vs_plain" in result


def test_data_commands_generate_convert_and_compare(tmp_path, capsys):
    out = tmp_path / "mini.jsonl"
    assert main(["data", "prosqa-mini", "--n", "20", "--seed", "1", "--out", str(out)]) == 0
    assert main(["data", "convert", str(out), str(tmp_path / "mini.json")]) == 0
    assert main(["data", "stats", str(tmp_path / "mini.json"), "--against", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| steps distribution |" in table and table.count("| records | 20 | 20 |") == 1
    assert main(["data", "prontoqa", "--n", "3", "--out", str(tmp_path / "p.json")]) == 0


def test_data_errors_are_one_line_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"question": "q", "steps": [1], "answer": "a"}]')
    assert main(["data", "stats", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"coconut data: {bad}: record 0: field 'steps[0]': expected a string, got int"
