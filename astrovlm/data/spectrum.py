"""The ``Spectrum`` record: wavelengths with units, flux, inverse variance, a mask.

Every spectrum in astrovlm (a user's FITS file, a real template, a simulated variant) is
held as a ``Spectrum`` and written as a FITS binary table with columns WAVELENGTH
[Angstrom], FLUX and IVAR, so that astropy's ``Table.read`` opens it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
        """True where a pixel is usable: finite flux and positive (or unknown) ivar."""
        good = np.isfinite(self.flux) & np.isfinite(self.wavelength.value)
        if self.ivar is not None:
            good &= np.isfinite(self.ivar) & (self.ivar > 0)
        return good

    def __len__(self) -> int:
        return len(self.flux)

    def to_fits(self, path: str | Path) -> None:
        """Write as a FITS binary table (write to a temp name, then rename)."""
        import os

        from astropy.io import fits

        path = Path(path)
        ivar = self.ivar if self.ivar is not None else np.ones_like(self.flux)
        cols = [
            fits.Column(name="WAVELENGTH", format="D", unit="Angstrom", array=self.wavelength.value),
            fits.Column(name="FLUX", format="E", unit=self.flux_unit or None, array=self.flux),
            fits.Column(name="IVAR", format="E", array=ivar),
        ]
        hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
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
            hdu.header[k] = value
        tmp = path.with_name(f".{path.name}.tmp")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, overwrite=True)
        os.replace(tmp, path)


# The common grid every spectrum is resampled to before encoding: log-linear in wavelength
# (a redshift is a shift on it), 3600-10400 Angstrom covers SDSS/DESI optical spectra.
GRID_MIN_AA = 3600.0
GRID_MAX_AA = 10400.0
GRID_PIXELS = 1024


def common_log_grid(n: int = GRID_PIXELS, lo: float = GRID_MIN_AA, hi: float = GRID_MAX_AA) -> u.Quantity:
    return np.exp(np.linspace(np.log(lo), np.log(hi), n)) * u.AA
