"""The GPU check script runs end to end (on a CPU with --tiny) and reports every figure docs/bench.md needs."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


def test_gpu_check_tiny_runs_and_reports(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--tiny", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    bench = report["bench"]
    cfg = bench["config"]
    assert (cfg["precision"], cfg["thoughts"], cfg["jacobi_iterations"], cfg["repeats"]) == ("bf16", 3, 3, 1)
    seq_len = cfg["question"] + cfg["thoughts"] + 2 + cfg["after"]
    assert bench["sequence_length"] == seq_len
    # The figures are the ratios of what was timed (one timed pair), each finite and plausible.
    assert bench["latent_train_tokens_per_s"] == pytest.approx(cfg["batch"] * seq_len * 1000 / bench["latent_step_ms"])
    assert bench["train_step_ratio_vs_plain"] == pytest.approx(bench["latent_step_ms"] / bench["plain_step_ms"])
    assert bench["generate_speedup_batched_vs_single"] == pytest.approx(
        bench["generate_batched_questions_per_s"] / bench["generate_single_questions_per_s"])
    for key in ("train_step_ratio_vs_plain", "generate_speedup_batched_vs_single", "jacobi_step_ratio_vs_sequential"):
        assert math.isfinite(bench[key]) and 0.02 < bench[key] < 50, (key, bench[key])
    assert bench["generate_batched_equals_single"] is True
    assert 0.0 <= bench["max_abs_diff_vs_recompute"] < 1e-5
    assert 0.0 <= bench["jacobi_loss_diff_vs_sequential"] < 1e-5, "3 iterations settle 3 thoughts exactly"
    assert bench["table"] in proc.stdout

    smoke = report["bf16_training"]
    assert (smoke["precision"], smoke["devices"]) == ("bf16-mixed", 1)
    test = smoke["test"]
    # 3 epochs of the tiny curriculum: the final stage 2 has 2 thoughts; 24 test questions.
    assert test["test/thoughts"] == 2.0
    assert test["test/tokens"] == pytest.approx(test["test/language_tokens"] + test["test/thoughts"], abs=1e-4)
    # Sequential thoughts: a pass up to <bot>, one per thought but the last, one from the last thought on, then one
    # per later token (EOS included: the paper's token count leaves it out).
    assert test["test/passes"] == pytest.approx(test["test/language_tokens_with_eos"] + test["test/thoughts"], abs=1e-4)
    assert test["test/acc"] * 24 == pytest.approx(round(test["test/acc"] * 24), abs=1e-3), "a count of 24 questions"
    assert smoke["seconds"] > 0
    assert f"| train_step_ratio_vs_plain | {bench['train_step_ratio_vs_plain']:.3f} |" in proc.stdout
    assert f"| generate_time_ratio_vs_hf (HF generate, same batch and length) | {bench['generate_time_ratio_vs_hf']:.3f} |" \
        in proc.stdout
    assert f"test acc {test['test/acc']:.2f} |" in proc.stdout
    assert f"| train_step_ratio_vs_same_calls | {bench['train_step_ratio_vs_same_calls']:.3f} |" in proc.stdout
    assert "compiled" not in report, "--tiny compiles nothing unless asked"


def _gpu_check_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_compiled_bench_reports_its_figures_or_why_it_did_not_compile(aot_eager, monkeypatch):
    """On a lent GPU the compiled passes are measured beside eager ones; a mode that fails to compile is reported
    in the report's table, and the rest of the check still runs."""
    gpu_check = _gpu_check_module()
    cfg = gpu_check.bench_config(tiny=True, device="cpu")
    figures = gpu_check.compiled_figures(cfg, "default")
    assert figures["compile_mode"] == "default" and "error" not in figures
    assert figures["compiled_step_ratio_vs_plain"] == pytest.approx(
        figures["compiled_latent_step_ms"] / figures["plain_step_ms"])
    assert 0.0 <= figures["compiled_loss_diff_vs_eager"] < 1e-5 and aot_eager

    import coconut.bench.compiled

    def broken(*args, **kwargs):
        raise RuntimeError("cudagraphs refused a mutated input")

    monkeypatch.setattr(coconut.bench.compiled, "compile_figures", broken)
    failed = gpu_check.compiled_figures(cfg, "reduce-overhead")
    assert failed == {"compile_mode": "reduce-overhead", "error": "RuntimeError: cudagraphs refused a mutated input"}
    bench = {"latent_train_tokens_per_s": 1.0, "train_step_ratio_vs_plain": 1.5, "decoder_calls": 4,
             "same_calls_step_ratio_vs_plain": 1.2, "train_step_ratio_vs_same_calls": 1.25,
             "peak_memory_ratio_vs_plain": 1.0, "generate_speedup_batched_vs_single": 10.0,
             "generate_time_ratio_vs_hf": 1.0, "jacobi_iterations": 3, "jacobi_step_ratio_vs_sequential": 1.0}
    report = {"date": "2026-01-01", "gpu": "GPU", "device": "cuda", "gpus": 1, "torch": "x", "bench": bench}
    for compiled, row in ((failed, "| latent.compile=reduce-overhead | did not compile: RuntimeError: cudagraphs"),
                          (figures, f"| compiled latent step / plain step (latent.compile=default) | "
                                    f"{figures['compiled_step_ratio_vs_plain']:.3f} |")):
        assert row in gpu_check.format_report({**report, "compiled": compiled})
