"""KStars data (Debian ``kstars-data``): stars, supernovae, planet facts, AstroInfo articles.

- ``stars.dat``: Hipparcos/Tycho stars in fixed columns (J2000 position, proper motion in
  mas/yr, parallax in mas, V magnitude, B-V, spectral type, Bayer and proper names).
- ``namedstars.dat`` / ``unnamedstars.dat``: the same bright stars in KStars' binary form,
  which also carries each star's Henry Draper (HD) number; joined by position.
- ``catalog.min.json``: supernovae (Open Supernova Catalog extract).
- ``PlanetFacts.dat``: one paragraph per planet (from Wikipedia, CC-BY-SA).
- ``doc/HTML/en/kstars/*.docbook``: the AstroInfo articles (GFDL), turned into plain text.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd

from astrovlm.errors import NotFoundError, UnreadableError

KSTARS = Path("usr/share/kstars")
DOCS = Path("usr/share/doc/HTML/en/kstars")
SOURCE = "KStars data (Debian kstars-data)"
STARS_LICENSE = "GPL (KStars star catalog, derived from the public-domain Hipparcos/Tycho catalogs)"
DOCS_LICENSE = "GFDL-1.2+ (KStars handbook, AstroInfo project)"
PLANET_LICENSE = "CC-BY-SA (text from Wikipedia, via KStars)"
SNE_LICENSE = "Open Supernova Catalog data (CC-BY-4.0), via KStars"


def _float(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_star_line(line: str) -> dict | None:
    """One line of stars.dat (KStars' fixed columns) -> a dict of facts, or None."""
    if len(line) < 58 or line.startswith("#"):
        return None
    try:
        ra_h = int(line[0:2]) + int(line[2:4]) / 60 + float(line[4:9]) / 3600
        dec = int(line[11:13]) + int(line[13:15]) / 60 + float(line[15:19]) / 3600
    except ValueError:
        return None
    if line[10] == "-":
        dec = -dec
    var = len(line) > 62 and line[62] == "."
    bayer = name = None
    rest = line[72:].strip() if len(line) > 72 else ""
    if rest.startswith(","):
        parts = [p.strip() for p in rest[1:].split(",")]
        bayer = parts[0] or None
        name = parts[1] if len(parts) > 1 and parts[1] else None
    return {
        "ra_deg": ra_h * 15.0, "dec_deg": dec,
        "pm_ra_mas_yr": _float(line[20:29]), "pm_dec_mas_yr": _float(line[29:38]),
        "parallax_mas": _float(line[38:45]), "v_mag": _float(line[46:51]),
        "b_v": _float(line[51:56]), "spectral_type": line[56:58].strip() or None,
        "multiple": line[59:60] == "1",
        "var_range_mag": _float(line[61:65]) if var else None,
        "var_period_days": _float(line[66:72]) if var else None,
        "bayer": bayer, "name": name,
    }


def read_stars(root: Path) -> pd.DataFrame:
    """stars.dat as a table, with HD numbers joined from KStars' binary star files."""
    path = Path(root) / KSTARS / "stars.dat"
    if not path.exists():
        raise NotFoundError("KStars stars.dat not found; is kstars-data unpacked?", path=path)
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            row = parse_star_line(line.rstrip("\n"))
            if row:
                rows.append(row)
    df = pd.DataFrame(rows)
    df["hd"] = _join_hd(df, root)
    return df


def read_binary_stars(path: Path) -> np.ndarray:
    """KStars' binary star file (``namedstars.dat`` style): records of 32-byte starData."""
    b = path.read_bytes()
    if len(b) < 129 or b[124:126] not in (b"SK", b"KS"):
        raise UnreadableError("not a KStars binary star file (no SK marker at byte 124)", path=path)
    nfields = struct.unpack("<H", b[127:129])[0]
    off = 129 + 16 * nfields
    ntrixels = struct.unpack("<I", b[off:off + 4])[0]
    index = np.frombuffer(b[off + 4:off + 4 + 12 * ntrixels], dtype="<u4").reshape(-1, 3)
    start, count = int(index[:, 1].min()), int(index[:, 2].sum())
    dtype = np.dtype([("ra", "<i4"), ("dec", "<i4"), ("dra", "<i4"), ("ddec", "<i4"),
                      ("plx", "<i4"), ("hd", "<i4"), ("mag", "<i2"), ("bv", "<i2"),
                      ("sp", "S2"), ("flags", "u1"), ("unused", "u1")])
    if start + count * dtype.itemsize > len(b):
        raise UnreadableError(f"index promises {count} stars but the file is shorter", path=path)
    return np.frombuffer(b[start:start + count * dtype.itemsize], dtype=dtype)


def _join_hd(df: pd.DataFrame, root: Path) -> pd.Series:
    """HD number of each stars.dat row, matched by position (within 2 arcsec)."""
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    recs = [read_binary_stars(Path(root) / KSTARS / f)
            for f in ("namedstars.dat", "unnamedstars.dat") if (Path(root) / KSTARS / f).exists()]
    hd = pd.Series(pd.array([None] * len(df), dtype="Int64"), index=df.index)
    if not recs:
        return hd
    r = np.concatenate(recs)
    r = r[r["hd"] > 0]
    # The binary files mostly agree with stars.dat at J2000, but some high proper-motion
    # stars (Sirius) sit at the Hipparcos epoch 1991.25 there: try both, keep the closer.
    ra0, dec0 = r["ra"] / 1e6 * 15, r["dec"] / 1e5
    dt = 2000.0 - 1991.25
    ra1 = ra0 + (r["dra"] / 10) * dt / 3.6e6 / np.cos(np.radians(dec0))
    dec1 = dec0 + (r["ddec"] / 10) * dt / 3.6e6
    stars = SkyCoord(df["ra_deg"].to_numpy() * u.deg, df["dec_deg"].to_numpy() * u.deg)
    best_sep = np.full(len(df), np.inf)
    values = np.zeros(len(df), dtype=np.int64)
    for ra, dec in ((ra0, dec0), (ra1, dec1)):
        idx, sep, _ = stars.match_to_catalog_sky(SkyCoord(ra * u.deg, dec * u.deg))
        sep = sep.to_value(u.arcsec)
        better = (sep < 2.0) & (sep < best_sep)
        values[better] = r["hd"][idx[better]]
        best_sep = np.minimum(best_sep, np.where(sep < 2.0, sep, np.inf))
    # A close pair can both land on one binary record: the HD number goes to the nearer.
    order = np.argsort(best_sep)
    seen: set[int] = set()
    for i in order:
        v = int(values[i])
        if v and v in seen:
            values[i] = 0
        seen.add(v)
    hd[:] = pd.array([int(v) if v else None for v in values], dtype="Int64")
    return hd


# --- supernovae -------------------------------------------------------------------------

def _first(entry: dict, key: str):
    vals = entry.get(key) or []
    return vals[0].get("value") if vals and isinstance(vals[0], dict) else None


def _sexa_to_deg(text: str | None, hours: bool) -> float | None:
    if not text:
        return None
    m = re.fullmatch(r"\s*([+-]?)(\d+):(\d+)(?::(\d+(?:\.\d*)?))?\s*", text)
    if not m:
        return _float(text)
    v = int(m.group(2)) + int(m.group(3)) / 60 + float(m.group(4) or 0) / 3600
    v = -v if m.group(1) == "-" else v
    return v * 15 if hours else v


def read_supernovae(root: Path) -> pd.DataFrame:
    """catalog.min.json as a table: name, aliases, date, position (deg), type, redshift."""
    path = Path(root) / KSTARS / "catalog.min.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError("KStars catalog.min.json not found; is kstars-data unpacked?", path=path) from None
    except json.JSONDecodeError as exc:
        raise UnreadableError(f"not valid JSON ({exc.msg}, line {exc.lineno})", path=path) from None
    rows = []
    for e in entries:
        rows.append({
            "name": e.get("name"),
            "aliases": ",".join(a["value"] for a in e.get("alias", []) if a.get("value") != e.get("name")),
            "discover_date": _first(e, "discoverdate"),
            "ra_deg": _sexa_to_deg(_first(e, "ra"), True),
            "dec_deg": _sexa_to_deg(_first(e, "dec"), False),
            "claimed_type": _first(e, "claimedtype"),
            "redshift": _float(_first(e, "redshift") or ""),
            "max_app_mag": _float(_first(e, "maxappmag") or ""),
            "max_abs_mag": _float(_first(e, "maxabsmag") or ""),
            "host": _first(e, "host"),
            "ebv": _float(_first(e, "ebv") or ""),
            "references": e.get("references"),
        })
    return pd.DataFrame(rows)


# --- texts --------------------------------------------------------------------------------

@dataclass
class Article:
    source_id: str       # e.g. "kstars:blackbody"
    title: str
    text: str            # plain text, paragraphs separated by blank lines
    author: str
    license: str
    path: Path


def planet_facts(root: Path) -> list[Article]:
    """PlanetFacts.dat: "Name::paragraph" lines."""
    path = Path(root) / KSTARS / "PlanetFacts.dat"
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if "::" in line and not line.startswith("#"):
            name, text = line.split("::", 1)
            out.append(Article(f"kstars-planetfacts:{name.strip().lower()}", name.strip(),
                               text.strip(), "Wikipedia contributors", PLANET_LICENSE, path))
    return out


_ENTITIES = {"&kstars;": "KStars", "&kde;": "KDE", "&ie;": "i.e.", "&eg;": "e.g.",
             "&etc;": "etc.", "&GUI;": "GUI", "&Ctrl;": "Ctrl", "&Shift;": "Shift"}


def docbook_to_text(xml: str) -> tuple[str, str]:
    """(title, plain text) of a DocBook article: tags dropped, paragraphs kept."""
    m = re.search(r"<title>(.*?)</title>", xml, re.S)
    title = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", m.group(1))).strip() if m else ""
    body = xml[m.end():] if m else xml
    body = re.sub(r"<!--.*?-->", "", body, flags=re.S)
    body = re.sub(r"<(sect1info|indexterm|screenshot|mediaobject|author)\b.*?</\1>", "", body, flags=re.S)
    body = re.sub(r"<title>(.*?)</title>", r"\n\n\1.\n\n", body, flags=re.S)
    body = re.sub(r"</?(para|listitem|tip|note|sect\d|itemizedlist|orderedlist)\b[^>]*>", "\n\n", body)
    body = re.sub(r"<[^>]+>", "", body)
    for k, v in _ENTITIES.items():
        body = body.replace(k, v)
    body = unescape(body)
    paras = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", body)]
    return title, "\n\n".join(p for p in paras if p)


def astroinfo_articles(root: Path) -> list[Article]:
    """The KStars AstroInfo articles (``<sect1 id="ai-...">``), as plain text."""
    folder = Path(root) / DOCS
    out = []
    for path in sorted(folder.glob("*.docbook")):
        xml = path.read_text(encoding="utf-8", errors="replace")
        if not re.search(r'<sect1 id="ai-', xml) or 'id="ai-contents"' in xml:
            continue
        title, text = docbook_to_text(xml)
        names = re.findall(r"<firstname>(.*?)</firstname>\s*<surname>(.*?)</surname>", xml, re.S)
        author = ", ".join(f"{a.strip()} {b.strip()}" for a, b in names) or "The KStars Team"
        out.append(Article(f"kstars-astroinfo:{path.stem}", title.removeprefix("AstroInfo: "),
                           text, author, DOCS_LICENSE, path))
    return out
