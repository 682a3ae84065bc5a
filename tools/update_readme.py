"""Write measured figures into README.md between <!-- NAME --> markers, so README numbers come from commands.

Usage:
  python tools/update_readme.py bench NAME [coconut bench arguments...]   # runs the benchmark
  python tools/update_readme.py demo [RESULTS_MD]                         # copies runs/demo/results.md
  python tools/update_readme.py analysis NAME EXPERIMENT ckpt=PATH [what=...]   # runs coconut analyze
  python tools/update_readme.py report NAME RUN_DIR...                          # runs coconut report
"""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def replace_block(marker: str, body: str) -> None:
    text = README.read_text()
    block = f"<!-- {marker} -->\n{body}\n<!-- /{marker} -->"
    new, count = re.subn(rf"<!-- {marker} -->.*?<!-- /{marker} -->", lambda _: block, text, flags=re.S)
    if count != 1:
        raise SystemExit(f"README.md has no <!-- {marker} --> block")
    README.write_text(new)


def main() -> int:
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
        replace_block("demo:results", f"`make demo` on the 2-core CPU development machine:\n\n{table}")
        print(table)
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
