"""The one error of bad data: it names the file, the record index and the field (defined in coconut.data_error,
below every layer, so that the config schema raises it too; re-exported here)."""

from coconut.data_error import DataError

__all__ = ["DataError", "short"]


def short(value, limit: int = 60) -> str:
    """The repr of a bad value for a one-line message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
