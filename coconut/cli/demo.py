"""`make demo`: the whole idea end to end on generated data with a tiny model, on a CPU, in minutes.

For each seed:
1. CoT (experiments/demo_cot.yaml): the reasoning steps in language for the whole step budget; it generates
   its data (small ProsQA-style graphs, steps as phrases) into runs/demo/data_phrase on first use;
2. COCONUT (experiments/demo_coconut.yaml): starts from the CoT run's checkpoint at the end of stage 0 and
   trains the curriculum for the rest of the same budget, so its first steps are exactly CoT's;
3. No-CoT (experiments/demo_no_cot.yaml): the answer alone, for the same budget.
Every method is tested at its final checkpoint, COCONUT also at the end of each stage; then the table, the
targets, the accuracy-against-tokens plot (PNG and TensorBoard) and one question's thoughts read back.

Three seeds by default (each seed's result is printed as it finishes; `seeds=0` trains one). A finished run of
the same config is reused (a second `make demo` trains nothing, `make demo SEEDS=0,1,2,3` only seed 3); any
other run in a folder is refused before the first step unless overwrite=true. The table says which machines
trained its runs (each run's run.json records them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from coconut.atomic import write_json, write_text, write_with
from coconut.config import ConfigError
from coconut.data.files import check_existing
from coconut.experiment import changes_since, load_config
from coconut.run_dir import RunDir, RunFolderError

RUNS = ("demo_cot", "demo_coconut", "demo_no_cot")  # in training order: COCONUT starts from the CoT run
# Three seeds by default: one seed's ordering of small models trained from scratch is not a result, and the
# table's targets compare the methods' gaps with the spread over seeds.
DEFAULT_SEEDS = (0, 1, 2)


def seeded(name: str, seed: int) -> str:
    """Seed 0 keeps the plain names (the runs `make demo` makes); other seeds get `_seed{seed}`."""
    return name if seed == 0 else f"{name}_seed{seed}"


def demo_configs(overrides: list[str], seed: int) -> dict:
    """The three runs of one seed; COCONUT starts from the same seed's CoT run."""
    cfgs = {}
    for name in RUNS:
        extra = [f"seed={seed}", f"name={seeded(name, seed)}", *overrides]
        if name == "demo_coconut":  # from the CoT run's end of stage 0, at the epoch where that stage ends
            cot = load_config("demo_cot", extra[:1] + [f"name={seeded('demo_cot', seed)}", *overrides])
            extra += [f"model.init_from={RunDir(cot.run_dir).stage_checkpoint(0)}",
                      f"trainer.start_epoch={cot.trainer.schedule.length(0)}"]
        cfgs[name] = load_config(name, extra)
    return cfgs


def check_budget(cfgs: dict) -> None:
    """Equal training: the same epochs, batches, batch size, batching and stage schedule for every method (only
    the samples differ); an edited experiment file that breaks this would make the table unfair."""
    t = {n: c.trainer for n, c in cfgs.items()}
    shape = {n: (t[n].max_epochs, t[n].limit_train_batches, t[n].first_stage_epochs, t[n].epochs_per_stage,
                 cfgs[n].data.batch_size, cfgs[n].data.batch_by_length) for n in cfgs}
    if len(set(shape.values())) != 1:
        raise ConfigError(f"the demo's runs must share trainer.max_epochs, limit_train_batches, first_stage_epochs, "
                          f"epochs_per_stage, data.batch_size and data.batch_by_length; got {shape}")


