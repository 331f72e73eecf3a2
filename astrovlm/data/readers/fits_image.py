"""Images of the sky: FITS (2-D images, multi-band cubes) and PNG/JPEG, as a ``Cutout``.

FITS rows run bottom-up (pixel (1, 1) is the lower-left corner, where ds9 draws it) while
PNG rows run top-down; a ``Cutout`` keeps the pixels as the file has them, with the WCS
valid on them, and records ``origin`` so that ``to_rgb`` shows both the same way up.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.data.readers._common import (
    FITS_SUFFIXES, MAX_IMAGE_BANDS, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, card, check_nonempty, guarded,
    hdu_shape, header_radec, image_data, is_image_hdu, iter_hdus, object_name, open_fits, pick_hdu,
    raw_header as raw_header_bytes)
from astrovlm.errors import AstroVLMError, BadArgumentError, UnreadableError

PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
PIL_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")


@dataclass
class Cutout:
    """An image of the sky: pixels, where they are on the sky, and where they came from."""

    data: np.ndarray                    # float32, (H, W) or (bands, H, W)
    wcs: object = None                  # astropy.wcs.WCS (celestial, 2-D) or None
    header: object = None               # astropy.io.fits.Header (FITS) or a dict (PNG/JPEG)
    path: str | None = None
    center: object = None               # SkyCoord of the image centre (WCS) or the header's RA/Dec
                                        # (given as one, or as ICRS (RA, Dec) degrees: see below)
    bands: list[str] = field(default_factory=list)
    origin: str = "lower"               # "lower": row 0 is the bottom (FITS); "upper": PNG/JPEG
    display_ready: bool = False         # pixels are already 0-255 display values (PNG/JPEG)
    name: str | None = None             # the OBJECT keyword, if any
    _pixel_scales_deg: object = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.data.shape[-2:])

    @property
    def n_bands(self) -> int:
        return 1 if self.data.ndim == 2 else self.data.shape[0]

    def fov(self):
        """The width of the field as an angle Quantity (from the WCS), or None."""
        scales = self._pixel_scales_deg
        if scales is None:
            if self.wcs is None:
                return None
            from astropy.wcs.utils import proj_plane_pixel_scales

            try:
                scales = proj_plane_pixel_scales(self.wcs)  # degrees per pixel on each axis
            except Exception:  # a WCS astropy accepts but cannot evaluate: no FoV, no failure
                return None
        return float(max(scales[0] * self.shape[1], scales[1] * self.shape[0])) * u.deg

    def to_rgb(self, stretch: str | None = None, percentile: float = 99.5) -> np.ndarray:
        """An (H, W, 3) uint8 array for display, north up for a standard FITS image.

        ``stretch`` is one of ``astrovlm.viz.STRETCHES``; the default is asinh for
        science images and none at all for PNG/JPEG, whose pixels are display values
        already. One band shows grey; two show red/blue with their mean as green; three or
        more map the first three bands to red, green, blue.
        """
        from astrovlm.viz import stretch_image

        if stretch is None and self.display_ready:
            planes = np.clip(np.nan_to_num(self.data), 0, 255).astype(np.uint8)
        else:
            planes = stretch_image(self.data, stretch or "asinh", percentile)
        if planes.ndim == 2:
            rgb = np.stack([planes] * 3, axis=-1)
        elif planes.shape[0] == 1:
            rgb = np.stack([planes[0]] * 3, axis=-1)
        elif planes.shape[0] == 2:
            mid = ((planes[0].astype(np.uint16) + planes[1]) // 2).astype(np.uint8)
            rgb = np.stack([planes[0], mid, planes[1]], axis=-1)
        else:
            rgb = np.moveaxis(planes[:3], 0, -1)
        if self.origin == "lower":
            rgb = rgb[::-1]
        return np.ascontiguousarray(rgb)

    def to_pil(self, stretch: str | None = None, percentile: float = 99.5):
        from PIL import Image

        return Image.fromarray(self.to_rgb(stretch, percentile), mode="RGB")


@guarded("the image")
def read_image(path: str | Path, hdu: int | str | None = None, *, hdul=None) -> Cutout:
    """Read a FITS image (the first HDU with 2-D data or a multi-band cube, or ``hdu``) or a
    PNG/JPEG file into a ``Cutout``. The file's content decides, not its name.

    ``hdul``: the FITS file already open (``readers.sniffed``), so it is not opened again."""
    if hdul is not None:
        return _read_fits_image(Path(path), hdu, hdul)
    path = check_nonempty(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(PIL_MAGIC):
        return _read_pil(path)
    if head.startswith((b"SIMPLE", b"\x1f\x8b")) or path.name.lower().endswith(FITS_SUFFIXES):
        return _read_fits_image(path, hdu)
    return _read_pil(path)  # anything else Pillow may know; it says so if it does not


def check_image_size(shape: tuple[int, ...], path, what: str = "image") -> None:
    """Refuse absurd sizes before reading: decided from the header's NAXISn alone."""
    h, w = shape[-2], shape[-1]
    bands = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    if h > MAX_IMAGE_SIDE or w > MAX_IMAGE_SIDE or h * w * bands > MAX_IMAGE_PIXELS:
        raise UnreadableError(
            f"{what} of {w} x {h} pixels" + (f" x {bands} bands" if bands > 1 else "")
            + f" is too large (limit {MAX_IMAGE_SIDE} pixels a side and "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels); cut out the region you need first",
            path=path)


