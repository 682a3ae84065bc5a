"""`coconut bench` on tiny shapes: every figure reported."""

from coconut.bench.run import format_table, run_bench
from coconut.bench.settings import BenchConfig


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
