"""The demo's results: each seed's rows gathered into mean +- std, the table, the targets and the plot.

A row is one checkpoint tested on the test split: the three methods at their final checkpoint (the same
number of optimizer steps each), and COCONUT's curriculum on the way (the end of each stage). With one seed
the accuracy's +- is the 95 % interval over the test questions; with several, the standard deviation over
seeds (never a "+- 0.0" for a single run).
"""

from __future__ import annotations

import math

# Targets of the demo, checked on the final rows and printed with the table.
# The demo table's rows, by key (coconut.cli.demo writes them; COCONUT's stages are "stage0", "stage1"...).
COT_ROW, LATENT_ROW, NO_COT_ROW = "cot", "coconut", "no_cot"

COT_AT_LEAST = 0.90
LATENT_TOKEN_SHARE = 0.40  # COCONUT's fully latent stage: at most this share of CoT's generated tokens


def margin95(acc: float, n: int) -> float:
    """Half-width of the 95 % normal interval of an accuracy over n questions."""
    return 1.96 * math.sqrt(max(acc * (1 - acc), 1e-12) / max(n, 1))


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation; None for the deviation of a single value."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def aggregate(per_seed: list[list[dict]], n_test: int) -> list[dict]:
    """One row per key (in the first seed's order): means over seeds, std or the 95 % margin."""
    keys = [r["key"] for r in per_seed[0]]
    out = []
    for key in keys:
        members = [next(r for r in rows if r["key"] == key) for rows in per_seed]
        row = {k: members[0][k] for k in ("key", "label", "final", "stage", "train_steps")}
        for field in ("accuracy", "tokens", "language_tokens", "thoughts"):
            mean, std = mean_std([m[field] for m in members])
            row[field], row[f"{field}_std"] = round(mean, 4), None if std is None else round(std, 4)
        row["seeds"] = len(members)
        row["margin95"] = round(margin95(row["accuracy"], n_test), 4) if len(members) == 1 else None
        out.append(row)
    cot = next((r for r in out if r["key"] == COT_ROW), None)
    for row in out:
        row["token_share"] = round(row["tokens"] / cot["tokens"], 3) if cot and cot["tokens"] else None
    return out


def _accuracy(row: dict) -> str:
    if row["accuracy_std"] is not None:
        return f"{row['accuracy']:.3f} +- {row['accuracy_std']:.3f}"
    return f"{row['accuracy']:.3f} (+- {row['margin95']:.3f})"


def _line(row: dict) -> str:
    share = "" if row["token_share"] is None else f"{row['token_share']:.2f}"
    return (f"| {row['label']} | {row['train_steps']} | {_accuracy(row)} | {row['tokens']:.1f} "
            f"({row['language_tokens']:.1f} + {row['thoughts']:.1f}) | {share} |")


def _by_key(rows: list[dict]) -> dict:
    return {r["key"]: r for r in rows}


def targets(rows: list[dict], per_seed: list[list[dict]] | None = None) -> list[tuple[str, bool | None]]:
    """(what, met) for each target the final rows can be checked against; met is None where one seed cannot say.

    The demo's claim is the paper's ProsQA one: COCONUT's fully latent stage above both CoT and No-CoT. It holds
    when COCONUT's mean is above each baseline's by more than the larger of the two standard deviations over
    seeds, and COCONUT is above both on every seed."""
    by_key = _by_key(rows)
    cot, latent, no_cot = by_key.get(COT_ROW), by_key.get(LATENT_ROW), by_key.get(NO_COT_ROW)
    out = []
    if cot and latent and no_cot:
        out.append(_above_both(latent, (cot, no_cot), per_seed or []))
    if cot and latent:
        out.append((f"COCONUT's generated tokens <= {LATENT_TOKEN_SHARE:.1f} of CoT's: {latent['token_share']:.2f}",
                    latent["token_share"] is not None and latent["token_share"] <= LATENT_TOKEN_SHARE))
    if cot:
        out.append((f"CoT >= {COT_AT_LEAST:.2f}: {cot['accuracy']:.3f}", cot["accuracy"] >= COT_AT_LEAST))
    return out


def _above_both(latent: dict, baselines: tuple[dict, ...], per_seed: list[list[dict]]) -> tuple[str, bool | None]:
    what = "COCONUT fully latent above CoT and No-CoT by more than the seeds' spread, on every seed: "
    gaps = [(b["label"], latent["accuracy"] - b["accuracy"]) for b in baselines]
    if len(per_seed) < 2:
        said = ", ".join(f"{gap * 100:+.1f} points over {name}" for name, gap in gaps)
        return what + f"needs two seeds or more (make demo SEEDS=0,1,2); this seed: {said}", None
    met, said = True, []
    for base, (name, gap) in zip(baselines, gaps):
        spread = max(latent["accuracy_std"], base["accuracy_std"])
        wins = sum(_by_key(rows)[LATENT_ROW]["accuracy"] > _by_key(rows)[base["key"]]["accuracy"] for rows in per_seed)
        met = met and gap > spread and wins == len(per_seed)
        said.append(f"{gap * 100:+.1f} points over {name} (std {spread * 100:.1f}), above it on {wins} of "
                    f"{len(per_seed)} seeds")
    return what + "; ".join(said), met


