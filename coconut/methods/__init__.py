"""The registry of methods: each is one object in its own module (coconut.methods.base.Method says what it
answers); everything else asks the registry, never compares a method's name.

Adding a method: its module here (with its config fields as an options dataclass), a line below, its config group
(coconut/conf/method/NAME.yaml) and its experiment files."""

from __future__ import annotations

from coconut.methods.base import Method
from coconut.methods.coconut import Coconut
from coconut.methods.codi import Codi
from coconut.methods.cot import CoT
from coconut.methods.icot import ICoT
from coconut.methods.no_cot import NoCoT
from coconut.methods.no_curriculum import NoCurriculum
from coconut.methods.no_thought import NoThought
from coconut.methods.pause import Pause
from coconut.methods.pause_as_thought import PauseAsThought
from coconut.text_format import BASE_FORMATS, TextFormat

# In the paper's Table 1 row order (the report and the sweep follow it), then the methods that followed it.
METHODS: dict[str, Method] = {m.name: m for m in (CoT(), NoCoT(), ICoT(), Pause(), Coconut(), NoCurriculum(),
                                                  NoThought(), PauseAsThought(), Codi())}
# Methods whose samples change stage by stage, replacing one more language step each time.
STEPWISE_METHODS = tuple(name for name, m in METHODS.items() if m.stepwise)
# The rows of COCONUT's Table 1, in its order.
TABLE1_METHODS = tuple(name for name, m in METHODS.items() if m.table1)
# The text formats by `data.text_format`: the shared ones and those the methods bring.
TEXT_FORMATS: dict[str, TextFormat] = {**BASE_FORMATS,
                                       **{k: f for m in METHODS.values() for k, f in m.text_formats.items()}}
# Every group of method config fields, once each, in the registry's order (coconut.config.MethodConfig's fields).
OPTION_GROUPS = tuple(dict.fromkeys(group for m in METHODS.values() for group in m.options))


def method(name: str) -> Method:
    """The registered method called `name`, with the known names in the error."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}") from None


__all__ = ["METHODS", "OPTION_GROUPS", "STEPWISE_METHODS", "TABLE1_METHODS", "TEXT_FORMATS", "Method", "method"]
