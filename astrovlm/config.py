"""Where astrovlm keeps its data, and small file-system helpers shared by every writer."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


def data_home() -> Path:
    """The data home: ``$ASTROVLM_HOME``, default ``~/.astrovlm``."""
    return Path(os.environ.get("ASTROVLM_HOME", Path.home() / ".astrovlm")).expanduser()


def sample_dir() -> Path:
    """Where ``astrovlm data sample`` writes the sample sky."""
    return data_home() / "sample"


def default_index_dir() -> Path:
    """Where ``astrovlm index build`` writes the default index of the sample sky."""
    return data_home() / "index" / "sample"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that a reader sees the old or the new content, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Build a directory in a sibling temp folder, then swap it in with renames.

    If the block raises (or the process dies) the previous ``final`` is left intact;
    a leftover ``.tmp`` sibling of a dead process is removed on the next build (one of a
    build still running elsewhere is left alone: its name carries its process id). A crash
    between the two renames leaves the previous version only as ``.NAME.old``: readers find
    it there (``existing_directory``) and the next build moves it back first.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.parent / f".{final.name}.old"
    if old.is_dir() and not os.path.lexists(final):
        # a crash fell between the two renames below: the previous version is the only one
        # left; put it back before anything (the rmtree of '.old' below) can touch it
        os.replace(old, final)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        if not _pid_alive(stale.name.rsplit(".tmp-", 1)[1].split("-")[0]):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-{os.getpid()}-"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # mkdtemp (and some writers) make private files; a dataset or model folder is for sharing.
    umask = os.umask(0)
    os.umask(umask)
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def existing_directory(final: str | Path, marker: str) -> Path:
    """The folder ``atomic_directory`` wrote at ``final``, wherever a crash left it: ``final``
    itself, or, when a crash fell between its two renames (``final`` gone, the previous
    version moved aside), the ``.NAME.old`` sibling if it holds ``marker``. Readers use this
    instead of ``final`` so that every command finds what the last complete write left; the
    next write through ``atomic_directory`` moves ``.NAME.old`` back first."""
    final = Path(final)
    if os.path.lexists(final):
        return final
    old = final.parent / f".{final.name}.old"
    if (old / marker).exists():
        log.warning("%s is missing; using the previous version left at %s by an interrupted "
                    "write", final, old)
        return old
    return final


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
