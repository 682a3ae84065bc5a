"""`coconut report RUN_DIR...`: the paper's Table 1 from run folders (see coconut.analysis.report)."""

from __future__ import annotations

import sys
from pathlib import Path


def add_report_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, or folders holding them")
    parser.add_argument("--out", default=None, help="where to write results_table.* (default: runs/report)")


def main(args) -> int:
    from coconut.analysis.report import ReportError, report, to_markdown

    try:
        result = report(args.runs, Path(args.out) if args.out else Path("runs") / "report")
    except ReportError as err:
        print(f"coconut report: {err}", file=sys.stderr)
        return 2
    for line in result["skipped"]:
        print(f"coconut report: skipped {line}", file=sys.stderr)
    print(to_markdown(result["rows"]))
    skipped = f", {len(result['skipped'])} skipped" if result["skipped"] else ""
    print(f"\n{len(result['runs'])} runs{skipped}; written: " + ", ".join(result["files"].values()))
    return 0
