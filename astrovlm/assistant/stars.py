"""A named star's facts from the KStars stars table: spectral type, V magnitude, B-V colour,
parallax and the distance it gives, the constellation its position lies in, the position.

The distance is 1/parallax (no correction for the parallax's error, which the table does
not give; the text says so); the constellation is ``astropy.coordinates.get_constellation``
at the catalog position (IAU boundaries, B1875 as astropy applies them).
"""

from __future__ import annotations

import astropy.units as u
import pandas as pd

from astrovlm.assistant.prompts import Source

STARS_CREDIT = "KStars stars.dat"


def star_row(stars: pd.DataFrame, obj) -> pd.Series | None:
    """The stars-table row of a resolved star (by HD number, else by name and position)."""
    if stars is None or obj is None or obj.otype != "star" or obj.ra_deg is None:
        return None
    if str(obj.object_id).startswith("HD ") and "hd" in stars:
        hit = stars[stars["hd"] == int(str(obj.object_id)[3:])]
        if len(hit):
            return hit.iloc[0]
    near = stars[((stars["ra_deg"] - obj.ra_deg).abs() < 1e-4) & ((stars["dec_deg"] - obj.dec_deg).abs() < 1e-4)]
    return near.iloc[0] if len(near) else None


def parallax_distance(parallax_mas: float) -> tuple[u.Quantity, u.Quantity] | None:
    """(distance in pc, in ly) from a parallax in mas; None for a parallax that is not positive."""
    if parallax_mas is None or pd.isna(parallax_mas) or parallax_mas <= 0:
        return None
    d = (parallax_mas * u.mas).to(u.pc, equivalencies=u.parallax())
    return d, d.to(u.lyr)


def star_source(obj, row: pd.Series) -> Source:
    """The star's facts as one numbered source, each with where it came from."""
    from astropy.coordinates import SkyCoord, get_constellation

    from astrovlm.data.cards import position_text

    coord = SkyCoord(float(row["ra_deg"]) * u.deg, float(row["dec_deg"]) * u.deg)
    const = get_constellation(coord)
    names = [n for n in (row.get("bayer"), f"HD {int(row['hd'])}" if not pd.isna(row.get("hd")) else None)
             if isinstance(n, str) and n != obj.name]
    head = obj.name + (f" ({', '.join(names)})" if names else "")
    sp = row.get("spectral_type")
    parts = [f"{head} is a star" + (f" of spectral type {sp}" if isinstance(sp, str) and sp else "")
             + f" in {const} (constellation from its position, astropy get_constellation) at "
             + position_text(float(row["ra_deg"]), float(row["dec_deg"])) + "."]
    facts = []
    if not pd.isna(row.get("v_mag")):
        facts.append(f"V magnitude {row['v_mag']:g}")
    if not pd.isna(row.get("b_v")):
        facts.append(f"B-V colour {row['b_v']:+.2f}")
    if facts:
        parts.append("; ".join(facts) + ".")
    dist = parallax_distance(row.get("parallax_mas"))
    if dist is not None:
        pc, ly = dist
        parts.append(f"Parallax {row['parallax_mas']:g} mas (KStars stars.dat), so a distance of "
                     f"{pc.value:.3g} pc = {ly.value:.3g} light years (distance = 1/parallax; the "
                     "table gives no parallax error).")
    elif "parallax_mas" in row:
        parts.append("The table gives no positive parallax, so no distance from it.")
    extra = {"spectral_type": sp if isinstance(sp, str) else None, "v_mag": _num(row.get("v_mag")),
             "b_v": _num(row.get("b_v")), "parallax_mas": _num(row.get("parallax_mas")),
             "constellation": const}
    if dist is not None:
        extra.update(distance_pc=float(dist[0].value), distance_ly=float(dist[1].value))
    return Source(f"star:{obj.object_id}", obj.name, "star_facts", " ".join(parts), obj.object_id,
                  STARS_CREDIT, None, extra)


def _num(v):
    return None if v is None or pd.isna(v) else float(v)
