"""Build the held-out evaluation sets: benchmarks/data/open_questions.jsonl and descriptions.jsonl.

Written 2026-12-02, before any training or tuning on them (issues 13 and 14). They are HELD
OUT: nobody building the models reads benchmarks/data/, and no figure from them may steer a
training, tuning or model choice. The Sun and Vega appear nowhere in them.

The wording of every question and description is hand-written below; the expected values
(types, constellations, magnitudes, lists, counts, distances, altitudes) are computed here from
the sample sky's tables (``tables/openngc.parquet``, ``tables/stars.parquet``) and object cards
(``objects.jsonl``), so they are reproducible. Questions are about objects of the sample's TEST
split (checked) and about concepts; list and count questions are catalog queries whose pandas
code is below.

    python benchmarks/build_open_questions.py            # writes both files
    python benchmarks/build_open_questions.py --check    # rebuilds in memory and compares
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import astropy.units as u
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
sys.path.insert(0, str(HERE.parent))

WRITTEN = "2026-12-02"
HELD_OUT = ("held out: written before any training; never train, tune or choose models on it; "
            "not to be read by the people building the models")
# Spellings that must never occur in these sets (reserved for outside evaluation).
RESERVED = re.compile(r"\b(vega|alpha lyr\w*|alp lyr|sun|solar)\b", re.I)


# ----------------------------------------------------------------------------- the tables
def sample_root() -> Path:
    from astrovlm.config import data_home

    return data_home() / "sample"


class Tables:
    def __init__(self, root: Path):
        from astrovlm.data.sources.openngc import CONSTELLATIONS

        self.root = root
        self.objects = {o["object_id"]: o for o in map(json.loads, open(root / "objects.jsonl"))}
        self.ngc = pd.read_parquet(root / "tables" / "openngc.parquet")
        self.ngc = self.ngc[self.ngc.dup_of.isna()].copy()
        self.ngc["const_name"] = self.ngc.constellation.map(CONSTELLATIONS)
        self.stars = pd.read_parquet(root / "tables" / "stars.parquet")
        self.stars["const_name"] = self.stars.bayer.fillna("").str[-3:].map(CONSTELLATIONS)
        self.images = [json.loads(x) for x in open(root / "images.jsonl")]
        self.spectra = [json.loads(x) for x in open(root / "spectra.jsonl")]

    def obj(self, oid: str) -> dict:
        o = self.objects[oid]
        if o["split"] != "test":
            raise ValueError(f"{oid} is in the {o['split']} split: only TEST objects may be asked about")
        return o

    def star(self, oid: str) -> pd.Series:
        hd = int(oid.split()[1])
        rows = self.stars[self.stars.hd == hd]
        if len(rows) != 1:
            raise ValueError(f"{oid}: {len(rows)} rows in stars.parquet")
        return rows.iloc[0]


def names_of(o: dict) -> list[str]:
    """Names a grader accepts for an object (its name, id and aliases, no survey numbers)."""
    out = [o["name"], o["object_id"]] + [a for a in o["aliases"] if not re.match(r"(2MASX|IRAS|SDSS|PGC|MCG|UGC|ESO|TYC|PN G|PK|LEDA|MWSC|LBN|C \d)", a)]
    m = re.match(r"NGC(\d+)$", o["object_id"])
    if m:
        out.append(f"NGC {int(m.group(1))}")
    m = re.match(r"IC(\d+)$", o["object_id"])
    if m:
        out.append(f"IC {int(m.group(1))}")
    return list(dict.fromkeys(out))


# ----------------------------------------------------------------------------- facts
def f_type(o: dict) -> dict:
    if o["otype"] == "star":
        return {"fact": "type", "any": ["star"], "class": "star"}
    return {"fact": "type", "any": list(dict.fromkeys([o["otype"], o["coarse_class"]])), "class": o["coarse_class"]}


def f_const(o: dict) -> dict:
    return {"fact": "constellation", "any": [o["constellation"]]}


def f_mag(o: dict, tol: float = 0.1) -> dict:
    v = o["v_mag"] if o["v_mag"] is not None else o["b_mag"]
    if v is None:
        raise ValueError(f"{o['object_id']} has no magnitude")
    return {"fact": "magnitude", "value": v, "tol": tol, "unit": "mag"}


def f_sptype(o: dict) -> dict:
    sp = o["spectral_type"]
    letter = sp[0]
    return {"fact": "spectral_type", "any": [sp, f"{letter}-type", f"type {letter}", f"{letter} star",
                                             f"{letter}-class", f"class {letter}", f"{letter} type"],
            "letter": letter}


def f_hubble(o: dict) -> dict:
    return {"fact": "hubble_type", "any": [o["hubble_type"]]}


def f_redshift(o: dict) -> dict:
    return {"fact": "redshift", "value": o["redshift"], "tol": max(1e-6, 0.005 * abs(o["redshift"])), "unit": "z"}


def dist_from_z(z: float) -> float:
    """Luminosity distance in Mpc, Planck18 (at these z it is within a few % of cz/H0)."""
    from astropy.cosmology import Planck18

    return float(Planck18.luminosity_distance(z).to_value(u.Mpc))


def f_dist_z(o: dict, tol_rel: float = 0.15) -> dict:
    return {"fact": "distance", "value": round(dist_from_z(o["redshift"]), 2), "unit": "Mpc", "tol_rel": tol_rel,
            "how": "Planck18 luminosity distance at the catalog redshift"}


def f_dist_plx(star: pd.Series, tol_rel: float = 0.1) -> dict:
    d = (1000.0 / star.parallax_mas) * u.pc
    return {"fact": "distance", "value": round(float(d.to_value(u.pc)), 2), "unit": "pc", "tol_rel": tol_rel,
            "how": f"1/parallax, parallax {star.parallax_mas} mas (stars.parquet)"}


def f_size(angle_arcmin: float, distance_mpc: float, tol_rel: float = 0.1, how: str = "") -> dict:
    size = (angle_arcmin * u.arcmin).to_value(u.rad) * distance_mpc * u.Mpc
    return {"fact": "physical_size", "value": float(f"{size.to_value(u.kpc):.4g}"), "unit": "kpc",
            "tol_rel": tol_rel, "how": how or f"{angle_arcmin} arcmin x {distance_mpc} Mpc (small angle)"}


def f_size_z(o: dict, tol_rel: float = 0.15) -> dict:
    from astropy.cosmology import Planck18

    da = float(Planck18.angular_diameter_distance(o["redshift"]).to_value(u.Mpc))
    return f_size(o["major_axis_arcmin"], da, tol_rel,
                  f"major axis {o['major_axis_arcmin']} arcmin x Planck18 angular-diameter distance at z={o['redshift']}")


def f_altaz(o: dict, lat: float, lon: float, when: str) -> list[dict]:
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.time import Time
    from astropy.utils import iers

    iers.conf.auto_download = False          # offline: the bundled table, degraded accuracy is fine at 1 deg
    iers.conf.iers_degraded_accuracy = "warn"
    where = EarthLocation(lat=lat * u.deg, lon=lon * u.deg, height=0 * u.m)
    frame = AltAz(obstime=Time(when, scale="utc"), location=where)   # no refraction: geometric
    aa = SkyCoord(o["ra_deg"] * u.deg, o["dec_deg"] * u.deg, frame="icrs").transform_to(frame)
    how = f"astropy AltAz of ICRS RA {o['ra_deg']} Dec {o['dec_deg']} at lat {lat} lon {lon} {when} UTC, no refraction"
    return [{"fact": "altitude", "value": round(float(aa.alt.deg), 2), "unit": "deg", "tol": 1.5, "how": how},
            {"fact": "azimuth", "value": round(float(aa.az.deg), 2), "unit": "deg", "tol": 2.5, "how": how}]


def f_terms(*groups) -> list[dict]:
    """Concept facts: each group is a list of spellings, one of which must appear."""
    return [{"fact": "term", "any": list(g)} for g in groups]


def f_names(*names) -> dict:
    return {"fact": "names", "any": list(names)}


# ----------------------------------------------------------------------------- catalog queries
def messier_name(row) -> str:
    return f"M{int(row.messier)}"


def q_messier(t: Tables, const: str, types: tuple | None = None) -> pd.DataFrame:
    df = t.ngc[(t.ngc.messier != "") & (t.ngc.constellation == const)]
    if types:
        df = df[df.type_words.isin(types)]
    return df


def q_ngc(t: Tables, const: str, types: tuple, vmag_max: float) -> pd.DataFrame:
    mag = t.ngc.vmag.fillna(t.ngc.bmag)
    return t.ngc[(t.ngc.constellation == const) & t.ngc.type_words.isin(types) & (mag <= vmag_max)]


def q_named_stars(t: Tables, const_name: str, vmag_max: float) -> pd.DataFrame:
    return t.stars[t.stars.name.notna() & (t.stars.const_name == const_name) & (t.stars.v_mag <= vmag_max)]


def items_ngc(df: pd.DataFrame) -> list[list[str]]:
    out = []
    for r in df.itertuples():
        names = [r.display, r.name]
        if r.messier:
            names.insert(0, messier_name(r))
        names += [n.strip() for n in (r.commonnames or "").split(",") if n.strip()]
        out.append(list(dict.fromkeys(names)))
    return out


def items_stars(df: pd.DataFrame) -> list[list[str]]:
    return [[r.name, r.bayer] for r in df.itertuples()]


GC = ("globular cluster",)
OC = ("open cluster",)
PN = ("planetary nebula",)
GAL = ("galaxy",)
NEB = ("nebula", "HII region", "supernova remnant", "reflection nebula", "emission nebula", "star cluster with nebula")


# ----------------------------------------------------------------------------- the questions
class Builder:
    def __init__(self, t: Tables):
        self.t, self.rows, self.n = t, [], {}

    def add(self, kind: str, question, objects=(), facts=(), *, attachment=None, verdict=None,
            must_not=(), no_answer=False, items=None, exclude=None, count=None, first_facts=None,
            concept=None, how=None):
        self.n[kind] = self.n.get(kind, 0) + 1
        row = {"id": f"{kind}-{self.n[kind]:02d}", "kind": kind}
        if isinstance(question, (list, tuple)):
            row["turns"] = list(question)
        else:
            row["question"] = question
        if attachment:
            row["attachment"] = attachment
        row["objects"] = list(objects)
        exp: dict = {"facts": [dict(f) for f in facts]}
        if verdict is not None:
            exp["verdict"] = verdict
        if items is not None:
            exp["items"] = items
            exp["exclude"] = exclude or []
        if count is not None:
            exp["count"] = int(count)
        if no_answer:
            exp["no_answer"] = True
        if first_facts:
            exp["first_turn_facts"] = first_facts
        if concept:
            exp["concept"] = concept
        if how:
            exp["how"] = how
        exp["must_not"] = list(must_not)
        row["expected"] = exp
        self.rows.append(row)

    def o(self, oid):
        return self.t.obj(oid)


def build_questions(t: Tables) -> list[dict]:
    b = Builder(t)
    o = b.o

    # --- overview: type and constellation of held-out objects
    for oid, q in [
        ("NGC6254", "Tell me about M10."), ("NGC6543", "what's NGC 6543?"),
        ("NGC7293", "Give me a quick rundown of the Helix Nebula."), ("NGC4552", "Can you describe M89 for me"),
        ("NGC5139", "I keep hearing about Omega Centauri, what is it?"), ("NGC4565", "Overview of NGC 4565 please"),
        ("IC1613", "What should I know about IC 1613?"), ("NGC2168", "tell me something about M35"),
        ("NGC6611", "Describe the Eagle Nebula."), ("NGC6537", "What is the Red Spider Nebula?"),
        ("NGC3115", "Info on NGC 3115?"), ("NGC5272", "So what exactly is M3?"),
        ("NGC2623", "Summarise what you have on NGC 2623."), ("NGC7000", "Brief overview of the North America Nebula, please."),
        ("NGC0104", "Tell me about NGC 104."), ("NGC3351", "What can you tell me about M95?"),
        ("IC0443", "What's IC 443 all about?"), ("NGC6397", "Describe NGC 6397 in a few sentences."),
        ("NGC4755", "What is Herschel's Jewel Box?"), ("NGC3379", "M105 - what is it and where is it?"),
        ("ESO056-115", "Tell me about the Large Magellanic Cloud."), ("NGC1333", "overview of NGC 1333"),
    ]:
        b.add("overview", q, [oid], [f_type(o(oid)), f_const(o(oid))])

    # --- concept explanations: key ideas (one spelling per group must appear) and claims that must not
    for q, concept, groups, must_not in [
        ("What is an open cluster?", "open cluster",
         [["stars"], ["young"], ["loose", "loosely", "scattered", "sparse"],
          ["formed together", "born together", "same cloud", "same molecular cloud", "formed from the same", "common origin"]],
         ["type of galaxy", "open clusters are old"]),
        ("What's a globular cluster, in simple terms?", "globular cluster",
         [["stars"], ["old", "ancient"], ["dense", "densely", "tightly", "compact"], ["spherical", "ball", "sphere", "round"],
          ["halo", "orbit", "orbiting"]], ["type of galaxy", "young stars"]),
        ("Explain what a planetary nebula is.", "planetary nebula",
         [["gas", "shell"], ["dying", "end of its life", "late stage", "old star", "end of their lives"], ["white dwarf"]],
         ["formed by planets", "made of planets", "made by planets"]),
        ("What does redshift mean?", "redshift",
         [["wavelength"], ["longer", "stretched", "toward the red", "towards the red", "redder"],
          ["moving away", "receding", "expansion", "expanding"]], ["moving toward us", "moving towards us"]),
        ("What is a supernova remnant?", "supernova remnant",
         [["explosion", "exploded", "explode"], ["gas", "shell", "debris", "expanding"], ["supernova"]], ["planetary nebula is"]),
        ("what is an HII region", "HII region",
         [["ionized", "ionised"], ["hydrogen"], ["hot", "young", "massive"], ["stars"]], []),
        ("What's the difference between apparent and absolute magnitude?", "magnitude",
         [["apparent"], ["absolute"], ["10 parsecs", "10 pc", "ten parsecs"], ["distance"]], []),
        ("How does parallax tell us how far away a star is?", "parallax",
         [["shift", "apparent motion", "moves", "change in position"], ["earth", "orbit"], ["parsec"],
          ["inverse", "1/", "one over", "divided", "smaller the parallax", "larger the parallax"]], []),
        ("What is a lenticular galaxy?", "lenticular galaxy",
         [["disk", "disc"], ["bulge"], ["no spiral arms", "without spiral arms", "lacks spiral arms", "little or no", "no arms"],
          ["S0"]], []),
        ("What is an elliptical galaxy like?", "elliptical galaxy",
         [["elliptical", "ellipsoidal", "oval"], ["old"], ["little gas", "little dust", "no gas", "few young", "little star formation"]], []),
        ("Can you explain what a white dwarf is?", "white dwarf",
         [["core", "remnant"], ["dense", "compact"], ["earth"], ["no longer", "no fusion", "cooling", "cools"]], []),
        ("What is a quasar?", "quasar",
         [["black hole"], ["active", "nucleus", "core"], ["distant", "far"], ["bright", "luminous"]], ["a nearby star"]),
        ("What are the Messier objects?", "Messier catalogue",
         [["Messier"], ["Charles", "18th century", "1700s", "French"], ["110", "catalog", "catalogue", "list"],
          ["comet"]], []),
        ("What is a reflection nebula?", "reflection nebula",
         [["dust"], ["reflect", "scatter"], ["blue"], ["starlight", "nearby star", "light of"]], []),
        ("What's a dark nebula?", "dark nebula",
         [["dust"], ["block", "obscure", "absorb"], ["background", "behind"], ["cold", "molecular", "cloud"]], []),
        ("Explain the Hubble tuning fork.", "Hubble sequence",
         [["elliptical"], ["spiral"], ["barred"], ["lenticular", "S0"], ["Hubble"]], []),
        ("What is a barred spiral galaxy?", "barred spiral galaxy",
         [["bar"], ["center", "centre", "central", "middle", "core"], ["arms"]], []),
        ("What is an irregular galaxy?", "irregular galaxy",
         [["no regular", "irregular", "no clear", "no definite", "chaotic", "no distinct"], ["shape", "form", "structure"]], []),
        ("What does a star's spectral type tell you?", "spectral type",
         [["temperature"], ["OBAFGKM", "O, B, A, F, G, K", "O B A F G K M", "O, B, A, F, G, K, M"], ["color", "colour"],
          ["lines", "absorption"]], []),
        ("What is a galaxy pair?", "galaxy pair",
         [["two galaxies"], ["close", "near", "interacting", "gravit"]], []),
        ("what's a constellation", "constellation",
         [["pattern", "region", "area"], ["sky"], ["88"]], []),
        ("How long is a parsec?", "parsec",
         [["3.26", "3.2616"], ["light-year", "light year", "light-years", "light years"], ["parallax"],
          ["arcsecond", "arc second", "arc-second"]], []),
    ]:
        b.add("concept", q, [], f_terms(*groups), must_not=must_not, concept=concept)

    # --- catalog lists: the pandas queries above, over the whole catalog (not only the sample)
    def add_list(q, df, universe, how):
        items = items_ngc(df) if "display" in df else items_stars(df)
        others = universe.drop(df.index)
        exclude = sorted({n for group in (items_ngc(others) if "display" in others else items_stars(others))
                          for n in group[:1] if not RESERVED.search(n)})
        if not 1 <= len(items) <= 15:
            raise ValueError(f"{q!r}: {len(items)} items")
        b.add("list", q, [], [], items=items, exclude=exclude, how=how)

    ngc, stars = t.ngc, t.stars
    mess = ngc[ngc.messier != ""]
    named = stars[stars.name.notna()]
    for q, const, types in [
        ("List the Messier globular clusters in Ophiuchus.", "Oph", GC),
        ("Which Messier objects are in Leo?", "Leo", None),
        ("Name the Messier galaxies in Ursa Major", "UMa", GAL),
        ("what messier open clusters are in scorpius", "Sco", OC),
        ("List all the Messier objects in Scorpius.", "Sco", None),
        ("Which Messier objects lie in Virgo?", "Vir", None),
        ("Give me the Messier globulars in Sagittarius.", "Sgr", GC),
        ("Which nebulae did Messier catalogue in Sagittarius?", "Sgr", NEB),
        ("What Messier objects are in Gemini?", "Gem", None),
        ("Messier objects in Canes Venatici - which ones?", "CVn", None),
    ]:
        df = q_messier(t, const, types)
        universe = mess[mess.type_words.isin(types)] if types else mess
        add_list(q, df, universe, f"openngc: messier != '' and constellation == {const!r}"
                 + (f" and type_words in {types}" if types else "") + " (Dup rows dropped)")
    for q, const, types, vmax in [
        ("List the planetary nebulae in Aquila brighter than magnitude 12.", "Aql", PN, 12.0),
        ("Which globular clusters in Ara are brighter than mag 9?", "Ara", GC, 9.0),
        ("List the open clusters in Vela brighter than magnitude 5.", "Vel", OC, 5.0),
        ("Which galaxies in Sextans are brighter than 11th magnitude?", "Sex", GAL, 11.0),
        ("What globular clusters are there in Telescopium?", "Tel", GC, 99.0),
    ]:
        df = q_ngc(t, const, types, vmax)
        # wrong answers worth catching: the same type in the same constellation (fainter), or anywhere
        same = ngc.type_words.isin(types)
        universe = ngc[same & (ngc.constellation == const)] if vmax < 99 else ngc[same]
        add_list(q, df, universe, f"openngc: constellation == {const!r} and type_words in {types} and "
                 f"(vmag, else bmag) <= {vmax} (Dup rows dropped)")
    for q, const, vmax in [
        ("List the named stars in Orion brighter than magnitude 2.", "Orion", 2.0),
        ("Which named stars of Scorpius are brighter than magnitude 3?", "Scorpius", 3.0),
        ("Name the stars with proper names in Gemini that are brighter than mag 3.", "Gemini", 3.0),
        ("list the named stars in Corvus", "Corvus", 99.0),
        ("Which stars in Ursa Major have proper names and are brighter than magnitude 2.5?", "Ursa Major", 2.5),
        ("Which of Cassiopeia's stars have proper names?", "Cassiopeia", 99.0),
    ]:
        df = q_named_stars(t, const, vmax)
        add_list(q, df, named, f"stars.parquet: name not null and Bayer constellation == {const!r} and v_mag <= {vmax}")

    # --- counts: the same kind of queries, counted
    for q, df, how in [
        ("How many Messier objects are in Sagittarius?", q_messier(t, "Sgr"), "messier, Sgr"),
        ("how many globular clusters did Messier catalogue in Ophiuchus", q_messier(t, "Oph", GC), "messier, Oph, GC"),
        ("How many Messier objects are there in Virgo?", q_messier(t, "Vir"), "messier, Vir"),
        ("Count the Messier galaxies in Ursa Major.", q_messier(t, "UMa", GAL), "messier, UMa, galaxy"),
        ("How many galaxies in Leo are in the Messier catalog?", q_messier(t, "Leo", GAL), "messier, Leo, galaxy"),
        ("How many Messier objects lie in Scorpius?", q_messier(t, "Sco"), "messier, Sco"),
        ("How many Messier objects are in Cygnus?", q_messier(t, "Cyg"), "messier, Cyg"),
        ("How many Messier objects are in Coma Berenices?", q_messier(t, "Com"), "messier, Com"),
        ("How many Messier open clusters are in Auriga?", q_messier(t, "Aur", OC), "messier, Aur, OC"),
        ("How many open clusters in Vela are brighter than 5th magnitude?", q_ngc(t, "Vel", OC, 5.0), "NGC/IC, Vel, OC, mag<=5"),
        ("How many planetary nebulae does the NGC/IC catalog list in Aquarius?", q_ngc(t, "Aqr", PN, 99), "NGC/IC, Aqr, PN"),
        ("How many NGC/IC globular clusters are in Ara?", q_ngc(t, "Ara", GC, 99), "NGC/IC, Ara, GC"),
        ("How many globulars are there in Scorpius in NGC/IC?", q_ngc(t, "Sco", GC, 99), "NGC/IC, Sco, GC"),
        ("Number of NGC/IC open clusters in Crux?", q_ngc(t, "Cru", OC, 99), "NGC/IC, Cru, OC"),
        ("How many planetary nebulae in Sagittarius are in NGC/IC?", q_ngc(t, "Sgr", PN, 99), "NGC/IC, Sgr, PN"),
        ("How many galaxies in Sextans are brighter than magnitude 11?", q_ngc(t, "Sex", GAL, 11.0), "NGC/IC, Sex, galaxy, mag<=11"),
        ("How many named stars in Orion are brighter than magnitude 2?", q_named_stars(t, "Orion", 2.0), "named stars, Orion, V<=2"),
        ("How many stars with proper names are in Cassiopeia?", q_named_stars(t, "Cassiopeia", 99), "named stars, Cassiopeia"),
        ("How many named stars does Corvus have?", q_named_stars(t, "Corvus", 99), "named stars, Corvus"),
        ("How many named stars in Gemini are brighter than magnitude 3?", q_named_stars(t, "Gemini", 3.0), "named stars, Gemini, V<=3"),
    ]:
        b.add("count", q, [], [], count=len(df), how=how)

    # --- comparisons: the winner (first named of the candidates), and yes/no where asked
    def mag(x):
        return x["v_mag"] if x["v_mag"] is not None else x["b_mag"]

    order = "OBAFGKM"

    def heat(x):  # smaller is hotter
        return order.index(x["spectral_type"][0]) * 10 + float(re.sub(r"[^0-9.]", "", x["spectral_type"][1:]) or 0)

    plx = lambda x: float(t.star(x["object_id"]).parallax_mas)  # noqa: E731
    for q, ids, key, best, verdict in [
        ("Which is brighter, M3 or M10?", ["NGC5272", "NGC6254"], mag, min, None),
        ("Which looks bigger on the sky, NGC 4565 or NGC 3115?", ["NGC4565", "NGC3115"], lambda x: x["major_axis_arcmin"], max, None),
        ("Is NGC 2936 farther away than NGC 92?", ["NGC2936", "NGC0092"], lambda x: x["redshift"], max, "yes"),
        ("Compare Sirius and Altair: which one is brighter?", ["HD 48915", "HD 187642"], mag, min, None),
        ("Which is hotter, Bellatrix or Betelgeuse?", ["HD 35468", "HD 39801"], heat, min, None),
        ("Between Pollux, Hamal and Ankaa, which appears brightest?", ["HD 62509", "HD 12929", "HD 2261"], mag, min, None),
        ("Which is closer to us, Altair or Betelgeuse?", ["HD 187642", "HD 39801"], plx, max, None),
        ("Which of the Helix Nebula and the Cat's Eye Nebula is larger on the sky?", ["NGC7293", "NGC6543"],
         lambda x: x["major_axis_arcmin"], max, None),
        ("M35 vs M93: which is brighter?", ["NGC2168", "NGC2447"], mag, min, None),
        ("Which is further away: M65 or NGC 3718?", ["NGC3623", "NGC3718"], lambda x: x["redshift"], max, None),
        ("Omega Centauri or NGC 104, which one is brighter?", ["NGC5139", "NGC0104"], mag, min, None),
        ("Is Alnilam hotter than Nekkar?", ["HD 37128", "HD 133208"], heat, min, "yes"),
        ("Which of Sirius, Pollux and Betelgeuse is the coolest star?", ["HD 48915", "HD 62509", "HD 39801"], heat, max, None),
        ("IC 1613 or NGC 6822 - which appears larger?", ["IC1613", "NGC6822"], lambda x: x["major_axis_arcmin"], max, None),
        ("Which galaxy has the higher redshift, NGC 2623 or NGC 4567?", ["NGC2623", "NGC4567"], lambda x: x["redshift"], max, None),
        ("Which is the faintest of M30, M80 and M10?", ["NGC7099", "NGC6093", "NGC6254"], mag, max, None),
        ("Is M105 brighter than M89?", ["NGC3379", "NGC4552"], mag, min, "yes"),
        ("Is Tejat hotter than Altair?", ["HD 44478", "HD 187642"], heat, min, "no"),
    ]:
        objs = [o(i) for i in ids]
        vals = [key(x) for x in objs]
        w = vals.index(best(vals))
        if vals.count(vals[w]) > 1:
            raise ValueError(f"{q!r}: a tie")
        fact = {"fact": "winner", "any": names_of(objs[w]),
                "others": [n for j, x in enumerate(objs) if j != w for n in names_of(x)],
                "values": {x["object_id"]: v for x, v in zip(objs, vals)}}
        b.add("comparison", q, ids, [fact], verdict=verdict)
    for q, ids, same_on in [
        ("Are M3 and M80 the same kind of object?", ["NGC5272", "NGC6093"], "coarse_class"),
        ("Do IC 418 and NGC 6543 belong to the same class of object?", ["IC0418", "NGC6543"], "coarse_class"),
        ("Are NGC 6633 and NGC 6356 the same type of object?", ["NGC6633", "NGC6356"], "coarse_class"),
        ("Do M89 and M95 have the same Hubble type?", ["NGC4552", "NGC3351"], "hubble_type"),
    ]:
        objs = [o(i) for i in ids]
        same = objs[0][same_on] == objs[1][same_on]
        facts = [f_type(x) for x in objs] if same_on == "coarse_class" else [f_hubble(x) for x in objs]
        b.add("comparison", q, ids, facts, verdict="yes" if same else "no")

    # --- derived facts: distance from redshift, size from angle and distance, alt/az, parallax distance
    for oid, q in [
        ("NGC2936", "NGC 2936 sits at a redshift of about 0.024. How far away is that in megaparsecs?"),
        ("NGC0092", "How far away is NGC 92, going by its redshift?"),
        ("NGC2623", "Estimate the distance to NGC 2623 from its redshift."),
        ("NGC4567", "Based on its redshift, roughly how many Mpc away is NGC 4567?"),
        ("NGC5566", "Using a standard cosmology, what's the distance to NGC 5566 from its redshift?"),
        ("NGC7497", "Work out the distance of NGC 7497 from its redshift, please."),
    ]:
        b.add("derived", q, [oid], [f_dist_z(o(oid))])
    b.add("derived", "NGC 4565 is about 16.75 arcminutes long. If it is 12 Mpc away, how many kiloparsecs is that?",
          ["NGC4565"], [f_size(16.75, 12.0)])
    b.add("derived", "NGC 3115 is roughly 7.1 arcminutes long and about 10 Mpc away. How long is it in kiloparsecs?",
          ["NGC3115"], [f_size(7.1, 10.0)])
    b.add("derived", "How big is NGC 3198 physically, from its angular size and redshift?", ["NGC3198"], [f_size_z(o("NGC3198"))])
    b.add("derived", "What's the real diameter of NGC 908, given its catalogued size and its redshift?", ["NGC0908"],
          [f_size_z(o("NGC0908"))])
    b.add("derived", "The Helix Nebula spans about 16 arcminutes and lies some 200 parsecs away. How wide is it in light-years?",
          ["NGC7293"], [f_size(16.0, 0.0002)])
    for oid, q, lat, lon, when in [
        ("HD 39801", "What will Betelgeuse's altitude and azimuth be from Paris (48.85 N, 2.35 E) on 2026-01-15 at 22:00 UTC?",
         48.85, 2.35, "2026-01-15 22:00"),
        ("HD 187642", "I'm at latitude 40.7 N, longitude 74.0 W. Where is Altair (alt/az) at 02:00 UTC on 10 August 2026?",
         40.7, -74.0, "2026-08-10 02:00"),
        ("NGC5139", "From Cape Town (33.9 S, 18.4 E), how high is Omega Centauri at 20:00 UTC on 1 May 2026, and in which direction?",
         -33.9, 18.4, "2026-05-01 20:00"),
        ("HD 48915", "Altitude and azimuth of Sirius seen from London (51.5 N, 0.13 W) at 21:00 UTC, 1 February 2026?",
         51.5, -0.13, "2026-02-01 21:00"),
        ("NGC2168", "Observing from lat 19.82, lon -155.47 at 2026-01-10 08:00 UTC: what are M35's altitude and azimuth?",
         19.82, -155.47, "2026-01-10 08:00"),
        ("NGC0104", "At 31.3 S, 149.1 E on 2026-10-01 12:00 UTC, what is the alt/az of NGC 104?",
         -31.3, 149.1, "2026-10-01 12:00"),
    ]:
        b.add("derived", q, [oid], f_altaz(o(oid), lat, lon, when))
    for oid, q in [
        ("HD 62509", "How far away is Pollux, working from its parallax?"),
        ("HD 187642", "Altair's parallax gives what distance in parsecs?"),
        ("HD 12929", "Use the parallax of Hamal to tell me how far it is."),
        ("HD 2261", "From its parallax, how many light-years away is Ankaa?"),
        ("HD 35468", "What distance does Bellatrix's parallax imply?"),
    ]:
        b.add("derived", q, [oid], [f_dist_plx(t.star(oid))])

    # --- stars by proper name
    for oid, q, which in [
        ("HD 103287", "What kind of star is Phecda?", "sc"), ("HD 105707", "Where in the sky is Minkar?", "c"),
        ("HD 108767", "How bright is Algorab?", "m"), ("HD 11353", "Tell me about the star Baten.", "scm"),
        ("HD 12929", "what is hamal", "sc"), ("HD 133208", "What spectral type is Nekkar?", "s"),
        ("HD 135742", "Tell me about Zuben el Chamali", "sc"), ("HD 141003", "Which constellation is Chow in?", "c"),
        ("HD 143275", "What sort of star is Dschubba?", "s"), ("HD 158408", "Lesath - what is it?", "sc"),
        ("HD 165135", "How bright does Al Nasl appear?", "m"), ("HD 177756", "Describe Al Thalimain.", "sc"),
        ("HD 178253", "What is Alphekka Meridiana?", "sc"), ("HD 18622", "Tell me about Acamar.", "scm"),
        ("HD 192947", "What's the spectral class of Al Giedi?", "s"), ("HD 196524", "What is Rotanev?", "sc"),
        ("HD 214923", "Which constellation does Homan belong to?", "c"), ("HD 24398", "How bright is Atik?", "m"),
        ("HD 26574", "What type of star is Beid?", "s"), ("HD 31964", "Tell me about Maaz.", "sc"),
        ("HD 36079", "What kind of star is Nihal and where is it?", "sc"), ("HD 39425", "wazn star info", "scm"),
        ("HD 5394", "What is Navi?", "sc"), ("HD 74198", "Where is Asellus Borealis?", "c"),
    ]:
        x = o(oid)
        facts = ([f_sptype(x)] if "s" in which else []) + ([f_const(x)] if "c" in which else []) + \
                ([f_mag(x)] if "m" in which else [])
        b.add("star", q, [oid], facts)

    # --- follow-ups: two turns; the second is graded (the first turn's facts are kept apart)
    for oid, turns, last, first in [
        ("NGC2168", ["What is M35?", "and which constellation is it in?"], "const", "type"),
        ("NGC2936", ["Tell me about NGC 2936.", "How far away is it?"], "dist", "type"),
        ("HD 12929", ["What's Hamal?", "how bright is it?"], "mag", "type"),
        ("NGC6397", ["What kind of object is NGC 6397?", "Where is it in the sky?"], "const", "type"),
        ("HD 62509", ["Tell me about Pollux", "And how far is it?"], "plx", "type"),
        ("IC0418", ["What is IC 418?", "what constellation?"], "const", "type"),
        ("NGC4552", ["Describe M89.", "What's its Hubble type?"], "hubble", "type"),
        ("NGC6822", ["What is NGC 6822?", "and its redshift?"], "z", "type"),
        ("HD 133208", ["What type of star is Nekkar?", "Which constellation is it in?"], "const", "sp"),
        ("NGC6543", ["What's the Cat's Eye Nebula?", "How bright is it?"], "mag", "type"),
        ("NGC6254", ["Tell me about M10", "what type of object is it again?"], "type", "const"),
        ("HD 187642", ["What is Altair?", "How far away is it from us?"], "plx", "sp"),
        ("NGC3198", ["What is NGC 3198?", "How far away is it?"], "dist", "type"),
        ("NGC6537", ["Tell me about the Red Spider Nebula.", "Which constellation is that in?"], "const", "type"),
        ("HD 18622", ["What is Acamar?", "What's its spectral type?"], "sp", "const"),
        ("NGC2447", ["What is M93?", "How bright does it get?"], "mag", "type"),
        ("NGC1023", ["Tell me about NGC 1023", "what constellation is it in?"], "const", "type"),
        ("NGC5907", ["What is NGC 5907?", "What's its redshift?"], "z", "type"),
        ("HD 143275", ["What is Dschubba?", "How bright is it?"], "mag", "sp"),
        ("NGC3718", ["Tell me about NGC 3718", "what kind of galaxy is it?"], "hubble", "const"),
    ]:
        x = o(oid)
        pick = {"const": lambda: [f_const(x)], "dist": lambda: [f_dist_z(x, 0.2)], "mag": lambda: [f_mag(x)],
                "plx": lambda: [f_dist_plx(t.star(oid), 0.15)], "hubble": lambda: [f_hubble(x)],
                "z": lambda: [f_redshift(x)], "type": lambda: [f_type(x)], "sp": lambda: [f_sptype(x)]}
        b.add("followup", turns, [oid], pick[last](), first_facts=pick[first]())
    b.add("followup", ["What's M3?", "Is it in Canes Venatici?"], ["NGC5272"], [f_const(o("NGC5272"))],
          verdict="yes", first_facts=[f_type(o("NGC5272"))])
    b.add("followup", ["What is Alnilam?", "Is it in Taurus?"], ["HD 37128"], [f_const(o("HD 37128"))],
          verdict="no", first_facts=[f_sptype(o("HD 37128"))], must_not=["it is in taurus", "yes, it is in taurus"])

    # --- "what is this?" with a held-out image or spectrum (paths relative to the sample root)
    img_by_path = {r["path"]: r for r in t.images}
    for path, q in [
        ("images/m3.png", "What is this?"), ("images/n6397.png", "what am I looking at here?"),
        ("images/n6101-dss.png", "Can you identify the object in this picture?"),
        ("images/m35.png", "What kind of object is shown in this image?"), ("images/n4755.png", "What's in this photo?"),
        ("images/m93.png", "What is this thing?"), ("images/n7293.png", "Identify this, please."),
        ("images/n6543.png", "What type of object is this?"), ("images/m16.png", "what is this image of"),
        ("images/n7000.png", "What does this picture show?"), ("images/n4565.png", "What is this object?"),
        ("images/m89.png", "Any idea what this is?"),
    ]:
        r = img_by_path[path]
        x = o(r["object_id"])
        b.add("what_is_this", q, [x["object_id"]], [{"fact": "class", "modality": "image", "class": x["coarse_class"]}],
              attachment={"image": path})
    spec_by_path = {r["path"]: r for r in t.spectra}
    for path, q in [
        ("spectra/real/sdssOBstar.fits", "What is this spectrum of?"), ("spectra/real/sdssAstar2.fits", "What kind of star is this?"),
        ("spectra/real/sdssFstar2.fits", "What does this spectrum show?"), ("spectra/real/sdssGstar.fits", "what is this"),
        ("spectra/real/sdssMWDstar.fits", "Can you tell what object this spectrum comes from?"),
        ("spectra/real/sdssDR2temp024.fits", "What sort of source produced this spectrum?"),
        ("spectra/real/sdssQSO.fits", "What is this?"), ("spectra/real/K1.fits", "Identify this spectrum."),
        ("spectra/simulated/sdssQSO-3.fits", "what kind of object gives a spectrum like this?"),
        ("spectra/simulated/sdssMWDstar-2.fits", "What is this object?"),
    ]:
        r = spec_by_path[path]
        if r["split"] != "test":
            raise ValueError(f"{path} is in the {r['split']} split")
        b.add("what_is_this", q, [r["object_id"]] if r["object_id"] else [],
              [{"fact": "class", "modality": "spectrum", "class": r["spectral_class"]}],
              attachment={"spectrum": path, "simulated": r["simulated"]})

    # --- true/false and yes/no (about half false); the false claim must not be restated
    def brightest_in(const_name, oid):
        df = t.stars[t.stars.const_name == const_name]
        return bool(df.v_mag.min() == t.star(oid).v_mag)

    for q, ids, verdict, facts, must_not in [
        ("A globular cluster is a type of galaxy: true or false?", [], "false", [], ["is a type of galaxy"]),
        ("True or false: M10 is in Ophiuchus.", ["NGC6254"], "true", [f_const(o("NGC6254"))], []),
        ("Is the Helix Nebula a spiral galaxy?", ["NGC7293"], "no", [f_type(o("NGC7293"))],
         ["the helix nebula is a spiral galaxy", "yes, it is a spiral galaxy"]),
        ("Betelgeuse has spectral type M. True or false?", ["HD 39801"], "true", [f_sptype(o("HD 39801"))], []),
        ("Sirius is fainter than magnitude 1. True or false?", ["HD 48915"], "false", [f_mag(o("HD 48915"))],
         ["sirius is fainter than"]),
        ("NGC 4565 is in Coma Berenices, right?", ["NGC4565"], "yes", [f_const(o("NGC4565"))], []),
        ("M3 is an open cluster: yes or no?", ["NGC5272"], "no", [f_type(o("NGC5272"))], ["m3 is an open cluster"]),
        ("Is Altair an A-type star?", ["HD 187642"], "yes", [f_sptype(o("HD 187642"))], []),
        ("Open clusters are usually older than globular clusters. True or false?", [], "false", [],
         ["open clusters are usually older", "open clusters are older"]),
        ("Planetary nebulae are made by planets. True or false?", [], "false", [],
         ["planetary nebulae are made by planets", "are formed by planets"]),
        ("True or false: NGC 2936 is an elliptical galaxy.", ["NGC2936"], "true", [f_type(o("NGC2936"))], []),
        ("Is Omega Centauri in Crux?", ["NGC5139"], "no", [f_const(o("NGC5139"))], ["omega centauri is in crux"]),
        ("A redshift means the object is moving away from us: true or false?", [], "true", [], []),
        ("Is M89 a spiral galaxy?", ["NGC4552"], "no", [f_type(o("NGC4552"))], ["m89 is a spiral"]),
        ("Hamal is the brightest star in Aries. True?", ["HD 12929"],
         "true" if brightest_in("Aries", "HD 12929") else "false", [f_const(o("HD 12929"))], []),
        ("Is the Cat's Eye Nebula in Draco?", ["NGC6543"], "yes", [f_const(o("NGC6543"))], []),
        ("Lower magnitude numbers mean fainter stars. True or false?", [], "false", [],
         ["lower magnitudes mean fainter", "lower magnitude numbers mean fainter"]),
        ("Is Alnilam cooler than Tejat?", ["HD 37128", "HD 44478"], "no",
         [f_sptype(o("HD 37128")), f_sptype(o("HD 44478"))], ["alnilam is cooler"]),
        ("True or false: IC 443 is a supernova remnant.", ["IC0443"], "true", [f_type(o("IC0443"))], []),
        ("M35 lies in Taurus. true or false", ["NGC2168"], "false", [f_const(o("NGC2168"))], ["m35 lies in taurus", "m35 is in taurus"]),
        ("The Large Magellanic Cloud is a star cluster inside the Milky Way: true or false?", ["ESO056-115"], "false",
         [f_type(o("ESO056-115"))], ["is a star cluster inside"]),
        ("NGC 3115 is a lenticular galaxy, yes?", ["NGC3115"], "yes", [f_type(o("NGC3115"))], []),
    ]:
        b.add("true_false", q, ids, facts, verdict=verdict, must_not=must_not)

    # --- no answer in the sources: the right answer is a plain "the sources here do not say"
    for q, ids in [
        ("Who discovered NGC 6316?", ["NGC6316"]),
        ("What is the mass of the black hole at the centre of NGC 4697?", ["NGC4697"]),
        ("How many exoplanets orbit Minkar?", ["HD 105707"]),
        ("What is the metallicity [Fe/H] of NGC 6584?", ["NGC6584"]),
        ("When was the first photograph of IC 4756 taken?", ["IC4756"]),
        ("What is the rotation period of Tejat?", ["HD 44478"]),
        ("How old is NGC 2547, in years?", ["NGC2547"]),
        ("What's the radius of Al Giedi in kilometres?", ["HD 192947"]),
        ("How many stars does NGC 6293 contain?", ["NGC6293"]),
        ("What is the orbital period of the companion of Navi?", ["HD 5394"]),
        ("How much dark matter does NGC 3718 contain?", ["NGC3718"]),
        ("What is the expansion speed of the shell of NGC 6741 in km/s?", ["NGC6741"]),
        ("What is the magnetic field strength of Homan?", ["HD 214923"]),
        ("How many new stars per year does NGC 1792 form?", ["NGC1792"]),
        ("What is the spin period of the pulsar in the Vela Supernova Remnant?", ["Vela SNR"]),
        ("How far away is Barnard 150 in light-years?", ["Barnard 150"]),
        ("What is the temperature of the central star of NGC 6563?", ["NGC6563"]),
        ("What's the neutral hydrogen mass of NGC 7640?", ["NGC7640"]),
        ("In what year will Lesath next be occulted by the Moon?", ["HD 158408"]),
        ("How many globular clusters orbit NGC 3166?", ["NGC3166"]),
    ]:
        for i in ids:
            o(i)
        b.add("no_answer", q, ids, [], no_answer=True)
    return b.rows


# ----------------------------------------------------------------------------- descriptions (issue 13)
# In a user's own words: none of the catalog vocabulary below may appear in a plain description.
CATALOG_WORDS = re.compile(
    r"\b(globular|planetary|spiral|elliptical|lenticular|irregular|nebula\w*|cluster\w*|galax\w*|quasar\w*|qso|"
    r"balmer|h\s?ii|h-alpha|supernova\w*|remnant|dwarf\w*|giant\w*|main.sequence|spectral type|messier|ngc|hubble|"
    r"(?-i:[OBAFGKM])[- ]?(type|star|class)|pulsar|protostar|accretion disk)\b", re.I)

IMAGE_DESCRIPTIONS = {
    "galaxy": [
        "a huge flat swirl of billions of stars seen from very far away",
        "a pinwheel of stars with curving arms wrapped around a bright middle",
        "a faint fuzzy oval smudge, an island of stars beyond our own",
        "a thin bright streak with a dark lane of dust, a star system seen edge-on",
        "a smooth featureless glowing egg of old yellowish stars far outside the Milky Way",
        "a distant city of stars shaped like a whirlpool",
        "a blurry disc with a bright core, millions of light-years away",
        "a lopsided, shapeless cloud of stars outside the Milky Way",
        "two swirling star systems tangled together by gravity",
    ],
    "globular cluster": [
        "a dense round swarm of hundreds of thousands of ancient stars",
        "a sparkling sphere of stars so crowded that the middle looks solid",
        "a fuzzy round ball of countless faint stars that gets brighter toward the centre",
        "a huge ancient ball of stars orbiting in the outskirts of our Milky Way",
        "a snowball of stars, round and concentrated at the core",
        "many thousands of very old stars held tightly together in a sphere",
        "a bright compact ball of stars that looks like piled-up grains of sugar",
        "a round, symmetric crowd of old stars, far denser than a loose group",
        "a dense ball of stars that all formed long ago, packed toward the middle",
    ],
    "open cluster": [
        "a loose scattering of a few dozen young bright stars",
        "a small sprinkle of blue stars that were born together not long ago",
        "a sparse group of stars with no clear shape, like salt spilled on black cloth",
        "a handful of bright young stars loosely grouped in the band of the Milky Way",
        "a young family of stars slowly drifting apart",
        "an untidy bunch of stars, not very packed, some of them blue and bright",
        "a loose swarm of stars you could pick out with binoculars, young and hot",
        "a scattered knot of young stars born from the same cloud of gas",
        "a jewel-like group of colourful stars spread over a small patch of sky",
    ],
    "planetary nebula": [
        "a glowing bubble of gas blown off by a star at the end of its life",
        "a small colourful ring of gas around a tiny hot central star",
        "a ghostly shell of gas like a smoke ring in space",
        "an eye-shaped glowing cloud shed by a fading star",
        "a round greenish-blue disc of gas with a faint dot in the middle",
        "the expanding outer layers of an old star, lit up by its exposed hot core",
        "an hourglass of glowing gas thrown off by a star near its end",
        "a tiny fuzzy blue-green bubble around a dying star",
        "the cast-off atmosphere of a star like ours, glowing after the star ran out of fuel",
    ],
    "nebula": [
        "a vast glowing cloud of red gas where new stars are being born",
        "a huge patch of pink glowing hydrogen lit up by young hot stars",
        "a dark cloud of dust blocking out the stars behind it",
        "tangled glowing filaments left over from an exploded star",
        "a wispy blue cloud of dust shining by the light of nearby stars",
        "a stellar nursery, a big cloud of gas and dust with towering pillars",
        "a large shapeless glowing cloud of gas spread across the sky",
        "the shredded, expanding debris of a star that blew up long ago",
        "a red glowing cloud of gas shaped like a continent",
    ],
}
SPECTRUM_DESCRIPTIONS = {
    "O/B star": [
        "a very hot blue-white star whose light peaks in the ultraviolet",
        "the light of a massive, extremely hot bluish star with few absorption features",
        "light that rises steeply toward the blue end, from a scorching young massive star",
        "a blazing blue star hotter than 20,000 degrees",
        "a hot luminous star with weak lines and lots of blue light",
        "the light of one of the hottest and most massive kinds of star",
        "a blue star showing helium absorption lines",
        "a young, heavy, very hot star, brightest at short wavelengths",
    ],
    "A star": [
        "a white star with very deep, wide hydrogen absorption dips",
        "light from a white star of about 9,000 degrees with the strongest hydrogen lines of any star",
        "a hot white star whose light is dominated by broad hydrogen troughs",
        "a bluish-white star around ten thousand kelvin with prominent hydrogen absorption",
        "starlight with a smooth blue continuum and very strong hydrogen dips",
        "a white star, hotter than ours but cooler than the blue-hot ones",
        "the light of a white star with deep hydrogen lines and almost no metal lines",
        "a brilliant white star with a sharp drop in light below 3,700 angstroms and big hydrogen dips",
    ],
    "F star": [
        "a yellowish-white star slightly hotter than the one we orbit",
        "a star a bit hotter and whiter than ours, with medium hydrogen lines and growing metal lines",
        "light from a yellow-white star of about 6,500 degrees",
        "a warm yellow-white star whose hydrogen and calcium lines are about equally strong",
        "a star between white and yellow in colour, with moderate absorption lines",
        "a pale yellow star somewhat hotter than our own star",
        "a fairly warm star with weaker hydrogen lines than white stars and more metal lines",
        "a yellow-white star around 7,000 kelvin",
    ],
    "G star": [
        "a yellow star very much like the one we orbit",
        "a star like ours, about 5,800 degrees, with strong calcium lines",
        "the light of a yellow star with many metal absorption lines and weaker hydrogen",
        "a yellow middle-aged star of the same kind as our own",
        "a star whose colour and temperature are almost the same as our own star's",
        "yellow starlight with strong calcium H and K dips",
        "a star similar to our daytime star, yellow and about 5,500 to 6,000 kelvin",
        "a yellow star with a rich forest of metal lines",
    ],
    "K star": [
        "an orange star cooler than the one we orbit",
        "an orange star of about 4,500 degrees with many strong metal lines",
        "a cool orange star whose light peaks in the red",
        "a light-orange star with deep calcium and weak hydrogen lines",
        "an orange-coloured star, a bit cooler and redder than ours",
        "the light of an orange star with strong sodium and magnesium dips",
        "a cool star between yellow and red with many metal absorption lines",
        "an orange star of around 4,000 to 5,000 kelvin",
    ],
    "M star": [
        "a cool red star whose light is carved up by broad molecular bands",
        "a red star under 3,500 degrees with titanium oxide bands",
        "the light of a very cool red star, brightest in the infrared",
        "a dim cool red star with jagged molecular absorption",
        "a deep red star whose light is full of molecule bands",
        "a cool reddish star whose light rises steeply toward long wavelengths",
        "the coolest kind of ordinary star, red with big molecular troughs",
        "a red star so cool that molecules survive in its atmosphere",
    ],
    "white dwarf": [
        "the tiny, very dense, hot leftover core of a dead star",
        "an Earth-sized stellar ember with extremely broad hydrogen lines",
        "a compact dead star core that is slowly cooling off",
        "the faint hot ember left after a star like ours dies, with wide smeared lines",
        "a tiny hot star with very pressure-broadened absorption",
        "a star as small as a planet but as heavy as a star, glowing from leftover heat",
        "the collapsed core of a burned-out star, blue and faint",
        "a super-dense stellar corpse with broad absorption dips",
    ],
    "galaxy": [
        "the combined light of billions of stars far beyond the Milky Way",
        "the blended starlight of a distant star city, shifted a little to the red",
        "the light of a whole far-away island universe, with a break near 4000 angstroms",
        "the mixed light of many old stars from a remote star system",
        "light from a distant crowd of billions of stars, with absorption from many stars and some gas glow",
        "a reddened blend of starlight from a far-off family of stars",
        "the total light of a faraway system of billions of stars, with a few glowing gas lines",
        "the combined glow of a remote star system whose stars are mostly old and red",
    ],
    "quasar": [
        "a very distant, brilliant core powered by a feeding black hole, with broad bright lines",
        "a blazing point of light billions of light-years away with very wide emission lines",
        "light from matter swirling into an enormous black hole at the heart of a far-off system",
        "a star-like point that is really extremely far and bright, with big broad emission bumps",
        "an active black hole outshining its whole host, seen across most of the universe",
        "a very bright distant source with strong, broad emission lines shifted far to the red",
        "a blue star-looking object at huge distance with wide glowing lines",
        "the glow of a monster black hole feeding in the early universe",
    ],
}
# Catalog phrasing: the reference queries run in the same benchmark (not held-out wording).
CATALOG_QUERIES = {
    ("image", "galaxy"): "a galaxy", ("image", "globular cluster"): "a globular cluster",
    ("image", "open cluster"): "an open cluster", ("image", "planetary nebula"): "a planetary nebula",
    ("image", "nebula"): "a nebula",
    ("spectrum", "O/B star"): "the spectrum of an O or B star", ("spectrum", "A star"): "the spectrum of an A star",
    ("spectrum", "F star"): "the spectrum of an F star", ("spectrum", "G star"): "the spectrum of a G star",
    ("spectrum", "K star"): "the spectrum of a K star", ("spectrum", "M star"): "the spectrum of an M star",
    ("spectrum", "white dwarf"): "the spectrum of a white dwarf", ("spectrum", "galaxy"): "the spectrum of a galaxy",
    ("spectrum", "quasar"): "the spectrum of a quasar",
}


def build_descriptions(t: Tables) -> list[dict]:
    from astrovlm.data.records import IMAGE_CLASSES

    spectral = {r["spectral_class"] for r in t.spectra}
    rows = []
    for modality, table, known in (("image", IMAGE_DESCRIPTIONS, set(IMAGE_CLASSES)),
                                   ("spectrum", SPECTRUM_DESCRIPTIONS, spectral)):
        if set(table) != known:
            raise ValueError(f"{modality}: classes {sorted(table)} != the sample's {sorted(known)}")
        for cls, texts in table.items():
            if len(texts) < 8:
                raise ValueError(f"{modality} {cls}: {len(texts)} descriptions, need 8")
            for i, text in enumerate(texts, 1):
                bad = CATALOG_WORDS.search(text)
                if bad:
                    raise ValueError(f"catalog vocabulary {bad.group(0)!r} in {text!r}")
                rows.append({"id": f"{modality}-{cls.replace('/', '').replace(' ', '_')}-{i:02d}", "phrasing": "plain",
                             "modality": modality, "target_class": cls, "text": text})
            rows.append({"id": f"{modality}-{cls.replace('/', '').replace(' ', '_')}-catalog", "phrasing": "catalog",
                         "modality": modality, "target_class": cls, "text": CATALOG_QUERIES[(modality, cls)]})
    return rows


# ----------------------------------------------------------------------------- writing
def header(name: str, rows: list[dict], extra: dict) -> dict:
    return {"_meta": {"set": name, "written": WRITTEN, "status": HELD_OUT,
                      "builder": "benchmarks/build_open_questions.py", "n": len(rows),
                      "reserved": "the Sun and Vega appear nowhere in this set", **extra}}


def check_reserved(rows: list[dict]) -> None:
    for r in rows:
        text = json.dumps(r)
        m = RESERVED.search(text)
        if m:
            raise ValueError(f"{r['id']}: reserved object {m.group(0)!r}")


def render(rows: list[dict], head: dict) -> str:
    return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in [head, *rows])


def main(argv=None) -> int:
    from astrovlm.config import atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample", type=Path, default=None, help="sample sky folder (default: the data home's)")
    ap.add_argument("--check", action="store_true", help="rebuild in memory and compare with the files")
    args = ap.parse_args(argv)
    t = Tables(args.sample or sample_root())
    questions = build_questions(t)
    descriptions = build_descriptions(t)
    check_reserved(questions)
    check_reserved(descriptions)
    kinds: dict = {}
    for q in questions:
        kinds[q["kind"]] = kinds.get(q["kind"], 0) + 1
    if len(questions) < 220 or min(kinds.values()) < 20:
        raise ValueError(f"too few questions: {kinds}")
    out = {
        "open_questions.jsonl": render(questions, header("open_questions", questions, {"kinds": kinds})),
        "descriptions.jsonl": render(descriptions, header("descriptions", descriptions, {
            "plain": sum(d["phrasing"] == "plain" for d in descriptions)})),
    }
    for name, text in out.items():
        path = DATA / name
        if args.check:
            same = path.exists() and path.read_text() == text
            print(f"{path}: {'same' if same else 'DIFFERS'}")
            if not same:
                return 1
        else:
            DATA.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
            print(f"wrote {path}")
    print(f"{len(questions)} questions: {kinds}; {len(descriptions)} descriptions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
