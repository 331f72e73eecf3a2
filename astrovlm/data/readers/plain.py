"""Text and Markdown files: notes, observing logs, papers' plain text."""

from __future__ import annotations

from pathlib import Path

from astrovlm.data.readers._common import check_nonempty, guarded
from astrovlm.errors import UnreadableError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".text")
MAX_TEXT_BYTES = 20_000_000  # a 20 MB text file is a book; more is a mistake (or a data dump)


@guarded("the text")
def read_text(path: str | Path) -> str:
    """The file's text (UTF-8, newlines normalised). Binary or empty files are errors."""
    path = check_nonempty(path)
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise UnreadableError(f"text file is {size / 1e6:.0f} MB (limit {MAX_TEXT_BYTES / 1e6:.0f} MB)",
                            path=path)
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise UnreadableError("is a binary file, not text", path=path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # old observing logs are often Latin-1; every byte decodes, so this cannot fail
        text = raw.decode("latin-1")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UnreadableError("text file has only blank space", path=path)
    return text