def seed_table(per_seed: dict[str, list[dict]]) -> list[str]:
    """Each seed's final rows side by side, and on how many seeds each pair of methods keeps the means' order:
    an order that changes with the seed is not a result, however the means fall."""
    finals = [r for r in next(iter(per_seed.values())) if r["final"]]
    lines = ["| seed | " + " | ".join(r["label"] for r in finals) + " |", "|---" * (len(finals) + 1) + "|"]
    for seed, rows in per_seed.items():
        acc = _by_key(rows)
        lines.append(f"| {seed} | " + " | ".join(f"{acc[r['key']]['accuracy']:.3f}" for r in finals) + " |")
    total = {r["key"]: sum(_by_key(rows)[r["key"]]["accuracy"] for rows in per_seed.values()) for r in finals}
    orders = []
    for i, a in enumerate(finals):
        for b in finals[i + 1:]:
            hi, lo = (a, b) if total[a["key"]] >= total[b["key"]] else (b, a)
            kept = sum(_by_key(rows)[hi["key"]]["accuracy"] > _by_key(rows)[lo["key"]]["accuracy"]
                       for rows in per_seed.values())
            orders.append(f"{_short(hi)} > {_short(lo)} on {kept} of {len(per_seed)}")
    return lines + ["", "The means' order, seed by seed: " + "; ".join(orders) + "."]


def format_table(results: dict) -> str:
    rows, seeds = results["rows"], results["seeds"]
    spread = (f"mean +- std over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else
              f"seed {seeds[0]}; +- in parentheses is the 95 % interval over the test questions")
    machines = results.get("machines") or ["not recorded"]
    per_seed = results.get("per_seed") or {}
    lines = [
        f"Test accuracy on {results['test_questions']} generated questions ({results['data']}), {spread}. "
        f"Every method trained {results['budget_steps']} optimizer steps of {results['batch_size']} samples on "
        f"the same data and is tested at its final checkpoint. Generated tokens = language tokens (without the "
        f"end of sequence) + continuous thoughts. Wall time {results['seconds']['total']} s. "
        f"Trained on: {'; '.join(machines)}.",
        "",
        "| method | training steps | accuracy | generated tokens (language + thoughts) | tokens / CoT's |",
        "|---|---|---|---|---|",
        *[_line(r) for r in rows if r["final"]],
        *(["", *seed_table(per_seed)] if len(per_seed) > 1 else []),
        "",
        "COCONUT's curriculum on the way (its checkpoint at the end of each stage; stage 0 is the CoT run's, where "
        "COCONUT starts from):",
        "",
        "| checkpoint | training steps | accuracy | generated tokens (language + thoughts) | tokens / CoT's |",
        "|---|---|---|---|---|",
        *[_line(r) for r in rows if not r["final"]],
        "",
        "The demo's targets:",
        *[f"- {_status(met)}: {what}" for what, met in targets(rows, list(per_seed.values()))],
    ]
    return "\n".join(lines)


def _status(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not checked"}[met]


def _short(row: dict) -> str:
    """The plot's label: the table's ones would overlap."""
    if row["key"].startswith("stage"):
        return "stage 0 (CoT)" if row["stage"] == 0 else f"stage {row['stage']}"
    return {LATENT_ROW: "COCONUT (fully latent)"}.get(row["key"], row["label"])


def figure(rows: list[dict], title: str = ""):
    """Accuracy against generated tokens: every method, and COCONUT's stages joined in curriculum order."""
    from coconut.analysis.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    path = sorted((r for r in rows if r["key"].startswith("stage") or r["key"] == LATENT_ROW), key=lambda r: r["stage"])
    ax.plot([r["tokens"] for r in path], [r["accuracy"] for r in path], "-", color="#2a9d8f", alpha=0.5, zorder=1,
            label="COCONUT's curriculum")
    styles = {COT_ROW: ("#264653", "s"), NO_COT_ROW: ("#e76f51", "D"), LATENT_ROW: ("#2a9d8f", "o")}
    for r in rows:
        colour, marker = styles.get(r["key"], ("#8ab17d", "o"))
        ax.errorbar(r["tokens"], r["accuracy"], yerr=r["accuracy_std"] or 0, xerr=r["tokens_std"] or 0,
                    fmt=marker, color=colour, capsize=3, markersize=7 if r["final"] else 5, zorder=2)
        # Final rows labelled below their marker, the curriculum's checkpoints above: they sit close together.
        ax.annotate(_short(r), (r["tokens"], r["accuracy"]), textcoords="offset points",
                    xytext=(4, -13) if r["final"] else (4, 7), fontsize=8)
    ax.set_xlabel("generated tokens per question (language + continuous thoughts)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, max(r["tokens"] for r in rows) * 1.35 + 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    seeds = rows[0]["seeds"]
    ax.set_title(title + (f" (error bars: std over {seeds} seeds)" if seeds > 1 else " (one seed)"), fontsize=10)
    fig.tight_layout()
    return fig
