"""Figures of the latent-search analysis. Each function returns a matplotlib figure (saved and logged by the caller)."""

from __future__ import annotations

import math

from coconut.data.graph import Graph
from coconut.analysis.paths import CATEGORIES

COLOURS = {"correct_path": "#2a9d8f", "longer_path": "#8ab17d", "hallucination": "#e76f51",
           "wrong_target": "#f4a261", "correct_label": "#264653", "incorrect_label": "#b5b5b5"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def forced_thoughts_figure(results: list[dict], title: str = ""):
    """Stacked path categories against k, beside final accuracy against k."""
    plt = _pyplot()
    ks = [r["k"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    bottom = [0.0] * len(ks)
    for cat in CATEGORIES:
        share = [r["categories"][cat] for r in results]
        left.bar(ks, share, bottom=bottom, color=COLOURS[cat], label=cat.replace("_", " "))
        bottom = [b + s for b, s in zip(bottom, share)]
    left.set_xlabel("continuous thoughts k before language")
    left.set_ylabel("share of generations")
    left.set_xticks(ks)
    left.set_ylim(0, 1)
    left.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    left.set_title("reasoning path categories")
    right.plot(ks, [r["accuracy"] for r in results], marker="o")
    right.set_xlabel("continuous thoughts k before language")
    right.set_ylabel("answer accuracy")
    right.set_xticks(ks)
    right.set_ylim(-0.02, 1.02)
    right.set_title(title or "final accuracy")
    fig.tight_layout()
    return fig


def frontier_figure(summary: dict):
    """Mean frontier value by node height per thought, and the cumulative top-1/2/3 value mass."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for k, by_height in zip(summary["k"], summary["by_height"]):
        if by_height:
            heights = sorted(by_height)
            left.plot(heights, [by_height[h] for h in heights], marker="o", label=f"after {k} thought(s)")
    left.set_xlabel("node height (longest path to a leaf)")
    left.set_ylabel("mean value of frontier nodes")
    left.set_title("frontier values against height")
    left.legend(fontsize=8)
    for n, style in ((1, "o-"), (2, "s--"), (3, "^:")):
        right.plot(summary["k"], summary["top_mass"][n], style, label=f"top-{n}")
    right.set_xlabel("thought k")
    right.set_ylabel("value mass of the top frontier nodes")
    right.set_xticks(summary["k"])
    right.set_ylim(-0.02, 1.02)
    right.set_title("how spread the search is")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def layout_graph(graph: Graph) -> dict[int, tuple[float, float]]:
    """Node positions: one column per distance from the subject; nodes it cannot reach in a last column."""
    columns: dict[int, list[int]] = {}
    far = max(graph.distance.values(), default=0) + 1
    for v in range(len(graph.names)):
        columns.setdefault(graph.distance.get(v, far), []).append(v)
    pos = {}
    for x, nodes in columns.items():
        for y, v in enumerate(nodes):
            pos[v] = (float(x), y - (len(nodes) - 1) / 2)
    return pos


def case_figure(graph: Graph, values_by_k: dict[int, dict[int, float]], title: str = ""):
    """The question's graph once per k, each node coloured and labelled by its value after k thoughts."""
    plt = _pyplot()
    from matplotlib import cm

    pos = layout_graph(graph)
    ks = sorted(values_by_k)
    fig, axes = plt.subplots(1, len(ks), figsize=(5.5 * len(ks), 4.5), squeeze=False)
    for ax, k in zip(axes[0], ks):
        values = values_by_k[k]
        for u, v in graph.edges:
            (x0, y0), (x1, y1) = pos[u], pos[v]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="->", color="#999999", shrinkA=12, shrinkB=12, lw=0.8))
        frontier = set(graph.frontier(k))
        for v, (x, y) in pos.items():
            value = values.get(v, 0.0)
            ax.scatter([x], [y], s=600, color=cm.viridis(min(1.0, value)),
                       edgecolors="red" if v in frontier else "black", linewidths=2.5 if v in frontier else 0.8,
                       zorder=3)
            role = " (Q)" if v == graph.root else " (A)" if v == graph.target else ""
            ax.text(x, y + 0.38, f"{graph.names[v]}{role}", ha="center", fontsize=7)
            ax.text(x, y, f"{value:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if value < 0.5 else "black", zorder=4)
        ax.set_title(f"values after {k} thought(s); red: frontier")
        ax.axis("off")
        xs = [p[0] for p in pos.values()]
        ys = [p[1] for p in pos.values()]
        ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
        ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def decoding_figure(rows: list[dict], title: str = ""):
    """Accuracy against generated tokens, one point per decoding rule or stopping rule."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in rows:
        ax.scatter([r["tokens"]], [r["acc"]], s=50)
        ax.annotate(r["label"], (r["tokens"], r["acc"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("mean generated tokens (language + thoughts)")
    ax.set_ylabel("accuracy")
    low = min((r["acc"] for r in rows), default=0.0)
    ax.set_ylim(max(0.0, math.floor(low * 10) / 10 - 0.1), 1.02)
    ax.set_title(title)
    fig.tight_layout()
    return fig
