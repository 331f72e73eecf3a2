"""A catalog question's answer, composed from the rows the query returned.

Each row shown is a numbered source (its catalog line); the sentences are templates filled
from those rows, so every name, count, magnitude and verdict in the answer is a source's.
Lists stop at ``MAX_LISTED`` rows, with "and N more". A query with no match says so and
gives the nearest object of the kind asked for (or the brightest/largest), as a source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from astrovlm.assistant.catalog_parse import CatalogQuery, singular
from astrovlm.assistant.catalog_query import CREDITS, CatalogTables, QueryResult, catalog_line, run_query
from astrovlm.assistant.constellations import constellation_name
from astrovlm.assistant.prompts import Source
from astrovlm.data.cards import article

MAX_LISTED = 10
_TABLE_NAMES = {"openngc": "OpenNGC", "stars": "the KStars stars table", "supernovae": "the KStars supernova catalog"}


@dataclass
class Composed:
    """Sentences (each a piece of a streamed answer) and the sources they cite, in order."""

    sentences: list[str]
    sources: list[Source]
    objects: list = field(default_factory=list)     # SkyObjects a follow-up may ask about
    notes: list[str] = field(default_factory=list)


def row_source(row, table: str) -> Source:
    key = row["name"] if "name" in row and isinstance(row["name"], str) else row["label"]
    return Source(f"{table}:{key}", str(row["label"]), "catalog_row", catalog_line(row, table),
                  row["name"] if table == "openngc" else None, CREDITS[table], None,
                  {"table": table})


def _names(rows: pd.DataFrame, first: int) -> str:
    return ", ".join(f"{label} [{first + i}]" for i, label in enumerate(rows["label"]))


def _value(row, kind: str) -> str:
    if kind == "largest":
        return f"{row['size_arcmin']:g} arcmin across"
    band = row["mag_band"]
    return f"{'peak' if band == 'peak' else band} magnitude {row['mag']:g}"


def compose_catalog_answer(tables: CatalogTables, q: CatalogQuery, centre=None, resolver=None,
                           exclude=()) -> Composed:
    """Run ``q`` and write its answer. ``centre``: the cone centre's (RA, Dec) in degrees;
    ``exclude``: catalog names left out (the object the cone is centred on)."""
    result = run_query(tables, q, centre, exclude)
    where = _TABLE_NAMES[q.table]
    what = q.describe()
    if result.total == 0:
        return _no_match(result, where, what)
    shown = result.rows.head(MAX_LISTED if q.kind in ("list", "count", "exists") else 3)
    sources = [row_source(r, q.table) for _, r in shown.iterrows()]
    more = result.total - len(shown)
    tail = f", and {more} more" if more > 0 else ""
    if q.kind == "count":
        s = [f"{where} lists {result.total} {what}.",
             f"{'They are' if result.total <= MAX_LISTED else 'The first ' + str(len(shown)) + ' are'}: "
             f"{_names(shown, 1)}."]
    elif q.kind == "exists":
        s = [f"Yes: {where} lists {result.total} {what}: {_names(shown, 1)}{tail}."]
    elif q.kind in ("brightest", "largest"):
        top = shown.iloc[0]
        s = [f"The {q.kind} {q.describe(one=True)} in {where} is {top['label']} [1], {_value(top, q.kind)}."]
        if len(shown) > 1:
            s.append("Next: " + ", ".join(f"{r['label']} [{i}], {_value(r, q.kind)}"
                                          for i, (_, r) in enumerate(shown.iloc[1:].iterrows(), 2)) + ".")
        if q.kind == "brightest" and q.table == "openngc":
            s.append("(Magnitudes are V where OpenNGC has one, else B; objects without one are left out.)")
    else:
        s = [f"{where} lists {result.total} {what}: {_names(shown, 1)}{tail}."]
    s = [x[0].upper() + x[1:] for x in s]
    objects = []
    if q.kind in ("brightest", "largest") or result.total == 1:
        obj = _object_of(shown.iloc[0], q.table, resolver)
        objects = [obj] if obj is not None else []
    return Composed(s, sources, objects)


def _no_match(result: QueryResult, where: str, what: str) -> Composed:
    q = result.query
    first = "No" if q.kind == "exists" else "None"
    s = [f"{first}: {where} has no {q.describe(one=True) if q.kind == 'exists' else what}."]
    sources = []
    if result.nearest:
        sources = [row_source(r, q.table) for _, r in result.nearest_rows.iterrows()]
        s.append(result.nearest[0].upper() + result.nearest[1:] + " [1].")
    return Composed([x[0].upper() + x[1:] for x in s], sources)


def verdict_answer(obj, card: Source, tables: CatalogTables | None, q: CatalogQuery) -> Composed:
    """"Is NGC 6960 a supernova remnant?": yes or no from the object's catalog row, first."""
    asked = singular(q.kind_words)
    row = None
    if tables is not None and obj.source == "OpenNGC":
        df = tables.frame("openngc")
        hit = df[df["name"] == obj.object_id]
        row = hit.iloc[0] if len(hit) else None
    if row is not None:
        ok = row["type"] in q.types
        if ok and q.hubble_prefix:
            hub = str(row.get("hubble") or "")
            ok = hub.startswith(q.hubble_prefix) and (q.hubble_prefix != "S" or not re.match(r"^S[AB]?0", hub))
        src = row_source(row, "openngc")
        kind = row["type_words"] + (f" (Hubble type {row['hubble']})" if row.get("hubble") else "")
        if row.get("const"):
            kind += f" in {constellation_name(row['const'])}"
    else:
        ok = any(w in (obj.otype or "").lower() for w in (asked.lower(),))
        src, kind = card, obj.otype
    name = obj.name
    if ok:
        text = f"Yes: {name} is {article(kind)} {kind} [1]."
    else:
        text = f"No: {name} is {article(kind)} {kind}, not {article(asked)} {asked} [1]."
    return Composed([text], [src], [obj])



def _object_of(row, table: str, resolver):
    if resolver is None:
        return None
    if table == "openngc":
        return resolver.find(row["name"])
    if table == "stars":
        from astrovlm.data.resolver import star_object

        return star_object(row)
    return None
