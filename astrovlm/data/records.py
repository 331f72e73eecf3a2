"""The dataset form: one folder, JSON-lines records, files beside them.

A dataset folder (the sample sky, or what ``astrovlm data ingest`` makes of a user's folder)::

    objects.jsonl      one SkyObject per line (catalog facts, split)
    images.jsonl       one ImageRecord per line; files under images/
    spectra.jsonl      one SpectrumRecord per line; files under spectra/ (FITS tables)
    passages.jsonl     one Passage per line (literature chunks and catalog cards)
    tables/            catalogs as Parquet (openngc, stars, supernovae)
    checksums.sha256   sha256 of every other file (``sha256sum -c`` checks it)
    manifest.json      counts, credits and licences, content hash
    summary.json       what the build printed, as JSON

``astrovlm.data.writer.DatasetWriter`` writes this form (the sample sky and ``ingest`` both
use it); ``astrovlm.data.checksums.verify_dataset`` checks a folder against it.
Everything is plain data so that other tools (pandas, astropy, jq) read it too.
Angles are stored in degrees (ICRS), wavelengths in Angstrom; the record classes
turn them into ``SkyCoord`` / ``Quantity`` for callers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from astrovlm.errors import BadArgumentError, NotFoundError, UnreadableError

SPLITS = ("train", "val", "test")

# Coarse classes used across the project (training captions, zero-shot labels, benchmarks).
IMAGE_CLASSES = ("galaxy", "globular cluster", "open cluster", "planetary nebula", "nebula")
SPECTRUM_CLASSES = ("O/B star", "A star", "F star", "G star", "K star", "M star",
                    "white dwarf", "galaxy", "quasar")


@dataclass
class SkyObject:
    """One celestial object with its catalog facts."""

    object_id: str                      # canonical id: "NGC5194", "IC0434", "HD 37043", "SDSS-template:Ostar"
    name: str                           # display name, e.g. "M51"
    otype: str                          # catalog type in words, e.g. "spiral galaxy", "planetary nebula"
    coarse_class: str                   # one of IMAGE_CLASSES / SPECTRUM_CLASSES, or "star", "supernova", "other"
    ra_deg: float | None = None         # ICRS
    dec_deg: float | None = None        # ICRS
    aliases: list[str] = field(default_factory=list)
    constellation: str | None = None
    hubble_type: str | None = None
    spectral_type: str | None = None
    redshift: float | None = None
    v_mag: float | None = None
    b_mag: float | None = None
    major_axis_arcmin: float | None = None
    minor_axis_arcmin: float | None = None
    notes: str | None = None
    split: str = "train"
    source: str = ""                    # where the facts come from, e.g. "OpenNGC"

    @property
    def coord(self):
        from astropy.coordinates import SkyCoord
        import astropy.units as u

        if self.ra_deg is None or self.dec_deg is None:
            return None
        return SkyCoord(self.ra_deg * u.deg, self.dec_deg * u.deg, frame="icrs")


@dataclass
class ImageRecord:
    """One image of the sky. ``path`` is relative to the dataset folder."""

    image_id: str
    object_id: str | None
    path: str
    credit: str = ""
    license: str = ""
    source: str = ""                    # e.g. "Stellarium nebulae (stellarium-data)"
    ra_deg: float | None = None         # image centre, ICRS
    dec_deg: float | None = None
    fov_deg: float | None = None        # approximate width of the field
    simulated: bool = False
    split: str = "train"


@dataclass
class SpectrumRecord:
    """One spectrum. ``path`` is relative to the dataset folder (a FITS table:
    WAVELENGTH [Angstrom], FLUX, IVAR)."""

    spectrum_id: str
    object_id: str | None
    path: str
    spectral_class: str                 # one of SPECTRUM_CLASSES (coarse)
    subclass: str = ""                  # e.g. "K4 III", "Sb galaxy", "BAL quasar"
    redshift: float = 0.0
    template: str = ""                  # real template this comes from (for simulated ones)
    snr: float | None = None
    resolution: float | None = None     # R = lambda / delta lambda, if known
    ebv: float = 0.0                    # reddening applied (simulated)
    credit: str = ""
    license: str = ""
    source: str = ""
    simulated: bool = False
    split: str = "train"


@dataclass
class Passage:
    """A chunk of text: a literature passage or a catalog card."""

    passage_id: str
    text: str
    title: str = ""
    source: str = ""                    # e.g. "KStars AstroInfo: blackbody.docbook"
    kind: str = "literature"            # "literature" | "catalog_card"
    object_id: str | None = None        # for catalog cards
    credit: str = ""
    license: str = ""
    split: str = "train"


T = TypeVar("T")

_FILES = {SkyObject: "objects.jsonl", ImageRecord: "images.jsonl",
          SpectrumRecord: "spectra.jsonl", Passage: "passages.jsonl"}


def write_jsonl(path: str | Path, records: Iterable) -> int:
    """Write dataclass records as JSON lines (callers use an atomic directory)."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(_as_row(rec), ensure_ascii=False) + "\n")
            n += 1
    return n


