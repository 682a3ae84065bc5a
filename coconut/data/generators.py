"""The data-set generators by name: `prosqa`, `prosqa-mini` (small graphs), `prosqa-deep` (trees whose answers need a
search) and `prontoqa`.

Every record made here carries the mark of generated data (`coconut.data.generated`), so a generated file is
known for what it is wherever it is copied."""

from __future__ import annotations

import dataclasses

from coconut.data.generated import mark

GENERATORS = ("prosqa", "prosqa-mini", "prosqa-deep", "prontoqa")


def generate(name: str, n: int, seed: int, render: str | None = None, progress: bool = False,
             depth: int | None = None, distractor: str | None = None) -> list[dict]:
    """`n` records of generator `name`, the same for the same seed, each marked as generated.
    depth: prosqa-deep's edges from the subject to the answer (None: its default); distractor: prosqa and
    prosqa-mini's choice of the wrong option, "any" or "matched" (None: "any")."""
    if depth is not None and name != "prosqa-deep":
        raise ValueError(f"depth applies to prosqa-deep, not {name}")
    if distractor is not None and name not in ("prosqa", "prosqa-mini"):
        raise ValueError(f"distractor applies to prosqa and prosqa-mini, not {name}")
    records = _records(name, n, seed, render, progress, depth, distractor)
    return mark(records, name, seed, render, depth, distractor)


def settings(name: str, render: str | None = None, depth: int | None = None,
             distractor: str | None = None) -> dict:
    """The options that shape generator `name`'s records, each filled in with the generator's default where it is
    None: two option sets with equal settings draw the same distribution (prontoqa has none)."""
    if name == "prontoqa":
        return {}
    from coconut.data import prosqa

    if name == "prosqa-deep":
        from coconut.data import prosqa_deep

        default = prosqa_deep.DeepConfig()
        return {"render": render or default.names.render, "depth": default.min_depth if depth is None else depth}
    default_render = prosqa.MINI["render"] if name == "prosqa-mini" else prosqa.ProsQAConfig.render
    return {"render": render or default_render, "distractor": distractor or prosqa.ProsQAConfig.distractor}


def _records(name: str, n: int, seed: int, render: str | None, progress: bool, depth: int | None,
             distractor: str | None) -> list[dict]:
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; expected one of {', '.join(GENERATORS)}")
    if n < 1:
        raise ValueError(f"the number of records must be at least 1, got {n}")
    if name == "prontoqa":
        from coconut.data import prontoqa

        return prontoqa.generate(n, seed, progress=progress)
    from coconut.data import prosqa

    if name == "prosqa-deep":
        from coconut.data import prosqa_deep

        cfg = prosqa_deep.DeepConfig() if depth is None else prosqa_deep.DeepConfig(min_depth=depth, max_depth=depth)
        if render is not None:  # replace() runs the names config's own checks on the rendering
            cfg.names = dataclasses.replace(cfg.names, render=render)
        return prosqa_deep.generate(n, seed, cfg, progress=progress)
    options = dict(prosqa.MINI) if name == "prosqa-mini" else {}
    if render is not None:
        options["render"] = render
    if distractor is not None:
        options["distractor"] = distractor
    return prosqa.generate(n, seed, prosqa.ProsQAConfig(**options), progress=progress)
