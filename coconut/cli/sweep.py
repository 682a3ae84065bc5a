"""The sweep behind `coconut table DATASET --seeds 0,1,2`: every Table 1 row of a data set for several seeds, then the report.

Each (method, seed) is one `coconut train` in its own process (so DDP launches as usual), named
`{experiment}_seed{seed}`. Finished runs (with results.json) are skipped, so an interrupted table
resumes where it stopped. CoT runs first: GSM8k COCONUT starts from the same seed's CoT weights.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from coconut.config import ConfigError
from coconut.methods import TABLE1_METHODS
from coconut.experiment import EXPERIMENTS_DIR, load_config
from coconut.run_dir import CHECKPOINTS, RunDir


@dataclass
class Job:
    experiment: str
    seed: int
    overrides: list[str]
    run_dir: Path

    @property
    def done(self) -> bool:
        return RunDir(self.run_dir).is_finished()

    def command(self) -> list[str]:
        # An interrupted run continues from its last checkpoint: `coconut train` refuses a folder that holds a run.
        last = RunDir(self.run_dir).last_checkpoint
        resume = [f"resume={last}"] if last.exists() and not self.done else []
        return [sys.executable, "-m", "coconut", "train", self.experiment, *self.overrides, *resume]


def seeded_path(path: str, seed: int) -> str:
    """`.../gsm8k_cot/checkpoints/best.ckpt` -> `.../gsm8k_cot_seed{seed}/checkpoints/best.ckpt`."""
    parts = list(Path(path).parts)
    if CHECKPOINTS not in parts or parts.index(CHECKPOINTS) == 0:
        raise ConfigError(f"model.init_from={path}: expected RUN_DIR/{CHECKPOINTS}/FILE to follow the seeds of the table")
    i = parts.index(CHECKPOINTS) - 1
    parts[i] = f"{parts[i]}_seed{seed}"
    return str(Path(*parts))


def plan(dataset: str, seeds: list[int], overrides: list[str] = (), methods: list[str] | None = None) -> list[Job]:
    names = methods or list(TABLE1_METHODS)  # the paper's row order: CoT first
    jobs = []
    for method in names:
        experiment = f"{dataset}_{method}"
        if not (EXPERIMENTS_DIR / f"{experiment}.yaml").exists():
            if methods:
                raise ConfigError(f"no experiment {experiment!r} in {EXPERIMENTS_DIR}")
            continue
        for seed in seeds:
            extra = [f"seed={seed}", f"name={experiment}_seed{seed}", *overrides]
            cfg = load_config(experiment, extra)  # every job's config is checked before anything trains
            if cfg.model.init_from:
                seeded = seeded_path(cfg.model.init_from, seed)
                extra.append(f"model.init_from={seeded}")
                cfg = load_config(experiment, extra)
            jobs.append(Job(experiment, seed, extra, cfg.run_dir))
    if not jobs:
        raise ConfigError(f"no experiments named {dataset}_<method> in {EXPERIMENTS_DIR}")
    return jobs


def run_table(dataset: str, seeds: list[int], overrides: list[str] = (), methods: list[str] | None = None,
              dry_run: bool = False) -> int:
    jobs = plan(dataset, seeds, overrides, methods)
    for i, job in enumerate(jobs, 1):
        status = "done, skipped" if job.done else "to train"
        print(f"[{i}/{len(jobs)}] {job.run_dir} ({status}): coconut {' '.join(job.command()[3:])}", flush=True)
        if dry_run or job.done:
            continue
        result = subprocess.run(job.command())
        if result.returncode != 0:
            print(f"coconut table: {job.run_dir} failed (exit {result.returncode}); finished runs are kept, "
                  "run the same command again to continue", file=sys.stderr)
            return result.returncode
    if dry_run:
        return 0
    from coconut.analysis.report import report, to_markdown

    out = jobs[0].run_dir.parent / f"table_{dataset}"
    result = report([j.run_dir for j in jobs], out)
    for line in result["skipped"]:  # a copied run, an impossible figure: said, as coconut report says it
        print(f"coconut table: skipped {line}", file=sys.stderr)
    print(to_markdown(result["rows"]))
    print("written: " + ", ".join(result["files"].values()))
    return 0


def add_table_arguments(parser) -> None:
    parser.add_argument("dataset", help="prosqa | prontoqa | gsm8k (experiments named DATASET_METHOD)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every run (trainer.devices=4)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: every row)")
    parser.add_argument("--dry-run", action="store_true", help="print the runs and exit")


def main(args) -> int:
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"coconut table: --seeds {args.seeds!r} is not a comma-separated list of integers", file=sys.stderr)
        return 2
    methods = args.methods.split(",") if args.methods else None
    try:
        return run_table(args.dataset, seeds, args.overrides, methods, args.dry_run)
    except ConfigError as err:
        print(f"coconut table: {err}", file=sys.stderr)
        return 2
