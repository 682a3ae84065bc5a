"""Write `coconut bench` tables into README.md between <!-- bench:NAME --> markers.

Usage: python tools/readme_bench.py NAME [coconut bench arguments...]
The README's figures then come from the command, never typed in by hand.
"""

import re
import subprocess
import sys
from pathlib import Path


def main() -> int:
    name, args = sys.argv[1], sys.argv[2:]
    table = subprocess.run(
        [sys.executable, "-m", "coconut.cli", "bench", *args], check=True, capture_output=True, text=True
    ).stdout.strip()
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    command = " ".join(["coconut bench", *args])
    block = f"<!-- bench:{name} -->\n`{command}`:\n\n{table}\n<!-- /bench:{name} -->"
    new, count = re.subn(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", lambda _: block, text, flags=re.S)
    if count != 1:
        print(f"README.md has no <!-- bench:{name} --> block", file=sys.stderr)
        return 1
    readme.write_text(new)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
