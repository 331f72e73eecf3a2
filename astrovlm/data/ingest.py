"""Turn a user's folder of files into an astrovlm dataset (the form in ``records``).

Each file is sniffed and read with the readers; what it holds lands in the dataset:

- images (FITS, PNG, JPEG) -> ``images/USER-IMG-nnnn.png``, the record's path: a display
  rendering (asinh stretch, north up, longest side at most 1024 px) that every image
  consumer opens alike; the original file is kept beside it with the same stem
  (``images/USER-IMG-nnnn.fits``). PNG/JPEG files are copied as they are.
- spectra (FITS in any layout the readers know, text, tables) -> ``spectra/USER-SPEC-nnnn.fits``
  written with ``Spectrum.to_fits`` (WAVELENGTH [Angstrom], FLUX, IVAR).
- catalogs -> ``tables/<name>.parquet``; their rows name the objects found at their positions.
- text and Markdown -> passages (paragraph chunks), linked to an object when the file is
  named after one (``m51.md`` beside ``m51.fits``).

Files of the same object are grouped into one ``SkyObject`` (ids ``USER-0001``...) by sky
position (friends-of-friends within ``radius``: FITS WCS centre, header RA/Dec) and by the
OBJECT keyword. Users' data has no train/val/test split: every record is "train" (the
split of the sample sky is for training astrovlm; ingested data is searched, not learned from).

Each file is opened and parsed once: the sniff that decides its kind hands the reader the
open FITS file (``readers.sniffed``). Files are read, rendered and written in worker
processes (one per idle CPU; ``workers=1``, or a folder of under 32 files, stays in
this process): each writes under a provisional ``.part-K`` name that is renamed to its id in
file order, so the dataset does not depend on the number of workers. Bad files are skipped
and reported. The dataset is written by the one dataset writer (``astrovlm.data.writer``: the same checksums and content
hash as the sample sky, so ``astrovlm data info --verify`` checks it) and swapped in at the
end, so an interrupted ingest leaves the previous one intact.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.data.crossmatch import check_radius, crossmatch, group_by_position
from astrovlm.data.names import is_generic_name, name_key
from astrovlm.data.readers import (
    catalog_coords, read_catalog, read_image, read_spectrum, read_text, sniffed)
from astrovlm.data.readers.catalog import CLASS_COLUMNS, NAME_COLUMNS, REDSHIFT_COLUMNS, find_column
from astrovlm.data.records import (
    IMAGE_CLASSES, SPECTRUM_CLASSES, ImageRecord, Passage, SkyObject, SpectrumRecord)
from astrovlm.data.writer import DatasetWriter
from astrovlm.errors import AstroVLMError, BadArgumentError, NotFoundError, UnreadableError

SPLIT = "train"
SPLIT_NOTE = ("users' data has no train/val/test split; every ingested record is 'train' "
              "(it is searched and asked about, not used to evaluate astrovlm)")
RENDER_MAX_SIDE = 1024
POOL_MIN_FILES = 32   # fewer files than this are read in this process: no pool to start
PASSAGE_CHARS = 1200
SOURCE = "user data (astrovlm data ingest)"
_SKIP_FILES = {".ds_store", "thumbs.db", "desktop.ini"}


@dataclass
class _Item:
    """What one good file contributed: enough to group it, without keeping its pixels."""

    rel: str
    kind: str
    coord: tuple | None = None      # (RA, Dec) in ICRS degrees, or None
    name: str | None = None
    record: object = None           # ImageRecord / SpectrumRecord (object_id filled later)
    meta: dict = field(default_factory=dict)
    written: list = field(default_factory=list)   # files of the dataset it wrote, until settled


def _group_key(name: str | None) -> str:
    """The name key of an OBJECT card, or '' for one that names a frame type ("flat", "sky")."""
    return "" if is_generic_name(name) else name_key(name)


def coarse_spectral_class(meta: dict) -> str:
    """One of SPECTRUM_CLASSES from SDSS-style CLASS/SUBCLASS/SPEC_CLN, or 'unknown'."""
    cls = str(meta.get("CLASS", "") or "").strip().upper()
    sub = str(meta.get("SUBCLASS", "") or meta.get("SPTYPE", "") or meta.get("MKTYPE", "")
              or "").strip().upper()
    cln = meta.get("SPEC_CLN")
    if cls in ("QSO", "QUASAR") or cln in (3, 4):
        return "quasar"
    if cls == "GALAXY" or cln in (2, 7):
        return "galaxy"
    if sub.startswith(("WD", "D")) and cls in ("STAR", ""):
        return "white dwarf"
    if sub[:1] in ("O", "B") and cls in ("STAR", ""):
        return "O/B star"
    if sub[:1] in ("A", "F", "G", "K", "M") and cls in ("STAR", ""):
        return f"{sub[0]} star"
    return "unknown"


def _coarse_object_class(otype: str) -> str:
    t = otype.lower()
    for cls in IMAGE_CLASSES + SPECTRUM_CLASSES:
        if cls in t:
            return cls
    if t in ("qso", "agn") or "quasar" in t:
        return "quasar"
    if "star" in t:
        return "star"
    if "supernova" in t or t in ("sn", "snia", "sn ia"):
        return "supernova"
    return "other"


def _walk(folder: Path, out: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*")):
        rel_parts = path.relative_to(folder).parts
        if any(p.startswith(".") for p in rel_parts) or path.name.lower() in _SKIP_FILES:
            continue
        if path == out or out in path.parents:
            continue  # the dataset being replaced lives inside the folder: never ingest it
        if path.is_file():
            files.append(path)
    return files


def _unique(w: DatasetWriter, folder: str, stem: str, suffix: str) -> str:
    rel, n = f"{folder}/{stem}{suffix}", 2
    while w.path(rel).exists():
        rel, n = f"{folder}/{stem}-{n}{suffix}", n + 1
    return rel


def _full_suffix(path: Path) -> str:
    name = path.name.lower()
    for s in (".fits.gz", ".fit.gz", ".fts.gz"):
        if name.endswith(s):
            return s
    return path.suffix.lower() or ".dat"


def ingest_folder(folder: str | Path, out: str | Path, radius=5 * u.arcsec,
                  progress: bool = True, workers: int | None = None) -> dict:
    """Ingest every file under ``folder`` into a dataset at ``out``; return a report
    ``{"ok": n, "bad": [{"path", "error"}], "images": ..., "spectra": ..., ...}``.

    ``workers``: processes that read and write the files (default: one per idle CPU,
    ``workers_default``; 1 reads them all in this process). The dataset is the same
    whatever the number."""
    from tqdm.auto import tqdm

    radius = check_radius(radius)
    workers = workers_default() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise BadArgumentError(f"workers must be a whole number >= 1, not {workers!r}", field="workers")
    folder, out = Path(folder).expanduser().resolve(), Path(out).expanduser().resolve()
    if not folder.is_dir():
        raise NotFoundError("is not a folder", path=folder)
    if out == folder or out in folder.parents:
        raise BadArgumentError("the output must not be the input folder or a folder above it",
                               path=out)
    files = _walk(folder, out)
    if not files:
        raise NotFoundError("folder has no files to ingest", path=folder)
    t0 = time.perf_counter()
    bad: list[dict] = []
    items: list[_Item] = []
    catalogs: list[dict] = []
    texts: list[tuple[str, str]] = []
    with DatasetWriter(out) as w:
        jobs = [(k, path, path.relative_to(folder).as_posix(), w.files)
                for k, path in enumerate(files)]
        n_images = n_spectra = 0
        for kind, rel, got in tqdm(_run(jobs, workers), total=len(jobs), desc="ingest",
                                   unit="file", disable=not progress):
            if kind == "bad":
                bad.append({"path": rel, "error": got})
            elif kind == "image":
                n_images += 1
                items.append(_settle(got, f"USER-IMG-{n_images:04d}", w.files))
            elif kind == "spectrum":
                n_spectra += 1
                items.append(_settle(got, f"USER-SPEC-{n_spectra:04d}", w.files))
            elif kind == "catalog":
                catalogs.append(_ingest_catalog(got, rel, w))
            else:
                texts.append((rel, got))
        n_ok = len(items) + len(catalogs) + len(texts)
        if n_ok == 0:
            raise UnreadableError(f"no readable files ({len(bad)} bad; first: "
                                  f"{bad[0]['error'] if bad else 'none'})", path=folder)
        objects = _group(items, catalogs, radius)
        passages = _passages(texts, objects, items)
        report = {
            "ok": n_ok, "bad": bad,
            "images": sum(i.kind == "image" for i in items),
            "spectra": sum(i.kind == "spectrum" for i in items),
            "catalogs": len(catalogs), "texts": len(texts),
            "objects": len(objects), "passages": len(passages),
            "catalog_rows": int(sum(c["rows"] for c in catalogs)),
            "objects_named_by_catalog": int(sum(1 for o in objects if "catalog" in (o.notes or ""))),
            "radius_arcsec": float(radius.to_value(u.arcsec)),
            "split": SPLIT, "split_note": SPLIT_NOTE,
            "source_folder": str(folder), "out": str(out),
        }
        manifest = {
            "kind": "user ingest", "source": SOURCE, "source_folder": str(folder),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "counts": {k: report[k] for k in ("images", "spectra", "catalogs", "texts", "objects",
                                              "passages", "catalog_rows")},
            "bad_files": len(bad), "split_note": SPLIT_NOTE,
            "tables": [c["table"] for c in catalogs],
            "credits": "the user's own files; see each record's 'source'",
        }
        w.finish(objects, [i.record for i in items if i.kind == "image"],
                 [i.record for i in items if i.kind == "spectrum"], passages, manifest)
        report["seconds"] = round(time.perf_counter() - t0, 3)
        w.write_json("summary.json", report)
    return report


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers_default() -> int:
    """Worker processes for ingest: the CPUs that are idle (CPUs less the 1-minute load
    average), at least 1. On a shared machine whose CPUs are busy, more processes than
    idle CPUs only take turns with the other work (measured: no faster, ~10% more CPU)."""
    n = cpus()
    try:
        idle = n - os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average on this system
        idle = n
    return max(1, min(n, int(idle + 0.5)))


def _run(jobs: list, workers: int):
    """``_one_file`` over the jobs, results in the jobs' order: in this process, or in
    ``workers`` processes (chunks of files each) when there are enough files to pay for them."""
    if workers <= 1 or len(jobs) < POOL_MIN_FILES:
        yield from map(_one_file, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork where there is one: a worker starts with astrovlm and astropy already imported
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    chunk = max(1, min(16, len(jobs) // (4 * workers)))
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        yield from pool.map(_one_file, jobs, chunksize=chunk)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _one_file(job) -> tuple[str, str, object]:
    """Read one file and write what it holds (``(kind, rel, what)``): an image or spectrum
    is written under a name of its own (``.part-K``) that ``_settle`` renames to its id once
    the files before it are counted; a catalog's table and a text's words come back to be
    written here. A bad file is ``("bad", rel, its error)``, and leaves nothing behind."""
    k, path, rel, files = job
    stem = f".part-{k:06d}"
    written: list[str] = []
    try:
        with sniffed(path) as found:  # the file is opened once, here
            if found.kind == "image":
                return "image", rel, _ingest_image(found, rel, files, stem, written)
            if found.kind == "spectrum":
                return "spectrum", rel, _ingest_spectrum(found, rel, files, stem, written)
            if found.kind == "catalog":
                return "catalog", rel, (path, read_catalog(path, hdul=found.hdul, table=found.table))
            return "text", rel, read_text(path)
    except AstroVLMError as exc:
        _remove(files, written)
        return "bad", rel, str(exc)
    except (OSError, MemoryError, ValueError, TypeError, KeyError, IndexError) as exc:
        # a reader bug or an exotic file must not stop a batch; report it plainly
        _remove(files, written)
        return "bad", rel, f"{path}: unexpected {type(exc).__name__}: {exc}"
    except BaseException:
        _remove(files, written)
        raise


def _remove(files, written: list[str]) -> None:
    for rel in written:
        (files.root / rel).unlink(missing_ok=True)


def _settle(item: "_Item", record_id: str, files) -> "_Item":
    """Give a file's record its id, and its files their names (``images/USER-IMG-0001.png``)."""
    rec = item.record
    part = rec.image_id if item.kind == "image" else rec.spectrum_id  # ".part-000042"
    for rel in item.written:
        files.rename(rel, rel.replace(part, record_id))
    rec.path = rec.path.replace(part, record_id)
    if item.kind == "image":
        rec.image_id = record_id
    else:
        rec.spectrum_id = record_id
    item.written = []
    return item


