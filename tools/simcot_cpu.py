"""Step supervision (SIM-CoT) on a CPU: COCONUT with and without it, on the quick start's graphs, at equal steps.

SIM-CoT reports that continuous thoughts grow alike (collapse) as their number grows, and that supervising each
thought with the step it replaced keeps them apart. This runs the quick start's recipe (a 2-layer model learning
small ProsQA-style graph questions), with a longer schedule, with c thoughts per step (9 thoughts once every step is latent for c = 3), with
and without `method.step_supervision`, for each seed, and reads back: the test accuracy and generated tokens
(results.json), and the last validation's thought geometry (csv/metrics.csv: `thoughts/cos_within`, the mean cosine
between one question's thoughts, near 1 when they collapse into one state; `thoughts/cos_across`, between questions
at one position; `thoughts/norm_ratio`).

Run:  make simcot-cpu [SEEDS=0,1,2] [C=3]   (or: python tools/simcot_cpu.py --seeds 0,1,2 --c 3)
Writes runs/simcot_cpu/<variant>_c<C>_s<seed>/ (finished runs are reused), runs/simcot_cpu/results.md (the table,
mean +- sample std over seeds) and runs/simcot_cpu/simcot_cpu.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "runs" / "simcot_cpu"
VARIANTS = {"coconut": [], "coconut+step_supervision": ["method.step_supervision=true"]}
GEOMETRY = ("thoughts/cos_within", "thoughts/cos_across", "thoughts/norm_ratio")
STEPS = 25  # optimizer steps per epoch: the quick start's trainer.limit_train_batches


def run_one(variant: str, seed: int, c: int, epochs: int, first: int, per_stage: int) -> dict:
    from coconut.experiment import load_config
    from coconut.train.run import train

    name = f"{variant.replace('+', '_')}_c{c}_e{epochs}_s{seed}"
    folder = OUT / name
    if (folder / "results.json").exists():
        results = json.loads((folder / "results.json").read_text())
    else:
        cfg = load_config("quickstart", [f"output_dir={OUT}", f"name={name}", f"seed={seed}",
                                         f"method.thoughts_per_step={c}", f"trainer.max_epochs={epochs}",
                                         f"trainer.first_stage_epochs={first}", f"trainer.epochs_per_stage={per_stage}",
                                         "trainer.progress_bar=false", "logger=csv", *VARIANTS[variant]])
        results = train(cfg)
    rows = list(csv.DictReader(next((folder / "csv").rglob("metrics.csv")).open()))
    last = {key: next((float(r[key]) for r in reversed(rows) if r.get(key)), float("nan")) for key in GEOMETRY}
    return {"variant": variant, "seed": seed, "acc": results["test"]["test/acc"],
            "tokens": results["test"].get("test/tokens", float("nan")), "seconds": results.get("seconds"), **last}


def summary(rows: list[dict], c: int, epochs: int, first: int, per_stage: int) -> str:
    def cell(values):
        values = [v for v in values if v == v]
        if not values:
            return "n/a"
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {spread:.3f}"

    lines = [f"c = {c} thoughts per step; {epochs} epochs of {STEPS} steps: stage 0 (CoT) {first}, then {per_stage} per "
             f"stage, the rest fully latent; seeds "
             f"{sorted({r['seed'] for r in rows})}; mean ± sample std over seeds.", "",
             "| variant | test acc | tokens | cos within a question | cos across questions | norm ratio | s/run |",
             "|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        if mine:
            lines.append(f"| {variant} | {cell([r['acc'] for r in mine])} | {cell([r['tokens'] for r in mine])} | "
                         f"{cell([r['thoughts/cos_within'] for r in mine])} | "
                         f"{cell([r['thoughts/cos_across'] for r in mine])} | "
                         f"{cell([r['thoughts/norm_ratio'] for r in mine])} | "
                         f"{statistics.mean(r['seconds'] or 0 for r in mine):.0f} |")
    lines += ["", "| variant | seed | test acc | cos within | cos across |", "|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['seed']} | {r['acc']:.3f} | {r['thoughts/cos_within']:.3f} | "
              f"{r['thoughts/cos_across']:.3f} |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, key, title in ((axes[0], "acc", "test accuracy"), (axes[1], "thoughts/cos_within",
                                                              "cosine between a question's thoughts")):
        for x, variant in enumerate(VARIANTS):
            values = [r[key] for r in rows if r["variant"] == variant]
            ax.scatter([x] * len(values), values, color="C0" if x == 0 else "C1")
            if values:
                ax.hlines(statistics.mean(values), x - 0.2, x + 0.2, color="black")
        ax.set_xticks(range(len(VARIANTS)), [v.replace("+", "\n+ ") for v in VARIANTS])
        ax.set_title(title)
        ax.set_ylim(0, 1.02)
        if key == "acc":  # the questions offer two names
            ax.axhline(0.5, color="gray", linestyle="--", linewidth=1)
            ax.text(len(VARIANTS) - 0.45, 0.51, "chance", color="gray", ha="right", va="bottom")
        ax.set_xlim(-0.6, len(VARIANTS) - 0.4)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--c", type=int, default=3, help="continuous thoughts per step (default 3)")
    parser.add_argument("--epochs", type=int, default=22, help="epochs in all (default 22)")
    parser.add_argument("--first-stage-epochs", type=int, default=10, help="epochs of stage 0, CoT (default 10)")
    parser.add_argument("--epochs-per-stage", type=int, default=2, help="epochs of each later stage (default 2)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    schedule = (args.epochs, args.first_stage_epochs, args.epochs_per_stage)
    rows = [run_one(variant, seed, args.c, *schedule) for seed in seeds for variant in VARIANTS]
    OUT.mkdir(parents=True, exist_ok=True)
    table = summary(rows, args.c, *schedule)
    (OUT / "results.md").write_text(table)
    plot(rows, OUT / "simcot_cpu.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
