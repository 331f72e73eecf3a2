"""``astrovlm data info --verify``: yes (exit 0) for an intact dataset, the sample sky's or an
ingested one (both come out of the one dataset writer with the same content hash); NO (exit
1) naming the damaged file once a byte of an image changes, a spectrum is cut short or a
record file is deleted."""

from __future__ import annotations

import json
import shutil

import pytest

from astrovlm.cli import main
from astrovlm.data.checksums import CHECKSUMS, content_hash, verify_dataset
from astrovlm.data.ingest import ingest_folder
from astrovlm.data.records import SkyDataset
from astrovlm.data.writer import DatasetWriter
from astrovlm.errors import AstroVLMError, UnreadableError
from fits_fixtures import RA0, DEC0, make_image, make_png, make_sdss_table, make_wcs_1d


def _verify_cli(root, capsys) -> tuple[int, str]:
    status = main(["data", "info", str(root), "--verify"])
    return status, capsys.readouterr().out


def _flip_byte(path, offset: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture
def ingested(tmp_path):
    """A small dataset ingested from FITS files: an image and a spectrum of M51, a star's 1-D
    spectrum, a PNG."""
    folder = tmp_path / "mydata"
    folder.mkdir()
    make_image(folder / "m51.fits")
    make_sdss_table(folder / "spec-m51.fits", z=0.0015, ra=RA0 + 2 / 3600, dec=DEC0)
    make_wcs_1d(folder / "star.fits")
    make_png(folder / "sketch.png")
    out = tmp_path / "dataset"
    report = ingest_folder(folder, out, progress=False)
    assert report["ok"] == 4 and not report["bad"]
    return out


def test_intact_ingested_dataset_verifies(ingested, capsys):
    status, out = _verify_cli(ingested, capsys)
    assert status == 0 and "verified" in out and "yes" in out
    check = verify_dataset(ingested)
    manifest = json.loads((ingested / "manifest.json").read_text())
    # one hash for every dataset: what the writer recorded is what the check recomputes
    assert check["ok"] and check["content_hash"] == manifest["content_hash"] == content_hash(ingested)[0]
    assert (ingested / CHECKSUMS).exists() and check["problems"] == []


def _damage(root, how: str) -> str:
    """Damage one file of a dataset; returns the path the check must name."""
    ds = SkyDataset(root)
    if how == "image byte":
        rel = next(r.path for r in ds.images if r.path.endswith(".png"))
        _flip_byte(root / rel)
    elif how == "spectrum truncated":
        rel = ds.spectra[0].path
        _truncate(root / rel)
    elif how == "record file deleted":
        rel = "spectra.jsonl"
        (root / rel).unlink()
    elif how == "objects deleted":
        rel = "objects.jsonl"
        (root / rel).unlink()
    else:
        raise AssertionError(how)
    return rel


@pytest.mark.parametrize("how", ["image byte", "spectrum truncated", "record file deleted",
                                 "objects deleted"])
def test_damaged_ingested_dataset_names_the_file(ingested, capsys, how):
    rel = _damage(ingested, how)
    status, out = _verify_cli(ingested, capsys)
    assert status == 1 and "NO" in out
    assert f"  {rel}: " in out  # the damaged file is named on its own line
    check = verify_dataset(ingested)
    assert not check["ok"] and [p["path"] for p in check["problems"]] == [rel]


def test_a_file_a_record_names_that_is_gone_is_named(ingested):
    ds = SkyDataset(ingested)
    rel = ds.images[0].path
    (ingested / rel).unlink()
    problems = {p["path"]: p["problem"] for p in verify_dataset(ingested)["problems"]}
    assert problems == {rel: "missing"}


# --- the real sample sky, on copies ------------------------------------------------------------

@pytest.mark.sample
def test_intact_sample_copy_verifies(sample_sky, tmp_path, capsys):
    copy = tmp_path / "sample"
    shutil.copytree(sample_sky.root, copy)
    status, out = _verify_cli(copy, capsys)
    assert status == 0 and "yes" in out


@pytest.fixture
def sample_copy(sample_sky, tmp_path):
    """The sample sky written again through the dataset writer into a tmp dir: every file and
    record as built, with the writer's checksums, whichever astrovlm built the original."""
    source = sample_sky.root
    manifest = json.loads((source / "manifest.json").read_text())
    out = tmp_path / "sample"
    with DatasetWriter(out) as w:
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source).as_posix()
            if path.is_file() and not rel.endswith(".jsonl") and rel not in (
                    "manifest.json", "summary.json", CHECKSUMS):
                w.copy(path, rel)
        written = w.finish(sample_sky.objects, sample_sky.images, sample_sky.spectra,
                           sample_sky.passages, manifest)
    assert written["content_hash"] == content_hash(source)[0]  # the same content, the same hash
    for name in ("objects.jsonl", "images.jsonl", "spectra.jsonl", "passages.jsonl"):
        assert (out / name).read_bytes() == (source / name).read_bytes()
    return out


