"""Optical flux standards: HST CALSPEC and the ESO, NOAO and X-shooter standards beside it.

They ship in the sdist of PyPI ``pypeit==1.9.0`` (``pypeit/data/standards/``; later
versions download them at run time). The files carry no spectral types, so a type is
taken only from a source we can check: the CALSPEC README's table (column "Sp. T."), the
X-shooter info table's TYPE, or the KStars stars table of the sample sky
(``tables/stars.parquet``) matched by HD number or by position within ``MATCH_ARCSEC``;
the rest stay unlabelled.

**Reserved for outside evaluation: every file of the Sun and of Vega (alpha Lyrae)**
(``alpha_lyr*``, ``sun_reference*``, ``vega_*``, or any file within an arcminute of Vega).
Their records say ``reserved="outside evaluation"``; ``for_training()`` never returns them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.data.sources import pypi
from astrovlm.data.spectrum import Spectrum
from astrovlm.errors import UnreadableError

log = logging.getLogger(__name__)

RESERVED = "outside evaluation"
MATCH_ARCSEC = 5.0
FLAM = "erg s-1 cm-2 Angstrom-1"
# Vega's ICRS position (SIMBAD): any standard this close to it is Vega.
_VEGA_DEG = (279.234735, 38.783689)
_RESERVED_KEYS = {"ALPHALYR", "VEGA", "HR7001", "HD172167", "SUN", "SUNREFERENCE"}

FAMILIES = {  # folder -> (credit, licence)
    "calspec": ("HST CALSPEC (Bohlin et al.; STScI), via PypeIt 1.9.0",
                "public domain (NASA/STScI); PypeIt BSD-3-Clause"),
    "esofil": ("ESO spectrophotometric standards (Hamuy et al. 1992, 1994; Oke 1990), via PypeIt 1.9.0",
               "ESO standards, free for scientific use; PypeIt BSD-3-Clause"),
    "noao": ("KPNO spectrophotometric standards (Massey et al. 1988; Massey & Gronwall 1990), via PypeIt 1.9.0",
             "NOAO/IRAF onedstds, free for scientific use; PypeIt BSD-3-Clause"),
    "xshooter": ("X-shooter flux standards (Moehler et al. 2014, A&A 568, A9), via PypeIt 1.9.0",
                 "ESO, free for scientific use; PypeIt BSD-3-Clause"),
    "": ("Vega reference spectra shipped with PypeIt 1.9.0", "PypeIt BSD-3-Clause"),
}


@dataclass
class StandardSpectrum:
    """One flux-standard spectrum file (real observation unless ``simulated``: a model)."""

    spectrum_id: str            # "calspec:FAMILY/FILE"
    family: str                 # calspec, esofil, noao, xshooter, or "" (top-level Vega files)
    file: str                   # file name inside pypeit/data/standards/FAMILY
    path: str                   # absolute path in the cache
    star: str                   # e.g. "GD71", "BD+28 4211"
    star_key: str               # normalised name, one per star across families
    ra_deg: float | None        # ICRS J2000, from the package's info tables
    dec_deg: float | None
    spectral_type: str          # "" when no checkable source gives one
    type_from: str              # "CALSPEC README", "X-shooter info", "KStars stars", ""
    coarse_class: str           # "" when unlabelled
    simulated: bool             # True for model atmospheres (*_mod_*, *_plus_*k*)
    credit: str
    license: str
    source: str = "PyPI pypeit==1.9.0 sdist, pypeit/data/standards"
    reserved: str = ""


def standards_root(*, progress: bool = True) -> Path:
    return pypi.package_root("pypeit", progress=progress) / "pypeit-1.9.0" / "pypeit" / "data" / "standards"


def star_key(name: str) -> str:
    """One key per star: 'BD+28 4211', 'bd_28d4211', 'BD+284211' -> 'BD284211'."""
    s = re.sub(r"\(.*?\)", "", name).upper()
    s = re.sub(r"(?<=\d)D(?=\d)", "", s)  # CALSPEC writes the declination sign as 'd'
    s = re.sub(r"[^A-Z0-9]", "", s)
    return _SAME_STAR.get(s, s)


# Names the packages spell differently for one star.
_SAME_STAR = {"HILTNER600": "HILT600", "ALPHALYR": "VEGA", "SUNREFERENCE": "SUN"}


def read_catalog(*, progress: bool = True, exclude=frozenset(), stars_table: Path | None = None
                 ) -> list[StandardSpectrum]:
    """Every flux-standard file as a record, Sun and Vega included (marked reserved)."""
    root = standards_root(progress=progress)
    info = _info_tables(root)
    types = _readme_types(root / "calspec" / "README")
    kstars = _kstars(stars_table)
    out = []
    for family in ("calspec", "esofil", "noao", "xshooter", ""):
        folder = root / family if family else root
        for path in sorted(folder.iterdir()):
            if not _is_spectrum(path, family):
                continue
            sid = f"calspec:{family}/{path.name}" if family else f"calspec:{path.name}"
            if sid in exclude:
                continue
            name, ra, dec, xtype = info.get((family, path.name.removesuffix(".gz")), (None, None, None, ""))
            key = star_key(name) if name else _key_from_file(path.name, family)
            name = name or key
            stype, src = (types[key], "CALSPEC README") if key in types else (
                (xtype, "X-shooter info") if xtype else _kstars_type(kstars, key, ra, dec))
            credit, licence = FAMILIES[family]
            out.append(StandardSpectrum(
                spectrum_id=sid, family=family, file=path.name, path=str(path), star=name,
                star_key=key, ra_deg=ra, dec_deg=dec, spectral_type=stype, type_from=src if stype else "",
                coarse_class=classify(stype), simulated=bool(re.search(r"_mod_|_plus_\d+k", path.name)),
                credit=credit, license=licence,
                reserved=RESERVED if _is_sun_or_vega(key, path.name, ra, dec) else ""))
    # A type found for one file of a star (e.g. in the X-shooter table) holds for its others.
    by_star = {r.star_key: (r.spectral_type, r.type_from) for r in out if r.spectral_type}
    for r in out:
        if not r.spectral_type and r.star_key in by_star:
            r.spectral_type, r.type_from = by_star[r.star_key]
            r.coarse_class = classify(r.spectral_type)
    return out


def for_training(*, progress: bool = True, exclude=None, stars_table: Path | None = None
                 ) -> list[StandardSpectrum]:
    """What training or tuning may use: never the Sun or Vega, and not the outside set."""
    if exclude is None:
        from astrovlm.data.sources.outside import load_outside_ids
        exclude = load_outside_ids()
    return [r for r in read_catalog(progress=progress, exclude=exclude, stars_table=stars_table)
            if not r.reserved and not _is_sun_or_vega(r.star_key, r.file, r.ra_deg, r.dec_deg)]


def manifest_entry(records: list[StandardSpectrum]) -> dict:
    return {"source": "flux standards (PyPI pypeit==1.9.0 sdist)", "count": len(records),
            "reserved": sorted({r.star for r in records if r.reserved}),
            "families": {f: {"credit": c, "license": lic} for f, (c, lic) in FAMILIES.items() if f},
            "redistribute": "fetched at set-up; not committed"}


def classify(spectral_type: str) -> str:
    t = (spectral_type or "").strip()
    if not t or t in ("?", "..."):
        return ""
    if re.match(r"^(D[ABOCQZ0-9]|WD)", t):
        return "white dwarf"
    if re.match(r"^(sd[OB]|Op)", t):
        return "hot subdwarf"
    t = re.sub(r"^sd", "", t)
    letter = t[0].upper()
    return {"O": "O/B star", "B": "O/B star", "A": "A star", "F": "F star", "G": "G star",
            "K": "K star", "M": "M star", "L": "L dwarf", "T": "T dwarf"}.get(letter, "")


def read_spectrum(rec: StandardSpectrum) -> Spectrum:
    """The spectrum in Angstrom and erg s-1 cm-2 A-1 (ivar from STATERROR where given)."""
    p = Path(rec.path)
    try:
        if p.name.endswith((".fits", ".fits.gz")):
            wave, flux, err = _read_fits(p)
        else:
            wave, flux, err = _read_table(p, rec.family)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise UnreadableError(f"not a readable flux-standard spectrum ({exc})", path=p) from None
    good = np.isfinite(wave) & np.isfinite(flux) & (flux > 0)
    if err is None:
        ivar = None if good.all() else np.where(good, 1.0, 0.0)
    else:
        ok = good & np.isfinite(err) & (err > 0)
        ivar = np.where(ok, 1.0 / np.where(ok, err, 1.0) ** 2, 0.0)
    keep = np.isfinite(wave)
    return Spectrum(wavelength=wave[keep] * u.AA, flux=flux[keep],
                    ivar=None if ivar is None else ivar[keep], flux_unit=FLAM,
                    meta={"OBJECT": rec.star, "SPTYPE": rec.spectral_type or None,
                          "SOURCE": rec.family or "pypeit", "SIMULAT": rec.simulated})


def _read_fits(p: Path):
    import warnings

    from astropy.io import fits

    # Old CALSPEC files carry float TNULLn cards; astropy warns and ignores them, as we do.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        with fits.open(p, memmap=False) as hdul:
            d = hdul[1].data
            names = [n.upper() for n in d.columns.names]
            wave = np.asarray(d["WAVELENGTH"], dtype=np.float64).ravel()
            flux = np.asarray(d["FLUX"], dtype=np.float64).ravel()
            err = np.asarray(d["STATERROR"], dtype=np.float64).ravel() if "STATERROR" in names else None
    if err is not None and not np.any(np.isfinite(err) & (err > 0)):
        err = None  # the older FOS+Oke files leave STATERROR all zero: unknown, not infinite S/N
    return wave, flux, err


def _read_table(p: Path, family: str):
    rows = np.loadtxt(p, comments="#", ndmin=2)
    wave = rows[:, 0]
    if p.name.startswith("m"):  # AB magnitudes per bin (NOAO 'm' files)
        fnu = 10 ** (-0.4 * (rows[:, 1] + 48.6)) * u.Unit("erg s-1 cm-2 Hz-1")
        flux = fnu.to_value(FLAM, equivalencies=u.spectral_density(wave * u.AA))
    elif family == "esofil":  # ESO 'f' files: 1e-16 erg s-1 cm-2 A-1
        flux = rows[:, 1] * 1e-16
    else:
        flux = rows[:, 1]
    return wave, flux, None


def _is_spectrum(path: Path, family: str) -> bool:
    n = path.name
    if not path.is_file() or "info" in n or n.startswith((".", "README", "aaareadme", "names")):
        return False
    if family == "":
        return n.startswith("vega_") and n.endswith(".dat")
    return n.endswith((".fits", ".fits.gz", ".dat")) or family == "xshooter"


def _key_from_file(name: str, family: str) -> str:
    stem = re.sub(r"(\.fits)?(\.gz)?$|\.dat$", "", name)
    if family == "calspec":
        stem = re.sub(r"_(stisnic|stis|nic|fos|mod)?_?\d{3}$|_stis_plus.*$", "", stem)
        stem = re.sub(r"_(stisnic|stis|nic|fos|mod)$", "", stem)
    elif family in ("esofil", "noao", "xshooter"):
        stem = stem[1:]  # the 'f'/'m' prefix
    elif stem.startswith("vega"):
        return "VEGA"
    return star_key(stem)


def _is_sun_or_vega(key: str, name: str, ra, dec) -> bool:
    if key in _RESERVED_KEYS or re.match(r"^(alpha_lyr|sun_reference|vega)", name.lower()):
        return True
    if ra is None or dec is None:
        return False
    return _sep_deg(ra, dec, *_VEGA_DEG) < 1 / 60


def _info_tables(root: Path) -> dict:
    """(family, file) -> (star name, ra, dec, type) from each folder's *_info.txt."""
    from astropy.coordinates import Angle

    out = {}
    for family in ("calspec", "esofil", "noao", "xshooter"):
        path = root / family / f"{family}_info.txt"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if line.lstrip().startswith("#") or len(parts) < 4 or parts[0] == "File":
                continue
            try:
                ra = Angle(parts[2], unit=u.hourangle).deg
                dec = Angle(parts[3], unit=u.deg).deg
            except ValueError:
                continue
            xtype = parts[5] if family == "xshooter" and len(parts) > 5 else ""
            out[(family, parts[0].removesuffix(".gz"))] = (parts[1], float(ra), float(dec), xtype)
            if family == "xshooter" and not parts[0].endswith(".dat"):  # 'fLTT7987' lacks .dat
                out[(family, parts[0] + ".dat")] = out[(family, parts[0])]
    return out


