"""Which method builds the samples, and its settings: `name` and the union of the registered methods' option groups.

Each method declares the fields it reads as dataclasses in its own module (coconut.methods.*: the curriculum's c
and stages, iCoT's removal plan, pause's count, CODI's distillation...); `MethodConfig` is assembled from them, so
a method's settings live with the method and this schema needs no edit when one is added. Two groups may not
declare the same field."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from coconut.config.checks import require
from coconut.methods import METHODS, OPTION_GROUPS, method


@dataclass
class MethodSettings:
    """What every method config has: the method's name, the checks and the derived values. Its fields come from
    the methods (see the module's docstring); fields a method does not read are left out of the shown config."""

    name: str = "coconut"

    def __post_init__(self):
        require(self.name in METHODS, f"unknown method {self.name!r}; expected one of {', '.join(METHODS)}")
        for group in OPTION_GROUPS:  # every group's fields, so a bad value is caught whichever method reads it
            for problem in getattr(group, "problems", lambda cfg: [])(self):
                require(False, problem)
        for problem in method(self.name).check(self):
            require(False, problem)

    @property
    def max_thoughts(self) -> int:
        """Thoughts of the final stage (COCONUT: every step replaced, max_latent_stage x c; CODI: num_latent), for a
        question with steps enough."""
        return method(self.name).final_thoughts(self)

    def used_fields(self) -> tuple[str, ...]:
        """The fields this method reads (the rest are shown only when they apply)."""
        return method(self.name).used_fields(self)


def _assembled_fields(groups) -> list[tuple[str, type, dataclasses.Field]]:
    """(name, type, field) of every group's fields, with the types resolved (OmegaConf checks values by them)."""
    owner: dict[str, type] = {"name": MethodSettings}
    out = []
    for group in groups:
        hints = typing.get_type_hints(group)
        for f in dataclasses.fields(group):
            if f.name in owner:
                raise TypeError(f"method option {f.name!r} is declared by both {owner[f.name].__qualname__} and "
                                f"{group.__qualname__}: one group owns a field (share the group instead)")
            owner[f.name] = group
            factory = f.default_factory is not dataclasses.MISSING
            default = dataclasses.field(default_factory=f.default_factory) if factory else dataclasses.field(default=f.default)
            out.append((f.name, hints[f.name], default))
    return out


MethodConfig = dataclasses.make_dataclass("MethodConfig", _assembled_fields(OPTION_GROUPS), bases=(MethodSettings,))
MethodConfig.__module__ = __name__  # pickled and shown by this name
MethodConfig.__doc__ = MethodSettings.__doc__
