"""Cross-matching by sky position, on astropy's ``search_around_sky`` / ``match_to_catalog_sky``.

A radius is always an angle ``Quantity`` (``5 * u.arcsec``): a bare 5 could be arcseconds,
arcminutes or degrees, and a wrong guess silently merges or splits objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np

from astrovlm.errors import BadArgumentError


def check_radius(radius, field: str = "radius") -> u.Quantity:
    """The radius as an angle Quantity; an error for bare numbers, lengths, negatives."""
    if not isinstance(radius, u.Quantity):
        raise BadArgumentError(f"radius must be an angle Quantity such as 5 * u.arcsec, not "
                            f"{type(radius).__name__} {radius!r}", field=field)
    if radius.unit.physical_type != "angle":
        raise BadArgumentError(f"radius must be an angle, not {radius.unit.physical_type} "
                            f"({radius})", field=field)
    if not radius.isscalar or not np.isfinite(radius.value) or radius.value <= 0:
        raise BadArgumentError(f"radius must be one positive, finite angle (got {radius})", field=field)
    return radius.to(u.arcsec)


def _check_coords(coords, name):
    from astropy.coordinates import SkyCoord

    if not isinstance(coords, SkyCoord):
        raise BadArgumentError(f"{name} must be a SkyCoord, not {type(coords).__name__}", field=name)
    if coords.isscalar:
        coords = coords.reshape((1,))
    coords = coords.icrs
    finite = np.isfinite(coords.ra.deg) & np.isfinite(coords.dec.deg)
    return coords, np.flatnonzero(finite)


@dataclass
class Pairs:
    """Matched pairs: ``coords_a[idx_a[k]]`` lies ``separation[k]`` from ``coords_b[idx_b[k]]``."""

    idx_a: np.ndarray
    idx_b: np.ndarray
    separation: u.Quantity  # arcsec

    def __len__(self) -> int:
        return len(self.idx_a)

    def __iter__(self):
        return iter(zip(self.idx_a.tolist(), self.idx_b.tolist(), self.separation.to_value(u.arcsec)))


def crossmatch(coords_a, coords_b, radius, nearest: bool = False) -> Pairs:
    """All pairs of positions closer than ``radius``, sorted by (idx_a, separation); with
    ``nearest=True`` only the closest ``b`` for each ``a``. Rows with NaN positions never match."""
    radius = check_radius(radius)
    a, ok_a = _check_coords(coords_a, "coords_a")
    b, ok_b = _check_coords(coords_b, "coords_b")
    empty = Pairs(np.zeros(0, int), np.zeros(0, int), np.zeros(0) * u.arcsec)
    if len(ok_a) == 0 or len(ok_b) == 0:
        return empty
    a_ok, b_ok = a[ok_a], b[ok_b]
    if nearest:
        idx, sep, _ = a_ok.match_to_catalog_sky(b_ok)
        keep = sep <= radius
        ia, ib, sep = np.flatnonzero(keep), np.asarray(idx)[keep], sep[keep]
    else:
        ia, ib, sep, _ = a_ok.search_around_sky(b_ok, radius)
    ia, ib = ok_a[np.asarray(ia, dtype=int)], ok_b[np.asarray(ib, dtype=int)]
    sep = u.Quantity(sep).to(u.arcsec)
    order = np.lexsort((sep.value, ia))
    return Pairs(ia[order], ib[order], sep[order])


def group_by_position(coords, radius) -> np.ndarray:
    """Friends-of-friends groups: a label per position; positions closer than ``radius``
    (directly or through a chain) share a label. NaN positions get a label of their own."""
    radius = check_radius(radius)
    coords, _ = _check_coords(coords, "coords")
    parent = np.arange(len(coords))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in crossmatch(coords, coords, radius):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(len(coords))])
    _, labels = np.unique(roots, return_inverse=True)
    return labels
