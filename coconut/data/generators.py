"""The data-set generators by name: `prosqa`, `prosqa-mini` (small graphs), `prosqa-demo` (the demo's) and `prontoqa`."""

from __future__ import annotations

GENERATORS = ("prosqa", "prosqa-mini", "prosqa-demo", "prontoqa")


def generate(name: str, n: int, seed: int, render: str | None = None, progress: bool = False) -> list[dict]:
    """`n` records of generator `name`, the same for the same seed."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; expected one of {', '.join(GENERATORS)}")
    if n < 1:
        raise ValueError(f"the number of records must be at least 1, got {n}")
    if name == "prontoqa":
        from coconut.data import prontoqa

        return prontoqa.generate(n, seed, progress=progress)
    from coconut.data import prosqa

    options = {"prosqa-mini": dict(prosqa.MINI), "prosqa-demo": dict(prosqa.DEMO)}.get(name, {})
    if render is not None:
        options["render"] = render
    return prosqa.generate(n, seed, prosqa.ProsQAConfig(**options), progress=progress)
