"""The ``Spectrum`` record: wavelengths with units, flux, inverse variance, a mask.

Every spectrum in astrovlm (a user's FITS file, a real template, a simulated variant) is
held as a ``Spectrum`` and written as a FITS binary table with columns WAVELENGTH
[Angstrom], FLUX and IVAR, so that astropy's ``Table.read`` opens it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import astropy.units as u
import numpy as np

from astrovlm.errors import BadArgumentError


@dataclass
class Spectrum:
    wavelength: u.Quantity                  # vacuum or air as the source says; stored in Angstrom
    flux: np.ndarray                        # arbitrary units unless ``flux_unit`` says otherwise
    ivar: np.ndarray | None = None          # inverse variance of ``flux``; None = unknown
    flux_unit: str = ""
    meta: dict = field(default_factory=dict)  # header-like facts: OBJECT, CLASS, Z, SIMULAT, ...

    def __post_init__(self):
        if not isinstance(self.wavelength, u.Quantity):
            raise BadArgumentError("wavelength has no unit (give an astropy Quantity)", field="wavelength")
        self.wavelength = self.wavelength.to(u.AA, equivalencies=u.spectral())
        self.flux = np.asarray(self.flux, dtype=np.float64)
        if self.ivar is not None:
            self.ivar = np.asarray(self.ivar, dtype=np.float64)

    @property
    def mask(self) -> np.ndarray:
        """True where a pixel is usable: finite flux, a finite positive wavelength (broken
        files pad with 0 Angstrom rows) and positive (or unknown) ivar."""
        wave = self.wavelength.value
        good = np.isfinite(self.flux) & np.isfinite(wave) & (wave > 0)
        if self.ivar is not None:
            good &= np.isfinite(self.ivar) & (self.ivar > 0)
        return good

    def __len__(self) -> int:
        return len(self.flux)

    def to_fits(self, path: str | Path, atomic: bool = True) -> None:
        """Write as a FITS binary table SPECTRUM (write to a temp name, then rename; with
        ``atomic=False`` straight to ``path``, for a folder that is itself swapped in whole,
        as the dataset writer's is). The bytes are ``fits_bytes()``."""
        import os

        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp") if atomic else path
        with open(tmp, "wb") as fh:
            fh.write(self.fits_bytes())
        if atomic:
            os.replace(tmp, path)

    def fits_bytes(self) -> bytes:
        """The FITS file ``to_fits`` writes, as bytes: those astropy's
        ``BinTableHDU.from_columns`` + ``writeto`` write (``_fits_hdus``), put together
        directly (the table's structure cards made by astropy once, the rows as one big-endian
        record array, the metadata cards as astropy's ``Card`` formats them). That is ~10x
        less CPU, paid once per spectrum by ingest and the sample-sky build. Metadata whose
        key the table's structure uses (NAXIS2, TTYPE1, COMMENT...) goes astropy's way."""
        if any(_STRUCTURAL.match(str(key).upper()[:8]) for key, v in self.meta.items() if v is not None):
            import io

            buffer = io.BytesIO()
            self._fits_hdus().writeto(buffer)
            return buffer.getvalue()
        wave, flux, ivar = self._columns()
        rows = np.empty(len(flux), dtype=[("WAVELENGTH", ">f8"), ("FLUX", ">f4"), ("IVAR", ">f4")])
        rows["WAVELENGTH"], rows["FLUX"], rows["IVAR"] = wave, flux, ivar
        before, after = _table_cards(self.flux_unit or "")
        cards = {}
        self._meta_cards(cards)  # a dict: a repeated key keeps its place, takes the last value
        header = "".join([before, card_image("NAXIS2", len(rows), "length of dimension 2"),
                          after, *(card_image(k, v) for k, v in cards.items()), "END"])
        data = rows.tobytes()
        return b"".join([_primary_header(), header.ljust(-(-len(header) // _BLOCK) * _BLOCK).encode("ascii"),
                         data, b"\0" * (-len(data) % _BLOCK)])

    def _columns(self):
        ivar = self.ivar if self.ivar is not None else np.ones_like(self.flux)
        return self.wavelength.value, self.flux, ivar

    def _meta_cards(self, header) -> None:
        for key, value in self.meta.items():
            if value is None:
                continue
            k = str(key).upper()[:8]
            if isinstance(value, (bool, np.bool_)):
                value = bool(value)
            elif isinstance(value, (int, float, np.integer, np.floating)):
                value = value.item() if hasattr(value, "item") else value
            else:
                value = str(value)[:68]
            header[k] = value

    def _fits_hdus(self):
        """The file as astropy builds it (the reference ``fits_bytes`` is tested against)."""
        from astropy.io import fits

        wave, flux, ivar = self._columns()
        cols = [
            fits.Column(name="WAVELENGTH", format="D", unit="Angstrom", array=wave),
            fits.Column(name="FLUX", format="E", unit=self.flux_unit or None, array=flux),
            fits.Column(name="IVAR", format="E", array=ivar),
        ]
        hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
        self._meta_cards(hdu.header)
        return fits.HDUList([fits.PrimaryHDU(), hdu])


_BLOCK = 2880  # FITS block size: headers pad with blanks, data with zeros, to a multiple of it
# Keys the table's own structure uses: metadata naming one of them is left to astropy.
_STRUCTURAL = re.compile(
    r"^(SIMPLE|EXTEND|XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|T[A-Z]{3,4}\d+|EXTNAME|"
    r"EXTVER|EXTLEVEL|THEAP|CHECKSUM|DATASUM|END|COMMENT|HISTORY|CONTINUE|HIERARCH|)$")


_PLAIN_KEY = re.compile(r"[A-Z0-9_-]{1,8}")
_QUOTE = "'"


def card_image(keyword: str, value, comment: str = "") -> str:
    """The 80 characters astropy's ``fits.Card(keyword, value, comment).image`` gives, for
    the plain cases (a standard keyword; a bool, int, finite float or printable-ASCII string
    that fits on one card), made here without building a ``Card`` (a tenth of its cost);
    anything else is astropy's ``Card``. Tested card for card against astropy."""
    if _PLAIN_KEY.fullmatch(keyword):
        if isinstance(value, bool):
            field = f"{'T' if value else 'F':>20}"
        elif isinstance(value, int):
            field = f"{value:>20d}"
        elif isinstance(value, float) and np.isfinite(value):
            field = f"{_card_float(value):>20}"
        elif isinstance(value, str) and value.isascii() and value.isprintable():
            quoted = "'" + f"{value.replace(_QUOTE, _QUOTE * 2):8}" + "'" if value else "''"
            field = f"{quoted:20}" if value else quoted
        else:
            field = None
        if field is not None:
            image = f"{keyword:8}= {field}" + (f" / {comment}" if comment else "")
            if len(image) <= 80 and (not comment or comment.isascii() and comment.isprintable()):
                return f"{image:80}"
    from astropy.io import fits

    return fits.Card(keyword, value, comment).image


def _card_float(value: float) -> str:
    """astropy's float format on a card: ``str``, 'E' exponent, at most 20 characters."""
    text = str(value).replace("e", "E")
    if len(text) > 20:
        at = text.find("E")
        text = text[:20] if at < 0 else text[:20 - (len(text) - at)] + text[at:]
    return text


@lru_cache(maxsize=64)
def _table_cards(flux_unit: str) -> tuple[str, str]:
    """The card images of the table's structure before and after NAXIS2 (the row count)."""
    from astropy.io import fits

    header = fits.BinTableHDU.from_columns([
        fits.Column(name="WAVELENGTH", format="D", unit="Angstrom", array=np.zeros(1)),
        fits.Column(name="FLUX", format="E", unit=flux_unit or None, array=np.zeros(1)),
        fits.Column(name="IVAR", format="E", array=np.zeros(1))], name="SPECTRUM").header
    images = [c.image for c in header.cards]
    at = [c.keyword for c in header.cards].index("NAXIS2")
    return "".join(images[:at]), "".join(images[at + 1:])


@lru_cache(maxsize=1)
def _primary_header() -> bytes:
    from astropy.io import fits

    return fits.PrimaryHDU().header.tostring().encode("ascii")


# The common grid every spectrum is resampled to before encoding: log-linear in wavelength
# (a redshift is a shift on it), 3600-10400 Angstrom covers SDSS/DESI optical spectra.
GRID_MIN_AA = 3600.0
GRID_MAX_AA = 10400.0
GRID_PIXELS = 1024


def common_log_grid(n: int = GRID_PIXELS, lo: float = GRID_MIN_AA, hi: float = GRID_MAX_AA) -> u.Quantity:
    return np.exp(np.linspace(np.log(lo), np.log(hi), n)) * u.AA