def image_hdu_kind(hdu) -> str | None:
    """'image' / 'cube' for an HDU holding pixels of the sky, 'spectrum' for a 1-D or
    SDSS-layout spectrum, None for anything else (tables, empty primaries)."""
    from astrovlm.data.readers.fits_spectrum import looks_like_spectrum_image

    if not is_image_hdu(hdu):
        return None
    shape = hdu_shape(hdu)
    if len(shape) == 1 or (len(shape) == 2 and looks_like_spectrum_image(hdu.header, shape)):
        return "spectrum"
    if len(shape) == 2 and min(shape) >= 2:
        return "image"
    if len(shape) == 3 and min(shape[1:]) >= 2:
        return "cube"
    return None


# A FITS image's astropy WCS is built from its header when first asked for (``Cutout.wcs``):
# building one costs ~2.5 ms, more than reading a small image, and ingest and search only
# need the centre and the field of view, which ``_sky_position`` takes from wcslib directly.
class _FromHeader:
    def __reduce__(self):  # unpickles as this module's FROM_HEADER (a Cutout crosses processes)
        return "FROM_HEADER"


FROM_HEADER = _FromHeader()


def _get_wcs(self):
    if self._wcs is FROM_HEADER:
        self._wcs = _celestial_wcs(self.header)
    return self._wcs


def _set_wcs(self, value):
    self._wcs = value


Cutout.wcs = property(_get_wcs, _set_wcs, doc="astropy.wcs.WCS (celestial, 2-D) or None")


# The centre likewise: a reader gives ICRS (RA, Dec) degrees, and the SkyCoord is made when
# first asked for; ingest and search want the two numbers (``radec_deg``), and a SkyCoord
# costs more to build than wcslib takes to find the centre.
def _get_center(self):
    if isinstance(self._center, tuple):
        from astropy.coordinates import ICRS, SkyCoord

        ra, dec = self._center
        self._center = SkyCoord(ICRS(ra=ra * u.deg, dec=dec * u.deg))
    return self._center


def _set_center(self, value):
    self._center = value


def _radec_deg(self) -> tuple[float, float] | None:
    """The centre as ICRS (RA, Dec) in degrees, or None: ``center`` without the SkyCoord."""
    if self._center is None or isinstance(self._center, tuple):
        return self._center
    icrs = self._center.icrs
    return float(icrs.ra.deg), float(icrs.dec.deg)


Cutout.center = property(_get_center, _set_center,
                         doc="SkyCoord of the image centre (WCS) or the header's RA/Dec, or None")
Cutout.radec_deg = property(_radec_deg, doc=_radec_deg.__doc__)


