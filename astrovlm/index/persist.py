"""An index on disk: a folder, written atomically, checked when read.

::

    index.faiss      the FAISS index
    index.ivfdata    on-disk inverted lists (only for a merged Ray build)
    meta.parquet     one row per live vector: row id + metadata columns
    config.json      encoder fingerprint, dim, kind, count, search settings, file checksums

Writing goes to a temp folder (fsync'd) renamed over the old one (``atomic_directory``); a
crash between its two renames leaves the previous version in ``.NAME.old``, which reading
uses. Reading checks, in order: the folder, ``config.json`` (its format and version), the
encoder fingerprint, every file's size and SHA-256, then what FAISS and pyarrow make of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import faiss

from astrovlm.config import atomic_directory, existing_directory
from astrovlm.errors import IncompatibleError, NotFoundError, UnreadableError

log = logging.getLogger(__name__)

FORMAT = "astrovlm-cross-modal-index"
FORMAT_VERSION = 1
INDEX_FILE, IVFDATA_FILE, META_FILE, CONFIG_FILE = "index.faiss", "index.ivfdata", "meta.parquet", "config.json"


# ----------------------------------------------------------------------------- writing
def write_index_folder(path: Path, write_faiss: Callable[[Path], None], meta_table, config: dict) -> Path:
    """Write an index folder atomically. ``write_faiss(folder)`` writes index.faiss (and its
    ivfdata, if any) into the temp folder; ``config`` gets the format, the file list and the
    time added."""
    path = Path(path)
    with atomic_directory(path) as tmp:
        write_faiss(tmp)
        write_parquet(tmp / META_FILE, meta_table)
        files = {}
        for name in (INDEX_FILE, IVFDATA_FILE, META_FILE):
            p = tmp / name
            if p.exists():
                files[name] = {"bytes": p.stat().st_size, "sha256": sha256(p)}
        config = {"format": FORMAT, "format_version": FORMAT_VERSION, **config,
                  "faiss_version": faiss.__version__,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}
        write_synced(tmp / CONFIG_FILE, json.dumps(config, indent=2).encode())
        fsync_dir(tmp)
    fsync_dir(path.parent)
    return path


def write_faiss_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))
    fsync_file(path)


def write_parquet(path: Path, table) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    fsync_file(path)


def write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256(path: Path, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- reading
def open_index_folder(path: str | Path, expected_fingerprint: str | None = None,
                      verify: bool = True) -> tuple[Path, dict]:
    """The folder to read (``.NAME.old`` after a crash mid-save) and its config, checked:
    the fingerprint against ``expected_fingerprint`` (the encoder's) and every file's size
    (and SHA-256 when ``verify``) against the config."""
    path = existing_index_dir(Path(path))
    config = read_config(path)
    if expected_fingerprint is not None and config["fingerprint"] != expected_fingerprint:
        raise IncompatibleError(
            f"this index was built with a different encoder (fingerprint {config['fingerprint'][:16]}, "
            f"the loaded encoder is {expected_fingerprint[:16]}); its vectors are not comparable. "
            f"Rebuild it with 'astrovlm index build --out {path}'", path=path)
    check_files(path, config, verify)
    return path, config


def existing_index_dir(path: Path) -> Path:
    """The index folder; if a crash fell between atomic_directory's two renames, the previous
    version waits in the '.NAME.old' sibling and is used."""
    found = existing_directory(path, CONFIG_FILE)
    if found != path:
        return found
    if (path / CONFIG_FILE).exists():
        return path
    if path.exists() and not path.is_dir():
        raise UnreadableError("not an index folder (a file)", path=path)
    if path.exists():
        raise NotFoundError(f"not an astrovlm index (no {CONFIG_FILE}); build one with "
                            f"'astrovlm index build'", path=path)
    raise NotFoundError("no index here; build one with 'astrovlm index build'", path=path)


def read_config(path: Path) -> dict:
    where = path / CONFIG_FILE
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableError(f"{CONFIG_FILE} is unreadable or corrupt ({exc})", path=where) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise UnreadableError(f"{CONFIG_FILE} does not describe an astrovlm index", path=where)
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise IncompatibleError(f"index format {config['format_version']} is newer than this astrovlm "
                                f"reads ({FORMAT_VERSION}); upgrade astrovlm", path=path)
    for key in ("fingerprint", "dim", "kind", "count", "files"):
        if key not in config:
            raise UnreadableError(f"{CONFIG_FILE} lacks '{key}'", path=where)
    if INDEX_FILE not in config["files"] or META_FILE not in config["files"]:
        raise UnreadableError(f"{CONFIG_FILE} lists no {INDEX_FILE}/{META_FILE}", path=where)
    return config


def check_files(path: Path, config: dict, verify: bool = True) -> None:
    """Every file the config lists is there, of its size, and (``verify``) of its SHA-256.
    A listed file that is gone is damage to the index, so it is reported as unreadable."""
    for name, info in config["files"].items():
        p = path / name
        if not p.exists():
            raise UnreadableError(f"index file {name} is missing", path=path)
        size = p.stat().st_size
        if size != info["bytes"]:
            raise UnreadableError(f"{name} is truncated or altered ({size} bytes, expected "
                                  f"{info['bytes']}); rebuild the index", path=p)
        if verify and sha256(p) != info["sha256"]:
            raise UnreadableError(f"{name} is corrupt (checksum mismatch); rebuild the index", path=p)


def read_faiss_index(path: Path, config: dict) -> faiss.Index:
    """index.faiss, with its on-disk inverted lists memory-mapped when it has them."""
    flags = faiss.IO_FLAG_ONDISK_SAME_DIR if IVFDATA_FILE in config["files"] else 0
    try:
        with stdout_to_stderr():  # FAISS's C++ prints about on-disk lists on stdout
            return faiss.read_index(str(path / INDEX_FILE), flags)
    except RuntimeError as exc:
        raise UnreadableError(f"FAISS cannot read {INDEX_FILE} ({str(exc).splitlines()[-1][:200]})",
                              path=path / INDEX_FILE) from None


def read_meta_columns(path: Path) -> dict:
    """meta.parquet as a dict of column lists."""
    import pyarrow.parquet as pq

    meta_path = path / META_FILE
    try:
        return pq.read_table(meta_path).to_pydict()
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise UnreadableError(f"cannot read the metadata ({exc})", path=meta_path) from None


@contextmanager
def stdout_to_stderr():
    """Send what C++ code prints on file descriptor 1 to 2 meanwhile, so that stdout stays
    for results (``--json``). Python's own ``sys.stdout`` is flushed first."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
