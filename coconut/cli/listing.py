"""`coconut list [WHAT]`: the experiments (grouped by data set) or one config group's options, one line each.

A file's description is the first sentence of its leading comment: every shipped experiment and option starts
with a comment whose first sentence says what it is (tests/test_config.py keeps them short and present).
"""

from __future__ import annotations

import re
from pathlib import Path

from coconut.experiment import CONF_DIR, EXPERIMENTS_DIR, GROUPS, group_options

WHAT = ("experiments", *GROUPS)
LONGEST = 110  # characters of a description, so that a listing keeps one line per entry
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`])")  # not "et al. 2025"


def description(path: Path) -> str:
    """The first sentence of the file's leading comment ('' when it starts without one)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    sentence = _SENTENCE_END.split(" ".join(part for part in lines if part), 1)[0].strip()
    if len(sentence) <= LONGEST:
        return sentence
    # A long first sentence names its subject before the first clause or aside: that part, whole.
    cuts = [i for i in (sentence.find(mark, 12) for mark in (": ", "; ", " (")) if 0 < i <= LONGEST]
    return sentence[:min(cuts)] if cuts else sentence[:LONGEST - 3].rsplit(" ", 1)[0] + "..."


def data_option(path: Path) -> str:
    """The data group option an experiment file picks (its `defaults: data:`), without loading the config."""
    import yaml

    try:
        defaults = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("defaults") or {}
    except (yaml.YAMLError, AttributeError):
        return "?"
    return str(defaults.get("data", "?")) if isinstance(defaults, dict) else "?"


def table(rows: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max((len(name) for name, _ in rows), default=0)
    return [f"{indent}{name:<{width}}  {text}".rstrip() for name, text in rows]


def list_experiments() -> str:
    paths = sorted(EXPERIMENTS_DIR.glob("*.yaml"))
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(data_option(path), []).append(path)
    width = max(len(p.stem) for p in paths)
    out = ["Experiments (coconut train NAME; coconut train NAME --dry-run prints the resolved config):"]
    for data in sorted(groups, key=lambda d: (d != "prosqa_mini", d)):  # the CPU ones first
        out += ["", f"data={data}:"]
        out += table([(p.stem.ljust(width), description(p)) for p in groups[data]])
    return "\n".join(out)


def list_group(group: str) -> str:
    rows = [(option, description(CONF_DIR / group / f"{option}.yaml")) for option in group_options(group)]
    return "\n".join([f"{group} options (coconut train EXPERIMENT {group}=OPTION):", *table(rows)])


def main(args) -> int:
    print(list_experiments() if args.what == "experiments" else list_group(args.what))
    return 0
