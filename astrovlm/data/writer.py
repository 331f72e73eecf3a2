"""The one dataset writer: the sample-sky build and ``astrovlm data ingest`` both write
through it, so every dataset folder has the same form (``astrovlm.data.records``), the same
checksums and the same content hash (``astrovlm.data.checksums``).

    with DatasetWriter(out) as w:
        w.copy(source_file, "images/m51.png")
        w.write_spectrum(spectrum, "spectra/real/m51.fits")
        table.to_parquet(w.path("tables/openngc.parquet"))
        manifest = w.finish(objects, images, spectra, passages, manifest={"name": ...})
        w.write_json("summary.json", {...})

``w.files`` (a ``DatasetFiles``: path, copy, write_spectrum) is the same door as a
small picklable object, for worker processes that write into the open folder.

Everything is written into a sibling temp folder and swapped in when the block ends
(``astrovlm.config.atomic_directory``): an interrupted build leaves the previous dataset as
it was, and a reader never sees half a dataset.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from astrovlm.config import atomic_directory, atomic_write_json, atomic_write_text
from astrovlm.data.checksums import (
    CHECKSUMS, HASH_RULE, checksums_text, file_digests, file_sizes, hash_of_digests)
from astrovlm.data.records import ImageRecord, Passage, SkyObject, SpectrumRecord, write_jsonl
from astrovlm.errors import BadArgumentError, NotFoundError

# The folders of the dataset form; they exist (maybe empty) in every dataset.
FOLDERS = ("images", "spectra", "tables")
_COPY_BLOCK = 1 << 20


class DatasetWriter:
    """Writes one dataset folder; use it as a context manager (see the module docstring)."""

    def __init__(self, final: str | Path):
        self.final = Path(final)
        self.root: Path | None = None
        self.manifest: dict | None = None   # set by finish()
        self._swap = None
        self._files: DatasetFiles | None = None

    def __enter__(self) -> "DatasetWriter":
        self._swap = atomic_directory(self.final)
        self.root = self._swap.__enter__()
        for folder in FOLDERS:
            (self.root / folder).mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool | None:
        swap, self._swap = self._swap, None
        if exc_type is None and self.manifest is None:
            # a folder without records or manifest is not a dataset: keep the previous one
            err = BadArgumentError("finish() was not called before the block ended; nothing "
                                   "was swapped in", path=self.final)
            swap.__exit__(BadArgumentError, err, None)
            raise err
        return swap.__exit__(exc_type, exc, tb)

    @property
    def files(self) -> "DatasetFiles":
        """Where files go, as a small picklable object: ingest's worker processes write
        through it into the folder this writer swaps in."""
        if self.root is None:
            raise BadArgumentError("the writer is not open (use it in a with-block)", path=self.final)
        if self._files is None or self._files.root != self.root:
            self._files = DatasetFiles(self.root)
        return self._files

    def path(self, rel: str) -> Path:
        """Where the file ``rel`` (relative, '/'-separated) goes; its folder is made."""
        return self.files.path(rel)

    def copy(self, source: str | Path, rel: str) -> str:
        """Copy a file in as ``rel`` (timestamps kept); returns ``rel`` for the record."""
        return self.files.copy(source, rel)

    def write_spectrum(self, spectrum, rel: str) -> str:
        """A ``Spectrum`` as the FITS table every spectrum of a dataset is (``Spectrum.to_fits``)."""
        return self.files.write_spectrum(spectrum, rel)

    def write_json(self, rel: str, obj) -> None:
        atomic_write_json(self.path(rel), obj)

    def finish(self, objects: list[SkyObject], images: list[ImageRecord],
               spectra: list[SpectrumRecord], passages: list[Passage], manifest: dict) -> dict:
        """Write the four record files, check every file they name is there, then write
        checksums.sha256 and manifest.json (``manifest`` plus files, content_hash,
        hash_rule). Returns the manifest as written."""
        for name, records in (("objects.jsonl", objects), ("images.jsonl", images),
                              ("spectra.jsonl", spectra), ("passages.jsonl", passages)):
            write_jsonl(self.path(name), records)
        for name, records in (("images.jsonl", images), ("spectra.jsonl", spectra)):
            for rec in records:
                if not (self.root / rec.path).is_file():
                    raise NotFoundError(f"a record names '{rec.path}' but no such file was written",
                                        path=self.final / name)
        digests = file_digests(self.root, known=self.files.digests)
        atomic_write_text(self.root / CHECKSUMS, checksums_text(digests))
        # sizes let opening the dataset notice a truncated or missing file with a stat
        manifest = {**manifest, "files": len(digests), "content_hash": hash_of_digests(digests),
                    "hash_rule": HASH_RULE, "file_sizes": file_sizes(self.root, digests)}
        atomic_write_json(self.root / "manifest.json", manifest)
        self.manifest = manifest
        return manifest


class DatasetFiles:
    """The files of an open dataset folder: where each goes, copies and spectra in.

    ``digests`` holds the sha256 of each file ``copy`` and ``write_spectrum`` wrote, taken as
    it is written (in ingest's workers, in parallel); ``finish`` hashes only the rest. A
    worker's digests travel back with its file (``take_digests``, ``add_digests``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._made: set[Path] = set()
        self.digests: dict[str, str] = {}

    def __getstate__(self) -> dict:  # a worker starts with no digests of its own
        return {**self.__dict__, "digests": {}}

    def path(self, rel: str) -> Path:
        """Where the file ``rel`` (relative, '/'-separated) goes; its folder is made. A
        digest taken of ``rel`` is dropped: whoever asks for the path may write it anew."""
        parts = Path(rel).parts
        if not parts or Path(rel).is_absolute() or ".." in parts:
            raise BadArgumentError(f"'{rel}' is not a path inside the dataset", field="rel")
        self.digests.pop(rel, None)
        target = self.root / rel
        if target.parent not in self._made:  # one mkdir per folder, not per file
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(target.parent)
        return target

    def copy(self, source: str | Path, rel: str) -> str:
        """Copy ``source`` in as ``rel`` (its timestamps kept), hashing the bytes on their
        way through: one read of the file, not a copy and then a read to hash it."""
        target = self.path(rel)
        digest = hashlib.sha256()
        with open(source, "rb") as fin, open(target, "wb") as fout:
            while block := fin.read(_COPY_BLOCK):
                digest.update(block)
                fout.write(block)
            stat = os.fstat(fin.fileno())
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        self.digests[rel] = digest.hexdigest()
        return rel

    def write_spectrum(self, spectrum, rel: str) -> str:
        """``spectrum`` as its FITS table at ``rel``, written straight there (the whole folder
        is swapped in at the end) and hashed from the bytes written."""
        payload = spectrum.fits_bytes()
        with open(self.path(rel), "wb") as fh:
            fh.write(payload)
        self.digests[rel] = hashlib.sha256(payload).hexdigest()
        return rel

    def take_digests(self, rels) -> dict[str, str]:
        """The digests of ``rels``, taken out (a worker sends them back with its file)."""
        return {rel: self.digests.pop(rel) for rel in rels if rel in self.digests}

    def add_digests(self, digests: dict[str, str]) -> None:
        """Digests a worker took of files it wrote here."""
        self.digests.update(digests)
