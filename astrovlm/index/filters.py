"""What a search may be restricted to: modality, object type, a cone on the sky, objects to leave out.

A ``SkyFilter`` is plain data; ``CrossModalIndex`` turns it into a mask over its rows.
The cone takes astropy objects (a ``SkyCoord`` centre and an angular ``Quantity`` radius),
so units and frames are never guessed; ``parse_cone`` reads the CLI's "RA DEC RADIUS" form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np

from astrovlm.errors import BadArgumentError

MODALITIES = ("image", "spectrum", "text")


def check_modalities(modality, field_name: str = "modality") -> tuple[str, ...] | None:
    """Normalise a modality argument (None, a name, or several names) to a tuple of names."""
    if modality is None:
        return None
    names = (modality,) if isinstance(modality, str) else tuple(modality)
    if not names:
        return None
    out = []
    for name in names:
        key = str(name).strip().lower()
        if key in ("all", "any", ""):
            return None
        if key not in MODALITIES:
            raise BadArgumentError(f"unknown modality '{name}' (choose from {', '.join(MODALITIES)})",
                                field=field_name)
        out.append(key)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class SkyFilter:
    """Restrict a search. Every given condition must hold (logical AND)."""

    modality: tuple[str, ...] | None = None        # "image", "spectrum", "text"
    object_type: str | None = None                 # coarse class ("galaxy") or a catalog type word ("spiral")
    center: object | None = None                   # astropy SkyCoord
    radius: u.Quantity | None = None               # angle
    exclude_objects: frozenset = field(default_factory=frozenset)

    @classmethod
    def make(cls, modality=None, object_type=None, center=None, radius=None,
             exclude_objects=()) -> "SkyFilter":
        """Build a filter from loose arguments, checking each one."""
        if modality is None and object_type is None and center is None and radius is None \
                and not exclude_objects:
            return NO_FILTER
        mods = check_modalities(modality)
        otype = None
        if object_type is not None:
            otype = str(object_type).strip().lower()
            if not otype:
                raise BadArgumentError("object type is empty", field="object_type")
        if (center is None) != (radius is None):
            raise BadArgumentError("a cone needs both a centre (SkyCoord) and a radius (angle)",
                                field="cone")
        if center is not None:
            center = _check_center(center)
            radius = _check_radius(radius)
        excl = frozenset(str(o) for o in (exclude_objects or ()) if o)
        return cls(mods, otype, center, radius, excl)

    @property
    def is_empty(self) -> bool:
        return (self.modality is None and self.object_type is None and self.center is None
                and not self.exclude_objects)

    def describe(self) -> str:
        parts = []
        if self.modality:
            parts.append("modality=" + "|".join(self.modality))
        if self.object_type:
            parts.append(f"type='{self.object_type}'")
        if self.center is not None:
            c = self.center.icrs
            parts.append(f"cone {self.radius.to(u.deg).value:.4g} deg around "
                         f"RA {c.ra.deg:.4f} Dec {c.dec.deg:+.4f}")
        if self.exclude_objects:
            parts.append("excluding " + ", ".join(sorted(self.exclude_objects)))
        return ", ".join(parts) or "no filter"

    def to_dict(self) -> dict:
        out = {}
        if self.modality:
            out["modality"] = list(self.modality)
        if self.object_type:
            out["object_type"] = self.object_type
        if self.center is not None:
            c = self.center.icrs
            out["cone"] = {"ra_deg": float(c.ra.deg), "dec_deg": float(c.dec.deg),
                           "radius_deg": float(self.radius.to(u.deg).value)}
        if self.exclude_objects:
            out["exclude_objects"] = sorted(self.exclude_objects)
        return out


NO_FILTER = SkyFilter()


def _check_center(center):
    from astropy.coordinates import SkyCoord

    if not isinstance(center, SkyCoord):
        raise BadArgumentError(f"cone centre must be an astropy SkyCoord, not {type(center).__name__}",
                            field="center")
    if not center.isscalar:
        raise BadArgumentError("cone centre must be a single position", field="center")
    return center


def _check_radius(radius) -> u.Quantity:
    if not isinstance(radius, u.Quantity):
        raise BadArgumentError("cone radius must be an angle with a unit (e.g. 2 * u.deg)", field="radius")
    if not radius.unit.is_equivalent(u.deg):
        raise BadArgumentError(f"cone radius must be an angle, not {radius.unit}", field="radius")
    if not np.isfinite(radius.value) or radius.value <= 0:
        raise BadArgumentError(f"cone radius must be positive, got {radius}", field="radius")
    return radius


def cone_mask(ra_deg: np.ndarray, dec_deg: np.ndarray, center, radius: u.Quantity) -> np.ndarray:
    """True for positions within ``radius`` of ``center`` (rows without a position are outside).

    Vectorised haversine on plain arrays: building a SkyCoord of a million rows per query
    would cost more than the search itself.
    """
    c = center.icrs
    ra0, dec0 = np.radians(c.ra.deg), np.radians(c.dec.deg)
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    with np.errstate(invalid="ignore"):
        h = (np.sin((dec - dec0) / 2) ** 2
             + np.cos(dec) * np.cos(dec0) * np.sin((ra - ra0) / 2) ** 2)
        sep = 2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
        return sep <= radius.to(u.rad).value  # NaN positions compare False


def parse_cone(text: str):
    """Read "RA DEC RADIUS" into (SkyCoord, Quantity).

    RA and Dec are degrees ("83.82 -5.39") or sexagesimal ("05h35m17s -05d23m28s");
    the radius carries a unit ("2deg", "30arcmin"); a bare number is degrees.
    """
    from astropy.coordinates import SkyCoord

    parts = str(text or "").replace(",", " ").split()
    if len(parts) != 3:
        raise BadArgumentError(f"expected 'RA DEC RADIUS' (e.g. '83.8 -5.4 2deg'), got '{text}'",
                            field="cone")
    ra, dec, rad = parts
    try:
        if _is_number(ra) and _is_number(dec):
            center = SkyCoord(float(ra) * u.deg, float(dec) * u.deg, frame="icrs")
        else:
            center = SkyCoord(ra, dec, frame="icrs", unit=(u.hourangle, u.deg))
    except (ValueError, u.UnitsError) as exc:
        raise BadArgumentError(f"cannot read the position '{ra} {dec}' ({exc})", field="cone") from None
    try:
        radius = float(rad) * u.deg if _is_number(rad) else u.Quantity(rad)
    except (ValueError, TypeError) as exc:
        raise BadArgumentError(f"cannot read the radius '{rad}' ({exc})", field="cone") from None
    try:
        return center, _check_radius(radius)
    except BadArgumentError as exc:
        raise BadArgumentError(str(exc).split(": ", 1)[-1], field="cone") from None


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
