"""Ingest of a folder with hostile files among good ones: every good file is written, every
hostile one is listed with its reason, no link is followed, a FIFO is never opened, and a
file over its time or memory budget costs only itself (``benchmarks/ingest_hostile.py`` is
the full run, 300 good files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from astrovlm.data.ingest import ingest_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from ingest_hostile import check, make_hostile_folder  # noqa: E402


@pytest.mark.slow
def test_hostile_files_among_good_ones(tmp_path):
    # 7000^2 float32 (49 megapixels) passes the readers' 50-megapixel limit, so it is the
    # worker's memory budget that stops it
    made = make_hostile_folder(tmp_path, n_good=36, bomb_side=7000)
    report = ingest_folder(made["folder"], tmp_path / "dataset", progress=False, workers=2,
                           file_timeout=15, memory_mb=256)
    assert check(report, made) == {"every_good_file_written": True, "every_bad_file_listed": True,
                                   "no_link_followed": True, "fifo_not_opened": True}
    errors = {b["path"]: b["error"] for b in report["bad"]}
    assert "needs more than 256 MB" in errors["night1/bomb.fits.gz"] \
        or "took longer than 15 s" in errors["night1/bomb.fits.gz"]
    assert "/etc/passwd" in errors["passwd.txt"] and "not followed" in errors["passwd.txt"]


def test_links_inside_the_folder_are_followed_only_when_asked(tmp_path):
    from fits_fixtures import make_image

    folder, outside = tmp_path / "data", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    make_image(folder / "m51.fits")
    make_image(outside / "far.fits", obj="NGC 1")
    (folder / "again.fits").symlink_to(folder / "m51.fits")
    (folder / "far.fits").symlink_to(outside / "far.fits")
    plain = ingest_folder(folder, tmp_path / "one", progress=False)
    assert plain["images"] == 1 and {b["path"] for b in plain["bad"]} == {"again.fits", "far.fits"}
    followed = ingest_folder(folder, tmp_path / "two", progress=False, follow_links=True)
    assert followed["images"] == 2 and [b["path"] for b in followed["bad"]] == ["far.fits"]
    assert "out of the folder" in followed["bad"][0]["error"]


def test_a_file_over_its_time_budget_is_reported_and_the_rest_written(tmp_path, monkeypatch):
    import time

    from astrovlm.data import ingest as ingest_module
    from fits_fixtures import make_image, make_sdss_table

    folder = tmp_path / "data"
    folder.mkdir()
    make_image(folder / "a.fits")
    make_sdss_table(folder / "slow.fits")
    make_image(folder / "c.fits", obj="NGC 2")
    real = ingest_module.read_spectrum

    def hangs(path, *args, **kwargs):
        if path.name == "slow.fits":
            time.sleep(3600)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "read_spectrum", hangs)  # the forked worker has it too
    t0 = time.monotonic()
    report = ingest_folder(folder, tmp_path / "out", progress=False, file_timeout=2)
    assert time.monotonic() - t0 < 30
    assert report["images"] == 2 and [b["path"] for b in report["bad"]] == ["slow.fits"]
    assert "took longer than 2 s" in report["bad"][0]["error"]
    named = {json.loads(line)["path"] for name in ("images.jsonl", "spectra.jsonl")
             for line in (tmp_path / "out" / name).open()}
    assert {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").glob("[is]*/*")} \
        == named  # nothing the killed worker wrote is left
