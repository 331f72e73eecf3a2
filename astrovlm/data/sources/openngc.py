"""OpenNGC (NGC, IC and addenda), read straight from the SQLite file that ``pyongc`` ships.

Positions in the file are in radians (ICRS, J2000); sizes in arcmin. ``Dup`` rows are
duplicate entries whose ``ngc`` / ``ic`` / ``messier`` column names the real one: they are
followed, so "IC 11" gives NGC 281. Data: Mattia Verga, OpenNGC, CC-BY-SA-4.0.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sqlite3
from functools import lru_cache
from pathlib import Path

import pandas as pd

from astrovlm.data.records import SkyObject
from astrovlm.errors import NotFoundError, UnreadableError

CREDIT = "OpenNGC by Mattia Verga (via pyongc)"
LICENSE = "CC-BY-SA-4.0"

# OpenNGC type code -> (words, coarse class). Coarse classes are IMAGE_CLASSES or "other".
TYPES = {
    "G": ("galaxy", "galaxy"),
    "GPair": ("galaxy pair", "galaxy"),
    "GTrpl": ("galaxy triplet", "galaxy"),
    "GGroup": ("group of galaxies", "galaxy"),
    "GCl": ("globular cluster", "globular cluster"),
    "OCl": ("open cluster", "open cluster"),
    "*Ass": ("association of stars", "open cluster"),
    "Cl+N": ("star cluster with nebula", "nebula"),
    "PN": ("planetary nebula", "planetary nebula"),
    "HII": ("HII region", "nebula"),
    "EmN": ("emission nebula", "nebula"),
    "Neb": ("nebula", "nebula"),
    "RfN": ("reflection nebula", "nebula"),
    "SNR": ("supernova remnant", "nebula"),
    "DrkN": ("dark nebula", "nebula"),
    "*": ("star", "other"),
    "**": ("double star", "other"),
    "Nova": ("nova", "other"),
    "Other": ("object of other or unknown type", "other"),
    "NonEx": ("nonexistent object", "other"),
    "Dup": ("duplicated record", "other"),
}

CONSTELLATIONS = {
    "And": "Andromeda", "Ant": "Antlia", "Aps": "Apus", "Aqr": "Aquarius", "Aql": "Aquila",
    "Ara": "Ara", "Ari": "Aries", "Aur": "Auriga", "Boo": "Bootes", "Cae": "Caelum",
    "Cam": "Camelopardalis", "Cnc": "Cancer", "CVn": "Canes Venatici", "CMa": "Canis Major",
    "CMi": "Canis Minor", "Cap": "Capricornus", "Car": "Carina", "Cas": "Cassiopeia",
    "Cen": "Centaurus", "Cep": "Cepheus", "Cet": "Cetus", "Cha": "Chamaeleon", "Cir": "Circinus",
    "Col": "Columba", "Com": "Coma Berenices", "CrA": "Corona Australis", "CrB": "Corona Borealis",
    "Crv": "Corvus", "Crt": "Crater", "Cru": "Crux", "Cyg": "Cygnus", "Del": "Delphinus",
    "Dor": "Dorado", "Dra": "Draco", "Equ": "Equuleus", "Eri": "Eridanus", "For": "Fornax",
    "Gem": "Gemini", "Gru": "Grus", "Her": "Hercules", "Hor": "Horologium", "Hya": "Hydra",
    "Hyi": "Hydrus", "Ind": "Indus", "Lac": "Lacerta", "Leo": "Leo", "LMi": "Leo Minor",
    "Lep": "Lepus", "Lib": "Libra", "Lup": "Lupus", "Lyn": "Lynx", "Lyr": "Lyra", "Men": "Mensa",
    "Mic": "Microscopium", "Mon": "Monoceros", "Mus": "Musca", "Nor": "Norma", "Oct": "Octans",
    "Oph": "Ophiuchus", "Ori": "Orion", "Pav": "Pavo", "Peg": "Pegasus", "Per": "Perseus",
    "Phe": "Phoenix", "Pic": "Pictor", "Psc": "Pisces", "PsA": "Piscis Austrinus", "Pup": "Puppis",
    "Pyx": "Pyxis", "Ret": "Reticulum", "Sge": "Sagitta", "Sgr": "Sagittarius", "Sco": "Scorpius",
    "Scl": "Sculptor", "Sct": "Scutum", "Ser": "Serpens", "Se1": "Serpens", "Se2": "Serpens",
    "Sex": "Sextans", "Tau": "Taurus", "Tel": "Telescopium", "Tri": "Triangulum",
    "TrA": "Triangulum Australe", "Tuc": "Tucana", "UMa": "Ursa Major", "UMi": "Ursa Minor",
    "Vel": "Vela", "Vir": "Virgo", "Vol": "Volans", "Vul": "Vulpecula",
}


def ongc_db_path() -> Path:
    """The ``ongc.db`` file inside the installed ``pyongc`` package."""
    spec = importlib.util.find_spec("pyongc")
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError("the pyongc package is not installed (pip install pyongc); "
                            "it ships the OpenNGC catalog")
    db = Path(list(spec.submodule_search_locations)[0]) / "ongc.db"
    if not db.exists():
        raise NotFoundError("pyongc is installed but has no ongc.db", path=db)
    return db


def display_name(name: str) -> str:
    """Catalog id -> how people write it: NGC0224 -> NGC 224, IC0434 -> IC 434, M040 -> M40."""
    m = re.fullmatch(r"M(\d+)", name)
    if m:
        return f"M{int(m.group(1))}"
    m = re.fullmatch(r"C(\d+)", name)
    if m:
        return f"Caldwell {int(m.group(1))}"
    m = re.fullmatch(r"(NGC|IC|B|H|Mel|HCG|Cl)(\d+)([A-Z]?)(.*)", name)
    if m:
        return f"{m.group(1)} {int(m.group(2))}{m.group(3)}{m.group(4)}"
    m = re.fullmatch(r"(UGC|PGC|MWSC)0*(\d+)(.*)", name)
    if m:
        return f"{m.group(1)} {m.group(2)}{m.group(3)}"
    return name


def hubble_words(hubble: str | None) -> str | None:
    """A galaxy's morphology in words, from its Hubble type (as OpenNGC gives it)."""
    if not hubble:
        return None
    h = hubble.strip()
    if h.startswith("S0") or h.startswith("SB0") or h.startswith("SAB0") or h.startswith("E-S0"):
        return "lenticular galaxy"
    if h.startswith("SB"):
        return "barred spiral galaxy"
    if h.startswith(("S", "SAB", "SA")):
        return "spiral galaxy"
    if h.startswith(("cE", "E", "dE")):
        return "elliptical galaxy"
    if h.startswith(("I", "dI")):
        return "irregular galaxy"
    return None