def plan(seeds: list[int], overrides: list[str], overwrite: bool) -> list[tuple[str, object, bool]]:
    """(name, config, reuse) for every run; every folder checked before anything trains."""
    jobs, checked = [], set()
    for seed in seeds:
        cfgs = demo_configs(overrides, seed)
        check_budget(cfgs)
        for name, cfg in cfgs.items():
            if repr(cfg.data) not in checked:  # the runs share their data: each data setting is checked once
                check_existing(cfg.data)  # files the config would not train on: refused before any run trains
                checked.add(repr(cfg.data))
            run = RunDir(cfg.run_dir, output_dir=cfg.output_dir)
            finished = not overwrite and run.is_finished()
            differs = config_difference(run, cfg) if finished else None
            reuse = finished and differs is None
            if not reuse:
                try:
                    run.check_free(overwrite=overwrite)
                except RunFolderError as err:
                    if differs is None:
                        raise
                    raise RunFolderError(f"{err}; it is not reused because {differs}") from None
            jobs.append((name, cfg, reuse))
    return jobs


def config_difference(run: RunDir, cfg) -> str | None:
    """None when the run in `run` was trained with `cfg` (`changes_since` finds no setting that differs), else the
    first setting that differs."""
    try:
        changed = changes_since(run.config, cfg)
    except ConfigError as err:
        return f"its config.yaml does not load with this version ({err})"
    if not changed:
        return None
    key, then, now = changed[0]
    return f"its config has {key}={then} where this demo's has {now}"


def run_demo(overrides: list[str] = (), overwrite: bool = False, seeds: list[int] = DEFAULT_SEEDS) -> dict:
    """Train (or reuse) every run, test the rows, write runs/demo/results.{md,json}, the plot and a reading."""
    from coconut.train.run import train

    started = time.time()
    seeds, overrides = list(seeds), list(overrides)
    jobs = plan(seeds, overrides, overwrite)
    runs = len(RUNS)  # plan() lists each seed's runs together, in RUNS order
    per_seed = []
    for i, seed in enumerate(seeds):
        seed_jobs = jobs[i * runs : (i + 1) * runs]
        for name, cfg, reuse in seed_jobs:
            if reuse:
                print(f"demo: reusing the finished run {cfg.run_dir} (overwrite=true trains it again)")
            else:
                print(f"demo: seed {seed} ({i + 1} of {len(seeds)}): training {cfg.run_dir}")
                train(cfg, overwrite=overwrite)
        per_seed.append(seed_rows({name: cfg for name, cfg, _ in seed_jobs}))
        finals = ", ".join(f"{r['label']} {r['accuracy']:.3f}" for r in per_seed[-1] if r["final"])
        print(f"demo: seed {seed} done after {time.time() - started:.0f} s: {finals}")
    return write_results(per_seed, seeds, jobs[0][1], jobs, time.time() - started)


def machines(jobs) -> list[str]:
    """Where the runs were trained, one line per distinct machine, from each attempt in their run.json."""
    from coconut.machine import label
    from coconut.train.run_folder import read_marker

    seen = []
    for _, cfg, _ in jobs:
        attempts = (read_marker(RunDir(cfg.run_dir)) or {}).get("attempts", [])
        for line in (label(attempt.get("machine")) for attempt in attempts):
            if line not in seen:
                seen.append(line)
    return seen


def seed_rows(cfgs: dict) -> list[dict]:
    """One seed's rows: the three methods at their final checkpoint, then COCONUT's stages on the way."""
    from coconut.analysis.demo_results import COT_ROW, LATENT_ROW, NO_COT_ROW
    from coconut.train.run import evaluate

    cot, coconut = cfgs["demo_cot"], cfgs["demo_coconut"]
    cot_run, coconut_run = RunDir(cot.run_dir), RunDir(coconut.run_dir)
    final = {name: json.loads(RunDir(cfg.run_dir).results.read_text()) for name, cfg in cfgs.items()}
    shared = steps_of(cot_run.stage_checkpoint(0))  # COCONUT's first steps are these of the CoT run
    last_stage = coconut.trainer.last_stage
    rows = [
        _row(COT_ROW, "CoT", True, 0, steps_of(final["demo_cot"]["checkpoint"]), final["demo_cot"]["test"]),
        _row(LATENT_ROW, f"COCONUT, fully latent (stage {last_stage})", True, last_stage,
             shared + steps_of(final["demo_coconut"]["checkpoint"]), final["demo_coconut"]["test"]),
        _row(NO_COT_ROW, "No-CoT", True, 0, steps_of(final["demo_no_cot"]["checkpoint"]), final["demo_no_cot"]["test"]),
        _row("stage0", "stage 0 = CoT, where COCONUT starts", False, 0, shared,
             _test(evaluate(cot, str(cot_run.stage_checkpoint(0)), stage=0))),
    ]
    for stage in range(1, last_stage):
        ckpt = coconut_run.stage_checkpoint(stage)
        rows.append(_row(f"stage{stage}", f"COCONUT stage {stage}", False, stage, shared + steps_of(ckpt),
                         _test(evaluate(coconut, str(ckpt), stage=stage))))
    return rows