def _readme_types(path: Path) -> dict:
    """star key -> 'Sp. T.' from the CALSPEC README's table (by its CDBS-name column)."""
    out = {}
    if not path.exists():
        return out
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("Star name")), None)
    for line in lines[start + 2:] if start is not None else []:
        line = re.sub(r"(\S)\((\d)\)", r"\1 (\2)", line)  # "BD+28 4211(2)": a footnote mark
        if not line.strip():
            if out:
                break
            continue
        m = re.match(r"^(\S+(?: \d+)?(?: \(\d\))?)\s+(\S+)\s+\S+\s+(?:\S+\s+)?([A-Z0-9_]+)\s", line.replace("\t", " "))
        if m and m.group(2) not in ("?", "..."):
            sptype = "G0V" if m.group(2) == "GOV" else m.group(2)  # a letter O typed for a zero
            out[star_key(m.group(3))] = sptype
    return out


def _kstars(path: Path | None):
    from astrovlm.config import data_home

    path = path or data_home() / "sample" / "tables" / "stars.parquet"
    if not Path(path).exists():
        return None
    import pandas as pd

    return pd.read_parquet(path, columns=["ra_deg", "dec_deg", "spectral_type", "hd", "name"])


def _kstars_type(table, key: str, ra, dec) -> tuple[str, str]:
    if table is None:
        return "", ""
    m = re.match(r"^HD(\d+)$", key)
    if m:
        hit = table[table["hd"].astype(str) == m.group(1)]
        if len(hit) and str(hit.iloc[0]["spectral_type"] or "").strip():
            return str(hit.iloc[0]["spectral_type"]).strip(), "KStars stars (HD)"
    if ra is None or dec is None:
        return "", ""
    sep = _sep_deg(table["ra_deg"].to_numpy(), table["dec_deg"].to_numpy(), ra, dec) * 3600
    i = int(np.argmin(sep))
    if sep[i] <= MATCH_ARCSEC and str(table.iloc[i]["spectral_type"] or "").strip():
        return str(table.iloc[i]["spectral_type"]).strip(), f"KStars stars ({sep[i]:.1f} arcsec)"
    return "", ""


def _sep_deg(ra1, dec1, ra2, dec2):
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    a = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(a, 0, 1))))