def _as_row(rec) -> dict:
    # the fields as they are: ``asdict`` deep-copies every list and dict first, a tenth of
    # ingest's time in the parent; a record nested in a record (none today) still gets it
    row = {f.name: getattr(rec, f.name) for f in fields(rec)}
    if any(is_dataclass(v) for v in row.values()):
        return asdict(rec)
    return row


def read_jsonl(path: str | Path, cls: type[T]) -> list[T]:
    path = Path(path)
    if not path.exists():
        return []
    names = {f.name for f in fields(cls)}
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UnreadableError(f"line {lineno} is not valid JSON ({exc.msg})", path=path) from None
            except UnicodeDecodeError:
                raise UnreadableError(f"line {lineno} is not UTF-8 text", path=path) from None
            if not isinstance(row, dict):
                raise UnreadableError(f"line {lineno} is not a JSON object", path=path)
            try:
                out.append(cls(**{k: v for k, v in row.items() if k in names}))
            except TypeError as exc:  # a required field is missing
                raise UnreadableError(f"line {lineno} is not a {cls.__name__} record ({exc})",
                                      path=path) from None
    return out


def dataset_dir(root: str | Path) -> Path:
    """The dataset folder at ``root``, or the previous version that an ingest or sample
    build killed between its last two renames left as ``.NAME.old`` (``existing_directory``)."""
    from astrovlm.config import existing_directory

    return existing_directory(Path(root).expanduser(), "objects.jsonl")


class SkyDataset:
    """A dataset folder loaded into memory (it is small: thousands of records).

    Opening it checks that it is whole, cheaply (``checksums.quick_problems``: the record
    files exist and parse, every file of ``checksums.sha256`` and every file a record names
    exists, with the size recorded in the manifest); ``verify=True`` adds every file's
    SHA-256 (``verify_dataset``). A damaged dataset raises ``UnreadableError`` naming what is
    missing or wrong; ``check=False`` skips the check (``data info --verify`` reports instead).
    A folder killed between the last two renames of its write is found in ``.NAME.old``."""

    def __init__(self, root: str | Path, verify: bool = False, check: bool = True):
        from astrovlm.data.checksums import damage_error, quick_problems, verify_dataset

        self.root = dataset_dir(root)
        if not (self.root / "objects.jsonl").exists():
            if check and (self.root / "manifest.json").exists():
                raise damage_error(self.root, [{"path": "objects.jsonl", "problem": "missing"}])
            raise NotFoundError(
                "not an astrovlm dataset (no objects.jsonl); build one with "
                "'astrovlm data sample' or 'astrovlm data ingest DIR'", path=self.root)
        self.objects: list[SkyObject] = read_jsonl(self.root / _FILES[SkyObject], SkyObject)
        self.images: list[ImageRecord] = read_jsonl(self.root / _FILES[ImageRecord], ImageRecord)
        self.spectra: list[SpectrumRecord] = read_jsonl(self.root / _FILES[SpectrumRecord], SpectrumRecord)
        self.passages: list[Passage] = read_jsonl(self.root / _FILES[Passage], Passage)
        self._by_id = {o.object_id: o for o in self.objects}
        if check:
            named = {"images.jsonl": [r.path for r in self.images],
                     "spectra.jsonl": [r.path for r in self.spectra]}
            problems = quick_problems(self.root, named)
            if verify and not problems and (self.root / "manifest.json").exists():
                problems = verify_dataset(self.root)["problems"]
            if problems:
                raise damage_error(self.root, problems, verified=verify)

    def object(self, object_id: str) -> SkyObject:
        try:
            return self._by_id[object_id]
        except KeyError:
            raise NotFoundError(f"no object with id '{object_id}'", path=self.root) from None

    def get_object(self, object_id: str | None) -> SkyObject | None:
        return self._by_id.get(object_id) if object_id else None

    def path(self, relative: str) -> Path:
        return self.root / relative

    def split(self, name: str) -> "SplitView":
        if name not in SPLITS:
            raise BadArgumentError(f"unknown split '{name}' (choose from {', '.join(SPLITS)})", field="split")
        return SplitView(self, name)

    def __repr__(self) -> str:
        return (f"SkyDataset({str(self.root)!r}: {len(self.objects)} objects, {len(self.images)} images, "
                f"{len(self.spectra)} spectra, {len(self.passages)} passages)")


class SplitView:
    """The records of one split (by object: an object and all its data share a split)."""

    def __init__(self, ds: SkyDataset, name: str):
        self.ds, self.name = ds, name

    def _pick(self, items):
        return [r for r in items if r.split == self.name]

    @property
    def objects(self): return self._pick(self.ds.objects)
    @property
    def images(self): return self._pick(self.ds.images)
    @property
    def spectra(self): return self._pick(self.ds.spectra)
    @property
    def passages(self): return self._pick(self.ds.passages)


def dataset_files() -> dict:
    return {cls.__name__: name for cls, name in _FILES.items()}


def iter_records(ds: SkyDataset) -> Iterator:
    yield from ds.objects
    yield from ds.images
    yield from ds.spectra
    yield from ds.passages