def _ingest_image(found, rel: str, w, image_id: str, written: list) -> _Item:
    from astrovlm.viz import image_thumbnail, write_png

    cutout = read_image(found.path, hdul=found.hdul)
    suffix = _full_suffix(found.path)
    if cutout.display_ready and suffix in (".png", ".jpg", ".jpeg"):
        written.append(f"images/{image_id}{suffix}")
        target = w.copy(found.path, written[-1])
    else:
        written.append(f"images/{image_id}{suffix}")
        w.copy(found.path, written[-1])  # the science file, kept
        target = f"images/{image_id}.png"
        written.append(target)
        if max(cutout.shape) > RENDER_MAX_SIDE:
            pixels = np.asarray(image_thumbnail(cutout, RENDER_MAX_SIDE))
        else:
            pixels = cutout.to_rgb()  # what image_thumbnail gives when no shrinking is needed
        if cutout.n_bands == 1:
            # one band renders grey: an 8-bit grey PNG holds the same pixels as the RGB one
            # (every reader converts it back to RGB) at a third of the zlib work
            pixels = pixels[..., 0]
        # fast zlib level: the rendering is a view of the FITS beside it, not an archive
        write_png(pixels, w.path(target), level=1)
    center = cutout.center
    fov = cutout.fov()
    record = ImageRecord(
        image_id=image_id, object_id=None, path=target,
        credit="user's own data", license="", source=f"user file: {rel}",
        ra_deg=None if center is None else float(center.ra.deg),
        dec_deg=None if center is None else float(center.dec.deg),
        fov_deg=None if fov is None else float(fov.to_value(u.deg)),
        simulated=False, split=SPLIT)
    coord = None if center is None else (record.ra_deg, record.dec_deg)
    return _Item(rel=rel, kind="image", coord=coord, name=cutout.name, record=record,
                 written=written)