def _read_fits_image(path: Path, hdu, opened=None) -> Cutout:
    with open_fits(path, opened) as hdul:
        if hdu is not None:
            chosen = pick_hdu(hdul, hdu, path)
            kind = image_hdu_kind(chosen)
            if kind is None:
                shape = hdu_shape(chosen) if is_image_hdu(chosen) else None
                raise BadArgumentError(
                    f"HDU {hdu!r} holds no image (" + (f"data shape {shape}" if shape is not None
                                                        else "it is a table") + ")", path=path)
        else:
            chosen, kinds = None, []
            for _, candidate in iter_hdus(hdul, path):
                kind = image_hdu_kind(candidate)
                kinds.append(kind)
                if kind in ("image", "cube"):
                    chosen = candidate
                    break
            if chosen is None:
                if "spectrum" in kinds:
                    raise UnreadableError("holds a spectrum, not an image (read it with "
                                        "read_spectrum)", path=path)
                raise UnreadableError("has no image in it (no HDU with 2-D data or a 3-D cube)",
                                    path=path)
        if kind == "spectrum":
            raise BadArgumentError(f"HDU {hdu!r} holds a spectrum, not an image (read it with "
                                "read_spectrum)", path=path)
        shape = hdu_shape(chosen)
        check_image_size(shape, path)
        if len(shape) == 3 and shape[0] > MAX_IMAGE_BANDS:
            raise UnreadableError(
                f"is a data cube with {shape[0]} planes (an IFU or radio cube?); a multi-band "
                f"image has at most {MAX_IMAGE_BANDS} bands: pick a plane or collapse it first",
                path=path)
        # the HDU's own header, not a copy (a third of reading a small image's header
        # again): the file is closed after this, and nothing here edits the header
        header = chosen.header
        raw_header = raw_header_bytes(chosen)  # what wcslib parses
        data = image_data(chosen, path, shape)
    data[~np.isfinite(data)] = np.nan  # inf from bad scaling is as blank as NaN
    if not np.isfinite(data).any():
        raise UnreadableError("image has no finite pixels (all blank)", path=path)
    center, scales, wcs = _sky_position(header, shape[-2:], raw_header)
    if center is None:
        center = header_radec(header)
    return Cutout(data=data, wcs=wcs, header=header, path=str(path), center=center,
                  bands=_band_names(header, shape), origin="lower", display_ready=False,
                  name=object_name(header), _pixel_scales_deg=scales)


# keywords of distortions that wcslib's own projection does not apply (SIP, lookup tables,
# the distortion paper) or that astropy reinterprets (SCAMP's TAN + PV): such images take
# the full astropy WCS
_DISTORTION_KEYS = ("A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER", "CPDIS1", "CPDIS2",
                    "D2IMDIS1", "D2IMDIS2", "DP1", "DQ1", "PV1_1", "PV2_1")


def _sky_position(header, shape2d, raw_header: bytes | None = None):
    """(centre, pixel scales in deg or None, ``Cutout.wcs`` value); the centre is ICRS (RA,
    Dec) degrees from wcslib, a SkyCoord from astropy's WCS, or None.

    A plain 2-D celestial header in ICRS (no distortion keywords) goes straight to wcslib
    (``Wcsprm``, fixed and set as ``WCS`` does): the same pixel-to-sky transform at a
    fifteenth of the cost, the full WCS then built only if someone asks. Anything else
    (other frames, distortions, more axes) takes the full astropy WCS now."""
    if not card(header, "CTYPE1") and not card(header, "CTYPE2"):
        return None, None, None
    fast = _wcslib_centre(header, shape2d, raw_header)
    if fast is not None:
        return fast[0], fast[1], FROM_HEADER
    wcs = _celestial_wcs(header)
    if wcs is None:
        return None, None, None
    return _wcs_center(wcs, shape2d), None, wcs


def _wcslib_centre(header, shape2d, raw_header: bytes | None):
    from astropy.wcs import Wcsprm

    if int(card(header, "NAXIS", 0) or 0) != 2 or int(card(header, "WCSAXES", 2) or 2) != 2 \
            or any(key in header for key in _DISTORTION_KEYS):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prm = Wcsprm(raw_header or header.tostring().encode("ascii"), relax=True)
            prm.fix()
            prm.set()
        if (prm.naxis, prm.lng, prm.lat) != (2, 0, 1) or prm.radesys.strip() != "ICRS" \
                or not str(prm.ctype[0]).upper().startswith("RA") \
                or any(str(unit) != "deg" for unit in prm.cunit):
            return None
        h, w = shape2d
        lon, lat = prm.p2s([[(w - 1) / 2.0, (h - 1) / 2.0]], 0)["world"][0]
        scales = np.sqrt(((np.diag(prm.get_cdelt()) @ prm.get_pc()) ** 2).sum(axis=0))
    except Exception:  # anything wcslib refuses: the full WCS decides
        return None
    if not (np.isfinite(lon) and np.isfinite(lat)) or not np.all(np.isfinite(scales)):
        return None
    return (float(lon), float(lat)), scales


