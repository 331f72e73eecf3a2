"""FITS ingest throughput: files per second of ``ingest_folder`` on a folder of FITS images
and spectra, against plain ``astropy.io.fits.getdata`` over the same files in the same run
(the floor: opening each file and reading its pixels, nothing else).

Ingest runs as a user gets it (``workers_default``: a worker process per CPU not wholly
busy), with a worker per CPU, and with 1 worker process; its CPU figures count the workers'
CPU too. The target (issue 12) is ingest's files/s at >= 0.5x getdata's; both the wall and
the CPU ratio are reported.

Also timed: the readers alone (sniff + read_image/read_spectrum on the one opened file, as
ingest reads, no writing), and the CPU time of each stage of building the dataset on the
files already read (writing a spectrum's FITS table, copying the science file), which says
where the time beyond reading goes; and, for scale, what a display PNG of an image costs
(ingest no longer renders one: an image is shown from its FITS when first asked for).

    python benchmarks/ingest_throughput.py            # 300 files, writes results/ingest_throughput.json
    python benchmarks/ingest_throughput.py --n 60     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

RESULTS = Path(__file__).resolve().parent / "results" / "ingest_throughput.json"


def make_folder(folder: Path, n: int, image_size: int, seed: int = 0) -> dict:
    """n FITS files: half images (image_size^2 float32 with a WCS), half spectra (SDSS
    loglam tables and IRAF 1-D log-linear images, alternately); each image has a spectrum
    of the same object 1" away, so grouping has real work to do."""
    rng = np.random.default_rng(seed)
    n_images = n // 2
    counts = {"images": 0, "spectra": 0}
    y, x = np.mgrid[:image_size, :image_size]
    c = (image_size - 1) / 2
    blob = 800 * np.exp(-(((x - c) / (image_size / 12)) ** 2 + ((y - c) / (image_size / 20)) ** 2))
    loglam = 3.5798 + 1e-4 * np.arange(3800)
    wave = 10**loglam
    base = 1e4 / (wave / 5000) ** 2 * (1 - 0.5 * np.exp(-0.5 * ((wave - 6562.8) / 4) ** 2))
    for i in range(n):
        obj = i % n_images
        ra, dec = (obj * 2.3) % 360, -60 + (obj * 0.77) % 120
        if i < n_images:
            w = WCS(naxis=2)
            w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
            w.wcs.crval = [ra, dec]
            w.wcs.crpix = [c + 1, c + 1]
            w.wcs.cdelt = [-1 / 3600, 1 / 3600]
            h = w.to_header()
            h["OBJECT"] = f"OBJ {obj}"
            data = (blob + 50 + rng.normal(0, 3, blob.shape)).astype(np.float32)
            fits.PrimaryHDU(data, header=h).writeto(folder / f"img_{i:04d}.fits")
            counts["images"] += 1
            continue
        flux = (base * (1 + 0.02 * rng.normal(size=base.shape))).astype(np.float32)
        ra_s = ra + 1 / 3600 / np.cos(np.radians(dec))
        if i % 2:
            table = fits.BinTableHDU.from_columns([
                fits.Column(name="flux", format="E", array=flux),
                fits.Column(name="loglam", format="E", array=loglam),
                fits.Column(name="ivar", format="E", array=np.full(flux.shape, 25.0, np.float32))],
                name="COADD")
            specobj = fits.BinTableHDU.from_columns([
                fits.Column(name="PLUG_RA", format="D", array=[ra_s]),
                fits.Column(name="PLUG_DEC", format="D", array=[dec])], name="SPECOBJ")
            fits.HDUList([fits.PrimaryHDU(), table, specobj]).writeto(folder / f"spec_{i:04d}.fits")
        else:
            h = fits.Header()
            h["CRVAL1"], h["CD1_1"], h["CRPIX1"], h["DC-FLAG"] = loglam[0], 1e-4, 1, 1
            h["CTYPE1"], h["OBJECT"], h["RADEG"], h["DECDEG"] = "LINEAR", f"OBJ {obj}", ra_s, dec
            fits.PrimaryHDU(flux, header=h).writeto(folder / f"spec_{i:04d}.fits")
        counts["spectra"] += 1
    return counts


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (ingest's workers
    are joined before ingest_folder returns, so theirs count)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(func, *args):
    """(wall seconds, CPU seconds of this process and its worker processes): on a shared
    machine the CPU time is the steadier figure; the wall time is what a user waits."""
    t0, c0 = time.perf_counter(), _cpu()
    func(*args)
    return time.perf_counter() - t0, _cpu() - c0