def _ingest_spectrum(found, rel: str, w, spectrum_id: str, written: list) -> _Item:
    spectrum = read_spectrum(found.path, hdul=found.hdul, table=found.table)
    spectrum.meta.setdefault("ORIGFILE", Path(rel).name)
    written.append(f"spectra/{spectrum_id}.fits")
    path = w.write_spectrum(spectrum, written[-1])
    meta = spectrum.meta
    coord = None
    if meta.get("RA") is not None and meta.get("DEC") is not None:
        coord = (float(meta["RA"]), float(meta["DEC"]))  # the readers give ICRS degrees
    z = _finite(meta.get("Z"))
    snr = None
    if spectrum.ivar is not None:
        good = spectrum.mask
        snr = float(np.median(np.abs(spectrum.flux[good]) * np.sqrt(spectrum.ivar[good])))
    record = SpectrumRecord(
        spectrum_id=spectrum_id, object_id=None, path=path,
        spectral_class=coarse_spectral_class(meta),
        subclass=str(meta.get("SUBCLASS", "") or ""), redshift=z if z is not None else 0.0,
        snr=snr, credit="user's own data", source=f"user file: {rel}", simulated=False,
        split=SPLIT)
    name = meta.get("OBJECT") or meta.get("OBJNAME")
    return _Item(rel=rel, kind="spectrum", coord=coord, name=str(name) if name else None,
                 record=record, meta={"Z": z, "CLASS": meta.get("CLASS")}, written=written)


