"""Which object an image or a spectrum of the sample sky shows.

An image is matched by the name in its file name where one resolves (checked against the
image's position), else by position (the largest OpenNGC object of an image class near the
image centre), else to an object of its own when the name says what it is (Sharpless,
Lynds, Barnard, galaxy clusters ...). A real RVSAO spectrum is linked by its object name:
galaxies to OpenNGC, MK standards to their HD star.
"""

from __future__ import annotations

import numpy as np

from astrovlm.data.records import IMAGE_CLASSES, SkyObject
from astrovlm.data.resolver import NameResolver
from astrovlm.data.sources import rvsao, stellarium


def angular_separation_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle separation in degrees (haversine), for plain degree arrays."""
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    s = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(s, 0, 1))))


def constellation_at(ra_deg: float | None, dec_deg: float | None) -> str | None:
    """The IAU constellation containing a position (astropy's boundary table)."""
    if ra_deg is None or dec_deg is None:
        return None
    from astropy.coordinates import SkyCoord, get_constellation
    import astropy.units as u

    return str(get_constellation(SkyCoord(ra_deg * u.deg, dec_deg * u.deg)))


def fill_constellations(objects) -> None:
    """Constellation from the position, for objects whose catalog gives none (one astropy call)."""
    from astropy.coordinates import SkyCoord, get_constellation
    import astropy.units as u

    todo = [o for o in objects if o.constellation is None and o.ra_deg is not None and o.dec_deg is not None]
    if todo:
        names = get_constellation(SkyCoord([o.ra_deg for o in todo] * u.deg, [o.dec_deg for o in todo] * u.deg))
        for o, name in zip(todo, names):
            o.constellation = str(name)


class ImageMatcher:
    """Finds the object an image shows: by name (checked by position), else by position."""

    def __init__(self, resolver: NameResolver, ongc):
        self.resolver = resolver
        self.ongc = ongc
        df = ongc.df
        usable = df["coarse_class"].isin(IMAGE_CLASSES) & df["ra_deg"].notna()
        self.cand = df[usable].reset_index()
        # astropy's KD-tree over the candidates, for match_to_catalog_sky-style queries.
        from astropy.coordinates import SkyCoord
        import astropy.units as u

        self.coords = SkyCoord(self.cand["ra_deg"].to_numpy() * u.deg, self.cand["dec_deg"].to_numpy() * u.deg)

    def _consistent(self, obj: SkyObject, img: stellarium.NebulaImage) -> bool:
        if obj.ra_deg is None:
            return True
        sep = float(angular_separation_deg(img.ra_deg, img.dec_deg, obj.ra_deg, obj.dec_deg))
        extent = (obj.major_axis_arcmin or 0) / 60 / 2
        return sep <= max(img.fov_deg, 0.25) + extent

    def by_position(self, img: stellarium.NebulaImage) -> SkyObject | None:
        """The largest OpenNGC object of an image class near the image centre."""
        from astropy.coordinates import SkyCoord
        import astropy.units as u

        centre = SkyCoord(img.ra_deg * u.deg, img.dec_deg * u.deg)
        radius = max(img.fov_deg / 2, 0.05)
        seps = self.coords.separation(centre).deg
        near = np.where(seps <= radius)[0]
        if len(near) == 0:
            return None
        fov_arcmin = img.fov_deg * 60
        rows = self.cand.iloc[near].copy()
        rows["sep"] = seps[near]
        size = rows["majax"].fillna(0)
        # Objects of the image's scale first (not a speck, not a giant that merely contains it),
        # the largest of them, then the brightest; else the smallest object containing the centre.
        scale = rows[(size >= 0.1 * fov_arcmin) & (size <= 3 * fov_arcmin)]
        if len(scale):
            mag = scale["vmag"].fillna(scale["bmag"]).fillna(99)
            best = scale.assign(_s=-scale["majax"], _m=mag).sort_values(["_s", "_m", "sep"]).iloc[0]
        else:
            inside = rows[size / 60 / 2 >= rows["sep"]]
            if not len(inside):
                return None
            best = inside.sort_values("majax").iloc[0]
        return self.ongc.sky_object(self.ongc.real(int(best["index"])))

    def match(self, img: stellarium.NebulaImage) -> tuple[SkyObject | None, str]:
        """(object, how): how is "name", "own" (named, not in OpenNGC), "position" or "unmatched"."""
        name, own = stellarium.name_hint(img.stem)
        obj = None
        if name:
            obj = self.resolver.find(name)
            if obj is not None and not self._consistent(obj, img):
                obj = None  # e.g. Stellarium's M102 shows NGC 5866, OpenNGC's M102 is M101
            if obj is not None and obj.coarse_class in IMAGE_CLASSES:
                return obj, "name"
        if own is not None:
            # The name says what it is (a Sharpless region, a tile of Barnard's Loop ...).
            return SkyObject(object_id=own.object_id, name=own.name, otype=own.otype,
                             coarse_class=own.coarse_class, ra_deg=round(img.ra_deg, 5),
                             dec_deg=round(img.dec_deg, 5), aliases=list(own.aliases),
                             constellation=constellation_at(img.ra_deg, img.dec_deg),
                             notes="Position is the centre of its Stellarium image",
                             source="Stellarium image name"), "own"
        found = self.by_position(img)
        if found is not None:
            return found, "position"
        if obj is not None:
            return obj, "name"  # an asterism or star OpenNGC lists (M73): class "other"
        return None, "unmatched"


def spectrum_object(rs: rvsao.RealSpectrum, resolver: NameResolver) -> SkyObject | None:
    """The object a real RVSAO spectrum is of: a galaxy in OpenNGC, an MK standard's HD star
    (or one of its own, from the template header); None for an unnamed template."""
    if not rs.object_name:
        return None
    obj = resolver.find(rs.object_name)
    if obj is not None and rs.spectral_class != "galaxy" and obj.otype != "star":
        obj = None  # a star's HD number must give a star
    if obj is None:
        if rs.spectral_class in ("galaxy", "quasar"):
            return None
        return SkyObject(object_id=rs.object_name, name=rs.object_name, otype="star",
                         coarse_class=rs.spectral_class, ra_deg=rs.ra_deg, dec_deg=rs.dec_deg,
                         constellation=constellation_at(rs.ra_deg, rs.dec_deg),
                         spectral_type=rs.subclass, source="RVSAO template header")
    if obj.otype == "star":
        # An MK standard: its spectrum's class is the object's class. The catalog's own type
        # stays in spectral_type, and a disagreement is said, not hidden.
        if obj.coarse_class != rs.spectral_class or (obj.spectral_type or "") != rs.subclass:
            obj.notes = (f"Spectral type {obj.spectral_type or 'unknown'} in the KStars catalog; "
                         f"{rs.subclass} as an RVSAO MK template")
        obj.coarse_class = rs.spectral_class
    return obj
