"""Readers for users' own data, on astropy: FITS images and cubes, FITS/text spectra,
catalogs (FITS, VOTable, CSV/ECSV, Parquet), PNG/JPEG, text and Markdown.

Every reader fails with an ``AstroVLMError`` (of its kind: not found, unreadable, bad
argument) that names the file and the problem. ``sniff`` says which reader a file needs,
from its content; ``sniffed`` also hands the reader what it read, so a file is opened once.
"""

from astrovlm.data.readers._common import (
    MAX_IMAGE_BANDS, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, MIN_VALID_PIXELS, header_coord)
from astrovlm.data.readers.catalog import (
    catalog_coords, find_radec_columns, read_catalog, read_table)
from astrovlm.data.readers.fits_image import Cutout, load_image, read_image
from astrovlm.data.readers.fits_spectrum import read_spectrum
from astrovlm.data.readers.plain import read_text
from astrovlm.data.readers.sniff import KINDS, Sniffed, sniff, sniffed

__all__ = [
    "Cutout", "read_image", "load_image", "read_spectrum", "read_catalog", "read_table",
    "catalog_coords", "find_radec_columns", "read_text", "sniff", "sniffed", "Sniffed", "KINDS", "header_coord",
    "MAX_IMAGE_SIDE", "MAX_IMAGE_PIXELS", "MAX_IMAGE_BANDS", "MIN_VALID_PIXELS",
]
