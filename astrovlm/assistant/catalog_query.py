"""Running a ``CatalogQuery`` over the sample sky's tables (``tables/openngc.parquet``,
``stars.parquet``, ``supernovae.parquet``) and writing each row as one readable catalog line.

Magnitudes are V where the catalog has one, else B (the line says which); sizes are OpenNGC's
major axis in arcmin; positions are ICRS; cones use ``SkyCoord.separation``. The stars' and
supernovae's constellations are computed with ``astropy.coordinates.get_constellation``
(those tables have no constellation column). Duplicated (``Dup``) and nonexistent (``NonEx``)
OpenNGC records never match.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from astrovlm.assistant.catalog_parse import CatalogQuery, singular
from astrovlm.assistant.constellations import catalog_codes, constellation_name
from astrovlm.errors import BadArgumentError, NotFoundError

log = logging.getLogger(__name__)
CREDITS = {"openngc": "OpenNGC by Mattia Verga (via pyongc)", "stars": "KStars stars.dat",
           "supernovae": "KStars supernovae catalog"}


@dataclass
class QueryResult:
    """The rows a query matched (best first for brightest/largest), how many in all, and,
    when none matched, the nearest thing that did (a sentence) with its row."""

    query: CatalogQuery
    rows: pd.DataFrame
    total: int
    nearest: str | None = None
    nearest_rows: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


class CatalogTables:
    """The sample sky's catalog tables, read once, in one frame shape each: ``label`` (the
    name to show), ``ra_deg``, ``dec_deg``, ``const`` (IAU abbreviation), ``mag``,
    ``mag_band``, ``size_arcmin``, ``type_words``, plus the table's own columns."""

    def __init__(self, tables_dir: str | Path):
        self.dir = Path(tables_dir)
        self._frames: dict[str, pd.DataFrame] = {}

    @classmethod
    def of_dataset(cls, dataset) -> "CatalogTables | None":
        folder = Path(dataset.root) / "tables" if dataset is not None else None
        return cls(folder) if folder is not None and (folder / "openngc.parquet").exists() else None

    def frame(self, table: str) -> pd.DataFrame:
        if table not in self._frames:
            path = self.dir / f"{table}.parquet"
            if not path.exists():
                raise NotFoundError(f"the sample sky has no {table} table (build it with "
                                    "'astrovlm data sample')", path=path)
            self._frames[table] = getattr(self, f"_shape_{table}")(pd.read_parquet(path))
        return self._frames[table]

    @staticmethod
    def _shape_openngc(df: pd.DataFrame) -> pd.DataFrame:
        df = df[~df["type"].isin(["Dup", "NonEx"])].copy()
        messier = df["messier"].fillna("")
        df["label"] = [f"M{int(m)} ({d})" if m else d for m, d in zip(messier, df["display"])]
        df["const"] = df["constellation"]
        df["mag"] = df["vmag"].where(df["vmag"].notna(), df["bmag"])
        df["mag_band"] = np.where(df["vmag"].notna(), "V", np.where(df["bmag"].notna(), "B", ""))
        df["size_arcmin"] = df["major_axis_arcmin"]
        return df

    @staticmethod
    def _constellations(df: pd.DataFrame) -> np.ndarray:
        from astropy.coordinates import SkyCoord, get_constellation
        import astropy.units as u

        ok = df["ra_deg"].notna() & df["dec_deg"].notna()
        out = np.full(len(df), "", dtype=object)
        coords = SkyCoord(df.loc[ok, "ra_deg"].to_numpy() * u.deg, df.loc[ok, "dec_deg"].to_numpy() * u.deg)
        out[ok.to_numpy()] = get_constellation(coords, short_name=True)
        return out

    def _shape_stars(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        hd = df["hd"].astype("Int64")
        df["label"] = [n if isinstance(n, str) else (b if isinstance(b, str) else
                                                     (f"HD {h}" if not pd.isna(h) else
                                                      f"star J{r:.4f}{d:+.4f}"))
                       for n, b, h, r, d in zip(df["name"], df["bayer"], hd, df["ra_deg"], df["dec_deg"])]
        df["const"] = self._constellations(df)
        df["mag"], df["mag_band"] = df["v_mag"], "V"
        df["size_arcmin"] = np.nan
        df["type_words"] = ["star" + (f" of spectral type {s}" if isinstance(s, str) and s else "")
                            for s in df["spectral_type"]]
        return df

    def _shape_supernovae(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df["label"] = df["name"]
        df["const"] = self._constellations(df)
        df["mag"], df["mag_band"] = df["max_app_mag"], "peak"
        df["size_arcmin"] = np.nan
        df["type_words"] = ["supernova" + (f" of type {t}" if isinstance(t, str) and t else "")
                            for t in df["claimed_type"]]
        return df


def _kind_mask(df: pd.DataFrame, q: CatalogQuery) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    if q.table == "openngc" and q.types:
        mask &= df["type"].isin(q.types)
        if q.hubble_prefix:
            hub = df["hubble"].fillna("")
            if q.hubble_prefix == "S":   # spirals: S, SA, SB, SAB ... but not S0 (lenticular)
                mask &= hub.str.startswith("S") & ~hub.str.match(r"^S[AB]?0") & ~hub.str.startswith("SA0")
            elif q.hubble_prefix == "S0":
                mask &= hub.str.match(r"^S[AB]?0|^SA0|^E-S0|^E/S0")
            else:
                mask &= hub.str.startswith(q.hubble_prefix)
    return mask


def separations_deg(df: pd.DataFrame, ra_deg: float, dec_deg: float) -> np.ndarray:
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    centre = SkyCoord(ra_deg * u.deg, dec_deg * u.deg)
    rows = SkyCoord(df["ra_deg"].to_numpy() * u.deg, df["dec_deg"].to_numpy() * u.deg)
    return centre.separation(rows).deg


def run_query(tables: CatalogTables, q: CatalogQuery, centre: tuple[float, float] | None = None,
              exclude=()) -> QueryResult:
    """The rows matching ``q``. ``centre``: (RA, Dec) in degrees of the cone's centre, which
    the caller resolved from ``q.center``; ``exclude``: names (``name`` or ``label``) left out."""
    df = tables.frame(q.table)
    kind = _kind_mask(df, q)
    if exclude:
        kind &= ~df["name"].isin(set(exclude)) & ~df["label"].isin(set(exclude))
    mask = kind.copy()
    if q.constellation:
        mask &= df["const"].isin(catalog_codes(q.constellation))
    if q.mag_max is not None:
        mask &= df["mag"] < q.mag_max
    if q.mag_min is not None:
        mask &= df["mag"] > q.mag_min
    if q.size_min_arcmin is not None:
        mask &= df["size_arcmin"] > q.size_min_arcmin
    if q.size_max_arcmin is not None:
        mask &= df["size_arcmin"] < q.size_max_arcmin
    df = df.assign(sep_deg=np.nan)
    if q.center is not None:
        if centre is None:
            raise BadArgumentError(f"the cone's centre '{q.center}' has no position", field="question")
        near = mask & df["ra_deg"].notna()
        sep = separations_deg(df[near], *centre)
        df.loc[near, "sep_deg"] = sep
        mask &= df["sep_deg"] <= q.radius_arcmin / 60
    rows = df[mask]
    rows = _ordered(rows, q)
    result = QueryResult(q, rows, len(rows))
    if rows.empty:
        _nearest(result, df[kind], q, centre, tables)
    return result


def _ordered(rows: pd.DataFrame, q: CatalogQuery) -> pd.DataFrame:
    if q.kind == "largest":
        return rows[rows["size_arcmin"].notna()].sort_values("size_arcmin", ascending=False, kind="stable")
    if q.kind == "brightest" or q.table == "stars":
        return rows[rows["mag"].notna()].sort_values("mag", kind="stable") if q.kind == "brightest" else \
            rows.sort_values("mag", kind="stable", na_position="last")
    if q.center is not None:
        return rows.sort_values("sep_deg", kind="stable")
    # Lists in catalog order, brightest first where magnitudes exist: what an observer wants.
    return rows.sort_values("mag", kind="stable", na_position="last")


def _centroid(df: pd.DataFrame) -> tuple[float, float]:
    ra, dec = np.radians(df["ra_deg"].to_numpy()), np.radians(df["dec_deg"].to_numpy())
    v = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]).mean(axis=1)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360), float(np.degrees(np.arcsin(v[2] / np.linalg.norm(v))))


