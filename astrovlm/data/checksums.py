"""A dataset's content hash, and checking a dataset folder against it.

One rule for every dataset folder (the sample sky, an ingested folder): sha256 over the
sorted lines ``relative/path\\0sha256(file)\\n`` of every file except the three that
describe the others (``manifest.json``, ``summary.json``, ``checksums.sha256``). The
per-file digests are also written as ``checksums.sha256`` (the ``sha256sum`` format, so
``sha256sum -c checksums.sha256`` checks a copy without astrovlm), which is what lets a
failed check name the damaged file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from astrovlm.errors import NotFoundError, UnreadableError

CHECKSUMS = "checksums.sha256"
# The files that describe the dataset rather than hold it: the hash cannot cover itself.
SKIP_IN_HASH = ("manifest.json", "summary.json", CHECKSUMS)
HASH_RULE = ("sha256 over lines 'relative/path\\0sha256(file)\\n' sorted by path of every file "
             "except manifest.json, summary.json and checksums.sha256")
# Every dataset has these record files, even when one is empty (records.py documents them).
RECORD_FILES = ("objects.jsonl", "images.jsonl", "spectra.jsonl", "passages.jsonl")
_BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(root: str | Path, known: dict[str, str] | None = None) -> dict[str, str]:
    """``{relative path: sha256 hex}`` of every file the content hash covers, sorted by path.

    ``known``: digests already taken by whoever wrote those files (the dataset writer's
    workers hash what they write, in parallel); every other file is read and hashed here."""
    root = Path(root)
    known = known or {}
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel not in SKIP_IN_HASH:
            out[rel] = known.get(rel) or file_sha256(path)
    return out


def _path_order(rel: str) -> tuple[str, ...]:
    # Sorted as paths, folder by folder ("images/a.png" before "images.jsonl"), as the sample
    # sky's hash always was: an unchanged sample keeps its hash (training caches key on it).
    return tuple(rel.split("/"))


def hash_of_digests(digests: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(digests, key=_path_order):
        h.update(f"{rel}\0{digests[rel]}\n".encode())
    return "sha256:" + h.hexdigest()


def content_hash(root: str | Path) -> tuple[str, int]:
    """(``"sha256:..."``, number of files hashed) of a dataset folder, by ``HASH_RULE``."""
    digests = file_digests(root)
    return hash_of_digests(digests), len(digests)


def checksums_text(digests: dict[str, str]) -> str:
    return "".join(f"{digests[rel]}  {rel}\n" for rel in sorted(digests, key=_path_order))


def read_checksums(path: Path) -> dict[str, str]:
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise UnreadableError(f"line {lineno} is not 'sha256  path'", path=path)
        out[rel] = digest
    return out


def verify_dataset(root: str | Path) -> dict:
    """Recompute the content hash, compare it with manifest.json, and name what is wrong.

    Returns ``{"ok", "content_hash", "manifest_hash", "files", "problems"}``; each problem is
    ``{"path", "problem"}`` (a file changed, missing or unexpected against checksums.sha256,
    a record file missing, or a file that a record names and that is not there).
    """
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        raise NotFoundError("no manifest.json: not a dataset written by astrovlm", path=root)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnreadableError(f"manifest is not valid JSON ({exc})", path=manifest_path) from None
    digests = file_digests(root)
    digest = hash_of_digests(digests)
    problems = []
    listed_path = root / CHECKSUMS
    if listed_path.exists():
        listed = read_checksums(listed_path)
        for rel in sorted(set(listed) | set(digests)):
            if rel not in digests:
                problems.append({"path": rel, "problem": "missing"})
            elif rel not in listed:
                problems.append({"path": rel, "problem": "not in checksums.sha256 (added later?)"})
            elif listed[rel] != digests[rel]:
                problems.append({"path": rel, "problem": "changed (sha256 differs from checksums.sha256)"})
    for rel in RECORD_FILES:
        if rel not in digests and not any(p["path"] == rel for p in problems):
            problems.append({"path": rel, "problem": "missing"})
    named = {p["path"] for p in problems}
    problems += [p for p in _missing_record_files(root, digests) if p["path"] not in named]
    if digest != manifest.get("content_hash") and not problems:
        # a dataset from before checksums.sha256: the hash differs but no file can be named
        why = ("content hash differs from manifest.json (no checksums.sha256 to name the file)"
               if "hash_rule" in manifest else
               "manifest.json has no hash_rule: an ingest by an older astrovlm, which hashed "
               "differently; ingest the folder again")
        problems.append({"path": "manifest.json", "problem": why})
    return {"ok": not problems, "content_hash": digest, "manifest_hash": manifest.get("content_hash"),
            "files": len(digests), "problems": problems}


def file_sizes(root: str | Path, rels) -> dict[str, int]:
    """``{relative path: bytes}`` of the given files: what opening a dataset checks (stat only)."""
    root = Path(root)
    return {rel: (root / rel).stat().st_size for rel in rels}


def quick_problems(root: str | Path, named: dict[str, list[str]] | None = None) -> list[dict]:
    """What opening a dataset checks, cheaply (stat, no hashing): the record files exist (all
    four in a dataset the writer made: one with manifest.json or checksums.sha256), every
    file listed in checksums.sha256 exists with the size recorded in manifest.json
    (``file_sizes``, datasets written since sizes are recorded; existence only before), and
    every file the records name (``named``: ``{record file: [paths]}``) exists.
    Returns ``[{"path", "problem"}]`` as ``verify_dataset`` does."""
    root = Path(root)
    problems: list[dict] = []
    manifest_path, listed_path = root / "manifest.json", root / CHECKSUMS
    written = manifest_path.exists() or listed_path.exists()
    for rel in RECORD_FILES if written else RECORD_FILES[:1]:
        if not (root / rel).is_file():
            problems.append({"path": rel, "problem": "missing"})
    sizes: dict = {}
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            sizes = manifest.get("file_sizes") or {} if isinstance(manifest, dict) else {}
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.append({"path": "manifest.json", "problem": f"not valid JSON ({exc})"})
    listed: dict = {}
    if listed_path.exists():
        try:
            listed = read_checksums(listed_path)
        except (UnreadableError, OSError, UnicodeDecodeError) as exc:
            problems.append({"path": CHECKSUMS, "problem": f"unreadable ({exc})"})
    seen = {p["path"] for p in problems}
    for rel in sorted({*listed, *sizes} - seen, key=_path_order):
        try:
            size = os.stat(root / rel).st_size
        except OSError:
            problems.append({"path": rel, "problem": "missing"})
            continue
        if rel in sizes and size != sizes[rel]:
            problems.append({"path": rel, "problem": f"{size} bytes, {sizes[rel]} recorded in "
                                                     f"manifest.json (truncated or altered)"})
    seen = {p["path"] for p in problems} | set(listed) | set(sizes)
    for records, paths in (named or {}).items():
        for rel in paths:
            if rel and rel not in seen and not (root / rel).is_file():
                problems.append({"path": rel, "problem": f"named by {records} but missing"})
                seen.add(rel)
    return problems


def damage_error(root: str | Path, problems: list[dict], verified: bool = False) -> UnreadableError:
    """One clear error for a damaged dataset, naming the first problems."""
    shown = "; ".join(f"{p['path']}: {p['problem']}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    hint = "" if verified else f"; 'astrovlm data info {root} --verify' checks every file's content"
    return UnreadableError(f"the dataset is damaged: {shown}{more}{hint}; rebuild or re-ingest it",
                           path=root)


def _missing_record_files(root: Path, digests: dict[str, str]) -> list[dict]:
    """Files that images.jsonl / spectra.jsonl name and that are not in the folder."""
    problems = []
    for records in ("images.jsonl", "spectra.jsonl"):
        path = root / records
        if not path.exists():
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rel = json.loads(line).get("path")
            except (json.JSONDecodeError, AttributeError):
                problems.append({"path": records, "problem": f"line {lineno} is not a JSON record"})
                continue
            if rel and rel not in digests:
                problems.append({"path": rel, "problem": f"named by {records} line {lineno} but missing"})
    return problems
