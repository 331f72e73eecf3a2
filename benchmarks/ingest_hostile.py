"""Ingest of a folder with ~1% hostile files among real ones (issue 15).

The folder: ``--good`` files from the test generators (``tests/fits_fixtures.py``: FITS
images with a WCS, SDSS spectra, IRAF 1-D spectra, PNGs), and among them

- ``absurd_naxis.fits``: one 2,880-byte header declaring a 10^9 x 10^9 float64 image;
- ``bomb.fits.gz``: 3.7 MB of gzip that inflates to a 30000 x 30000 float32 image (3.6 GB);
- ``passwd.txt``: a symbolic link to /etc/passwd (it must not become literature);
- ``elsewhere.fits``: a symbolic link to a good FITS file outside the folder;
- ``etc``: a symbolic link to the folder /etc;
- ``pipe.fits``: a FIFO (opening it would block forever).

What must hold: every good file is written, every bad one is listed with its reason, no link
is followed, no FIFO opened, and the peak memory (the parent's max RSS and the largest of the
workers', ``getrusage``) stays under 2 GB.

    nice -n 19 python benchmarks/ingest_hostile.py             # 300 good, writes results/ingest_hostile.json
    nice -n 19 python benchmarks/ingest_hostile.py --good 60   # quicker
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GB = 2**30


def fits_header(cards: dict) -> bytes:
    """A primary header of ``cards`` (plus END), padded to 2,880 bytes."""
    lines = [f"{k:<8}= {v:>20}".ljust(80) for k, v in cards.items()] + ["END".ljust(80)]
    text = "".join(lines)
    return (text + " " * (-len(text) % 2880)).encode("ascii")


def write_absurd_naxis(path: Path) -> Path:
    path.write_bytes(fits_header({"SIMPLE": "T", "BITPIX": -64, "NAXIS": 2,
                                  "NAXIS1": 1_000_000_000, "NAXIS2": 1_000_000_000}))
    return path


def write_gzip_bomb(path: Path, side: int = 30000) -> Path:
    """A gzipped FITS image of side^2 float32 zeros: gzip members concatenated (one header,
    then the same compressed 64 MB of zeros again and again), so it is made in a second."""
    header = fits_header({"SIMPLE": "T", "BITPIX": -32, "NAXIS": 2, "NAXIS1": side,
                          "NAXIS2": side, "OBJECT": "'bomb'"})
    data = side * side * 4
    block = 64 << 20
    zeros = gzip.compress(bytes(block), compresslevel=9)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(header))
        for _ in range(data // block):
            fh.write(zeros)
        rest = data % block + (-data % 2880)
        fh.write(gzip.compress(bytes(rest), compresslevel=9))
    return path


def make_good(folder: Path, n: int) -> dict:
    """n good files, the four kinds in turn, each at its own position."""
    from fits_fixtures import DEC0, RA0, make_image, make_png, make_sdss_table, make_wcs_1d

    counts = {"images": 0, "spectra": 0}
    for i in range(n):
        ra, dec = (RA0 + 0.5 * i) % 360, DEC0
        kind = i % 4
        sub = folder / f"night{i % 7}"
        sub.mkdir(exist_ok=True)
        if kind == 0:
            make_image(sub / f"img{i:04d}.fits", ra=ra, dec=dec, obj=f"TARGET {i}")
            counts["images"] += 1
        elif kind == 1:
            make_sdss_table(sub / f"spec{i:04d}.fits", ra=ra, dec=dec, z=0.01 + 0.001 * i)
            counts["spectra"] += 1
        elif kind == 2:
            make_wcs_1d(sub / f"star{i:04d}.fits", obj=f"HD {1000 + i}")
            counts["spectra"] += 1
        else:
            make_png(sub / f"sketch{i:04d}.png")
            counts["images"] += 1
    return counts


def make_hostile_folder(root: Path, n_good: int, bomb_side: int = 30000) -> dict:
    """The folder under ``root`` (``root/folder``; ``root/outside`` holds the link target);
    returns what it holds: counts of good files and the names of the hostile ones."""
    from fits_fixtures import make_image

    folder, outside = root / "folder", root / "outside"
    folder.mkdir(parents=True)
    outside.mkdir()
    counts = make_good(folder, n_good)
    make_image(outside / "elsewhere.fits", obj="NOT IN THE FOLDER")
    hostile = {"night0/absurd_naxis.fits": "time or memory budget",
               "night1/bomb.fits.gz": "memory budget",
               "passwd.txt": "link", "elsewhere.fits": "link", "etc": "link",
               "night2/pipe.fits": "FIFO"}
    write_absurd_naxis(folder / "night0" / "absurd_naxis.fits")
    write_gzip_bomb(folder / "night1" / "bomb.fits.gz", bomb_side)
    os.symlink("/etc/passwd", folder / "passwd.txt")
    os.symlink(outside / "elsewhere.fits", folder / "elsewhere.fits")
    os.symlink("/etc", folder / "etc")
    os.mkfifo(folder / "night2" / "pipe.fits")
    return {"folder": folder, "good": counts, "hostile": hostile}


def check(report: dict, made: dict) -> dict:
    """What must hold of the report and the dataset; returns named booleans."""
    from astrovlm.data.records import SkyDataset

    ds = SkyDataset(report["out"], verify=True)
    bad = {b["path"]: b["error"] for b in report["bad"]}
    texts = " ".join(p.text for p in ds.passages)
    sources = {r.source for r in ds.images + ds.spectra}
    return {
        "every_good_file_written": (report["images"], report["spectra"]) ==
                                   (made["good"]["images"], made["good"]["spectra"])
                                   and len(ds.images) + len(ds.spectra) == sum(made["good"].values()),
        "every_bad_file_listed": set(bad) == set(made["hostile"]),
        "no_link_followed": "root:" not in texts and not any("elsewhere" in s for s in sources)
                            and all("not followed" in bad[k] for k in ("passwd.txt", "elsewhere.fits", "etc")),
        "fifo_not_opened": "not a regular file" in bad.get("night2/pipe.fits", ""),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--good", type=int, default=300, help="good files (default 300)")
    p.add_argument("--file-timeout", type=float, default=20.0, help="per-file seconds (default 20)")
    p.add_argument("--memory-mb", type=float, default=None, help="per-file MB (default: ingest's)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: ingest's)")
    args = p.parse_args()

    from _common import write_results
    from astrovlm.data.ingest import MEMORY_MB, ingest_folder

    memory_mb = args.memory_mb or MEMORY_MB
    with tempfile.TemporaryDirectory(prefix="ingest-hostile-") as tmp:
        t0 = time.perf_counter()
        made = make_hostile_folder(Path(tmp), args.good)
        t_make = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = ingest_folder(made["folder"], Path(tmp) / "dataset", progress=False,
                               workers=args.workers, file_timeout=args.file_timeout,
                               memory_mb=memory_mb)
        seconds = time.perf_counter() - t0
        ok = check(report, made)
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    figures = {
        "good_files": sum(made["good"].values()), "hostile_files": len(made["hostile"]),
        "written_images": report["images"], "written_spectra": report["spectra"],
        **ok,
        "peak_rss_parent_gb": round(peak_self / GB, 3),
        "peak_rss_worker_gb": round(peak_child / GB, 3),
        "peak_under_2gb": max(peak_self, peak_child) < 2 * GB,
        "ingest_seconds": round(seconds, 1), "make_folder_seconds": round(t_make, 1),
        "file_timeout_s": args.file_timeout, "memory_mb": memory_mb,
        "bad": report["bad"],
    }
    write_results("ingest_hostile", figures, n=figures["good_files"] + figures["hostile_files"])
    return 0 if all(ok.values()) and figures["peak_under_2gb"] else 1


if __name__ == "__main__":
    sys.exit(main())
