"""Build the sample sky: the real multimodal sample that ships as astrovlm's default data.

``build_sample_sky()`` fetches the sources (Debian data packages, pyongc's OpenNGC), then:

1. matches every Stellarium image to its object: by the name in the file name where one
   resolves (checked against the image's position), else by position (the largest OpenNGC
   object of an image class near the image centre), else to an object of its own when the
   name says what it is (Sharpless, Lynds, Barnard, galaxy clusters ...);
2. reads the real RVSAO spectra and links each to its object (galaxies to OpenNGC, MK
   standards to their HD star);
3. makes ``n_simulated`` simulated variants of every real spectrum (redshift, S/N,
   resolution, reddening), each flagged ``simulated`` with its template and parameters;
4. chunks the literature, writes a catalog card per object, and splits everything by object
   (``astrovlm.data.split``);
5. writes the dataset form of ``astrovlm.data.records`` plus ``tables/*.parquet``,
   ``manifest.json`` (counts, credits, licences, the split rule, a content hash) and
   ``summary.json``, inside an atomic directory: an interrupted build leaves the previous
   sample sky as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from astrovlm import __version__
from astrovlm.config import atomic_directory, atomic_write_json, sample_dir
from astrovlm.data import cards
from astrovlm.data.records import (IMAGE_CLASSES, SPECTRUM_CLASSES, ImageRecord, Passage, SkyDataset,
                                   SkyObject, SpectrumRecord, write_jsonl)
from astrovlm.data.resolver import NameResolver, star_object
from astrovlm.data.sources import debian, kstars, literature, openngc, rvsao, stellarium
from astrovlm.data.split import SPLIT_RULE, assign_splits, split_counts, template_unit
from astrovlm.errors import AstroVLMError

N_SIMULATED = 8
SKIP_IN_HASH = ("manifest.json", "summary.json")

# Simulated observing conditions per spectral class: (z range, S/N range, R range, E(B-V) max).
STAR_Z = (0.0, 2e-4)                  # radial velocities up to 60 km/s (the simulator wants z >= 0)
GALAXY_Z = (0.0, 0.5)
QUASAR_Z = (0.0, 3.0)
SNR_RANGE = (5.0, 60.0)               # log-uniform
RESOLUTION_RANGE = (1000.0, 3000.0)
EBV_MAX = 0.3


def _say(progress: bool, text: str) -> None:
    # Progress goes to stderr (as tqdm's bars do), so stdout stays clean for --json.
    if progress:
        print(text, file=sys.stderr, flush=True)


def _bar(items, progress: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, disable=not progress, unit="item", leave=False)


# --- matching images to objects ----------------------------------------------------------------

def _angsep_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    s = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(s, 0, 1))))


class ImageMatcher:
    """Finds the object an image shows: by name (checked by position), else by position."""

    def __init__(self, resolver: NameResolver, ongc):
        self.resolver = resolver
        self.ongc = ongc
        df = ongc.df
        usable = df["coarse_class"].isin(IMAGE_CLASSES) & df["ra_deg"].notna()
        self.cand = df[usable].reset_index()
        # astropy's KD-tree over the candidates, for match_to_catalog_sky-style queries.
        from astropy.coordinates import SkyCoord
        import astropy.units as u

        self.coords = SkyCoord(self.cand["ra_deg"].to_numpy() * u.deg, self.cand["dec_deg"].to_numpy() * u.deg)

    def _consistent(self, obj: SkyObject, img: stellarium.NebulaImage) -> bool:
        if obj.ra_deg is None:
            return True
        sep = float(_angsep_deg(img.ra_deg, img.dec_deg, obj.ra_deg, obj.dec_deg))
        extent = (obj.major_axis_arcmin or 0) / 60 / 2
        return sep <= max(img.fov_deg, 0.25) + extent

    def by_position(self, img: stellarium.NebulaImage) -> SkyObject | None:
        """The largest OpenNGC object of an image class near the image centre."""
        from astropy.coordinates import SkyCoord
        import astropy.units as u

        centre = SkyCoord(img.ra_deg * u.deg, img.dec_deg * u.deg)
        radius = max(img.fov_deg / 2, 0.05)
        seps = self.coords.separation(centre).deg
        near = np.where(seps <= radius)[0]
        if len(near) == 0:
            return None
        fov_arcmin = img.fov_deg * 60
        rows = self.cand.iloc[near].copy()
        rows["sep"] = seps[near]
        size = rows["majax"].fillna(0)
        # Objects of the image's scale first (not a speck, not a giant that merely contains it),
        # the largest of them, then the brightest; else the smallest object containing the centre.
        scale = rows[(size >= 0.1 * fov_arcmin) & (size <= 3 * fov_arcmin)]
        if len(scale):
            mag = scale["vmag"].fillna(scale["bmag"]).fillna(99)
            best = scale.assign(_s=-scale["majax"], _m=mag).sort_values(["_s", "_m", "sep"]).iloc[0]
        else:
            inside = rows[size / 60 / 2 >= rows["sep"]]
            if not len(inside):
                return None
            best = inside.sort_values("majax").iloc[0]
        return self.ongc.sky_object(self.ongc.real(int(best["index"])))

    def match(self, img: stellarium.NebulaImage) -> tuple[SkyObject | None, str]:
        """(object, how): how is "name", "own" (named, not in OpenNGC), "position" or "unmatched"."""
        name, own = stellarium.name_hint(img.stem)
        obj = None
        if name:
            obj = self.resolver.find(name)
            if obj is not None and not self._consistent(obj, img):
                obj = None  # e.g. Stellarium's M102 shows NGC 5866, OpenNGC's M102 is M101
            if obj is not None and obj.coarse_class in IMAGE_CLASSES:
                return obj, "name"
        if own is not None:
            # The name says what it is (a Sharpless region, a tile of Barnard's Loop ...).
            return SkyObject(object_id=own.object_id, name=own.name, otype=own.otype,
                             coarse_class=own.coarse_class, ra_deg=round(img.ra_deg, 5),
                             dec_deg=round(img.dec_deg, 5), aliases=list(own.aliases),
                             constellation=constellation_at(img.ra_deg, img.dec_deg),
                             notes="Position is the centre of its Stellarium image",
                             source="Stellarium image name"), "own"
        found = self.by_position(img)
        if found is not None:
            return found, "position"
        if obj is not None:
            return obj, "name"  # an asterism or star OpenNGC lists (M73): class "other"
        return None, "unmatched"


# --- spectra -----------------------------------------------------------------------------------

def constellation_at(ra_deg: float | None, dec_deg: float | None) -> str | None:
    """The IAU constellation containing a position (astropy's boundary table)."""
    if ra_deg is None or dec_deg is None:
        return None
    from astropy.coordinates import SkyCoord, get_constellation
    import astropy.units as u

    return str(get_constellation(SkyCoord(ra_deg * u.deg, dec_deg * u.deg)))


def _fill_constellations(objects) -> None:
    """Constellation from the position, for objects whose catalog gives none (one astropy call)."""
    from astropy.coordinates import SkyCoord, get_constellation
    import astropy.units as u

    todo = [o for o in objects if o.constellation is None and o.ra_deg is not None and o.dec_deg is not None]
    if todo:
        names = get_constellation(SkyCoord([o.ra_deg for o in todo] * u.deg, [o.dec_deg for o in todo] * u.deg))
        for o, name in zip(todo, names):
            o.constellation = str(name)


def _spectrum_object(rs: rvsao.RealSpectrum, resolver: NameResolver) -> SkyObject | None:
    if not rs.object_name:
        return None
    obj = resolver.find(rs.object_name)
    if obj is not None and rs.spectral_class != "galaxy" and obj.otype != "star":
        obj = None  # a star's HD number must give a star
    if obj is None:
        if rs.spectral_class in ("galaxy", "quasar"):
            return None
        return SkyObject(object_id=rs.object_name, name=rs.object_name, otype="star",
                         coarse_class=rs.spectral_class, ra_deg=rs.ra_deg, dec_deg=rs.dec_deg,
                         constellation=constellation_at(rs.ra_deg, rs.dec_deg),
                         spectral_type=rs.subclass, source="RVSAO template header")
    if obj.otype == "star":
        # An MK standard: its spectrum's class is the object's class. The catalog's own type
        # stays in spectral_type, and a disagreement is said, not hidden.
        if obj.coarse_class != rs.spectral_class or (obj.spectral_type or "") != rs.subclass:
            obj.notes = (f"Spectral type {obj.spectral_type or 'unknown'} in the KStars catalog; "
                         f"{rs.subclass} as an RVSAO MK template")
        obj.coarse_class = rs.spectral_class
    return obj


def _rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big"))


def _feasible_z(rest, z_range: tuple[float, float]) -> np.ndarray:
    from astrovlm.data.simulate import INSTRUMENT_MAX_AA, INSTRUMENT_MIN_AA

    w = rest.wavelength.value[rest.mask]
    lo, hi = float(w.min()), float(w.max())
    zs = np.linspace(z_range[0], z_range[1], 2001)
    overlap = np.minimum(hi * (1 + zs), INSTRUMENT_MAX_AA) - np.maximum(lo * (1 + zs), INSTRUMENT_MIN_AA)
    # At least 40% of the instrument's range covered, so the class is visible.
    return zs[overlap >= 0.4 * (INSTRUMENT_MAX_AA - INSTRUMENT_MIN_AA)]


def simulate_variants(rs: rvsao.RealSpectrum, n: int) -> list[tuple[object, dict]]:
    """``n`` simulated observations of one real template, reproducible from its name."""
    from astrovlm.data.simulate import simulate_spectrum

    rng = _rng_for(rs.name)
    rest = rs.rest_frame()
    rest.meta["TEMPLATE"] = rs.name
    if rs.spectral_class in ("galaxy", "quasar"):
        zs = _feasible_z(rest, GALAXY_Z if rs.spectral_class == "galaxy" else QUASAR_Z)
        if len(zs) == 0:
            return []
    out = []
    for _ in range(n):
        if rs.spectral_class in ("galaxy", "quasar"):
            step = zs[1] - zs[0] if len(zs) > 1 else 0.0
            z = float(np.clip(rng.choice(zs) + rng.uniform(-step / 2, step / 2), 0, None))
        else:
            z = float(rng.uniform(*STAR_Z))
        params = {"redshift": z,
                  "snr": float(np.exp(rng.uniform(np.log(SNR_RANGE[0]), np.log(SNR_RANGE[1])))),
                  "resolution": float(rng.uniform(*RESOLUTION_RANGE)),
                  "ebv": float(rng.uniform(0, EBV_MAX))}
        try:
            spec = simulate_spectrum(rest, rng=rng, **params)
        except AstroVLMError:
            continue  # this draw left too little of the template on the detector
        out.append((spec, params))
    return out


# --- hashing and reading back ----------------------------------------------------------------------

def content_hash(root: str | Path) -> tuple[str, int]:
    """sha256 over every file's relative path and sha256 (manifest and summary excluded)."""
    root = Path(root)
    h = hashlib.sha256()
    n = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in SKIP_IN_HASH:
            continue
        fh = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                fh.update(block)
        h.update(f"{rel}\0{fh.hexdigest()}\n".encode())
        n += 1
    return "sha256:" + h.hexdigest(), n


def verify_dataset(root: str | Path) -> dict:
    """Recompute the content hash and compare it with manifest.json."""
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        raise AstroVLMError("no manifest.json: not a built sample sky", path=root)
    manifest = json.loads(manifest_path.read_text())
    digest, n = content_hash(root)
    return {"ok": digest == manifest.get("content_hash"), "content_hash": digest,
            "manifest_hash": manifest.get("content_hash"), "files": n}


def dataset_summary(root: str | Path) -> dict:
    """Counts of an existing dataset (any built with the records form), for ``data info``."""
    root = Path(root)
    ds = SkyDataset(root)
    by_obj = {o.object_id: o for o in ds.objects}
    img_classes = Counter(by_obj[r.object_id].coarse_class if r.object_id in by_obj else "unmatched"
                          for r in ds.images)
    real = [s for s in ds.spectra if not s.simulated]
    sim = [s for s in ds.spectra if s.simulated]
    real_pairs = sorted({s.object_id for s in real if s.object_id} & {r.object_id for r in ds.images if r.object_id})
    out = {
        "root": str(root),
        "objects": len(ds.objects),
        "images": len(ds.images),
        "image_classes": dict(sorted(img_classes.items())),
        "spectra_real": len(real),
        "spectra_simulated": len(sim),
        "spectrum_classes_real": dict(sorted(Counter(s.spectral_class for s in real).items())),
        "passages_literature": sum(p.kind == "literature" for p in ds.passages),
        "catalog_cards": sum(p.kind == "catalog_card" for p in ds.passages),
        "literature_words": sum(len(p.text.split()) for p in ds.passages if p.kind == "literature"),
        "real_image_spectrum_pairs": real_pairs,
        "splits": {m: dict(Counter(r.split for r in recs)) for m, recs in
                   (("objects", ds.objects), ("images", ds.images), ("spectra", ds.spectra),
                    ("passages", ds.passages))},
        "tables": {},
    }
    for table in sorted((root / "tables").glob("*.parquet")):
        import pyarrow.parquet as pq

        out["tables"][table.stem] = pq.ParquetFile(table).metadata.num_rows
    manifest = root / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        out["content_hash"] = m.get("content_hash")
        out["created"] = m.get("created")
    return out


# --- the build -----------------------------------------------------------------------------------

def build_sample_sky(out: str | Path | None = None, *, progress: bool = True,
                     n_simulated: int = N_SIMULATED) -> dict:
    """Build the sample sky into ``out`` (default ``sample_dir()``); returns the summary."""
    t0 = time.time()
    out = Path(out) if out else sample_dir()
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> float:
        timings[name] = round(time.time() - start, 2)
        return time.time()

    _say(progress, f"astrovlm: building the sample sky into {out}")
    _say(progress, "[1/6] sources: Debian data packages and OpenNGC")
    t = time.time()
    roots = {pkg: debian.package_root(pkg, progress=progress) for pkg in debian.PACKAGES}
    versions = {pkg: debian.package_version(pkg, root) for pkg, root in roots.items()}
    st_root, rv_root, ks_root = roots["stellarium-data"], roots["iraf-rvsao"], roots["kstars-data"]
    ongc = openngc.OpenNGC()
    stars = kstars.read_stars(ks_root)
    sne = kstars.read_supernovae(ks_root)
    resolver = NameResolver(ongc.df, stars, identifiers=ongc.ids)
    t = lap("sources", t)

    _say(progress, "[2/6] images: matching Stellarium images to objects")
    images = stellarium.nebula_images(st_root)
    matcher = ImageMatcher(resolver, ongc)
    objects: dict[str, SkyObject] = {}
    matches = []
    for img in _bar(images, progress, "match images"):
        obj, how = matcher.match(img)
        if obj is not None:
            obj = objects.setdefault(obj.object_id, obj)
        matches.append((img, obj, how))
    t = lap("images", t)

    _say(progress, "[3/6] spectra: real RVSAO spectra and their objects")
    real = rvsao.real_spectra(rv_root)
    spectrum_objects: dict[str, SkyObject | None] = {}
    for rs in real:
        obj = _spectrum_object(rs, resolver)
        if obj is not None:
            obj = objects.setdefault(obj.object_id, obj)
        spectrum_objects[rs.name] = obj
    # The named bright stars of KStars: objects with catalog cards (text for the stars).
    for _, row in stars[stars["name"].notna()].iterrows():
        obj = star_object(row)
        objects.setdefault(obj.object_id, obj)
    _fill_constellations(objects.values())
    t = lap("spectra", t)

    _say(progress, "[4/6] splits by object")
    strata: dict[str, str] = {}
    for rs in real:
        obj = spectrum_objects[rs.name]
        strata[obj.object_id if obj else template_unit(rs.name)] = f"spectrum/{rs.spectral_class}"
    for oid, obj in objects.items():
        strata.setdefault(oid, f"object/{obj.coarse_class}")
    corpus = literature.literature_corpus(ks_root, st_root)
    for chunk in corpus:
        strata.setdefault(f"doc:{chunk.source_id}", f"literature/{chunk.source_id.split(':')[0]}")
    splits = assign_splits(strata)
    for oid, obj in objects.items():
        obj.split = splits[oid]
    t = lap("splits", t)

    with atomic_directory(out) as tmp:
        _say(progress, "[5/6] writing images, spectra (real and simulated) and text")
        (tmp / "images").mkdir()
        image_records = []
        for img, obj, how in _bar(matches, progress, "copy images"):
            shutil.copy2(img.path, tmp / "images" / img.path.name)
            credit = img.credit + (f" ({img.info_url})" if img.info_url else "")
            image_records.append(ImageRecord(
                image_id=f"stellarium:{img.stem}", object_id=obj.object_id if obj else None,
                path=f"images/{img.path.name}", credit=credit, license=img.license,
                source=stellarium.SOURCE, ra_deg=round(img.ra_deg, 6), dec_deg=round(img.dec_deg, 6),
                fov_deg=round(img.fov_deg, 5), simulated=False,
                split=splits[obj.object_id] if obj else "train"))

        (tmp / "spectra" / "real").mkdir(parents=True)
        (tmp / "spectra" / "simulated").mkdir(parents=True)
        spectrum_records = []
        for rs in _bar(real, progress, "real spectra"):
            obj = spectrum_objects[rs.name]
            unit = obj.object_id if obj else template_unit(rs.name)
            rel = f"spectra/real/{rs.name}.fits"
            rs.spectrum.to_fits(tmp / rel)
            spectrum_records.append(SpectrumRecord(
                spectrum_id=f"rvsao:{rs.name}", object_id=obj.object_id if obj else None, path=rel,
                spectral_class=rs.spectral_class, subclass=rs.subclass, redshift=round(rs.redshift, 7),
                template=rs.name, credit=rs.credit, license=rvsao.LICENSE, source=rvsao.SOURCE,
                simulated=False, split=splits[unit]))
        n_sim_failed = 0
        for rs in _bar(real, progress, "simulate spectra"):
            obj = spectrum_objects[rs.name]
            unit = obj.object_id if obj else template_unit(rs.name)
            variants = simulate_variants(rs, n_simulated)
            n_sim_failed += n_simulated - len(variants)
            for k, (spec, p) in enumerate(variants):
                rel = f"spectra/simulated/{rs.name}-{k}.fits"
                spec.to_fits(tmp / rel)
                spectrum_records.append(SpectrumRecord(
                    spectrum_id=f"sim:{rs.name}:{k}", object_id=None, path=rel,
                    spectral_class=rs.spectral_class, subclass=rs.subclass,
                    redshift=round(p["redshift"], 6), template=rs.name, snr=round(p["snr"], 3),
                    resolution=round(p["resolution"], 1), ebv=round(p["ebv"], 4),
                    credit=f"simulated by astrovlm from {rs.name} ({rs.credit})",
                    license=rvsao.LICENSE, source="astrovlm.data.simulate", simulated=True,
                    split=splits[unit]))

        passages = [Passage(passage_id=c.passage_id, text=c.text, title=c.title, source=c.source,
                            kind="literature", credit=c.credit, license=c.license,
                            split=splits[f"doc:{c.source_id}"]) for c in corpus]
        for oid, obj in sorted(objects.items()):
            credit, lic = _catalog_credit(obj)
            passages.append(Passage(passage_id=f"card:{oid}", text=cards.catalog_card(obj), title=obj.name,
                                    source=obj.source, kind="catalog_card", object_id=oid,
                                    credit=credit, license=lic, split=obj.split))

        object_list = [objects[k] for k in sorted(objects)]
        write_jsonl(tmp / "objects.jsonl", object_list)
        write_jsonl(tmp / "images.jsonl", image_records)
        write_jsonl(tmp / "spectra.jsonl", spectrum_records)
        write_jsonl(tmp / "passages.jsonl", passages)

        _say(progress, "[6/6] tables, manifest and summary")
        (tmp / "tables").mkdir()
        openngc.table_for_parquet(ongc.df).to_parquet(tmp / "tables" / "openngc.parquet", index=False)
        stars.to_parquet(tmp / "tables" / "stars.parquet", index=False)
        sne.to_parquet(tmp / "tables" / "supernovae.parquet", index=False)

        digest, n_files = content_hash(tmp)
        manifest = _manifest(object_list, image_records, spectrum_records, passages, matches, strata,
                             splits, versions, stars, sne, ongc, digest, n_files, n_simulated)
        atomic_write_json(tmp / "manifest.json", manifest)
        t = lap("write", t)
        summary = _summary(manifest, out, time.time() - t0, timings, n_sim_failed)
        atomic_write_json(tmp / "summary.json", summary)
    _say(progress, f"done in {summary['seconds']:.0f} s: {summary['images']} images, "
                   f"{summary['spectra_real']} real spectra, {summary['objects']} objects")
    return summary


def _catalog_credit(obj: SkyObject) -> tuple[str, str]:
    if obj.source == "OpenNGC":
        return openngc.CREDIT, openngc.LICENSE
    if obj.source.startswith("KStars"):
        return kstars.SOURCE, kstars.STARS_LICENSE
    if obj.source.startswith("RVSAO"):
        return rvsao.CREDIT, rvsao.LICENSE
    return stellarium.SOURCE, stellarium.PACKAGE_LICENSE


def _manifest(objects, images, spectra, passages, matches, strata, splits, versions, stars, sne, ongc,
              digest, n_files, n_simulated) -> dict:
    by_obj = {o.object_id: o for o in objects}
    real = [s for s in spectra if not s.simulated]
    sim = [s for s in spectra if s.simulated]
    image_class = Counter(by_obj[r.object_id].coarse_class if r.object_id else "unmatched" for r in images)
    pairs = sorted({s.object_id for s in real if s.object_id} & {r.object_id for r in images if r.object_id})
    in_fields = _spectrum_objects_in_image_fields(objects, real, matches)
    return {
        "name": "astrovlm sample sky",
        "builder": f"astrovlm {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": {
            "objects": len(objects), "images": len(images), "spectra_real": len(real),
            "spectra_simulated": len(sim), "passages_literature": sum(p.kind == "literature" for p in passages),
            "catalog_cards": sum(p.kind == "catalog_card" for p in passages),
            "literature_words": sum(len(p.text.split()) for p in passages if p.kind == "literature"),
            "table_openngc": len(ongc.df), "table_stars": len(stars), "table_supernovae": len(sne),
            "real_image_spectrum_pairs": len(pairs),
        },
        "counts_by_class": {
            "images": dict(sorted(image_class.items())),
            "image_objects": dict(sorted(Counter(by_obj[o].coarse_class for o in
                                                 {r.object_id for r in images if r.object_id}).items())),
            "objects": dict(sorted(Counter(o.coarse_class for o in objects).items())),
            "spectra_real": {c: sum(s.spectral_class == c for s in real) for c in SPECTRUM_CLASSES},
            "spectra_simulated": {c: sum(s.spectral_class == c for s in sim) for c in SPECTRUM_CLASSES},
        },
        "image_matching": dict(Counter(how for _, _, how in matches)),
        "real_image_spectrum_pairs": pairs,
        # Objects with a real spectrum that appear inside another object's image (M32 in M31's).
        "spectrum_objects_in_image_fields": in_fields,
        "simulation": {
            "variants_per_template": n_simulated, "simulator": "astrovlm.data.simulate.simulate_spectrum",
            "star_redshift": list(STAR_Z), "galaxy_redshift": list(GALAXY_Z), "quasar_redshift": list(QUASAR_Z),
            "snr_log_uniform": list(SNR_RANGE), "resolution": list(RESOLUTION_RANGE), "ebv_max": EBV_MAX,
            "note": "every simulated spectrum has simulated=true, its template and its parameters",
        },
        "splits": {
            "rule": SPLIT_RULE,
            "units_by_stratum": split_counts(splits, strata),
            "records": {name: dict(Counter(r.split for r in recs)) for name, recs in
                        (("objects", objects), ("images", images), ("spectra", spectra), ("passages", passages))},
        },
        "sources": {
            "stellarium-data": {"debian_version": versions.get("stellarium-data"), "license": stellarium.PACKAGE_LICENSE,
                                "used": "nebulae/default images and textures.json; skycultures descriptions"},
            "iraf-rvsao": {"debian_version": versions.get("iraf-rvsao"), "license": rvsao.LICENSE,
                           "credit": rvsao.CREDIT, "used": "templates/ (real spectra only)"},
            "kstars-data": {"debian_version": versions.get("kstars-data"),
                            "license": {"stars": kstars.STARS_LICENSE, "astroinfo": kstars.DOCS_LICENSE,
                                        "planet_facts": kstars.PLANET_LICENSE, "supernovae": kstars.SNE_LICENSE},
                            "used": "stars.dat, named/unnamedstars.dat (HD), catalog.min.json, "
                                    "PlanetFacts.dat, AstroInfo docbook"},
            "OpenNGC": {"credit": openngc.CREDIT, "license": openngc.LICENSE, "used": "pyongc ongc.db"},
        },
        "credits": {
            "images": [{"image_id": r.image_id, "credit": r.credit, "license": r.license} for r in images],
            "spectra_real": [{"spectrum_id": s.spectrum_id, "credit": s.credit, "license": s.license} for s in real],
            "passages_by_source": _passage_credits(passages),
        },
        "files": n_files,
        "content_hash": digest,
        "hash_rule": "sha256 over sorted lines 'relative/path\\0sha256(file)\\n' of every file "
                     "except manifest.json and summary.json",
    }


def _spectrum_objects_in_image_fields(objects, real, matches) -> dict[str, list[str]]:
    by_obj = {o.object_id: o for o in objects}
    out: dict[str, list[str]] = {}
    for oid in sorted({s.object_id for s in real if s.object_id}):
        o = by_obj[oid]
        if o.ra_deg is None:
            continue
        hits = [f"stellarium:{img.stem}" for img, obj, _ in matches
                if float(_angsep_deg(img.ra_deg, img.dec_deg, o.ra_deg, o.dec_deg)) <= img.fov_deg / 2]
        if hits:
            out[oid] = hits
    return out


def _passage_credits(passages) -> list[dict]:
    seen: dict[str, dict] = {}
    for p in passages:
        key = p.source if p.kind == "literature" else f"catalog cards ({p.source})"
        if key not in seen:
            seen[key] = {"source": key, "credit": p.credit, "license": p.license, "passages": 0}
        seen[key]["passages"] += 1
    return list(seen.values())


def _summary(manifest: dict, out: Path, seconds: float, timings: dict, n_sim_failed: int) -> dict:
    c = manifest["counts"]
    return {
        "path": str(out),
        "seconds": round(seconds, 1),
        "timings": timings,
        "objects": c["objects"],
        "images": c["images"],
        "image_classes": manifest["counts_by_class"]["images"],
        "image_objects_by_class": manifest["counts_by_class"]["image_objects"],
        "spectra_real": c["spectra_real"],
        "spectra_simulated": c["spectra_simulated"],
        "simulations_skipped": n_sim_failed,
        "spectrum_classes_real": manifest["counts_by_class"]["spectra_real"],
        "real_image_spectrum_pairs": manifest["real_image_spectrum_pairs"],
        "passages_literature": c["passages_literature"],
        "literature_words": c["literature_words"],
        "catalog_cards": c["catalog_cards"],
        "tables": {"openngc": c["table_openngc"], "stars": c["table_stars"], "supernovae": c["table_supernovae"]},
        "splits": manifest["splits"]["records"],
        "image_matching": manifest["image_matching"],
        "content_hash": manifest["content_hash"],
    }