def getdata_all_hdus(files) -> None:
    for f in files:
        with fits.open(f, memmap=False) as hdul:  # every HDU's data, as getdata does for one
            for hdu in hdul:
                _ = hdu.data


def getdata(files) -> None:
    for f in files:
        fits.getdata(f)


def read_one(f):
    """What ingest does to read a file: sniff it, and read it from the one opened HDUList."""
    from astrovlm.data.readers import read_image, read_spectrum, sniffed

    with sniffed(f) as found:
        reader = read_image if found.kind == "image" else read_spectrum
        return reader(f, hdul=found.hdul)


def readers_only(files) -> None:
    for f in files:
        read_one(f)


def stage_cpu_ms(files, out: Path) -> dict:
    """CPU ms per file of each stage ingest runs after reading, on the files already read."""
    from astrovlm.data.readers import Cutout
    from astrovlm.viz import write_png

    read = [read_one(f) for f in files]
    cutouts = [(f, r) for f, r in zip(files, read) if isinstance(r, Cutout)]
    spectra = [r for r in read if not isinstance(r, Cutout)]

    def render():  # what a display rendering costs (the app's previews make it when shown)
        for _, c in cutouts:
            rgb = c.to_rgb()
            write_png(rgb[..., 0] if c.n_bands == 1 else rgb, out / "r.png", level=1)

    def stretch():
        for _, c in cutouts:
            c.to_rgb()

    def write_spectra():
        for s in spectra:
            s.to_fits(out / "s.fits")

    def copy():
        import shutil

        for f, _ in cutouts:
            shutil.copy2(f, out / "c.fits")

    per = {}
    for name, func, n in (("read", lambda: readers_only(files), len(files)),
                          ("display_png_not_at_ingest", render, len(cutouts)),
                          ("of_which_stretch", stretch, len(cutouts)),
                          ("write_spectrum_fits", write_spectra, len(spectra)),
                          ("copy_science_file", copy, len(cutouts))):
        per[f"stage_cpu_ms_{name}"] = round(1000 * timed(func)[1] / max(n, 1), 2)
    return per


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=300, help="number of FITS files (default 300)")
    p.add_argument("--image-size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is kept")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    from astrovlm.data.ingest import cpus, ingest_folder, workers_default

    default_workers = workers_default()  # before the runs add to the load average

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "fits"
        folder.mkdir()
        counts = make_folder(folder, args.n, args.image_size)
        files = sorted(folder.iterdir())
        getdata(files[:10])  # warm the file cache and imports for every contender
        readers_only(files[:10])
        keys = ("getdata", "getdata_all_hdus", "readers", "ingest", "ingest_all_cpus",
                "ingest_1_worker")
        best = {k: (np.inf, np.inf) for k in keys}
        report = {}

        def ingest(workers=None):
            report.update(ingest_folder(folder, Path(tmp) / "dataset", progress=False,
                                        workers=workers))

        for _ in range(args.repeats):
            for key, func in (("getdata", lambda: getdata(files)),
                              ("getdata_all_hdus", lambda: getdata_all_hdus(files)),
                              ("readers", lambda: readers_only(files)),
                              ("ingest", lambda: ingest(default_workers)),
                              ("ingest_all_cpus", lambda: ingest(cpus())),
                              ("ingest_1_worker", lambda: ingest(1))):
                wall, cpu = timed(func)
                best[key] = (min(best[key][0], wall), min(best[key][1], cpu))
        assert report["ok"] == len(files) and not report["bad"], report["bad"][:3]
        (Path(tmp) / "stages").mkdir()
        stages = stage_cpu_ms(files, Path(tmp) / "stages")
    n = len(files)
    result = {
        "ingest_files_per_s": round(n / best["ingest"][0], 2),
        "ingest_vs_getdata_wall": round(best["getdata"][0] / best["ingest"][0], 3),
        "ingest_vs_getdata_cpu": round(best["getdata"][1] / best["ingest"][1], 3),
        "ingest_workers": default_workers,
        "ingest_all_cpus_files_per_s": round(n / best["ingest_all_cpus"][0], 2),
        "ingest_all_cpus_cpu_files_per_s": round(n / best["ingest_all_cpus"][1], 2),
        "ingest_all_cpus_vs_getdata_wall": round(best["getdata"][0] / best["ingest_all_cpus"][0], 3),
        "ingest_1_worker_files_per_s": round(n / best["ingest_1_worker"][0], 2),
        "ingest_1_worker_cpu_files_per_s": round(n / best["ingest_1_worker"][1], 2),
        "ingest_1_worker_vs_getdata_wall": round(best["getdata"][0] / best["ingest_1_worker"][0], 3),
        "readers_files_per_s": round(n / best["readers"][0], 2),
        "getdata_files_per_s": round(n / best["getdata"][0], 2),
        "getdata_all_hdus_files_per_s": round(n / best["getdata_all_hdus"][0], 2),
        "ingest_overhead_vs_getdata": round(best["ingest"][0] / best["getdata"][0], 2),
        "ingest_cpu_files_per_s": round(n / best["ingest"][1], 2),
        "readers_cpu_files_per_s": round(n / best["readers"][1], 2),
        "getdata_cpu_files_per_s": round(n / best["getdata"][1], 2),
        "ingest_seconds": round(best["ingest"][0], 3),
        "ingest_cpu_ms_per_file": round(1000 * best["ingest"][1] / n, 2),
        "ingest_1_worker_cpu_ms_per_file": round(1000 * best["ingest_1_worker"][1] / n, 2),
        "getdata_cpu_ms_per_file": round(1000 * best["getdata"][1] / n, 2),
        **stages,
        "images": counts["images"], "spectra": counts["spectra"],
        "objects": report["objects"], "image_side_px": args.image_size,
        "repeats": args.repeats, "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(), "n": n,
        "command": " ".join(["python benchmarks/ingest_throughput.py", *(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(f"{n} FITS files ({counts['images']} images {args.image_size}x{args.image_size}, "
          f"{counts['spectra']} spectra), best of {args.repeats}:")
    print(f"{'':26s}{'wall':>12s}{'CPU':>12s}")
    print(f"  astrovlm ingest_folder  {result['ingest_files_per_s']:8.1f} f/s "
          f"{result['ingest_cpu_files_per_s']:8.1f} f/s  ({result['objects']} objects, "
          f"workers_default() = {result['ingest_workers']}; CPU of all processes)")
    print(f"    ... {cpus()} workers        {result['ingest_all_cpus_files_per_s']:8.1f} f/s "
          f"{result['ingest_all_cpus_cpu_files_per_s']:8.1f} f/s  (one per CPU)")
    print(f"    ... with 1 worker     {result['ingest_1_worker_files_per_s']:8.1f} f/s "
          f"{result['ingest_1_worker_cpu_files_per_s']:8.1f} f/s  (one worker process)")
    print(f"  astrovlm readers only   {result['readers_files_per_s']:8.1f} f/s "
          f"{result['readers_cpu_files_per_s']:8.1f} f/s  (sniff + read + checks on one open, no writing)")
    print(f"  fits.getdata (baseline) {result['getdata_files_per_s']:8.1f} f/s "
          f"{result['getdata_cpu_files_per_s']:8.1f} f/s  (first data HDU only)")
    print(f"  fits.open, all HDUs     {result['getdata_all_hdus_files_per_s']:8.1f} f/s")
    print(f"  ingest rate / getdata rate: {result['ingest_vs_getdata_wall']} wall "
          f"({result['ingest_all_cpus_vs_getdata_wall']} with {cpus()} workers, "
          f"{result['ingest_1_worker_vs_getdata_wall']} with 1), "
          f"{result['ingest_vs_getdata_cpu']} CPU (target 0.5; load average "
          f"{result['load_average_1min']} on {result['cpu_count']} CPUs)")
    print(f"  ingest CPU per file {result['ingest_cpu_ms_per_file']} ms, with 1 worker "
          f"{result['ingest_1_worker_cpu_ms_per_file']} ms (getdata "
          f"{result['getdata_cpu_ms_per_file']} ms); its stages, CPU ms:")
    for key, value in stages.items():
        print(f"    {key.removeprefix('stage_cpu_ms_'):22s} {value:7.2f}  "
              f"per {'file' if key.endswith('read') else 'spectrum' if 'spectrum' in key else 'image'}")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
