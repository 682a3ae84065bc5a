"""The one error of bad data: it names the file, the record index and the field."""


class DataError(ValueError):
    """Bad data, located by file, record index and field."""

    def __init__(self, file, index: int | None, field: str | None, message: str):
        where = [str(file)]
        if index is not None:
            where.append(f"record {index}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join(where)}: {message}")
        self.file, self.index, self.field = str(file), index, field


def short(value, limit: int = 60) -> str:
    """The repr of a bad value for a one-line message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
