"""``ingest_folder``: a user's mixed folder becomes a dataset; bad files are reported, not fatal;
an interrupted ingest leaves the previous dataset as it was."""

from __future__ import annotations

import json

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from astrovlm.data import ingest as ingest_module
from astrovlm.data.ingest import ingest_folder
from astrovlm.data.readers import read_image, read_spectrum
from astrovlm.data.records import SkyDataset
from astrovlm.errors import AstroVLMError
from fits_fixtures import (
    DEC0, RA0, catalog_table, make_image, make_png, make_sdss_table, make_sdss_template)

NGC4565 = (189.0866, 25.9876)


def mixed_folder(root):
    """M51: a FITS image (WCS) and an SDSS spectrum 2" away; a catalog naming it; notes.
    NGC 4565: a spectrum found only by its OBJECT keyword and RA/DEC header.
    A PNG with no position. Four bad files."""
    root.mkdir()
    (root / "m51").mkdir()
    make_image(root / "m51" / "m51_r.fits", obj="M51")
    make_sdss_table(root / "m51" / "spec-m51.fits", z=0.0015, ra=RA0 + 2 / 3600, dec=DEC0)
    catalog_table().write(root / "targets.vot", format="votable")
    (root / "M51.md").write_text("# The Whirlpool\n\nM51 is a grand-design spiral.\n\n"
                                 "Its companion is NGC 5195.\n")
    tmpl = make_sdss_template(root / "edge_on.fits")
    with fits.open(tmpl, mode="update") as h:
        for key in ("RAOBJ", "DECOBJ", "RA", "DEC"):
            del h[0].header[key]
        h[0].header["OBJECT"] = "NGC 4565"
        h[0].header["RADEG"], h[0].header["DECDEG"] = NGC4565
    make_png(root / "sketch.png")
    # bad files
    (root / "empty.fits").write_bytes(b"")
    (root / "corrupt.fits").write_bytes(b"SIMPLE  = garbage" + bytes(3000))
    Table({"WAVELENGTH": np.linspace(4000, 7000, 100) * u.AA,
           "FLUX": np.full(100, np.nan)}).write(root / "allnan.fits")
    (root / "blob.bin").write_bytes(bytes(range(256)) * 8)
    (root / ".hidden.fits").write_bytes(b"")  # hidden files are not the user's data
    return root


