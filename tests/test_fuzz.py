"""A fast slice of the fuzz run (``benchmarks/fuzz_readers.py`` is the full one): malformed
files of every kind, and the few hostile inputs that once crashed, hung or blew up memory.
Each either reads or raises an ``AstroVLMError`` that names the file; nothing else."""

from __future__ import annotations

import gzip
import signal

import numpy as np
import pytest
from astropy.io import fits

from _checks import fails
import fuzzing
from astrovlm.data.readers import read_catalog, read_image, read_spectrum, sniff
from astrovlm.encoders.preprocess import image_to_tensor
from astrovlm.errors import AstroVLMError, UnreadableError
from fits_fixtures import catalog_table, make_image

SEED = 15
CASES = 240  # ~3 reader calls each


class _Slow(BaseException):
    pass


@pytest.fixture
def deadline():
    """Fail a call that takes more than 30 s (a hang) instead of waiting for it."""
    def alarm(*_):
        raise _Slow()

    old = signal.signal(signal.SIGALRM, alarm)
    yield lambda seconds=30: signal.alarm(seconds)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module", autouse=True)
def big_inputs(tmp_path_factory):
    """The bombs are built once (on first use) and shared by every test here."""
    fuzzing._BIG_DIR[:] = [tmp_path_factory.mktemp("fuzz-big")]
    yield
    fuzzing._BIG_DIR.clear()


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    return [fuzzing.make_case(SEED, i, folder) for i in range(CASES)]


@pytest.mark.parametrize("block", range(4))
def test_fuzzed_files_read_or_fail_cleanly(cases, block, deadline):
    outcomes = []
    for case in cases[block::4]:
        for reader in fuzzing.readers_for(case):
            deadline()
            try:
                result = fuzzing.outcome(reader, case["path"])
            except _Slow:
                result = "hang"
            signal.alarm(0)
            if not result.startswith(("ok", "error:")):
                outcomes.append(f"{case['seed_kind']}/{case['mutation']} {reader} {case['path']}: {result}")
    assert not outcomes, "\n".join(outcomes)


def test_the_generator_is_reproducible(tmp_path):
    a = fuzzing.make_case(SEED, 7, tmp_path / "a" if (tmp_path / "a").mkdir() is None else None)
    b = fuzzing.make_case(SEED, 7, tmp_path / "b" if (tmp_path / "b").mkdir() is None else None)
    assert open(a["path"], "rb").read() == open(b["path"], "rb").read()
    assert a["mutation"] == b["mutation"]


def _header_only(path, **cards):
    h = fits.Header()
    h["SIMPLE"], h["BITPIX"] = True, -32
    for key, value in cards.items():
        h[key] = value
    path.write_bytes(h.tostring().encode("ascii"))
    return path


def test_absurd_naxis_is_refused_at_once(tmp_path, deadline):
    """A 2,880-byte header declaring NAXIS = 99999999 once hung every reader."""
    deadline(10)
    path = _header_only(tmp_path / "naxis.fits", NAXIS=99999999)
    for reader in (sniff, read_image, read_spectrum, read_catalog):
        fails(reader, path, "NAXIS", "out of range")


def test_data_past_the_end_of_the_file_is_refused(tmp_path):
    path = _header_only(tmp_path / "short.fits", NAXIS=1, NAXIS1=5000)
    fails(read_spectrum, path, "truncated", "20000 bytes")  # 5000 float32 declared, none there


def test_missing_and_invalid_cards(tmp_path):
    good = make_image(tmp_path / "good.fits").read_bytes()
    no_bitpix = tmp_path / "nobitpix.fits"
    no_bitpix.write_bytes(good.replace(b"BITPIX  =", b"XBITPIX =", 1))
    fails(read_image, no_bitpix, "BITPIX")
    bad_bitpix = tmp_path / "bitpix7.fits"
    bad_bitpix.write_bytes(good.replace(b"BITPIX  =                  -32", b"BITPIX  =                    7", 1))
    fails(sniff, bad_bitpix, "BITPIX = 7")


