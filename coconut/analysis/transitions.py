"""Stage transitions as pure functions: language steps counted in a generation, and the per-stage summary.

A run records one row per validation ("val") and, when a validation ends a stage, one row scoring the next
stage's inputs with the weights of the end of the stage before ("entry"). From these rows each stage gets its
entry (what the new inputs alone do to the model), its exit (the last validation in the stage), the drop from
the previous stage's exit to the entry, and the recovery from the entry to the exit. Figures and CSV rows are
written by the training callback (coconut.train.transitions); nothing here needs Lightning.
"""

from __future__ import annotations

import re

from coconut.data.tokenize import TextFormat

# Columns of every row; `thoughts/...` columns (the thought diagnostics, when a run logs them) follow.
FIELDS = ("kind", "epoch", "step", "stage", "acc", "tokens", "cot_match", "explicit_steps", "expected_steps",
          "questions")
THOUGHTS = "thoughts/"
_STEP_END = re.compile(r"[.;](?=\s|$)")  # a "." or ";" closing a word: the end of a compact-format step


def count_steps(text: str, fmt: TextFormat) -> int:
    """Reasoning steps written in language in `text` (a generation, or a target), before the answer marker.

    Formats whose steps end with a line break (the paper's) count the non-empty lines; the compact format
    writes its steps on one line (`p1 c2 ;`, `every c1 is a c7 .`), so a step there is a word closed by `;`
    or `.`. A step cut short by the token budget still counts as one written."""
    marker = fmt.answer_prefix.strip()
    body = text.split(marker, 1)[0] if marker else text
    if "\n" in fmt.step_suffix:
        return sum(1 for line in body.split("\n") if line.strip())
    return len(_STEP_END.findall(body))


def _number(row: dict, key: str):
    value = row.get(key)
    if value in (None, ""):
        return None
    return float(value)


def _values(row: dict | None, prefix: str) -> dict:
    keys = ("acc", "tokens", "explicit_steps", "expected_steps")
    if row is None:
        return {f"{prefix}_{k}": None for k in keys}
    return {f"{prefix}_{k}": _number(row, k) for k in keys}


def _minus(a, b):
    return None if a is None or b is None else round(a - b, 5)


def stage_summary(rows: list[dict]) -> list[dict]:
    """One entry per stage seen, in stage order.

    entry_*: the "entry" row of the stage (None for a stage entered without one: the first stage, or a switch
    after which no validation ran); exit_*: the stage's last validation; drop: the previous stage's exit
    accuracy minus this stage's entry accuracy (what the input change alone costs); recovery: exit accuracy
    minus entry accuracy (what training on the new inputs won back); cot_match and every `thoughts/...` value
    at the exit."""
    stages = sorted({int(r["stage"]) for r in rows})
    out, previous_exit = [], None
    for stage in stages:
        mine = sorted((r for r in rows if int(r["stage"]) == stage), key=lambda r: int(r["step"]))
        vals = [r for r in mine if r["kind"] == "val"]
        entries = [r for r in mine if r["kind"] == "entry"]
        entry = entries[-1] if entries else None
        last = vals[-1] if vals else None
        summary = {"stage": stage, "validations": len(vals), **_values(entry, "entry"), **_values(last, "exit"),
                   "exit_cot_match": _number(last, "cot_match") if last else None,
                   "entry_step": int(entry["step"]) if entry else None,
                   "exit_step": int(last["step"]) if last else None,
                   "entry_questions": int(float(entry["questions"])) if entry and entry.get("questions") else None}
        summary["drop"] = _minus(previous_exit, summary["entry_acc"])
        summary["recovery"] = _minus(summary["exit_acc"], summary["entry_acc"])
        summary["thoughts"] = {k: _number(last, k) for k in sorted(last) if k.startswith(THOUGHTS)
                               and _number(last, k) is not None} if last else {}
        out.append(summary)
        previous_exit = summary["exit_acc"]
    return out


def transitions_figure(summary: list[dict], title: str = "", max_thought_panels: int = 12):
    """Per stage: accuracy and generated tokens at entry and exit, language steps written against those the stage
    leaves, CoT match, and one panel per `thoughts/...` value at the exit. Returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thought_keys = sorted({k for s in summary for k in s["thoughts"]})
    shown = thought_keys[:max_thought_panels]
    panels = 4 + len(shown)
    columns = 4
    rows = -(-panels // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.3 * rows), squeeze=False)
    axes = axes.ravel()
    stages = [s["stage"] for s in summary]

    def series(ax, key, label, marker, **kw):
        points = [(s["stage"], s[key]) for s in summary if s[key] is not None]
        if points:
            ax.plot(*zip(*points), marker=marker, label=label, **kw)

    for ax, what, ylabel in ((axes[0], "acc", "validation accuracy"), (axes[1], "tokens", "generated tokens")):
        series(ax, f"exit_{what}", "exit (last validation)", "o")
        series(ax, f"entry_{what}", "entry (new inputs, previous weights)", "v", linestyle="none")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel}: entry and exit")
    axes[0].set_ylim(-0.02, 1.02)
    series(axes[2], "exit_explicit_steps", "written (exit)", "o")
    series(axes[2], "entry_explicit_steps", "written (entry)", "v", linestyle="none")
    series(axes[2], "exit_expected_steps", "left in language by the stage", "s", linestyle="--")
    axes[2].set_ylabel("language steps per question")
    axes[2].set_title("explicit steps against the stage's")
    series(axes[3], "exit_cot_match", "CoT match (exit)", "o")
    axes[3].set_ylim(-0.02, 1.02)
    axes[3].set_ylabel("share of exact CoT matches")
    axes[3].set_title("CoT match")
    for ax, key in zip(axes[4:], shown):
        points = [(s["stage"], s["thoughts"][key]) for s in summary if key in s["thoughts"]]
        ax.plot(*zip(*points), marker="o")
        ax.set_title(key, fontsize=9)
    for ax in axes[:panels]:
        ax.set_xlabel("curriculum stage")
        if stages:
            ax.set_xticks(stages)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in axes[panels:]:
        ax.axis("off")
    left_out = len(thought_keys) - len(shown)
    fig.suptitle(title + (f" ({left_out} thoughts/ values not drawn: see transitions.csv)" if left_out else ""))
    fig.tight_layout()
    return fig