@lru_cache(maxsize=4)
def _load(db: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        df = pd.read_sql_query("SELECT * FROM objects", con)
        ids = pd.read_sql_query("SELECT name, identifier FROM objIdentifiers", con)
    except Exception as exc:
        raise UnreadableError(f"cannot read the OpenNGC tables ({exc})", path=db) from None
    finally:
        con.close()
    df["ra_deg"] = df["ra"].map(lambda r: None if r is None or pd.isna(r) else math.degrees(r))
    df["dec_deg"] = df["dec"].map(lambda r: None if r is None or pd.isna(r) else math.degrees(r))
    df["type_words"] = df["type"].map(lambda t: TYPES.get(t, (t, "other"))[0])
    df["coarse_class"] = df["type"].map(lambda t: TYPES.get(t, (t, "other"))[1])
    df["display"] = df["name"].map(display_name)
    df["dup_of"] = [_dup_target(r) if r.type == "Dup" else None for r in df.itertuples()]
    return df, ids


def _dup_target(row) -> str | None:
    # A Dup row names its real entry in the ngc, ic or messier column.
    if row.ngc:
        return "NGC" + str(row.ngc).zfill(4)
    if row.ic:
        return "IC" + str(row.ic).zfill(4)
    if row.messier:
        return ("M", str(row.messier))  # resolved against the messier column below
    return None


def load_openngc(db: str | Path | None = None) -> pd.DataFrame:
    """All OpenNGC rows with degrees, type words, coarse class and ``dup_of`` targets."""
    return _load(str(db or ongc_db_path()))[0].copy()


def load_identifiers(db: str | Path | None = None) -> pd.DataFrame:
    """The objIdentifiers table: (name, identifier) pairs such as (NGC0224, PGC002557)."""
    return _load(str(db or ongc_db_path()))[1].copy()


class OpenNGC:
    """Look-ups over OpenNGC: by catalog name, Messier number, identifier, position."""

    def __init__(self, db: str | Path | None = None):
        self.df = load_openngc(db)
        ids = load_identifiers(db)
        self.by_name = {n: i for i, n in enumerate(self.df["name"])}
        self.by_messier = {}
        for i, (m, t) in enumerate(zip(self.df["messier"], self.df["type"])):
            if m and t != "Dup":
                self.by_messier[int(m)] = i
        for i, (m, t) in enumerate(zip(self.df["messier"], self.df["type"])):
            if m and t == "Dup":
                self.by_messier.setdefault(int(m), i)
        self.ids = ids
        self.by_identifier = dict(zip(ids["identifier"], ids["name"]))

    def real(self, index: int) -> int:
        """Follow ``Dup`` rows to the entry they duplicate."""
        seen = set()
        while self.df.at[index, "type"] == "Dup" and index not in seen:
            seen.add(index)
            target = self.df.at[index, "dup_of"]
            if isinstance(target, tuple):
                nxt = self.by_messier.get(int(target[1]))
            else:
                nxt = self.by_name.get(target) if target else None
            if nxt is None or nxt == index:
                break
            index = nxt
        return index

    def find(self, catalog_name: str) -> int | None:
        """Row index (after following Dup) for "NGC0224", "IC0434", "M031", "PGC002557" ..."""
        key = catalog_name.replace(" ", "")
        m = re.fullmatch(r"(?i)m0*(\d+)", key)
        if m:
            n = int(m.group(1))
            i = self.by_messier.get(n, self.by_name.get(f"M{n:03d}"))
            return None if i is None else self.real(i)
        m = re.fullmatch(r"(?i)(ngc|ic)0*(\d+)(\w*)", key)
        if m:
            key = f"{m.group(1).upper()}{int(m.group(2)):04d}{m.group(3).upper()}"
        i = self.by_name.get(key)
        if i is None:
            name = self.by_identifier.get(key)
            i = self.by_name.get(name) if name else None
        return None if i is None else self.real(i)

    def sky_object(self, index: int) -> SkyObject:
        return row_to_object(self.df.iloc[index])


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _names(v) -> list[str]:
    return [s.strip() for s in (v or "").split(",") if s.strip()]


def row_to_object(row) -> SkyObject:
    """An OpenNGC row as a ``SkyObject`` (only the facts the catalog holds)."""
    aliases = []
    if row["messier"]:
        aliases.append(f"M{int(row['messier'])}")
    aliases.append(row["display"])
    if row["ngc"]:
        aliases += [f"NGC {int(n) if n.isdigit() else n}" for n in _names(row["ngc"])]
    if row["ic"]:
        aliases += [f"IC {int(n) if n.isdigit() else n}" for n in _names(row["ic"])]
    aliases += _names(row["commonnames"]) + _names(row["identifiers"])
    seen, uniq = set(), []
    for a in aliases:
        if a not in seen:
            seen.add(a)
            uniq.append(a)
    name = uniq[0]
    if row["notngc"] and not row["messier"] and _names(row["commonnames"]):
        # Addendum objects are better known by their common names (ESO056-115 is the LMC).
        name = _names(row["commonnames"])[0]
        uniq = [row["display"]] + [a for a in uniq if a not in (name, row["display"])]
        return _build(row, name, uniq)
    return _build(row, name, uniq[1:])


def _build(row, name: str, aliases: list[str]) -> SkyObject:
    otype = row["type_words"]
    if row["type"] == "G":
        otype = hubble_words(row["hubble"]) or otype
    notes = "; ".join(x for x in (row["ongcnotes"], row["nednotes"]) if x) or None
    return SkyObject(
        object_id=row["name"], name=name, otype=otype, coarse_class=row["coarse_class"],
        ra_deg=_num(row["ra_deg"]), dec_deg=_num(row["dec_deg"]), aliases=aliases,
        constellation=CONSTELLATIONS.get(row["const"], row["const"]) if row["const"] else None,
        hubble_type=row["hubble"] or None, redshift=_num(row["redshift"]),
        v_mag=_num(row["vmag"]), b_mag=_num(row["bmag"]),
        major_axis_arcmin=_num(row["majax"]), minor_axis_arcmin=_num(row["minax"]),
        notes=notes, source="OpenNGC")


def table_for_parquet(df: pd.DataFrame) -> pd.DataFrame:
    """The catalog as written to ``tables/openngc.parquet`` (degrees, words, no radians)."""
    cols = ["name", "display", "type", "type_words", "coarse_class", "ra_deg", "dec_deg", "const",
            "majax", "minax", "pa", "bmag", "vmag", "jmag", "hmag", "kmag", "sbrightn", "hubble",
            "parallax", "pmra", "pmdec", "radvel", "redshift", "messier", "ngc", "ic",
            "cstarnames", "identifiers", "commonnames", "nednotes", "ongcnotes", "notngc"]
    out = df[cols].copy()
    out["dup_of"] = [t if isinstance(t, str) else (f"M{int(t[1])}" if t else None)
                     for t in df["dup_of"]]
    out = out.rename(columns={"majax": "major_axis_arcmin", "minax": "minor_axis_arcmin",
                              "pa": "position_angle_deg", "const": "constellation"})
    return out
