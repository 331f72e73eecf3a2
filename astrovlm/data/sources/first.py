"""FIRST radio-galaxy images: 2,158 real VLA FIRST cutouts (300x300) in four morphology
classes (FRI, FRII, compact, bent), from PyPI ``firstgalaxydata==0.2.1`` (Griese et al. 2023,
Data in Brief 47, 108974). Labels, positions and the package's own train/valid/test split
(``Split_literature``) are read from its HDF5 file; we never import the package.

**Licence: scholarly, educational and private non-commercial use only** (FIRST, (c) 1994
University of California). The images are fetched at set-up into the cache and must never
be committed or redistributed; ``manifest_entry()`` says so for the dataset's manifest.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrovlm.data.sources import pypi
from astrovlm.errors import NotFoundError, UnreadableError

log = logging.getLogger(__name__)

CLASSES = {0: "FRI", 1: "FRII", 2: "compact", 3: "bent"}  # the package's class_dict
CREDIT = ("FIRST survey (Becker, White & Helfand 1995; the FIRST project team); labels and splits "
          "from Griese et al. 2023 (firstgalaxydata 0.2.1; MiraBest, Capetti et al., Gendre et al., ...)")
LICENSE = ("scholarly, educational and private non-commercial use only (FIRST, (c) 1994 University "
           "of California): fetched at set-up, never committed or redistributed")
SOURCE = "FIRST radio galaxies (PyPI firstgalaxydata==0.2.1)"
_ARCHIVE, _H5 = "galaxy_data_h5.zip", "galaxy_data_h5.h5"


@dataclass
class FirstImage:
    """One FIRST cutout and its label (real; 8-bit as the package stores it)."""

    image_id: str               # "first:data_N" (the HDF5 group)
    key: str                    # the HDF5 group, e.g. "data_17"
    ra_deg: float               # ICRS J2000, of the source
    dec_deg: float
    label: str                  # FRI, FRII, compact, bent
    split: str                  # the package's split: train, valid, test
    catalog: str                # where the label comes from, e.g. "MiraBest"
    file: str                   # the image's name in the original catalogue
    path: str                   # the HDF5 file in the cache
    credit: str = CREDIT
    license: str = LICENSE
    source: str = SOURCE
    simulated: bool = False
    reserved: str = ""


def h5_path(*, progress: bool = True) -> Path:
    """The HDF5 file, unzipped once from the wheel into the cache (201 MB)."""
    root = pypi.package_root("firstgalaxydata", progress=progress) / "firstgalaxydata"
    out = root / _H5
    if out.exists():
        return out
    archive = root / _ARCHIVE
    if not archive.exists():
        raise NotFoundError(f"no {_ARCHIVE} in the firstgalaxydata wheel", path=root)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(_H5) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        tmp.unlink(missing_ok=True)
        raise UnreadableError(f"cannot unzip {_H5} ({exc})", path=archive) from None
    os.replace(tmp, out)
    return out


def read_catalog(*, progress: bool = True, exclude=frozenset()) -> list[FirstImage]:
    h5py = _h5py()
    path = h5_path(progress=progress)
    out = []
    try:
        with h5py.File(path, "r") as f:
            for key in sorted(f.keys(), key=lambda k: int(k.split("_")[-1])):
                if f"first:{key}" in exclude:
                    continue
                img = f[key]["Img"]
                out.append(FirstImage(
                    image_id=f"first:{key}", key=key, ra_deg=float(img.attrs["RA"]),
                    dec_deg=float(img.attrs["DEC"]),
                    label=CLASSES[int(np.asarray(f[key]["Label_literature"]))],
                    split=f[key]["Split_literature"].asstr()[()], catalog=str(img.attrs.get("Source", "")),
                    file=str(img.attrs.get("Filepath_literature", "")), path=str(path)))
    except (OSError, KeyError, ValueError) as exc:
        raise UnreadableError(f"not the firstgalaxydata HDF5 file ({exc})", path=path) from None
    return out


def for_training(*, progress: bool = True, exclude=None) -> list[FirstImage]:
    """What training or tuning may use: never the outside set (by default the committed one,
    which holds every image of the package's own test split)."""
    if exclude is None:
        from astrovlm.data.sources.outside import load_outside_ids
        exclude = load_outside_ids()
    return [r for r in read_catalog(progress=progress, exclude=exclude) if not r.reserved]


def read_image(rec: FirstImage) -> np.ma.MaskedArray:
    """The cutout as float32, NaN (blank) pixels masked."""
    h5py = _h5py()
    try:
        with h5py.File(rec.path, "r") as f:
            data = np.asarray(f[rec.key]["Img"][()], dtype=np.float32)
    except (OSError, KeyError) as exc:
        raise UnreadableError(f"cannot read image {rec.key} ({exc})", path=rec.path) from None
    return np.ma.masked_invalid(data)


def prepare(image, crop: int = 150) -> np.ma.MaskedArray:
    """Centre crop (the sources are small) and a 1-99.5 percentile stretch to [0, 1] over the
    unblanked pixels; blanks (NaN or masked) stay masked and are filled with 0."""
    img = np.ma.masked_invalid(np.ma.asarray(image, dtype=np.float32))
    if img.ndim != 2:
        raise UnreadableError(f"expected a 2-D image, found shape {img.shape}")
    h, w = img.shape
    c = min(crop, h, w)
    y0, x0 = (h - c) // 2, (w - c) // 2
    img = img[y0:y0 + c, x0:x0 + c]
    good = img.compressed()
    if good.size == 0:
        return np.ma.masked_all(img.shape, dtype=np.float32)
    lo, hi = np.percentile(good, [1.0, 99.5])
    scaled = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    return np.ma.array(scaled.filled(0.0), mask=np.ma.getmaskarray(img), dtype=np.float32)


def to_pil(rec: FirstImage):
    """The cutout as the encoders read it: ``prepare``'s stretch, blanks at 0, an RGB image."""
    from PIL import Image

    img = prepare(read_image(rec)).filled(0.0)
    return Image.fromarray((img * 255).astype(np.uint8)).convert("RGB")


def manifest_entry(records: list[FirstImage]) -> dict:
    return {"source": SOURCE, "package": "firstgalaxydata==0.2.1 (PyPI)", "count": len(records),
            "credit": CREDIT, "license": LICENSE, "redistribute": False,
            "note": "non-commercial only: fetched at set-up into the cache, never committed"}


def _h5py():
    try:
        import h5py
    except ImportError:
        raise NotFoundError("reading FIRST images needs h5py: pip install 'astrovlm[sources]'") from None
    return h5py