def _nearest(result: QueryResult, of_kind: pd.DataFrame, q: CatalogQuery, centre, tables) -> None:
    """When nothing matched: the nearest object of the kind asked for, to the cone's centre or
    to the middle of the constellation (the mean position of its catalogued objects), or, for
    a magnitude or size limit alone, the brightest or largest of the kind."""
    of_kind = of_kind[of_kind["ra_deg"].notna()]
    if of_kind.empty:
        return
    where = None
    if q.center is not None and centre is not None:
        where, place = centre, q.center
    elif q.constellation:
        where = constellation_centres(tables).get(q.constellation)
        place = f"the middle of {constellation_name(q.constellation)}"
    if where is not None:
        sep = separations_deg(of_kind, *where)
        i = int(np.argmin(sep))
        row = of_kind.iloc[[i]].assign(sep_deg=sep[i])
        result.nearest = (f"the nearest {singular(q.kind_words)} to {place} is {row['label'].iat[0]}, {sep[i]:.1f} deg away")
        result.nearest_rows = row
        return
    if q.mag_max is not None and of_kind["mag"].notna().any():
        row = of_kind.sort_values("mag").iloc[[0]]
        result.nearest = f"the brightest is {row['label'].iat[0]} at magnitude {row['mag'].iat[0]:g}"
        result.nearest_rows = row
    elif q.size_min_arcmin is not None and of_kind["size_arcmin"].notna().any():
        row = of_kind.sort_values("size_arcmin", ascending=False).iloc[[0]]
        result.nearest = f"the largest is {row['label'].iat[0]} at {row['size_arcmin'].iat[0]:g} arcmin"
        result.nearest_rows = row


