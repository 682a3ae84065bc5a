"""Files the product writes are written whole or not at all (`coconut.atomic`), so a Ctrl-C, a kill or a full disk
never leaves a half table, plot or results file where a good one was.

Read from the source: a call that writes a file (write_text, write_bytes, open for writing, savefig, json.dump,
torch.save) appears only inside `write_with(...)` or in the modules named below, each of which writes its own way.
"""

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "coconut"

WRITES = re.compile(r"\.write_text\(|\.write_bytes\(|open\([^)]*['\"][wax]b?['\"]|\.open\(['\"][wax]|\.savefig\(|"
                    r"json\.dump\(|torch\.save\(|os\.fdopen\(")
OWN_WAY = {
    "atomic.py": "the atomic writes themselves",
    "engine/export.py": "fills a folder that replace_folder swaps in whole (or HF save_pretrained's own folder)",
    "engine/model_card.py": "the same export folder",
    "engine/step_decoder.py": "a folder that replace_folder swaps in whole",
    "data/download.py": "its own temporary file, renamed into place once its checksum matches",
    "bench/fsdp.py": "per-rank results in a temporary folder of its own",
}


def writes_outside_atomic() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name in OWN_WAY:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if WRITES.search(line) and "write_with(" not in line:
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_every_file_the_product_writes_goes_through_coconut_atomic():
    assert writes_outside_atomic() == []


def test_the_modules_that_write_their_own_way_exist():
    assert [name for name in OWN_WAY if not (PACKAGE / name).is_file()] == []


@pytest.mark.parametrize("line", ['out.write_text("x")', 'open(p, "w")', 'path.open("a")', 'fig.savefig(path)',
                                  'json.dump(d, f)', 'torch.save(s, p)'])
def test_the_pattern_finds_each_kind_of_write(line):
    assert WRITES.search(line)
