"""The one error type of configuration, and the check every piece uses."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, with the key or file named."""


def require(ok: bool, message: str) -> None:
    """A piece's own check: a ValueError that `load_config` turns into a ConfigError naming the experiment."""
    if not ok:
        raise ValueError(message)