def test_huge_tform_repeat_and_tfields(tmp_path):
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(catalog_table(5))])
    hdul.writeto(tmp_path / "cat.fits")
    raw = (tmp_path / "cat.fits").read_bytes()
    at = raw.index(b"TFORM2  = 'D")
    card = b"TFORM2  = '500000D '".ljust(80)
    (tmp_path / "tform.fits").write_bytes(raw[:at] + card + raw[at + 80:])
    fails(read_catalog, tmp_path / "tform.fits", "TFORM", "NAXIS1")
    at = raw.index(b"TFIELDS =")
    card = b"TFIELDS =               100000".ljust(80)
    (tmp_path / "tfields.fits").write_bytes(raw[:at] + card + raw[at + 80:])
    fails(sniff, tmp_path / "tfields.fits", "TFIELDS")


def test_gzip_bomb_is_refused_from_its_header(tmp_path, deadline):
    deadline(20)
    path = tmp_path / "bomb.fits.gz"
    path.write_bytes(fuzzing.big("gzip_bomb", tmp_path))  # 14000 x 14000 float32 of zeros
    fails(read_image, path, "too large")


def test_gzip_stream_is_bounded_while_read(tmp_path, deadline):
    deadline(25)
    make_image(tmp_path / "small.fits")
    path = tmp_path / "tail.fits.gz"
    path.write_bytes(gzip.compress((tmp_path / "small.fits").read_bytes()) + fuzzing.big("gzip_tail", tmp_path))
    fails(read_image, path, "decompresses to more than")


def test_broken_tile_compression(tmp_path):
    data = np.arange(40 * 48, dtype=np.float32).reshape(40, 48)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data)]).writeto(tmp_path / "t.fits")
    raw = bytearray((tmp_path / "t.fits").read_bytes())
    raw[2880 * 3 + 10: 2880 * 3 + 400] = b"\xff" * 390  # inside the compressed tiles
    (tmp_path / "broken.fits").write_bytes(bytes(raw))
    try:
        read_image(tmp_path / "broken.fits")
    except AstroVLMError as exc:
        assert str(tmp_path / "broken.fits") in str(exc)


def test_sixty_million_row_parquet_is_refused_from_its_footer(tmp_path, deadline):
    deadline(20)
    path = tmp_path / "rows.parquet"
    path.write_bytes(fuzzing.big("parquet_rows", tmp_path))
    fails(read_catalog, path, "60000000 rows")


def test_huge_declared_png_and_jpeg(tmp_path):
    fails(read_image, _write(tmp_path / "bomb.png", fuzzing.png_declaring(13000, 13000)), "too large")
    fails(image_to_tensor, _write(tmp_path / "bomb.jpg", fuzzing._jpeg_declaring(
        fuzzing.seed("jpeg", tmp_path)[0], 13000, 13000)))


def test_a_long_strip_is_padded_without_blowing_up(tmp_path):
    """A 1 x 100000 PNG once asked square_on_sky for a 100000^2 canvas (30 GB)."""
    import zlib

    path = _write(tmp_path / "strip.png", fuzzing.png_declaring(100000, 1, zlib.compress(b"\0" + b"\x80" * 100000), 0))
    pixels = image_to_tensor(path)
    assert tuple(pixels.shape) == (3, 224, 224)


def test_links_devices_and_folders(tmp_path):
    import os

    os.symlink(tmp_path / "nowhere.fits", tmp_path / "dangling.fits")
    fails(read_image, tmp_path / "dangling.fits", "no such file")
    os.symlink(tmp_path / "loop.fits", tmp_path / "loop.fits")
    fails(sniff, tmp_path / "loop.fits")
    os.mkfifo(tmp_path / "pipe.fits")
    fails(read_image, tmp_path / "pipe.fits", "not a regular file")


def _write(path, data):
    path.write_bytes(data)
    return path


def test_votable_with_a_huge_arraysize(tmp_path):
    catalog_table(5).write(tmp_path / "c.vot", format="votable")
    text = (tmp_path / "c.vot").read_text().replace('datatype="double"', 'datatype="double" arraysize="99999999"', 1)
    (tmp_path / "big.vot").write_text(text)
    with pytest.raises(UnreadableError, match="arraysize"):
        read_catalog(tmp_path / "big.vot")
