"""`coconut report RUN_DIR...`: the paper's Table 1 for whatever runs exist.

One row per method, for each data set the test accuracy (mean +- sample standard deviation over the
runs that differ only in seed) and the mean generated tokens (language tokens + thoughts), beside
the paper's figures. Written as Markdown, CSV and a plot of accuracy against generated tokens.

A folder with a results.json but no config.yaml (the demo's summary, runs/demo) is not a run; a run whose
files cannot be read or whose results.json holds an impossible figure (an accuracy outside [0, 1], a negative
token count) is not counted; a second folder of the same run (a copy: same run_id) is counted once. Each is
skipped with one line saying why, and the rest reported (coconut.analysis.run_results reads one run).
A run tested on the val split (its data had no test file), or at last.ckpt because its schedule ended before the
method's final stage, is marked in the table.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from coconut.atomic import write_text, write_with
from coconut.methods import METHODS
from coconut.analysis.run_results import METHOD_LABELS, ReportError, RunResult, distinct_runs, read_run
from coconut.run_dir import RunDir

__all__ = ["ReportError", "RunResult", "find_runs", "read_run", "report", "summarize", "to_markdown"]

DATASET_ORDER = ("gsm8k", "prontoqa", "prosqa")
# The published figures, {method: {data set: (accuracy %, mean generated tokens or None)}}, each method's own
# (Table 1 of the COCONUT paper, GPT-2 small, for its rows).
PAPER = {name: m.paper for name, m in METHODS.items() if m.paper}


VAL_MARK = "†"
VAL_NOTE = (f"{VAL_MARK} includes runs tested on the val split: their data had no test file "
            "(results.json says \"test_split\": \"val\").")
INCOMPLETE_MARK = "‡"
INCOMPLETE_NOTE = (f"{INCOMPLETE_MARK} includes runs whose schedule ended before the method's final stage: they "
                   "tested last.ckpt, a checkpoint of an earlier stage (results.json says \"schedule_complete\": "
                   "false); train more epochs for the method's result.")
CHANGED_MARK = "\u00a7"
CHANGED_NOTE = (f"{CHANGED_MARK} includes runs resumed with other settings than they started with: trained under two "
                "configs (run.json's attempts name the settings; the earlier config is config.before-resume-<k>.yaml).")
# (row key, mark, note) of each footnote a row can carry.
FOOTNOTES = (("val_runs", VAL_MARK, VAL_NOTE), ("incomplete_runs", INCOMPLETE_MARK, INCOMPLETE_NOTE),
             ("changed_runs", CHANGED_MARK, CHANGED_NOTE))


def find_runs(paths, skipped: list[str] | None = None) -> list[Path]:
    """Run folders: each path is one, or a folder holding some (any depth). A results.json without a config.yaml
    beside it is no run (the demo writes its summary as runs/demo/results.json): a line for it goes to `skipped`."""
    found = []
    for p in map(Path, paths):
        if not p.exists():
            raise ReportError(f"{p}: no such folder")
        if RunDir(p).is_finished() and RunDir(p).config.exists():
            found.append(p)
            continue
        inner = sorted(r.parent for r in p.rglob(RunDir(p).results.name))
        if not inner:
            raise ReportError(f"{p}: no results.json in it or below; nothing to report")
        for folder in inner:
            if RunDir(folder).config.exists():
                found.append(folder)
            elif skipped is not None:
                skipped.append(f"{folder}: not a run folder (a results.json without config.yaml, such as the "
                               f"demo's summary)")
    return sorted(set(found))


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize(runs: list[RunResult]) -> list[dict]:
    """One entry per (data set, run group, row label): accuracy % mean and std over seeds, mean tokens, paper figures.

    Two groups with the same label in one data set (the demo's COCONUT runs with other settings, say) get
    their group's name added to the label."""
    groups: dict[tuple[str, str, str], list[RunResult]] = {}
    for r in runs:
        groups.setdefault((r.dataset, r.group, r.label), []).append(r)
    labels_seen: dict[tuple[str, str], int] = {}
    for dataset, _, label in groups:
        labels_seen[(dataset, label)] = labels_seen.get((dataset, label), 0) + 1
    out = []
    for (dataset, group, label), members in groups.items():
        shown = f"{label} [{group}]" if labels_seen[(dataset, label)] > 1 else label
        acc, acc_std = _mean_std([100 * r.acc for r in members])
        tokens, tokens_std = _mean_std([r.tokens for r in members])
        method = members[0].method
        paper = PAPER.get(method, {}).get(dataset) if label == METHOD_LABELS.get(method) else None
        out.append({"dataset": dataset, "method": shown, "runs": len(members),
                    "val_runs": sum(r.test_split == "val" for r in members),
                    "incomplete_runs": sum(r.schedule_complete is False for r in members),
                    "changed_runs": sum(bool(r.changed_settings) for r in members),
                    "tested_checkpoints": " ".join(sorted({r.tested_checkpoint for r in members
                                                           if r.tested_checkpoint is not None})),
                    "seeds": sorted(r.seed for r in members), "acc": round(acc, 2), "acc_std": round(acc_std, 2),
                    "tokens": round(tokens, 2), "tokens_std": round(tokens_std, 2),
                    "paper_acc": paper[0] if paper else None, "paper_tokens": paper[1] if paper else None})
    out.sort(key=lambda e: (_dataset_rank(e["dataset"]), _method_rank(e["method"])))
    return out


def _dataset_rank(name: str):
    return (DATASET_ORDER.index(name), name) if name in DATASET_ORDER else (len(DATASET_ORDER), name)


def to_markdown(rows: list[dict]) -> str:
    datasets = sorted({r["dataset"] for r in rows}, key=_dataset_rank)
    methods = list(dict.fromkeys(r["method"] for r in sorted(rows, key=lambda r: _method_rank(r["method"]))))
    cell = {(r["dataset"], r["method"]): r for r in rows}
    head = ["method"] + [f"{d}: accuracy % (tokens) [runs]" for d in datasets]
    paper = [d for d in datasets if d in DATASET_ORDER]
    head += [f"paper {d}" for d in paper]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        cells = [m]
        for d in datasets:
            r = cell.get((d, m))
            # A single run has no spread to show: "+- 0.0" would claim one.
            spread = f" +- {r['acc_std']:.1f}" if r is not None and r["runs"] > 1 else ""
            cells.append("" if r is None else f"{r['acc']:.1f}{spread} ({r['tokens']:.1f}) [{r['runs']}]" + marks(r))
        for d in paper:
            r = cell.get((d, m))
            cells.append("" if r is None or r["paper_acc"] is None else f"{r['paper_acc']:.1f}"
                         + ("" if r["paper_tokens"] is None else f" ({r['paper_tokens']:.1f})"))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [note for key, _, note in FOOTNOTES if any(r.get(key) for r in rows)]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def marks(row: dict) -> str:
    """The footnote marks of a row: some runs tested on val, some tested early (their schedule incomplete), some
    resumed with other settings."""
    return "".join(f" {mark}" for key, mark, _ in FOOTNOTES if row.get(key))


def _method_rank(label: str):
    """The paper's row order; variants ("COCONUT (soft thinking)", "COCONUT [demo_x]") after their method."""
    for i, name in enumerate(METHOD_LABELS.values()):
        if label == name or label.startswith(name + " "):
            return (i, label != name, label)
    return (len(METHOD_LABELS), False, label)


# val_runs: how many of the runs were tested on the val split (no test file); incomplete_runs: how many tested
# last.ckpt because their schedule ended before the final stage; tested_checkpoints: best, last or both ("" when
# the runs' results.json do not say); changed_runs: how many were resumed with other settings than they started with.
CSV_FIELDS = ("dataset", "method", "runs", "seeds", "acc", "acc_std", "tokens", "tokens_std", "paper_acc", "paper_tokens",
              "val_runs", "incomplete_runs", "tested_checkpoints", "changed_runs")


def write_csv(rows: list[dict], path: Path) -> None:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "seeds": " ".join(map(str, r["seeds"]))})
    write_text(path, text.getvalue())


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows}, key=_dataset_rank)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        for i, r in enumerate(r for r in rows if r["dataset"] == d):
            colour = f"C{i % 10}"
            ax.errorbar(r["tokens"], r["acc"], yerr=r["acc_std"], fmt="o", color=colour, capsize=3)
            ax.annotate(r["method"] + marks(r), (r["tokens"], r["acc"]), textcoords="offset points", xytext=(5, 4),
                        fontsize=7)
            if r["paper_acc"] is not None:
                ax.scatter([r["paper_tokens"]], [r["paper_acc"]], facecolors="none", edgecolors=colour, marker="s")
        ax.set_xlabel("mean generated tokens (language + thoughts)")
        ax.set_ylabel("test accuracy %")
        ax.set_title(f"{d} (hollow squares: the paper)")
    fig.tight_layout()
    write_with(path, lambda out: fig.savefig(out, dpi=110, format="png"))
    plt.close(fig)


def report(paths, out_dir: Path) -> dict:
    """Read the runs, write results_table.{md,csv,png} into out_dir; returns rows, file paths and the skipped
    folders (one line each: the folder or file, and why; a copy of a run names both folders)."""
    skipped: list[str] = []
    runs = []
    for folder in find_runs(paths, skipped):
        try:
            runs.append(read_run(folder))
        except ReportError as err:  # one unreadable run does not hide the others
            skipped.append(str(err))
    runs = distinct_runs(runs, skipped)
    if not runs:
        raise ReportError("no run could be read; " + "; ".join(skipped))
    rows = summarize(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"markdown": out_dir / "results_table.md", "csv": out_dir / "results_table.csv",
             "plot": out_dir / "results_table.png"}
    write_text(files["markdown"], to_markdown(rows) + "\n")  # each file whole or not at all
    write_csv(rows, files["csv"])
    plot(rows, files["plot"])
    return {"rows": rows, "runs": [r.run_dir for r in runs], "skipped": skipped,
            "files": {k: str(v) for k, v in files.items()}}