def _celestial_wcs(header):
    """The celestial part of the header's WCS, or None when there is none usable."""
    from astropy.wcs import WCS, FITSFixedWarning

    if not card(header, "CTYPE1") and not card(header, "CTYPE2"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            warnings.simplefilter("ignore")
            wcs = WCS(header)
            if not (wcs.naxis == 2 and wcs.wcs.lng == 0 and wcs.wcs.lat == 1):
                wcs = wcs.celestial  # a copy: only when there is more than RA/Dec to drop
    except Exception:  # broken WCS keywords: the image is still usable without a position
        return None
    if wcs.naxis != 2 or not wcs.has_celestial:
        return None
    return wcs


def _wcs_center(wcs, shape2d):
    h, w = shape2d
    try:
        coord = _icrs_center(wcs, (w - 1) / 2.0, (h - 1) / 2.0)
        if coord is None:
            coord = wcs.pixel_to_world((w - 1) / 2.0, (h - 1) / 2.0)
    except Exception:
        return None
    try:
        if not (np.isfinite(coord.spherical.lon.deg) and np.isfinite(coord.spherical.lat.deg)):
            return None
        return coord.icrs
    except AttributeError:
        return None


def _icrs_center(wcs, x: float, y: float):
    """``pixel_to_world`` for a WCS in ICRS, without its detour through the high-level API
    (a third of the cost of reading a small image); None for other frames."""
    from astropy.coordinates import ICRS, SkyCoord
    from astropy.wcs.utils import wcs_to_celestial_frame

    if not isinstance(wcs_to_celestial_frame(wcs), ICRS):
        return None
    world = wcs.all_pix2world([[x, y]], 0)[0]
    lon, lat = float(world[wcs.wcs.lng]), float(world[wcs.wcs.lat])
    if not (np.isfinite(lon) and np.isfinite(lat)):
        return None
    return SkyCoord(ICRS(ra=lon * u.deg, dec=lat * u.deg))


def _band_names(header, shape) -> list[str]:
    if len(shape) == 2:
        band = card(header, "FILTER") or card(header, "BAND")
        return [str(band)] if band else []
    names = []
    for i in range(1, shape[0] + 1):
        name = card(header, f"FILTER{i}") or card(header, f"BAND{i}")
        names.append(str(name) if name else f"band{i}")
    return names


def _read_pil(path: Path) -> Cutout:
    from PIL import Image, UnidentifiedImageError

    # Pillow's own bomb guard at astrovlm's budget (it raises at twice this), behind the
    # size check below that refuses anything larger before a pixel is decoded
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            w, h = img.size  # from the file's header; no pixels decoded yet
            check_image_size((h, w), path)
            if w == 0 or h == 0:
                raise UnreadableError(f"image of {w} x {h} pixels is empty", path=path)
            img.load()
            fmt, mode = img.format, img.mode
            if mode in ("I;16", "I;16B", "I", "F"):
                # 16-bit or float PNG/TIFF: raw counts, not display values; stretch them
                data, bands, ready = np.asarray(img, dtype=np.float32).copy(), ["L"], False
            elif mode in ("L", "1"):
                data, bands, ready = np.asarray(img.convert("L"), dtype=np.float32).copy(), ["L"], True
            else:
                if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
                    # transparent pixels are empty sky (Stellarium textures fade out at the
                    # edges): composite on black, as the encoders' preprocessing does
                    rgba = img.convert("RGBA")
                    img = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
                rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
                data, bands, ready = np.moveaxis(rgb, -1, 0).copy(), ["R", "G", "B"], True
    except UnidentifiedImageError:
        raise UnreadableError("unknown file type (not FITS, PNG or JPEG)", path=path) from None
    except Image.DecompressionBombError as exc:
        raise UnreadableError(f"image is too large ({exc})", path=path) from None
    except (AstroVLMError, MemoryError):
        raise
    except Exception as exc:  # OSError, SyntaxError, ValueError, struct.error, ...: Pillow's zoo
        raise UnreadableError(f"corrupt or truncated image file ({type(exc).__name__}: "
                              f"{str(exc)[:200]})", path=path) from None
    return Cutout(data=data, header={"format": fmt, "mode": mode}, path=str(path), bands=bands,
                  origin="upper", display_ready=ready)


def load_image(image):
    """A PIL RGB image from a path (FITS, PNG, JPEG), a ``Cutout`` or a PIL image: the one
    way images enter the encoders, so a FITS file and its PNG rendering look the same."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, Cutout):
        return image.to_pil()
    return read_image(image).to_pil()