_CONSTELLATION_CENTRES: dict[str, tuple[float, float]] = {}


def constellation_centres(tables: CatalogTables) -> dict[str, tuple[float, float]]:
    """Each constellation's middle as the mean position of its OpenNGC objects of every type
    (the middle of the sky area, not of the kind asked for, which has none there; cached)."""
    if not _CONSTELLATION_CENTRES:
        df = tables.frame("openngc")
        df = df[df["ra_deg"].notna()]
        for code in df["const"].dropna().unique():
            abbr = "Ser" if code in ("Se1", "Se2") else code
            if abbr not in _CONSTELLATION_CENTRES:
                _CONSTELLATION_CENTRES[abbr] = _centroid(df[df["const"].isin(catalog_codes(abbr))])
    return _CONSTELLATION_CENTRES


def catalog_line(row, table: str) -> str:
    """One row as the line a source shows: name, type, constellation, position, mag, size."""
    from astrovlm.data.cards import position_text

    parts = [f"{row['label']}: {row['type_words']}"]
    if row.get("const"):
        parts[0] += f" in {constellation_name(row['const'])}"
    if not pd.isna(row["ra_deg"]):
        parts.append(position_text(row["ra_deg"], row["dec_deg"]))
    if not pd.isna(row["mag"]):
        band = row["mag_band"]
        parts.append(f"{band} magnitude {row['mag']:g}" if band != "peak" else f"peak magnitude {row['mag']:g}")
    if not pd.isna(row["size_arcmin"]):
        parts.append(f"size {row['size_arcmin']:g} arcmin")
    if table == "openngc" and row.get("hubble"):
        parts.append(f"Hubble type {row['hubble']}")
    if table == "supernovae" and isinstance(row.get("host"), str):
        parts.append(f"host {row['host']}")
    if not pd.isna(row.get("sep_deg", np.nan)):
        parts.append(f"{row['sep_deg']:.2f} deg from the centre asked about")
    return "; ".join(parts) + f" ({CREDITS[table]})."
