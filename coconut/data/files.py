"""Where a run's records come from: the split files named in the config, generated when missing (and allowed)."""

from __future__ import annotations

from pathlib import Path

from coconut.config import DataConfig
from coconut.data.errors import DataError
from coconut.data.generators import generate
from coconut.data.provenance import write_with_source
from coconut.data.release import RELEASES, SPLIT_FILE_NAMES


def how_to_get(data: DataConfig) -> str:
    """What to run to get the released files of the data set in data_dir (empty when there is none)."""
    name = data.generator or Path(data.data_dir).name
    to = "" if data.data_dir == f"data/{name}" else f" --to {data.data_dir}"
    if name == "prontoqa":
        return (f"make 5hop_0shot_random.json as `coconut data download prontoqa` explains, then run "
                f"`coconut data prontoqa-convert 5hop_0shot_random.json{to}`")
    return f"run `coconut data download {name}{to}`" if name in RELEASES else ""


def ensure_data(data: DataConfig) -> dict[str, Path]:
    """The split files; missing ones are generated when a generator is set and data.allow_generated, else must
    exist (test may be absent without a generator). Generated files get a sidecar saying how they were made."""
    files, sizes = data.files(), data.sizes()
    for offset, (split, path) in enumerate(files.items()):
        if path.exists():
            continue
        hint = how_to_get(data)
        if data.generator is None:
            if split == "test":
                continue
            raise DataError(path, None, None, f"no such file (data.{split}_file), and data.generator is null"
                                              + (f"; {hint}" if hint else ""))
        if not data.allow_generated:
            named = getattr(data, f"{split}_file") is not None
            looked = "" if named else f" (nor {', '.join(SPLIT_FILE_NAMES[split][1:])} in {data.data_dir})"
            raise DataError(path, None, None, f"no such file{looked}; {hint or 'put the file there'}, or set "
                                              f"data.allow_generated=true to train on generated data of the same "
                                              f"distribution")
        seed = data.seed * 1000 + offset  # different seeds per split keep the splits apart
        records = generate(data.generator, sizes[split], seed, data.render, progress=True)
        render = f" --render {data.render}" if data.render else ""
        write_with_source(records, path, {
            "origin": "generated", "generator": data.generator, "seed": seed, "size": sizes[split],
            **({"render": data.render} if data.render else {}),
            "command": f"coconut data {data.generator} --n {sizes[split]} --seed {seed}{render} --out {path}",
        })
    return files
