"""Quiet runs: the lines libraries print on every run that say nothing about the run, filtered one by one.

Each filter names its source and matches one message, so any other line from the same library still prints:
- Lightning's product tips ("💡 Tip: For seamless cloud ... try installing litlogger / litmodels"), logged at INFO
  by its rank-zero logger on every Trainer;
- torch's FutureWarning that LeafSpec is deprecated, raised inside Lightning's own pytree helper on every fit.
What comes from our own calls is fixed there instead (a checkpoint saved with an explicit `weights_only`, a data
file loaded under its own split name, the model summary without a FLOPs count that is never measured).

Imports neither torch nor Lightning (a logger is configured by name before its library creates it), so the
command installs the filters at start-up; the Trainers coconut.train builds install them too, for runs started
from Python. `coconut --debug` leaves every line in place (configure).
"""

from __future__ import annotations

import logging
import re
import warnings

# Lightning logs rank_zero_info through one of these two names, depending on which of its packages set it last.
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
TIP = re.compile(r"💡 Tip: For seamless cloud ")
LEAF_SPEC = {"message": r"`isinstance\(treespec, LeafSpec\)` is deprecated", "category": FutureWarning,
             "module": r"lightning\.pytorch\.utilities\._pytree"}

_state = {"installed": False, "everything": False}


class DropMessages(logging.Filter):
    """Drops the records of one logger whose message matches a pattern; every other record passes."""

    def __init__(self, pattern: re.Pattern):
        super().__init__()
        self.pattern = pattern
        self.coconut_quiet = True

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.match(record.getMessage())


def configure(debug: bool) -> None:
    """The command's choice: the filters, or (`--debug`) every line, also through the runs it starts."""
    _state["everything"] = debug
    install()


def install() -> None:
    """Install the filters once per process (a second call does nothing), unless the command asked for every
    line (filters an earlier command of the same process installed stay)."""
    if _state["installed"] or _state["everything"]:
        return
    _state["installed"] = True
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(getattr(f, "coconut_quiet", False) for f in logger.filters):
            logger.addFilter(DropMessages(TIP))
    warnings.filterwarnings("ignore", **LEAF_SPEC)
