"""Expected mistakes, by kind, so callers can tell "not found" from "corrupt" from "made by
another model" while the CLI and the app still show any of them as one plain line.

    AstroVLMError            the base: the CLI prints it and exits with status 2
    ├── NotFoundError        a file, object name, item or folder that is not there
    ├── UnreadableError      a file that is there but corrupt, truncated or not the format
    ├── IncompatibleError    made by another model or format version (fingerprints differ)
    └── BadArgumentError     a value given by the caller is malformed or out of range
"""

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


class NotFoundError(AstroVLMError, LookupError):
    """A file, folder, object name or index item that does not exist."""


class UnreadableError(AstroVLMError):
    """A file that exists but cannot be read: corrupt, truncated, damaged or another format."""


class IncompatibleError(AstroVLMError):
    """Made by another model or format version: an index, calibration or assistant whose
    recorded encoder fingerprint is not the loaded encoder's, or an unknown format version."""


class BadArgumentError(AstroVLMError):
    """A value the caller gave that is malformed or out of range (k, a label set, a cone)."""


__all__ = ["AstroVLMError", "NotFoundError", "UnreadableError", "IncompatibleError",
           "BadArgumentError"]
