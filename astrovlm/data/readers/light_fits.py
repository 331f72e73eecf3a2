"""A plain FITS file opened from what the structure check already read, without astropy's
HDU machinery where it is not needed.

``fits.open`` builds an HDU object per extension (class look-up over every HDU subclass,
header verification, the EXTEND bookkeeping): 0.3-0.7 ms a file, ten times what parsing
the same headers costs, and most of what ingest spent per file beyond reading the pixels.
``check_fits_structure`` walks every header anyway (byte offsets, structural cards), so
``LightHDUList`` keeps those spans and gives each HDU

- ``header``: an astropy ``Header`` made from the header's bytes (``Header.fromstring``),
  its values also read by ``header_values`` for the readers' look-ups;
- ``name``, ``kind`` (``"image"``, ``"bintable"``, ``"table"``) and ``shape``;
- ``data``: an unscaled image's pixels straight from the file (``np.fromfile``); anything
  astropy must interpret (BSCALE/BZERO, tables as FITS_rec) from astropy's own HDU, opened
  on first need (``astropy_hdu``).

Only files whose every HDU is a plain image or table are opened this way; tile-compressed
images, random groups and gzip files go to ``fits.open`` as before.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from astrovlm.data.readers.fits_structure import HDUSpan
from astrovlm.data.readers.header_values import ASK_ASTROPY, HeaderValues

_UNREAD = object()
_KINDS = {"": "image", "IMAGE": "image", "BINTABLE": "bintable", "TABLE": "table"}
_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def can_open_light(spans: list[HDUSpan] | None) -> bool:
    """Every HDU a plain image or table (no tile compression, no random groups)."""
    if not spans:
        return False
    for span in spans:
        cards = span.cards
        if cards.get("XTENSION", "").upper() not in _KINDS or cards.get("ZIMAGE", "").upper() == "T":
            return False
        if span.index == 0 and cards.get("GROUPS", "").upper() == "T":
            return False
    return True


class LightHDUList:
    """The HDUs of a plain FITS file, by index or EXTNAME, as ``fits.open`` gives them to the
    readers (``hdul[i]`` raising IndexError past the last, ``len``, iteration, ``close``)."""

    def __init__(self, path: Path, spans: list[HDUSpan]):
        self.path = Path(path)
        self._hdus = [LightHDU(self, span) for span in spans]
        self._astropy = None

    def __len__(self) -> int:
        return len(self._hdus)

    def __iter__(self):
        return iter(self._hdus)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self._hdus[key]
        if isinstance(key, str):
            for hdu in self._hdus:
                if hdu.name.upper() == key.strip().upper():
                    return hdu
            raise KeyError(f"Extension {key!r} not found.")
        return self.astropy()[key]  # (EXTNAME, EXTVER) and the like: astropy's rules

    def astropy(self):
        """The file as ``fits.open`` gives it, opened on first need and closed with this."""
        if self._astropy is None:
            from astropy.io import fits

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._astropy = fits.open(self.path, memmap=False, lazy_load_hdus=True)
        return self._astropy

    def close(self) -> None:
        if self._astropy is not None:
            self._astropy.close()
            self._astropy = None

    def __enter__(self) -> "LightHDUList":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LightHDU:
    """One HDU of a ``LightHDUList`` (see the module docstring)."""

    def __init__(self, owner: LightHDUList, span: HDUSpan):
        from astropy.io import fits

        self._owner, self.span = owner, span
        self.kind = _KINDS[span.cards.get("XTENSION", "").upper()]
        self.values = HeaderValues(span.raw)
        self._header = None
        self._data = _UNREAD
        # what _common keeps on an astropy HDU, known here already
        self._astrovlm_raw_header = span.raw
        self._fits = fits

    @property
    def header(self):
        if self._header is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # as fits.open: IRAF cards warn
                self._header = self._fits.Header.fromstring(self.span.raw)
            self._header.__dict__["_astrovlm_values"] = self.values
        return self._header

    @property
    def name(self) -> str:
        value = self.values.get("EXTNAME")
        if value is ASK_ASTROPY:
            value = self.header.get("EXTNAME")
        if value is None:
            return "PRIMARY" if self.span.index == 0 else ""
        return str(value)

    def file_span(self) -> tuple[str, int, int]:
        return str(self._owner.path), self.span.header_at, self.span.data_at

    def astropy_hdu(self):
        """This HDU as astropy's own object (for tables and scaled images)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._owner.astropy()[self.span.index]

    @property
    def columns(self):
        return self.astropy_hdu().columns

    @property
    def data(self):
        if self._data is _UNREAD:
            pixels = self._image_pixels() if self.kind == "image" else ASK_ASTROPY
            self._data = self.astropy_hdu().data if pixels is ASK_ASTROPY else pixels
        return self._data

    def _image_pixels(self):
        """The pixels of an unscaled image as the file holds them (big-endian, FITS axes
        reversed), or ASK_ASTROPY where astropy must scale them."""
        cards = self.span.cards
        bitpix, naxis = int(cards["BITPIX"]), int(cards["NAXIS"])
        if naxis == 0 or self.span.data_bytes == 0:
            return None
        for key, plain in (("BSCALE", 1), ("BZERO", 0)):
            value = self.values.get(key, as_written=True)
            if value is ASK_ASTROPY or (value is not None and value != plain):
                return ASK_ASTROPY
        if int(cards.get("PCOUNT", 0) or 0) or int(cards.get("GCOUNT", 1) or 1) != 1:
            return ASK_ASTROPY
        shape = tuple(int(cards[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
        with open(self._owner.path, "rb") as fh:
            fh.seek(self.span.data_at)
            pixels = np.fromfile(fh, dtype=_DTYPES[bitpix], count=int(np.prod(shape)))
        if pixels.size != int(np.prod(shape)):
            return ASK_ASTROPY  # short: astropy's error says so
        return pixels.reshape(shape)
