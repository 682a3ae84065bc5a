"""Files the product writes are written whole or not at all (`coconut.atomic`), so a Ctrl-C, a kill or a full disk
never leaves a half table, plot or results file where a good one was.

Read from the source: a call that writes a file (write_text, write_bytes, open for writing, savefig, json.dump,
torch.save) appears only inside `write_with(...)` or in the modules named below, each of which writes its own way.
And what is written whole gets the permissions any new file would, not its temporary file's private ones.
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


@pytest.mark.parametrize("umask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                           (0o002, 0o664, 0o775)])
def test_files_and_folders_written_whole_get_the_permissions_the_umask_gives_any_new_file(tmp_path, umask, file_mode,
                                                                                         folder_mode):
    """Their temporary files are private (mkstemp, mkdtemp); renamed into place, a run's results, checkpoints and
    exports must be as readable as any file the user makes, or a team's shared runs folder hides them."""
    import os
    import stat

    from coconut.atomic import replace_folder, write_json, write_text

    before = os.umask(umask)
    try:
        write_text(tmp_path / "results.md", "x\n")
        write_json(tmp_path / "run.json", {"a": 1})
        replace_folder(tmp_path / "export", lambda folder: (folder / "config.json").write_text("{}"))
        (tmp_path / "plain.txt").write_text("made by open()")
    finally:
        os.umask(before)
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert mode == {"results.md": file_mode, "run.json": file_mode, "export": folder_mode,
                    "plain.txt": file_mode}
