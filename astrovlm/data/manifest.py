"""What a dataset holds, in counts: the sample sky's manifest and build summary, and the
summary ``astrovlm data info`` prints for any dataset folder.

The writer (``astrovlm.data.writer``) adds the files count, content hash and hash rule to a
manifest and writes it; this module only says what goes in it.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from astrovlm import __version__
from astrovlm.data.matching import angular_separation_deg
from astrovlm.data.records import SPECTRUM_CLASSES, SkyDataset
from astrovlm.data.split import SPLIT_RULE, split_counts


def sample_manifest(objects, images, spectra, passages, matches, strata, splits, table_rows: dict,
                    sources: dict, simulation: dict) -> dict:
    """The sample sky's manifest: counts, counts by class, image matching, splits, sources and
    credits. ``table_rows`` is {"openngc": n, "stars": n, "supernovae": n}."""
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
            "table_openngc": table_rows["openngc"], "table_stars": table_rows["stars"],
            "table_supernovae": table_rows["supernovae"],
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
        "simulation": simulation,
        "splits": {
            "rule": SPLIT_RULE,
            "units_by_stratum": split_counts(splits, strata),
            "records": {name: dict(Counter(r.split for r in recs)) for name, recs in
                        (("objects", objects), ("images", images), ("spectra", spectra), ("passages", passages))},
        },
        "sources": sources,
        "credits": {
            "images": [{"image_id": r.image_id, "credit": r.credit, "license": r.license} for r in images],
            "spectra_real": [{"spectrum_id": s.spectrum_id, "credit": s.credit, "license": s.license} for s in real],
            "passages_by_source": _passage_credits(passages),
        },
    }


def _spectrum_objects_in_image_fields(objects, real, matches) -> dict[str, list[str]]:
    by_obj = {o.object_id: o for o in objects}
    out: dict[str, list[str]] = {}
    for oid in sorted({s.object_id for s in real if s.object_id}):
        o = by_obj[oid]
        if o.ra_deg is None:
            continue
        hits = [f"stellarium:{img.stem}" for img, obj, _ in matches
                if float(angular_separation_deg(img.ra_deg, img.dec_deg, o.ra_deg, o.dec_deg)) <= img.fov_deg / 2]
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


def sample_summary(manifest: dict, out: Path, seconds: float, timings: dict, n_sim_failed: int) -> dict:
    """What the sample build prints (and writes as summary.json), from its manifest."""
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


def dataset_summary(root: str | Path, check: bool = True) -> dict:
    """Counts of an existing dataset (any built with the records form), for ``data info``
    (``check``: as ``SkyDataset``'s open check)."""
    root = Path(root)
    ds = SkyDataset(root, check=check)
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
