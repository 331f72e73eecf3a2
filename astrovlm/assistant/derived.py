"""Facts computed from catalog facts with astropy, each with the assumptions it rests on:

- distances from a redshift (``astropy.cosmology.Planck18``: luminosity and comoving
  distance, lookback time), with a warning where the redshift is too small or negative for
  the Hubble flow to dominate (peculiar velocities of a few hundred km/s: z below about 0.01,
  or a blueshift such as M31's);
- a physical size from an angular size and a distance (small-angle, ``D * theta``);
- where an object stands in the sky (altitude, azimuth) at a place and time (``AltAz``).
  IERS data come only from the installed ``astropy-iers-data`` (no download); places are
  "lat, lon" in degrees or an astropy site name (offline only the sites astropy already has:
  Greenwich, plus any registry in astropy's download cache); times are what ``astropy.time.Time``
  parses (ISO "2026-03-01 21:30", optionally "UTC"). A place or time it cannot read is a
  ``BadArgumentError`` naming it.

Every function returns a ``Derived``: the value(s), and the sentence that says how they
were computed, which becomes a numbered source of the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import astropy.units as u

from astrovlm.errors import BadArgumentError

PECULIAR_Z = 0.01      # below this, peculiar velocities (~300 km/s) are >10% of the Hubble flow
COSMOLOGY_CREDIT = "astropy.cosmology Planck18 (Planck 2018 VI, Table 2, TT,TE,EE+lowE+lensing+BAO)"


@dataclass
class Derived:
    """A computed fact: ``text`` says what was computed, from what, how and under which
    assumptions; ``values`` holds the numbers (plain floats, units in the key)."""

    kind: str
    text: str
    values: dict = field(default_factory=dict)
    credit: str = ""


def redshift_distance(z: float, name: str = "the object") -> Derived:
    """Distances for a redshift under Planck18, with the note on peculiar velocities."""
    from astropy.cosmology import Planck18

    if z is None:
        raise BadArgumentError(f"{name} has no redshift in the catalog", field="redshift")
    if z <= 0:
        v = (z * 299792.458)
        return Derived("redshift_distance",
                       f"{name}'s redshift z = {z:g} is a blueshift (it approaches at about {-v:.0f} km/s, "
                       "z x c): its motion toward us, not the expansion of the Universe, sets it, so no "
                       "distance follows from it; a redshift-independent distance (Cepheids, tip of the "
                       "red giant branch) is needed.", {"z": z}, COSMOLOGY_CREDIT)
    d_l = Planck18.luminosity_distance(z).to(u.Mpc)
    d_c = Planck18.comoving_distance(z).to(u.Mpc)
    t_lb = Planck18.lookback_time(z).to(u.Gyr)
    text = (f"From {name}'s redshift z = {z:g} with the Planck18 cosmology (astropy.cosmology, "
            f"H0 = {Planck18.H0.value:.2f} km/s/Mpc): luminosity distance {d_l.value:.4g} Mpc "
            f"({d_l.to(u.lyr).value / 1e6:.4g} million light years), comoving distance {d_c.value:.4g} Mpc, "
            f"lookback time {t_lb.to(u.Myr).value:.4g} Myr.")
    if z < PECULIAR_Z:
        text += (f" Caution: at z < {PECULIAR_Z:g} the object's peculiar velocity (a few hundred km/s) is a "
                 f"large part of cz = {z * 299792.458:.0f} km/s, so this distance may be off by tens of "
                 "per cent; a redshift-independent distance is better.")
    return Derived("redshift_distance", text,
                   {"z": z, "luminosity_distance_mpc": float(d_l.value), "comoving_distance_mpc": float(d_c.value),
                    "lookback_time_gyr": float(t_lb.value), "peculiar_caution": z < PECULIAR_Z},
                   COSMOLOGY_CREDIT)


def physical_size(size_arcmin: float, distance: u.Quantity, name: str = "the object",
                  how: str = "") -> Derived:
    """Linear size from an angular size and a distance (small-angle approximation)."""
    if not size_arcmin or size_arcmin <= 0:
        raise BadArgumentError(f"{name} has no angular size in the catalog", field="size")
    theta = (size_arcmin * u.arcmin).to(u.rad).value
    d = distance.to(u.kpc)
    size = (d * theta).to(u.kpc)
    text = (f"{name}'s angular size {size_arcmin:g} arcmin (catalog major axis) at a distance of "
            f"{d.to(u.Mpc).value:.4g} Mpc{(' (' + how + ')') if how else ''} gives a physical size of "
            f"{size.value:.3g} kpc = {size.to(u.lyr).value:.4g} light years (size = distance x angle "
            "in radians, small-angle approximation).")
    return Derived("physical_size", text, {"size_kpc": float(size.value), "size_ly": float(size.to(u.lyr).value)},
                   "computed with astropy.units")


# ----------------------------------------------------------------------------- sky position
_LATLON = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*°?\s*([NS])?\s*[, ]\s*([+-]?\d+(?:\.\d+)?)\s*°?\s*([EW])?\s*$", re.I)


def _site_registry() -> dict:
    """Astropy's sites that are on this machine: Greenwich always; the full registry only if
    astropy has it in its download cache (never fetched here)."""
    from astropy.coordinates import EarthLocation
    from astropy.coordinates.sites import _GREENWICH
    from astropy.utils.data import conf as data_conf

    sites = {"greenwich": _GREENWICH, "royal observatory greenwich": _GREENWICH}
    try:
        with data_conf.set_temp("allow_internet", False):
            registry = EarthLocation._get_site_registry()
        sites.update({n.lower(): registry[n] for n in registry.names})
    except Exception:  # noqa: BLE001  (no cached registry: only the built-in site)
        pass
    return sites


def parse_place(text: str):
    """(EarthLocation, description) for "lat, lon" degrees or a known site name."""
    from astropy.coordinates import EarthLocation

    if not text or not text.strip():
        raise BadArgumentError("no place given: say where, as 'lat, lon' in degrees or a site name",
                               field="place")
    m = _LATLON.match(text)
    if m:
        lat, lon = float(m.group(1)), float(m.group(3))
        if (m.group(2) or "").upper() == "S":
            lat = -abs(lat)
        if (m.group(4) or "").upper() == "W":
            lon = -abs(lon)
        if not (-90 <= lat <= 90 and -180 <= lon <= 360):
            raise BadArgumentError(f"the place '{text.strip()}' is not a latitude in [-90, 90] and a "
                                   "longitude in [-180, 360] degrees", field="place")
        return (EarthLocation(lat=lat * u.deg, lon=lon * u.deg, height=0 * u.m),
                f"latitude {lat:g} deg, longitude {lon:g} deg (east positive), sea level")
    sites = _site_registry()
    key = re.sub(r"^the\s+", "", " ".join(text.lower().split()))
    if key in sites:
        loc = sites[key]
        return loc, (f"{text.strip()} (astropy site: latitude {loc.lat.deg:.4f} deg, longitude "
                     f"{loc.lon.deg:.4f} deg, height {loc.height.to(u.m).value:.0f} m)")
    import difflib

    close = difflib.get_close_matches(key, list(sites), n=3)
    raise BadArgumentError(f"unknown place '{text.strip()}': give 'lat, lon' in degrees or a site astropy "
                           f"knows offline ({', '.join(sorted(set(sites))[:8])})"
                           + (f"; did you mean {', '.join(close)}?" if close else ""), field="place")


def parse_time(text: str):
    """An astropy ``Time`` (UTC) for the text; "now" is the current time."""
    from astropy.time import Time

    if not text or not text.strip():
        raise BadArgumentError("no time given: say when, e.g. '2026-03-01 21:30 UTC'", field="time")
    t = text.strip()
    if t.lower() == "now":
        return Time.now()
    t = re.sub(r"\s*(?:UTC|UT|Z)$", "", t, flags=re.I)
    try:
        import warnings

        with warnings.catch_warnings():   # ERFA calls a year past its leap-second table "dubious"
            warnings.simplefilter("ignore")
            return Time(t, scale="utc")
    except (ValueError, TypeError):
        raise BadArgumentError(f"cannot read the time '{text.strip()}' (astropy.time.Time reads ISO dates "
                               "and times): write it like '2026-03-01 21:30 UTC', or 'now'", field="time") from None


def sky_position(ra_deg: float, dec_deg: float, place: str, when: str, name: str = "the object") -> Derived:
    """Altitude and azimuth of an ICRS position from ``place`` at ``when`` (no refraction)."""
    from astropy.coordinates import AltAz, SkyCoord
    from astropy.utils import iers

    location, where = parse_place(place)
    time = parse_time(when)
    # IERS from the installed astropy-iers-data only, however old its predictions (no
    # max age: nothing is fetched); past its tables astropy falls back to approximate Earth
    # orientation (arcsecond-level errors: immaterial for an altitude in degrees).
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("auto_max_age", None), \
            iers.conf.set_temp("iers_degraded_accuracy", "warn"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            altaz = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs").transform_to(
                AltAz(obstime=time, location=location))
    alt, az = float(altaz.alt.deg), float(altaz.az.deg)
    state = "above the horizon" if alt > 0 else "below the horizon"
    text = (f"Computed with astropy (ICRS -> AltAz, no atmospheric refraction, IERS from the installed "
            f"astropy-iers-data): {name} (RA {ra_deg:.4f} deg, Dec {dec_deg:+.4f} deg) seen from {where} at "
            f"{time.utc.iso[:16]} UTC stands at altitude {alt:.1f} deg, azimuth {az:.1f} deg (from north "
            f"through east): {state}.")
    return Derived("sky_position", text, {"alt_deg": alt, "az_deg": az, "time_utc": time.utc.isot,
                                          "lat_deg": float(location.lat.deg), "lon_deg": float(location.lon.deg)},
                   "computed with astropy.coordinates")
