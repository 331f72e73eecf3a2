"""The sample sky's recipe: which real sources, in which order, with which credits.

``build_sample_sky()`` fetches the sources (Debian data packages, pyongc's OpenNGC), then:

1. matches every Stellarium image to its object (``astrovlm.data.matching``);
2. reads the real RVSAO spectra and links each to its object (galaxies to OpenNGC, MK
   standards to their HD star);
3. makes ``n_simulated`` simulated variants of every real spectrum
   (``astrovlm.data.variants``), each flagged ``simulated`` with its template and parameters;
4. chunks the literature (KStars, Stellarium, GCIDE and WordNet definitions), writes a catalog card per object, and splits everything by object
   (``astrovlm.data.split``);
5. writes it all with the dataset writer (``astrovlm.data.writer``): the records form of
   ``astrovlm.data.records`` plus ``tables/*.parquet``, ``checksums.sha256``,
   ``manifest.json`` (``astrovlm.data.manifest``: counts, credits, licences, the split rule,
   the content hash) and ``summary.json``, swapped in atomically: an interrupted build
   leaves the previous sample sky as it was.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from astrovlm.config import sample_dir
from astrovlm.data import cards
from astrovlm.data.manifest import sample_manifest, sample_summary
from astrovlm.data.matching import ImageMatcher, fill_constellations, spectrum_object
from astrovlm.data.records import ImageRecord, Passage, SkyObject, SpectrumRecord
from astrovlm.data.resolver import NameResolver, star_object
from astrovlm.data.sources import debian, definitions, kstars, literature, openngc, rvsao, stellarium
from astrovlm.data.split import assign_splits, template_unit
from astrovlm.data.variants import N_SIMULATED, simulate_variants, simulation_manifest
from astrovlm.data.writer import DatasetWriter

log = logging.getLogger(__name__)


def _say(progress: bool, text: str) -> None:
    # Stage lines are log records (the CLI's handler puts them on stderr, as tqdm's bars go).
    if progress:
        log.info("%s", text)


def _bar(items, progress: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, disable=not progress, unit="item", leave=False)


def build_sample_sky(out: str | Path | None = None, *, progress: bool = True,
                     n_simulated: int = N_SIMULATED) -> dict:
    """Build the sample sky into ``out`` (default ``sample_dir()``); returns the summary."""
    t0 = time.time()
    out = Path(out) if out else sample_dir()
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> float:
        timings[name] = round(time.time() - start, 2)
        return time.time()

    _say(progress, f"building the sample sky into {out}")
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
        obj = spectrum_object(rs, resolver)
        if obj is not None:
            obj = objects.setdefault(obj.object_id, obj)
        spectrum_objects[rs.name] = obj
    # The named bright stars of KStars: objects with catalog cards (text for the stars).
    for _, row in stars[stars["name"].notna()].iterrows():
        obj = star_object(row)
        objects.setdefault(obj.object_id, obj)
    fill_constellations(objects.values())
    t = lap("spectra", t)

    _say(progress, "[4/6] splits by object")
    strata: dict[str, str] = {}
    for rs in real:
        obj = spectrum_objects[rs.name]
        strata[obj.object_id if obj else template_unit(rs.name)] = f"spectrum/{rs.spectral_class}"
    for oid, obj in objects.items():
        strata.setdefault(oid, f"object/{obj.coarse_class}")
    # the literature: KStars' and Stellarium's texts, and dictionary definitions (GCIDE's
    # "(Astron.)" senses, WordNet's astronomy synsets): short, in the words users type
    corpus = literature.literature_corpus(ks_root, st_root)
    corpus += definitions.gcide_definitions(progress=progress)
    corpus += definitions.wordnet_definitions(progress=progress)
    for chunk in corpus:
        strata.setdefault(f"doc:{chunk.source_id}", f"literature/{chunk.source_id.split(':')[0]}")
    splits = assign_splits(strata)
    for oid, obj in objects.items():
        obj.split = splits[oid]
    t = lap("splits", t)

    with DatasetWriter(out) as w:
        _say(progress, "[5/6] writing images, spectra (real and simulated) and text")
        image_records = []
        for img, obj, how in _bar(matches, progress, "copy images"):
            rel = w.copy(img.path, f"images/{img.path.name}")
            credit = img.credit + (f" ({img.info_url})" if img.info_url else "")
            image_records.append(ImageRecord(
                image_id=f"stellarium:{img.stem}", object_id=obj.object_id if obj else None,
                path=rel, credit=credit, license=img.license,
                source=stellarium.SOURCE, ra_deg=round(img.ra_deg, 6), dec_deg=round(img.dec_deg, 6),
                fov_deg=round(img.fov_deg, 5), simulated=False,
                split=splits[obj.object_id] if obj else "train"))

        spectrum_records = []
        for rs in _bar(real, progress, "real spectra"):
            obj = spectrum_objects[rs.name]
            unit = obj.object_id if obj else template_unit(rs.name)
            rel = w.write_spectrum(rs.spectrum, f"spectra/real/{rs.name}.fits")
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
                rel = w.write_spectrum(spec, f"spectra/simulated/{rs.name}-{k}.fits")
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

        _say(progress, "[6/6] tables, manifest and summary")
        openngc.table_for_parquet(ongc.df).to_parquet(w.path("tables/openngc.parquet"), index=False)
        stars.to_parquet(w.path("tables/stars.parquet"), index=False)
        sne.to_parquet(w.path("tables/supernovae.parquet"), index=False)

        object_list = [objects[k] for k in sorted(objects)]
        manifest = sample_manifest(
            object_list, image_records, spectrum_records, passages, matches, strata, splits,
            table_rows={"openngc": len(ongc.df), "stars": len(stars), "supernovae": len(sne)},
            sources=_sources(versions), simulation=simulation_manifest(n_simulated))
        manifest = w.finish(object_list, image_records, spectrum_records, passages, manifest)
        t = lap("write", t)
        summary = sample_summary(manifest, out, time.time() - t0, timings, n_sim_failed)
        w.write_json("summary.json", summary)
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


def _sources(versions: dict) -> dict:
    """The sources the sample sky is made of: package versions, licences, what each gives."""
    return {
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
    }
