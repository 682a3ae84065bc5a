"""`make demo`: the whole idea end to end on generated data with a tiny model, on a CPU, in minutes.

1. generate prosqa-mini (small graphs, compact rendering) into runs/demo/data;
2. train the tiny model through the CoT stage and the COCONUT curriculum (experiments/demo_coconut.yaml);
3. train the No-CoT baseline (experiments/demo_no_cot.yaml);
4. evaluate every stage's checkpoint on the test split and write runs/demo/results.{md,json}.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from coconut.experiment import load_config
from coconut.run_dir import RunDir


def margin95(acc: float, n: int) -> float:
    """Half-width of the 95 % normal interval of an accuracy over n questions."""
    return 1.96 * math.sqrt(max(acc * (1 - acc), 1e-12) / max(n, 1))


def run_demo(overrides: list[str] = (), overwrite: bool = False) -> dict:
    """Both demo runs, then the table; overwrite=true starts runs whose folders already hold a run again."""
    from coconut.train.run import evaluate, train

    started = time.time()
    coconut_cfg = load_config("demo_coconut", list(overrides))
    baseline_cfg = load_config("demo_no_cot", list(overrides))
    out_dir = Path(coconut_cfg.output_dir)
    for cfg in (coconut_cfg, baseline_cfg):  # both folders free before minutes of training, not after the first
        RunDir(cfg.run_dir, output_dir=cfg.output_dir).check_free(overwrite=overwrite)
    rows = []

    t0 = time.time()
    train(coconut_cfg, overwrite=overwrite)
    coconut_seconds = time.time() - t0
    n_test = coconut_cfg.data.test_size
    run_dir = RunDir(coconut_cfg.run_dir)
    for stage in range(coconut_cfg.trainer.last_stage + 1):
        ckpt = run_dir.stage_checkpoint(stage)
        m = evaluate(coconut_cfg, str(ckpt), stage=stage)
        label = "CoT (curriculum stage 0)" if stage == 0 else "COCONUT"
        rows.append(_row(label, stage, m, n_test, _steps(ckpt)))

    t0 = time.time()
    base = train(baseline_cfg, overwrite=overwrite)
    baseline_seconds = time.time() - t0
    rows.append(_row("No-CoT", 0, base["test"], n_test, _steps(base["checkpoint"])))

    results = {
        "rows": rows,
        "test_questions": n_test,
        "seconds": {"coconut_curriculum": round(coconut_seconds), "no_cot": round(baseline_seconds),
                    "total": round(time.time() - started)},
        "runs": {"coconut": str(coconut_cfg.run_dir), "no_cot": str(baseline_cfg.run_dir)},
        "plot": str(run_dir.accuracy_plot),
    }
    table = format_table(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(table + "\n")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + table)
    print(f"\nwritten: {out_dir / 'results.md'}, {out_dir / 'results.json'}, plot {results['plot']}")
    print(f"TensorBoard: make tensorboard   (or: tensorboard --logdir {out_dir})")
    return results


def _steps(ckpt) -> int:
    """Optimizer steps the checkpoint had taken (the whole curriculum up to that stage)."""
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


def _row(method: str, stage: int, metrics: dict, n: int, steps: int) -> dict:
    acc = float(metrics["test/acc"])
    return {
        "method": method, "stage": stage, "train_steps": steps, "accuracy": round(acc, 4), "margin95": round(margin95(acc, n), 4),
        "tokens": round(float(metrics["test/tokens"]), 2), "thoughts": round(float(metrics["test/thoughts"]), 2),
        "language_tokens": round(float(metrics["test/language_tokens"]), 2),
    }


def format_table(results: dict) -> str:
    lines = [
        f"Test accuracy on {results['test_questions']} prosqa-mini questions (95 % margin), "
        f"mean generated tokens = language tokens + continuous thoughts. "
        f"Wall time {results['seconds']['total']} s.",
        "",
        "| method | stage | training steps so far | accuracy | generated tokens (language + thoughts) |",
        "|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(f"| {r['method']} | {r['stage']} | {r['train_steps']} | {r['accuracy']:.3f} +- {r['margin95']:.3f} | "
                     f"{r['tokens']:.1f} ({r['language_tokens']:.1f} + {r['thoughts']:.1f}) |")
    return "\n".join(lines)
