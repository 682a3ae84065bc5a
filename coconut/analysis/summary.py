"""The analysis results as a short text report for the terminal (the full numbers are in analysis.json)."""

from __future__ import annotations


def format_analysis(results: dict) -> str:
    lines = [f"checkpoint {results['checkpoint']} (stage {results['stage']}, {results['split']} split)"]
    search = results.get("search")
    if search:
        lines += ["", f"forced thoughts on {search['questions']} questions:",
                  "| k | accuracy | correct path | longer path | hallucination | wrong target | correct label | incorrect label |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in search["forced_thoughts"]:
            c = r["categories"]
            lines.append(f"| {r['k']} | {r['accuracy']:.3f} | " + " | ".join(
                f"{c[k]:.3f}" for k in ("correct_path", "longer_path", "hallucination", "wrong_target",
                                         "correct_label", "incorrect_label")) + " |")
        f = search["frontier"]
        lines += ["", f"frontier values (step prefix {search['prefix']!r}):",
                  "| thought k | questions with a step after k | top-1 mass | top-2 mass | top-3 mass | corr(value, height) |",
                  "|---|---|---|---|---|---|"]
        for j, k in enumerate(f["k"]):
            lines.append(f"| {k} | {f['questions'][j]} | {f['top_mass'][1][j]:.3f} | {f['top_mass'][2][j]:.3f} | "
                         f"{f['top_mass'][3][j]:.3f} | {f['correlation'][j]:.3f} |")
    for key, title in (("decoding", "decoding rules"), ("stop", "number of thoughts")):
        rows = results.get(key)
        if rows:
            lines += ["", f"{title}:", "| setting | accuracy | generated tokens | thoughts |", "|---|---|---|---|"]
            lines += [f"| {r['label']} | {r['acc']:.3f} | {r['tokens']:.2f} | {r['thoughts']:.2f} |" for r in rows]
    if results.get("files"):
        lines += ["", "written: " + ", ".join(results["files"])]
    return "\n".join(lines)
