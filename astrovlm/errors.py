"""One error type for every expected mistake, so the CLI and the app can show it plainly."""

from __future__ import annotations

from pathlib import Path


class AstroVLMError(ValueError):
    """An expected problem with the user's input or environment.

    The message names the file or field and says what is wrong. The CLI prints it
    without a traceback; the app shows it on the page.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if field is not None:
            where.append(f"field '{field}'")
        self.path = None if path is None else str(path)
        self.field = field
        super().__init__(f"{': '.join(where)}: {message}" if where else message)
