"""The GPU check script runs end to end (on a CPU with --tiny) and reports every figure the README needs."""

import json
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
    for key in ("latent_train_tokens_per_s", "train_step_ratio_vs_plain", "generate_speedup_batched_vs_single",
                "jacobi_step_ratio_vs_sequential"):
        assert report["bench"][key] > 0, key
    assert report["bench"]["config"]["precision"] == "bf16"
    assert report["bf16_training"]["precision"] == "bf16-mixed"
    assert "| train_step_ratio_vs_plain |" in proc.stdout