@pytest.mark.sample
@pytest.mark.parametrize("how", ["image byte", "spectrum truncated", "record file deleted"])
def test_damaged_sample_copy_names_the_file(sample_copy, capsys, how):
    assert _verify_cli(sample_copy, capsys)[0] == 0
    ds = SkyDataset(sample_copy)
    if how == "image byte":  # a Stellarium image, not the ingest's PNG rendering
        rel = ds.images[10].path
        _flip_byte(sample_copy / rel, offset=len((sample_copy / rel).read_bytes()) // 2)
    else:
        rel = _damage(sample_copy, how)
    status, out = _verify_cli(sample_copy, capsys)
    assert status == 1 and f"  {rel}: " in out
    assert [p["path"] for p in verify_dataset(sample_copy)["problems"]] == [rel]


def test_writer_swaps_in_only_a_finished_dataset(ingested):
    before = sorted(p.relative_to(ingested) for p in ingested.rglob("*"))
    with pytest.raises(AstroVLMError, match="finish"):
        with DatasetWriter(ingested) as w:
            w.copy(ingested / "objects.jsonl", "images/stray.txt")  # ... and no finish()
    assert sorted(p.relative_to(ingested) for p in ingested.rglob("*")) == before
    assert verify_dataset(ingested)["ok"]
    assert not list(ingested.parent.glob(".dataset.tmp-*"))


# --- opening a dataset checks it is whole (stat only), --verify adds the hashes ---------------

@pytest.mark.parametrize("how", ["spectrum truncated", "record file deleted", "image gone",
                                 "images.jsonl deleted", "record line cut"])
def test_opening_a_damaged_dataset_names_what_is_wrong(ingested, how):
    ds = SkyDataset(ingested)
    if how == "image gone":
        rel = ds.images[0].path
        (ingested / rel).unlink()
    elif how == "images.jsonl deleted":
        rel = "images.jsonl"
        (ingested / rel).unlink()
    elif how == "record line cut":
        rel = "objects.jsonl"
        text = (ingested / rel).read_text()
        (ingested / rel).write_text(text[: len(text) // 2])
    else:
        rel = _damage(ingested, how)
    with pytest.raises(UnreadableError, match=rel.replace(".", r"\.")):
        SkyDataset(ingested)
    if how != "record line cut":  # --verify's report still opens the rest
        assert SkyDataset(ingested, check=False).root == ingested


def test_verify_on_open_catches_a_changed_byte(ingested):
    rel = _damage(ingested, "image byte")  # same size: the stat check cannot see it
    assert len(SkyDataset(ingested).images) == 2
    with pytest.raises(UnreadableError, match=rel):
        SkyDataset(ingested, verify=True)


def test_a_dataset_without_checksums_still_opens(ingested):
    (ingested / CHECKSUMS).unlink()
    (ingested / "manifest.json").unlink()
    (ingested / "passages.jsonl").unlink()  # hand-made datasets need only objects.jsonl
    assert len(SkyDataset(ingested).images) == 2
    (ingested / SkyDataset(ingested).images[0].path).unlink()  # still: named files must exist
    with pytest.raises(UnreadableError, match="named by images.jsonl"):
        SkyDataset(ingested)


def test_a_dataset_left_as_dot_old_is_found_and_moved_back(ingested, tmp_path):
    # a kill between atomic_directory's two renames leaves only '.dataset.old'
    import os
    from astrovlm.data.writer import DatasetWriter

    before = len(SkyDataset(ingested).images)
    old = ingested.parent / ".dataset.old"
    os.replace(ingested, old)
    ds = SkyDataset(ingested)
    assert ds.root == old and len(ds.images) == before
    assert main(["data", "info", str(ingested), "--verify"]) == 0
    with pytest.raises(AstroVLMError, match="finish"):  # the next write moves it back first
        with DatasetWriter(ingested):
            pass
    assert ingested.is_dir() and not old.exists() and len(SkyDataset(ingested).images) == before