def test_mixed_folder_with_bad_files(tmp_path):
    folder = mixed_folder(tmp_path / "mydata")
    out = tmp_path / "dataset"
    report = ingest_folder(folder, out, radius=5 * u.arcsec, progress=False)

    assert report["ok"] == 6
    assert {b["path"] for b in report["bad"]} == {"empty.fits", "corrupt.fits", "allnan.fits",
                                                  "blob.bin"}
    errors = {b["path"]: b["error"] for b in report["bad"]}
    assert "empty" in errors["empty.fits"] and "NaN" in errors["allnan.fits"]
    assert "unknown file type" in errors["blob.bin"]
    assert all(b["path"] in b["error"] for b in report["bad"])  # each names its file
    assert (report["images"], report["spectra"], report["catalogs"], report["texts"]) == (2, 2, 1, 1)

    ds = SkyDataset(out)
    assert len(ds.images) == 2 and len(ds.spectra) == 2 and len(ds.objects) == 3
    by_source = {r.source: r for r in ds.images + ds.spectra}
    img = by_source["user file: m51/m51_r.fits"]
    spec = by_source["user file: m51/spec-m51.fits"]
    assert img.object_id == spec.object_id  # 2" apart: the same object
    m51 = ds.object(img.object_id)
    assert m51.name == "M51" and m51.otype == "galaxy" and m51.coarse_class == "galaxy"
    assert m51.redshift == pytest.approx(0.0015, rel=1e-4)
    assert m51.ra_deg == pytest.approx(RA0 + 2 / 3600, abs=1e-6)  # the fibre, not the image centre
    assert "named by catalog tables/targets.parquet" in m51.notes

    edge_on = ds.object(by_source["user file: edge_on.fits"].object_id)
    assert edge_on.name == "NGC 4565" and edge_on.ra_deg == pytest.approx(NGC4565[0])
    sketch = ds.object(by_source["user file: sketch.png"].object_id)
    assert sketch.name == "sketch" and sketch.ra_deg is None and "position unknown" in sketch.notes

    # the files landed and read back
    assert img.path.endswith(".fits")  # the file itself; its display is made when shown
    assert read_image(ds.path(img.path)).data.shape == (64, 80)
    assert ds.path(img.path).read_bytes() == (folder / "m51" / "m51_r.fits").read_bytes()
    back = read_spectrum(ds.path(spec.path))
    assert back.meta["ORIGFILE"] == "spec-m51.fits" and len(back) == 2000
    assert spec.spectral_class == "galaxy" and not spec.simulated
    assert Table.read(out / "tables" / "targets.parquet")["name"][0] == "M51"
    assert [p.object_id for p in ds.passages] == [m51.object_id]
    assert ds.passages[0].title == "The Whirlpool"

    assert {r.split for r in ds.objects + ds.images + ds.spectra + ds.passages} == {"train"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["objects"] == 3 and manifest["content_hash"].startswith("sha256:")
    assert json.loads((out / "summary.json").read_text())["ok"] == 6


def test_radius_decides_what_is_one_object(tmp_path):
    folder = tmp_path / "pair"
    folder.mkdir()
    make_sdss_table(folder / "a.fits", ra=RA0, dec=DEC0)
    make_sdss_table(folder / "b.fits", ra=RA0 + 3 / 3600, dec=DEC0)  # 2.0" apart at Dec 47
    wide = ingest_folder(folder, tmp_path / "wide", radius=5 * u.arcsec, progress=False)
    narrow = ingest_folder(folder, tmp_path / "narrow", radius=1 * u.arcsec, progress=False)
    assert (wide["objects"], narrow["objects"]) == (1, 2)
    with pytest.raises(AstroVLMError, match="angle Quantity"):
        ingest_folder(folder, tmp_path / "bad", radius=5, progress=False)
    with pytest.raises(AstroVLMError, match="angle"):
        ingest_folder(folder, tmp_path / "bad", radius=5 * u.kpc, progress=False)


def test_interrupted_ingest_leaves_previous_dataset_intact(tmp_path, monkeypatch):
    first = tmp_path / "first"
    first.mkdir()
    make_image(first / "m51.fits")
    out = tmp_path / "dataset"
    ingest_folder(first, out, progress=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    second = tmp_path / "second"
    second.mkdir()
    make_image(second / "a.fits")
    make_sdss_table(second / "b.fits")
    make_image(second / "c.fits")

    def interrupted(path, *args, **kwargs):  # the user presses Ctrl-C during the spectrum
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_module, "read_spectrum", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest_folder(second, out, progress=False)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not list(tmp_path.glob(".dataset.tmp-*"))  # no half-built folder left behind


def test_folder_of_only_bad_files_keeps_previous_dataset(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    make_image(good / "m51.fits")
    out = tmp_path / "dataset"
    ingest_folder(good, out, progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.fits").write_bytes(b"")
    with pytest.raises(AstroVLMError, match="no readable files"):
        ingest_folder(bad, out, progress=False)
    assert len(SkyDataset(out).images) == 1


def test_output_inside_input_is_skipped_and_input_must_be_a_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    make_image(folder / "m51.fits")
    report = ingest_folder(folder, folder / "ingested", progress=False)
    again = ingest_folder(folder, folder / "ingested", progress=False)  # does not eat itself
    assert report["images"] == again["images"] == 1
    with pytest.raises(AstroVLMError, match="not a folder"):
        ingest_folder(folder / "m51.fits", tmp_path / "x", progress=False)
    with pytest.raises(AstroVLMError, match="must not be the input folder"):
        ingest_folder(folder, folder, progress=False)


def test_worker_processes_make_the_same_dataset(tmp_path, monkeypatch):
    """Files read in worker processes land under the same ids, in the same order, with the same
    bytes; a bad file is reported as it is without them."""
    folder = mixed_folder(tmp_path / "mydata")
    for k in range(3):  # more images, so that the pool has chunks to hand out
        make_image(folder / f"extra_{k}.fits", obj=f"NGC {100 + k}")
    monkeypatch.setattr(ingest_module, "POOL_MIN_FILES", 1)
    serial = ingest_folder(folder, tmp_path / "one", progress=False, workers=1)
    pooled = ingest_folder(folder, tmp_path / "two", progress=False, workers=2)
    drop = ("seconds", "out")
    assert {k: v for k, v in serial.items() if k not in drop} == \
        {k: v for k, v in pooled.items() if k not in drop}

    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and p.name not in ("manifest.json", "summary.json")}

    one, two = files(tmp_path / "one"), files(tmp_path / "two")
    listing = sorted(p for p in folder.rglob("*") if p.is_file())  # a record's number is its file's place
    k = listing.index(folder / "extra_0.fits")
    assert one == two and f"images/USER-IMG-{k + 1:04d}.fits" in one
    assert sorted(name for name in two if name.startswith(("images/", "spectra/"))) == sorted(
        json.loads(line)["path"] for name in ("images.jsonl", "spectra.jsonl")
        for line in (tmp_path / "two" / name).open())
    with pytest.raises(AstroVLMError, match="workers"):
        ingest_folder(folder, tmp_path / "x", progress=False, workers=0)
