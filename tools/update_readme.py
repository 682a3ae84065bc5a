"""Write measured figures between <!-- NAME --> markers in README.md or docs/*.md, so their numbers come from commands.

Usage:
  python tools/update_readme.py bench NAME [coconut bench arguments...]   # runs the benchmark
  python tools/update_readme.py demo [RESULTS_MD]     # copies runs/demo/results.md, its plot and think.txt
  python tools/update_readme.py demo-table NAME RESULTS_MD   # another make demo's table (say how it was run)
  python tools/update_readme.py analysis NAME EXPERIMENT ckpt=PATH [what=...]   # runs coconut analyze
  python tools/update_readme.py report NAME RUN_DIR...                          # runs coconut report
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pages(root: Path = ROOT) -> list[Path]:
    """The files that may hold a marked block: README.md and the reference pages under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def replace_block(marker: str, body: str, root: Path = ROOT) -> Path:
    """Replace the one <!-- marker --> ... <!-- /marker --> block among `pages(root)`; returns its file."""
    pattern = re.compile(rf"<!-- {re.escape(marker)} -->.*?<!-- /{re.escape(marker)} -->", flags=re.S)
    holders = [page for page in pages(root) if page.exists() and pattern.search(page.read_text())]
    if len(holders) != 1 or len(pattern.findall(holders[0].read_text())) != 1:
        found = ", ".join(str(page.relative_to(root)) for page in holders) or "none of README.md, docs/*.md"
        raise SystemExit(f"expected exactly one <!-- {marker} --> block, found it in: {found}")
    block = f"<!-- {marker} -->\n{body}\n<!-- /{marker} -->"
    holders[0].write_text(pattern.sub(lambda _: block, holders[0].read_text()))
    return holders[0]


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    kind, args = sys.argv[1], sys.argv[2:]
    if kind == "bench":
        name, bench_args = args[0], args[1:]
        table = subprocess.run([sys.executable, "-m", "coconut", "bench", *bench_args],
                               check=True, capture_output=True, text=True).stdout.strip()
        replace_block(f"bench:{name}", f"`{' '.join(['coconut bench', *bench_args])}`:\n\n{table}")
        print(table)
    elif kind == "demo":
        results = Path(args[0] if args else "runs/demo/results.md")
        table = results.read_text().strip()
        replace_block("demo:results", f"From `make demo`, copied here by `make readme-demo`:\n\n{table}")
        # The plot beside the docs' other figures, and the thoughts of one test question as the demo printed them.
        shutil.copyfile(results.parent / "accuracy_vs_tokens.png", ROOT / "docs" / "figures" / "demo_accuracy_vs_tokens.png")
        think = (results.parent / "think.txt").read_text().strip()
        replace_block("demo:think", f"```text\n{think}\n```")
        print(table)
    elif kind == "demo-table":
        name, results = args[0], Path(args[1])
        replace_block(f"demo-table:{name}", f"`{results}`:\n\n{results.read_text().strip()}")
        print(results.read_text().strip())
    elif kind == "analysis":
        name, analyze_args = args[0], args[1:]
        out = subprocess.run([sys.executable, "-m", "coconut", "analyze", *analyze_args],
                             check=True, capture_output=True, text=True).stdout.strip()
        summary = "\n".join(line for line in out.splitlines() if not line.startswith("written:")).strip()
        replace_block(f"analysis:{name}", f"`{' '.join(['coconut analyze', *analyze_args])}`:\n\n{summary}")
        print(summary)
    elif kind == "report":
        name, runs = args[0], args[1:]
        out = subprocess.run([sys.executable, "-m", "coconut", "report", *runs, "--out", f"runs/report_{name}"],
                             check=True, capture_output=True, text=True).stdout.strip()
        table = out.split("\n\n")[0]
        replace_block(f"report:{name}", f"`{' '.join(['coconut report', *runs])}`:\n\n{table}")
        print(table)
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
