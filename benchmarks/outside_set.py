"""Build the OUTSIDE SET: real items that no training, tuning or model choice may use.

Written before any training on the new sources, and committed
(``benchmarks/data/outside_set.json``: ids, file names inside the packages, provenance,
labels, why each is outside; no data). The source modules' ``for_training()`` leave these ids
out by default (``astrovlm.data.sources.outside.load_outside_ids``).

What is held out, and why:

- SpeX Prism Library spectra held out BY SOURCE: a deterministic hash of each source's name
  (sources sharing a name or lying within 5 arcsec count as one), the lowest ~15% of the
  hash order within each coarse class (M, L, T, giants, ...), every spectrum of a chosen
  source. A held-out source's other spectra never train, so a test spectrum's star is unseen.
- The 27 NIR quasar spectra of Glikman et al. (2006) beside the library: no recipe reads
  them, and they are the only sizeable set of NIR quasars (a class the library barely has).
- Flux standards (CALSPEC, ESO, NOAO, X-shooter) held out BY STAR the same way (strata from
  the package's own type tables), and always every file of the Sun and of Vega (reserved for
  outside evaluation).
- FIRST radio galaxies of the package's own TEST split, and any other image within 1 arcmin
  of one of them (the same source through another catalogue): held out by position.
- Across sources: a standard star within 5 arcsec of a held-out SpeX source (or the reverse)
  goes out with it.

Usage: python benchmarks/outside_set.py [--out benchmarks/data/outside_set.json]
(fetches splat, pypeit and firstgalaxydata into $ASTROVLM_HOME/cache the first time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from astrovlm.data.sources import calspec, first, spex
from astrovlm.data.sources.calspec import _sep_deg

OUT = Path(__file__).resolve().parent / "data" / "outside_set.json"
FRACTION = 0.15
SALT = "astrovlm-outside-v1"  # changing it changes the set: never do that after training starts
LINK_ARCSEC = 5.0
FIRST_LINK_ARCMIN = 1.0


def hash_fraction(name: str) -> float:
    return int(hashlib.sha256(f"{SALT}:{name}".encode()).hexdigest()[:12], 16) / 16 ** 12


def pick_groups(groups: dict[str, str], fraction: float = FRACTION) -> set[str]:
    """Per class, the ``round(fraction * n)`` groups lowest in hash order (at least one for a
    class of 4 or more groups). ``groups`` maps group name -> class."""
    by_class = defaultdict(list)
    for g, c in groups.items():
        by_class[c].append(g)
    out = set()
    for c, names in by_class.items():
        k = round(fraction * len(names))
        if len(names) >= 4:
            k = max(k, 1)
        out.update(sorted(names, key=hash_fraction)[:k])
    return out


def _union_find(keys, same):
    parent = {k: k for k in keys}

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k
    for a, b in same:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {k: find(k) for k in keys}


def _near_pairs(points: dict[str, tuple], arcsec: float):
    """Pairs of keys whose positions lie within ``arcsec`` (sorted by Dec, a sliding window)."""
    items = sorted(((d, r, k) for k, (r, d) in points.items()), key=lambda t: t[0])
    tol = arcsec / 3600
    for i, (d1, r1, k1) in enumerate(items):
        for d2, r2, k2 in items[i + 1:]:
            if d2 - d1 > tol:
                break
            if _sep_deg(r1, d1, r2, d2) * 3600 <= arcsec:
                yield k1, k2


def spex_groups(recs):
    """Source key -> group (one per physical source: same name, or within LINK_ARCSEC)."""
    by_name = defaultdict(list)
    points = {}
    for r in recs:
        by_name[r.name.strip().lower()].append(r.source_key)
        if r.ra_deg is not None and r.dec_deg is not None:
            points[r.source_key] = (r.ra_deg, r.dec_deg)
    same = [(ks[0], k) for ks in by_name.values() for k in ks[1:]]
    same += list(_near_pairs(points, LINK_ARCSEC))
    return _union_find({r.source_key for r in recs}, same)


def _majority(labels):
    c = Counter(labels)
    return min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def build() -> dict:
    items = []
    # SpeX, by source.
    sp = spex.read_catalog()
    group = spex_groups(sp)
    members = defaultdict(list)
    for r in sp:
        members[group[r.source_key]].append(r)
    gclass = {g: _majority([r.coarse_class for r in rs]) for g, rs in members.items()}
    spex_out = pick_groups(gclass)
    # Standards, by star (linked by position too); Sun and Vega always.
    st = calspec.read_catalog()
    star_pos = {r.star_key: (r.ra_deg, r.dec_deg) for r in st if r.ra_deg is not None}
    star_group = _union_find({r.star_key for r in st}, list(_near_pairs(star_pos, 10.0)))
    smembers = defaultdict(list)
    for r in st:
        smembers[star_group[r.star_key]].append(r)
    reserved = {g for g, rs in smembers.items() if any(r.reserved for r in rs)}
    # Strata from the package's own tables only, so that the split does not move with the
    # sample sky's KStars table (which labels a few more stars).
    sclass = {g: _majority([r.coarse_class if r.type_from in ("CALSPEC README", "X-shooter info")
                            else "unlabelled" for r in rs]) for g, rs in smembers.items()
              if g not in reserved}
    std_out = pick_groups(sclass) | reserved
    # Across sources, by position.
    links = {}
    spex_pos = {g: (rs[0].ra_deg, rs[0].dec_deg) for g, rs in members.items() if rs[0].ra_deg is not None}
    for g, (ra, dec) in spex_pos.items():
        for sg, rs in smembers.items():
            for r in rs:
                if r.ra_deg is not None and _sep_deg(ra, dec, r.ra_deg, r.dec_deg) * 3600 <= LINK_ARCSEC:
                    if g in spex_out and sg not in std_out:
                        std_out.add(sg); links[sg] = f"SpeX source {members[g][0].name}"
                    elif sg in std_out and g not in spex_out:
                        spex_out.add(g); links[g] = f"flux standard {r.star}"
    for g in sorted(spex_out):
        for r in members[g]:
            items.append({"id": r.spectrum_id, "source": "spex", "package": "splat==1.14",
                          "file": f"splat/resources/Spectra/Public/SPEX-PRISM/{r.file}",
                          "object": r.name, "group": members[g][0].name, "label": r.coarse_class,
                          "spectral_type": r.spectral_type, "subtype": r.subtype,
                          "ra_deg": r.ra_deg, "dec_deg": r.dec_deg, "bibcode": r.bibcode,
                          "why": links.get(g, "held out by source (hash of the source name, ~15% per class)")})
    for r in spex.glikman_quasars():
        items.append({"id": r.spectrum_id, "source": "spex-glikman", "package": "splat==1.14",
                      "file": f"splat/resources/SpectralTemplates/GlikmanQuasars/{r.file}",
                      "object": r.name, "group": r.name, "label": "quasar", "redshift": r.redshift,
                      "bibcode": r.bibcode, "why": "real NIR quasars no recipe reads: all held out"})
    for g in sorted(std_out):
        for r in smembers[g]:
            why = ("reserved: the Sun and Vega are kept for outside evaluation" if g in reserved else
                   links.get(g, "held out by star (hash of the star name, ~15% per class)"))
            items.append({"id": r.spectrum_id, "source": "calspec", "package": "pypeit==1.9.0 (sdist)",
                          "file": f"pypeit/data/standards/{r.family + '/' if r.family else ''}{r.file}",
                          "object": r.star, "group": g, "label": r.coarse_class or "unlabelled",
                          "spectral_type": r.spectral_type, "type_from": r.type_from,
                          "ra_deg": r.ra_deg, "dec_deg": r.dec_deg, "model": r.simulated,
                          "reserved": r.reserved, "why": why})
    # FIRST: the package's test split, and anything within 1 arcmin of it.
    fi = first.read_catalog()
    test = [r for r in fi if r.split == "test"]
    for r in fi:
        near = r.split == "test" or any(
            _sep_deg(r.ra_deg, r.dec_deg, t.ra_deg, t.dec_deg) * 60 <= FIRST_LINK_ARCMIN for t in test)
        if near:
            items.append({"id": r.image_id, "source": "first", "package": "firstgalaxydata==0.2.1",
                          "file": f"firstgalaxydata/galaxy_data_h5.zip:galaxy_data_h5.h5/{r.key}",
                          "object": r.file, "group": r.key, "label": r.label, "split": r.split,
                          "catalog": r.catalog, "ra_deg": r.ra_deg, "dec_deg": r.dec_deg,
                          "why": ("the package's own test split" if r.split == "test" else
                                  f"within {FIRST_LINK_ARCMIN:g} arcmin of a test-split image")})
    counts = defaultdict(Counter)
    for it in items:
        counts[it["source"]][it["label"]] += 1
    totals = {"spex": len(sp), "spex-glikman": 27, "calspec": len(st), "first": len(fi)}
    return {"name": "astrovlm outside set", "version": 1, "salt": SALT, "fraction": FRACTION,
            "rule": __doc__.split("What is held out, and why:")[1].split("Usage:")[0].strip(),
            "totals_in_sources": totals,
            "counts": {s: dict(sorted(c.items())) for s, c in sorted(counts.items())},
            "groups_held_out": {"spex_sources": len(spex_out), "spex_sources_total": len(members),
                                "standard_stars": len(std_out), "standard_stars_total": len(smembers)},
            "items": items}


def print_table(data: dict) -> None:
    print(f"{'source':<14} {'class':<16} {'held out':>8}")
    for source, c in data["counts"].items():
        for label, n in c.items():
            print(f"{source:<14} {label:<16} {n:>8}")
        print(f"{source:<14} {'(all)':<16} {sum(c.values()):>8}  of {data['totals_in_sources'][source]}")
    print(data["groups_held_out"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    data = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    # One item per line: small, and a diff shows exactly which items moved.
    head = json.dumps({k: v for k, v in data.items() if k != "items"}, indent=1, ensure_ascii=False)
    lines = ",\n".join(json.dumps(it, ensure_ascii=False) for it in data["items"])
    tmp.write_text(head[:-2] + ',\n "items": [\n' + lines + "\n ]\n}\n", encoding="utf-8")
    tmp.replace(args.out)
    print_table(data)
    print(f"wrote {len(data['items'])} items to {args.out}")
    from _common import write_results
    figures = {f"{src}:{label}": n for src, c in data["counts"].items() for label, n in c.items()}
    figures.update({f"{src}:total_in_source": n for src, n in data["totals_in_sources"].items()})
    figures.update(data["groups_held_out"])
    write_results("outside_set", figures, n=len(data["items"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