def steps_of(ckpt) -> int:
    """Optimizer steps a checkpoint's run had taken (a run started from another's weights counts from 0)."""
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


def _test(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.startswith("test/")}


def _row(key: str, label: str, final: bool, stage: int, steps: int, test: dict) -> dict:
    return {"key": key, "label": label, "final": final, "stage": stage, "train_steps": steps,
            "accuracy": float(test["test/acc"]), "tokens": float(test["test/tokens"]),
            "language_tokens": float(test["test/language_tokens"]), "thoughts": float(test["test/thoughts"])}


def write_results(per_seed: list[list[dict]], seeds: list[int], cfg, jobs, seconds: float) -> dict:
    from coconut.analysis.demo_results import aggregate, format_table

    out_dir = Path(cfg.output_dir)
    n_test = cfg.data.test_size
    rows = aggregate(per_seed, n_test)
    render = f", {cfg.data.render} rendering" if cfg.data.render else ""
    results = {
        "rows": rows, "per_seed": dict(zip(map(str, seeds), per_seed)), "seeds": seeds, "test_questions": n_test,
        "data": f"{cfg.data.generator}{render}", "budget_steps": rows[0]["train_steps"],
        "batch_size": cfg.data.batch_size, "runs": [str(c.run_dir) for _, c, _ in jobs], "machines": machines(jobs),
        "seconds": {"total": round(seconds)}, "plot": str(out_dir / "accuracy_vs_tokens.png"),
    }
    table = format_table(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_plot(rows, out_dir, cfg.data.generator)
    write_text(out_dir / "results.md", table + "\n")  # whole or not at all: a Ctrl-C here keeps the last table
    write_json(out_dir / "results.json", results)
    print("\n" + table)
    print(f"\nwritten: {out_dir / 'results.md'}, {out_dir / 'results.json'}, plot {results['plot']}")
    print(f"TensorBoard: make tensorboard   (or: tensorboard --logdir {out_dir})")
    coconut_run = next(c.run_dir for name, c, _ in jobs if name == "demo_coconut")
    print_thinking(coconut_run, out_dir)
    return results


def save_plot(rows: list[dict], out_dir: Path, data: str) -> None:
    """The plot as PNG and as a TensorBoard image (runs/demo/summary, beside the runs' own logs)."""
    from torch.utils.tensorboard import SummaryWriter

    from coconut.analysis.demo_results import figure

    fig = figure(rows, title=f"make demo on {data}")
    write_with(out_dir / "accuracy_vs_tokens.png", lambda out: fig.savefig(out, dpi=120, format="png"))
    writer = SummaryWriter(str(out_dir / "summary"))
    try:
        writer.add_figure("demo/accuracy_vs_tokens", fig, close=True)
    finally:
        writer.close()


def print_thinking(run_dir, out_dir: Path) -> None:
    """One test question read by the COCONUT run: what each thought holds, then the answer."""
    from coconut.analysis.thoughts import format_thinking
    from coconut.cli.think import think

    text = format_thinking(think(run_dir, index=0))
    print(f"\nThe fully latent COCONUT model on test question 0 (coconut think {run_dir}):\n{text}")
    write_text(out_dir / "think.txt", text + "\n")