def _finite(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _ingest_catalog(read, rel: str, w: DatasetWriter) -> dict:
    path, table = read
    coords = None
    if table.meta.get("ra_column"):
        try:
            coords = catalog_coords(table, path=path)
        except AstroVLMError:
            coords = None  # the table is still kept; it just names no object by position
    target_rel = _unique(w, "tables", re.sub(r"[^\w\-]+", "_", Path(rel).stem) or "catalog", ".parquet")
    target = w.path(target_rel)
    clean = table.copy(copy_data=False)
    clean.meta = {"source_file": rel}
    for name in clean.colnames:
        col = clean[name]
        if col.dtype.kind == "O":
            clean[name] = [str(v) for v in col]
    try:
        clean.write(target, format="parquet")
    except Exception as exc:  # pyarrow refuses some column types; say which file
        raise UnreadableError(f"catalog could not be written as Parquet ({type(exc).__name__}: "
                            f"{str(exc)[:160]})", path=path) from None
    name_col = find_column(table, NAME_COLUMNS)
    by_name = {}
    if name_col is not None:
        for k, value in enumerate(table[name_col]):
            by_name.setdefault(_group_key(str(value)), k)
    by_name.pop("", None)
    return {"rel": rel, "table": target_rel, "rows": len(table), "data": table,
            "coords": coords, "by_name": by_name}


def _group(items: list[_Item], catalogs: list[dict], radius) -> list[SkyObject]:
    """Union files into objects by position (friends-of-friends) and by OBJECT name."""
    from astropy.coordinates import SkyCoord

    n = len(items)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    placed = [i for i, it in enumerate(items) if it.coord is not None]
    if placed:
        radec = np.array([items[i].coord for i in placed], dtype=float)
        coords = SkyCoord(radec[:, 0] * u.deg, radec[:, 1] * u.deg, frame="icrs")
        labels = group_by_position(coords, radius)
        first = {}
        for k, lab in enumerate(labels):
            if lab in first:
                union(first[lab], placed[k])
            else:
                first[lab] = placed[k]
    by_name: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        key = _group_key(it.name)
        if key:
            by_name.setdefault(key, []).append(i)
    for members in by_name.values():
        for j in members[1:]:
            a, b = items[members[0]].coord, items[j].coord
            # the same name a degree apart is two targets that share a label, not one object
            if a is None or b is None or _separation_deg(a, b) < 1.0:
                union(members[0], j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    objects = []
    for number, (root, members) in enumerate(sorted(groups.items(), key=lambda kv: kv[1][0]), 1):
        object_id = f"USER-{number:04d}"
        for i in members:
            items[i].record.object_id = object_id
        objects.append(_make_object(object_id, [items[i] for i in members], catalogs, radius))
    return objects


def _separation_deg(a: tuple, b: tuple) -> float:
    """The angle between two (RA, Dec) in degrees (Vincenty's formula, as astropy's)."""
    ra1, dec1, ra2, dec2 = np.radians([a[0], a[1], b[0], b[1]])
    sd, cd = np.sin(ra2 - ra1), np.cos(ra2 - ra1)
    s1, c1, s2, c2 = np.sin(dec1), np.cos(dec1), np.sin(dec2), np.cos(dec2)
    return float(np.degrees(np.arctan2(np.hypot(c2 * sd, c1 * s2 - s1 * c2 * cd), s1 * s2 + c1 * c2 * cd)))


def _mean_radec(coords) -> tuple[float, float]:
    """The mean direction of some (RA, Dec) in degrees (unit vectors summed: safe across RA = 0)."""
    ra = np.radians([c[0] for c in coords])
    dec = np.radians([c[1] for c in coords])
    x, y, z = np.sum(np.cos(dec) * np.cos(ra)), np.sum(np.cos(dec) * np.sin(ra)), np.sum(np.sin(dec))
    return float(np.degrees(np.arctan2(y, x)) % 360.0), float(np.degrees(np.arctan2(z, np.hypot(x, y))))


def _make_object(object_id: str, members: list[_Item], catalogs: list[dict], radius) -> SkyObject:
    names = [m.name for m in members if _group_key(m.name)]
    # fibre positions of spectra are more precise than image centres
    spec_coords = [m.coord for m in members if m.kind == "spectrum" and m.coord is not None]
    all_coords = [m.coord for m in members if m.coord is not None]
    ra = dec = None
    if spec_coords or all_coords:
        ra, dec = _mean_radec(spec_coords or all_coords)
    z_values = [m.meta.get("Z") for m in members if m.meta.get("Z") is not None]
    redshift = float(np.median(z_values)) if z_values else None
    otype, notes = "", []
    classes = [str(m.meta.get("CLASS")).strip() for m in members if m.meta.get("CLASS")]
    if classes:
        otype = classes[0].lower()
    row = _catalog_row(ra, dec, names, catalogs, radius)
    if row is not None:
        cat_name, cat_type, cat_z, cat_file = row
        if cat_name and not names:
            names.append(cat_name)
        elif cat_name and _group_key(cat_name) not in {_group_key(n) for n in names}:
            names.append(cat_name)
        otype = otype or (cat_type or "").lower()
        redshift = redshift if redshift is not None else cat_z
        notes.append(f"named by catalog {cat_file}")
    if ra is None and row is None:
        notes.append("position unknown")
    display = names[0] if names else Path(members[0].rel).stem
    aliases = sorted({n for n in names[1:] if _group_key(n) != _group_key(display)})
    notes.append(f"ingested from {len(members)} file(s): " + ", ".join(m.rel for m in members[:5])
                 + (" ..." if len(members) > 5 else ""))
    return SkyObject(object_id=object_id, name=display, otype=otype or "unknown",
                     coarse_class=_coarse_object_class(otype) if otype else "other",
                     ra_deg=ra, dec_deg=dec, aliases=aliases, redshift=redshift,
                     notes="; ".join(notes), split=SPLIT, source=SOURCE)


def _catalog_row(ra, dec, names, catalogs, radius):
    """(name, type, redshift, table) of the catalog row at this position or with this name."""
    from astropy.coordinates import SkyCoord

    keys = {_group_key(n) for n in names} - {""}
    for cat in catalogs:
        table = cat["data"]
        row = None
        if ra is not None and cat["coords"] is not None:
            pairs = crossmatch(SkyCoord(ra * u.deg, dec * u.deg), cat["coords"], radius, nearest=True)
            if len(pairs):
                row = table[int(pairs.idx_b[0])]
        name_col = find_column(table, NAME_COLUMNS)
        if row is None:
            hit = next((cat["by_name"][k] for k in sorted(keys) if k in cat["by_name"]), None)
            row = None if hit is None else table[hit]
        if row is None:
            continue
        type_col, z_col = find_column(table, CLASS_COLUMNS), find_column(table, REDSHIFT_COLUMNS)
        name = str(row[name_col]).strip() if name_col is not None else None
        otype = str(row[type_col]).strip() if type_col is not None else None
        z = _finite(row[z_col]) if z_col is not None else None
        return name or None, otype or None, z, cat["table"]
    return None


def _passages(texts, objects: list[SkyObject], items: list[_Item]) -> list[Passage]:
    """Paragraph chunks of each text file; linked to an object when the file is named after
    it or after one of its files (``m51.md`` beside ``m51.fits``)."""
    by_key = {}
    for obj in objects:
        for n in [obj.name, *obj.aliases]:
            if _group_key(n):
                by_key.setdefault(_group_key(n), obj.object_id)
    for it in items:
        by_key.setdefault(_group_key(Path(it.rel).stem), it.record.object_id)
    passages = []
    for t, (rel, text) in enumerate(texts, 1):
        title = _title(text) or Path(rel).stem
        object_id = by_key.get(_group_key(Path(rel).stem))
        for k, chunk in enumerate(_chunks(text), 1):
            passages.append(Passage(passage_id=f"USER-TXT-{t:04d}-{k:03d}", text=chunk, title=title,
                                    source=f"user file: {rel}", kind="literature",
                                    object_id=object_id, credit="user's own text", split=SPLIT))
    return passages


def _title(text: str) -> str:
    for line in text.splitlines():
        s = line.strip()
        if s:
            return s.lstrip("#").strip()[:120]
    return ""


def _chunks(text: str, limit: int = PASSAGE_CHARS) -> list[str]:
    """Paragraphs packed into chunks of at most ``limit`` characters (long ones split on
    sentence ends), so each passage is one retrievable idea."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces = []
    for p in paragraphs:
        while len(p) > limit:
            cut = p.rfind(". ", 0, limit)
            cut = cut + 1 if cut > limit // 3 else limit
            pieces.append(p[:cut].strip())
            p = p[cut:].strip()
        if p:
            pieces.append(p)
    chunks, current = [], ""
    for piece in pieces:
        if current and len(current) + 2 + len(piece) > limit:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks
