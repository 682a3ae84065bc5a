"""The registry of methods: each is one object in its own module (coconut.methods.base.Method says what it
answers); everything else asks the registry, never compares a method's name.

Adding a method: its module here, a line below, its config group (coconut/conf/method/NAME.yaml) and its
experiment files."""

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

# In the paper's Table 1 row order (the report and the sweep follow it), then the methods that followed it.
METHODS: dict[str, Method] = {m.name: m for m in (CoT(), NoCoT(), ICoT(), Pause(), Coconut(), NoCurriculum(),
                                                  NoThought(), PauseAsThought(), Codi())}
# Methods whose samples change stage by stage, replacing one more language step each time.
STEPWISE_METHODS = tuple(name for name, m in METHODS.items() if m.stepwise)
# The rows of COCONUT's Table 1, in its order.
TABLE1_METHODS = tuple(name for name, m in METHODS.items() if m.table1)


def method(name: str) -> Method:
    """The registered method called `name`, with the known names in the error."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}") from None


__all__ = ["METHODS", "STEPWISE_METHODS", "TABLE1_METHODS", "Method", "method"]
