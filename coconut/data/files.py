"""Where a run's records come from: the split files named in the config, generated when missing (and allowed).

Generated data is written under our names only, never a release's (`RELEASE_NAMES`), and a run that takes
released data only (`data.allow_generated=false`, the Table 1 data sets) refuses a file that is generated
data wherever it lies: its records carry the generated-data marker, or its sidecar says so. A broken
symbolic link among the data paths is refused, never generated over.
"""

from __future__ import annotations

from pathlib import Path

from coconut.config import DataConfig
from coconut.data.errors import DataError
from coconut.data.generators import generate, settings
from coconut.data.provenance import generated_origin, sidecar_path, write_with_source
from coconut.data.release import RELEASE_NAMES, RELEASES, SPLIT_FILE_NAMES, release_of
from coconut.data_error import check_links


def how_to_get(data: DataConfig, name: str | None = None) -> str:
    """What to run to get the released files of data set `name` (default: the generator's, or data_dir's name)
    into data_dir (empty when there is none)."""
    name = name or data.generator or Path(data.data_dir).name
    to = "" if data.data_dir == f"data/{name}" else f" --to {data.data_dir}"
    if name == "prontoqa":
        return (f"make 5hop_0shot_random.json as `coconut data download prontoqa` explains, then run "
                f"`coconut data prontoqa-convert 5hop_0shot_random.json{to}`")
    return f"run `coconut data download {name}{to}`" if name in RELEASES else ""


def ensure_data(data: DataConfig) -> dict[str, Path]:
    """The split files; missing ones are generated when a generator is set and data.allow_generated, else must
    exist (test may be absent without a generator). Generated files get a sidecar saying how they were made."""
    check_existing(data)  # every file there is checked before anything is generated
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
        if path.name in RELEASE_NAMES:
            hint = how_to_get(data, release_of(path.name))
            raise DataError(path, None, None, f"no such file, and {path.name} is a released file's name: generated "
                                              f"data is never written under it (it would pass for the release); "
                                              f"{hint + ', or ' if hint else ''}name a file of another name for "
                                              f"generated data (data.{split}_file)")
        seed = data.seed * 1000 + offset  # different seeds per split keep the splits apart
        records = generate(data.generator, sizes[split], seed, data.render, progress=True, depth=data.depth,
                           distractor=data.distractor)
        render = f" --render {data.render}" if data.render else ""
        render += f" --depth {data.depth}" if data.depth is not None else ""
        render += f" --distractor {data.distractor}" if data.distractor is not None else ""
        write_with_source(records, path, {
            "origin": "generated", "generator": data.generator, "seed": seed, "size": sizes[split],
            **({"render": data.render} if data.render else {}),
            **({"depth": data.depth} if data.depth is not None else {}),
            **({"distractor": data.distractor} if data.distractor is not None else {}),
            "command": f"coconut data {data.generator} --n {sizes[split]} --seed {seed}{render} --out {path}",
        })
    return files


def check_existing(data: DataConfig) -> None:
    """The checks of the split files already there, which generate and write nothing (a command that trains several
    runs makes them for all before the first): no broken link, and each file one the config may train on."""
    check_links(Path(data.data_dir), "data.data_dir")
    for split, path in data.files().items():
        check_links(path, f"data.{split}_file")
    for path in data.files().values():
        if path.exists():
            if not data.allow_generated:
                refuse_generated(path, data)
            elif data.generator is not None:
                refuse_other_distribution(path, data)


def refuse_other_distribution(path: Path, data: DataConfig) -> None:
    """DataError naming the file and the field when it is generated data of another distribution than the config
    would generate (another generator, rendering, depth or distractor): reused as it is, it would silently train
    on other data than the run's config names. Another seed or size is not refused: a file made by hand with
    `coconut data` is the draw its user chose, and the run's provenance records its seed and size."""
    found = generated_origin(path)
    if found is None:  # released data or the user's own file: nothing says how it was made
        return
    index, how = found
    said = f"its sidecar {sidecar_path(path).name} says so" if index is None else "its records' mark says so"
    fix = "point data.data_dir (or the split's file) elsewhere to generate the config's data; the file is kept"
    made_by = how.get("generator")
    if made_by != data.generator:
        raise DataError(path, index, "generator", f"generated by {made_by} ({said}), but data.generator is "
                                                  f"{data.generator}; set data.generator={made_by} to train on it, "
                                                  f"or {fix}")
    made = settings(made_by, how.get("render"), how.get("depth"), how.get("distractor"))
    asked = settings(data.generator, data.render, data.depth, data.distractor)
    for key, value in made.items():
        if asked[key] != value:
            given = getattr(data, key)
            raise DataError(path, index, key, f"generated with {key} {value} ({said}), but the config asks for "
                                              f"{asked[key]} (data.{key}={'null' if given is None else given}); set "
                                              f"data.{key}={value} to train on it, or {fix}")


def refuse_generated(path: Path, data: DataConfig) -> None:
    """DataError naming the file (and the record) when it is generated data: a run with
    data.allow_generated=false takes released (or the user's own) data only."""
    found = generated_origin(path)
    if found is None:
        return
    index, how = found
    what = f"{how.get('generator', 'a generator')}, seed {how.get('seed', '?')}"
    if index is None:
        where, field, what = None, None, f"is generated data ({what}: its sidecar {sidecar_path(path).name} says so)"
    else:
        where, field, what = index, "generated", f"marks the file as generated data ({what})"
    hint = how_to_get(data)
    raise DataError(path, where, field, f"{what}, and data.allow_generated=false takes released data only; "
                                        f"{hint + ', or ' if hint else ''}set data.allow_generated=true to train "
                                        f"on generated data")
