"""The app without a browser: upload limits, error messages, path traversal, queue bounds.

The first tests check the upload rules on files the tests make. The rest start the real
app (``python app.py``) on the sample sky and talk to it over HTTP and the Gradio API,
as a script or an attacker would.
"""

from __future__ import annotations

import http.client
import io
import re
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astrovlm.errors import AstroVLMError
from astrovlm.webapp.uploads import MAX_UPLOAD_BYTES, check_upload, public_error, upload_path


# ------------------------------------------------------------------ files the tests make
def fits_image(path: Path, side: int = 64) -> Path:
    y, x = np.mgrid[:side, :side]
    data = 100.0 * np.exp(-((x - side / 2) ** 2 + (y - side / 2) ** 2) / 50.0) + 5.0
    hdu = fits.PrimaryHDU(data.astype("float32"))
    hdu.header["OBJECT"] = "test blob"
    hdu.writeto(path)
    return path


def fits_spectrum(path: Path) -> Path:
    wave = np.linspace(3800.0, 9200.0, 1500)
    flux = 1.0 + 0.3 * np.exp(-0.5 * ((wave - 6563.0) / 8.0) ** 2)
    cols = [fits.Column(name="WAVELENGTH", format="D", unit="Angstrom", array=wave),
            fits.Column(name="FLUX", format="E", array=flux)]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    return path


def png_image(path: Path) -> Path:
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(path)
    return path


# ------------------------------------------------------------------ upload rules
def test_accepts_fits_image_fits_spectrum_and_png(tmp_path):
    assert check_upload(str(fits_image(tmp_path / "blob.fits"))) == (tmp_path / "blob.fits", "image")
    assert check_upload(fits_spectrum(tmp_path / "halpha.fit"))[1] == "spectrum"
    # Gradio's API passes FileData dicts; the page passes paths
    assert check_upload({"path": str(png_image(tmp_path / "a.png"))})[1] == "image"


@pytest.mark.parametrize("name,content,problem", [
    ("notes.txt", b"hello", "file type '.txt' is not accepted"),
    ("script.py", b"print(1)", "is not accepted"),
    ("noext", b"SIMPLE  =", "file type '(none)' is not accepted"),
    ("empty.fits", b"", "file is empty"),
    ("page.fits", b"<html><body>404</body></html>", "is not a FITS file"),
    ("fake.png", b"SIMPLE  =                    T", "is not a PNG image"),
    ("fake.jpg", b"\x89PNG\r\n\x1a\nxxxx", "is not a JPEG image"),
])
def test_refuses_bad_files_with_their_name(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AstroVLMError) as err:
        check_upload(path)
    msg = str(err.value)
    assert problem in msg
    assert msg.startswith(name)                 # names the file ...
    assert str(tmp_path) not in msg             # ... but not where the server keeps it


def test_refuses_files_over_the_size_limit(tmp_path):
    path = fits_image(tmp_path / "big.fits")
    with pytest.raises(AstroVLMError, match=r"big.fits: file is .* MB; the limit is"):
        check_upload(path, max_bytes=1000)
    assert check_upload(path, max_bytes=MAX_UPLOAD_BYTES)[1] == "image"


def test_refuses_a_fits_catalog_table(tmp_path):
    cols = [fits.Column(name="RA", format="D", array=np.arange(5.0)),
            fits.Column(name="DEC", format="D", array=np.arange(5.0))]
    path = tmp_path / "cat.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    with pytest.raises(AstroVLMError, match=r"^cat.fits: .*not an image or a spectrum"):
        check_upload(path)


def test_truncated_fits_message_hides_the_server_path(tmp_path):
    from astrovlm.data.readers import read_image

    path = fits_image(tmp_path / "cut.fits", side=200)
    path.write_bytes(path.read_bytes()[:4000])   # the header and a little of the data
    with pytest.raises(AstroVLMError) as err:
        check_upload(path)      # the header is fine, so this may pass ...
        read_image(path)        # ... and reading the pixels fails
    assert str(tmp_path) in str(err.value) or str(err.value).startswith("cut.fits")
    shown = str(public_error(err.value, path))
    assert shown.startswith("cut.fits: ") and str(tmp_path) not in shown


def test_nothing_uploaded():
    assert upload_path(None) is None and upload_path("") is None
    with pytest.raises(AstroVLMError, match="no file was uploaded"):
        check_upload(None)


# ------------------------------------------------------------------ the running app
from _app_server import running_app  # noqa: E402  (shared with the browser tests)

# The chat needs the shipped assistant weights (astrovlm/weights/assistant), trained by
# training/assistant/; until they are committed these tests are skipped, not faked.
from astrovlm.assistant.model import SHIPPED_DIR as _ASSISTANT_DIR  # noqa: E402
needs_assistant = pytest.mark.skipif(not (_ASSISTANT_DIR / "config.json").exists(),
                                     reason="shipped assistant weights not trained yet")


PASSWD_MARK = b"root:"


def _get(base: str, raw_path: str) -> tuple[int, bytes]:
    """GET a raw path exactly as written (http.client does not normalise '..')."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", raw_path)
    resp = conn.getresponse()
    return resp.status, resp.read()


# The unit tests' server has a small queue (the bound is tested below); the browser tests run
# the default.
UNIT_QUEUE_SIZE = 3


@pytest.fixture(scope="module")
def server(sample_sky, tmp_path_factory):
    with running_app(sample_sky.root.parent, tmp_path_factory.mktemp("app-unit"),
                     queue_size=UNIT_QUEUE_SIZE) as srv:
        yield srv




@pytest.mark.parametrize("raw", [
    "/gradio_api/file=../../../../../../etc/passwd",
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/gradio_api/file=..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/file=../../../../../../etc/passwd",
    "/file=/etc/passwd",
], ids=["relative", "absolute", "encoded-dots", "encoded-slashes", "old-route", "old-route-abs"])
@pytest.mark.sample
@pytest.mark.slow
def test_path_traversal_is_refused(server, raw):
    status, body = _get(server.url, raw)
    assert status in (400, 403, 404), (raw, status)
    assert PASSWD_MARK not in body


@pytest.mark.sample
@pytest.mark.slow
def test_only_the_preview_cache_is_served(server, sample_sky):
    # A rendered preview is served ...
    gallery, _ = server.client.predict("a globular cluster", "image", 2, api_name="/search_text")
    assert Path(gallery[0]["image"]).stat().st_size > 1000
    # ... a file of the sample sky itself is not, by absolute path or by climbing out of the
    # allowed folder ...
    target = (sample_sky.root / "objects.jsonl").resolve()
    status, body = _get(server.url, f"/gradio_api/file={target}")
    assert status == 403 and b"object_id" not in body
    climb = f"{server.previews}/../../../sample/objects.jsonl"
    status, body = _get(server.url, f"/gradio_api/file={climb}")
    assert status == 403 and b"object_id" not in body
    # ... nor the code and weights next to the app
    for f in ("app.py", "pyproject.toml"):
        status, _ = _get(server.url, f"/gradio_api/file={(Path(__file__).parent.parent / f).resolve()}")
        assert status == 403, f


@pytest.mark.sample
@pytest.mark.slow
def test_search_results_are_captioned_thumbnails(server):
    gallery, note = server.client.predict("a planetary nebula", "image", 5, api_name="/search_text")
    assert len(gallery) == 5 and note.startswith("**5 images for 'a planetary nebula'")
    for item in gallery:
        # "M57 · 0.412 · planetary nebula": the object, its score, its type
        assert re.match(r"^.+ · -?\d\.\d{3} · .+$", item["caption"]), item["caption"]


@pytest.mark.sample
@pytest.mark.slow
def test_bad_inputs_give_messages_not_tracebacks(server, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b"x" * 100)   # a FITS start, then junk
    txt = tmp_path / "notes.txt"
    txt.write_text("not an image")
    cases = [
        (("   ", "image", 5), "/search_text", "type a description"),
        # Gradio checks the slider's range itself; the app would say "k must be between 1 and 48"
        (("m57", "image", 500), "/search_text", "maximum value 48"),
        (("m57", "radio", 5), "/search_text", "not in the list of choices"),
        ((handle_file(str(bad)), "other modality", 5), "/search_file", "broken.fits"),
        # Gradio refuses the suffix before the app sees it (check_upload would too, above)
        ((handle_file(str(txt)), "other modality", 5), "/search_file", "Invalid file type"),
        (([handle_file(str(bad))], ""), "/classify", "broken.fits"),
        (([handle_file(str(png_image(tmp_path / "x.png")))], "galaxy, galaxy"), "/classify",
         "duplicated labels"),
        (([], ""), "/classify", "upload an image or a spectrum"),
        (("Nowhere-object-xyz",), "/object", "no object named 'Nowhere-object-xyz'"),
        (({"text": "", "files": []}, []), "/chat", "type a question"),
    ]
    for args, api, expected in cases:
        with pytest.raises(AppError) as err:
            server.client.predict(*args, api_name=api)
        msg = str(err.value)
        assert expected in msg, (api, msg)
        assert "Traceback" not in msg and server.tmp_root not in msg and str(tmp_path) not in msg


@pytest.mark.sample
@pytest.mark.slow
def test_upload_over_the_size_limit_is_refused_by_the_server(server):
    import httpx

    from astrovlm.webapp import MAX_UPLOAD_MB

    big = io.BytesIO(b"SIMPLE  =" + b" " * (MAX_UPLOAD_MB * 1024 * 1024 + 1024))
    r = httpx.post(f"{server.url}gradio_api/upload", files={"files": ("big.fits", big)}, timeout=120)
    assert r.status_code == 413, r.text[:200]


@pytest.mark.sample
@pytest.mark.slow
def test_classify_a_radio_map_by_its_morphology(server, tmp_path):
    """The Classify tab's band: a radio FITS map (NaN blanks, as radio maps have) is read by
    the radio head and classed by radio morphology; a band the app does not know is refused."""
    from astropy.io import fits
    from gradio_client import handle_file

    from astrovlm.encoders.zeroshot import DEFAULT_LABELS

    y, x = np.mgrid[:150, :150]
    lobes = sum(np.exp(-((x - cx) ** 2 + (y - 75) ** 2) / 30.0) for cx in (40, 110))  # a double source
    lobes[:10] = np.nan
    fits.PrimaryHDU(lobes.astype(np.float32)).writeto(tmp_path / "double.fits")
    probs, drivers, summary, _ = server.client.predict(
        [handle_file(str(tmp_path / "double.fits"))], "", "radio", api_name="/classify")
    assert {c["label"] for c in probs["confidences"]} == set(DEFAULT_LABELS["radio"])
    assert "Most likely" in summary
    with pytest.raises(Exception, match="x-ray"):  # gradio refuses a choice it lacks, or the app does
        server.client.predict([handle_file(str(tmp_path / "double.fits"))], "", "x-ray", api_name="/classify")


@pytest.mark.sample
@pytest.mark.slow
@needs_assistant
def test_chat_streams_and_cites_sources(server):
    job = server.client.submit({"text": "What kind of object is M57 and where is it?", "files": []},
                               [], api_name="/chat")
    history, _ = job.result(timeout=600)
    answer = _text(history[-1])
    assert "**Sources**" in answer and "(?object=" in answer
    # the answer arrived in pieces, each extending the one before
    partial = [_text(out[0][-1]) for out in job.outputs() if out[0] and out[0][-1]["role"] == "assistant"]
    growing = [p for p in partial if p and not p.startswith("*Loading")]
    assert len(growing) >= 3, partial
    assert all(b.startswith(a) for a, b in zip(growing[:-2], growing[1:-1]))


@pytest.mark.sample
@pytest.mark.slow
@needs_assistant
def test_a_running_answer_can_be_cancelled(server):
    # a question the language model answers ("Tell me about M31" is composed from the card
    # at once, with nothing left to cancel)
    job = server.client.submit({"text": "What kind of object is M31, and what is it known for?",
                                "files": []}, [], api_name="/chat")
    deadline = time.monotonic() + 600

    def answering() -> bool:   # the first words of the answer are on the page
        outs = [o for o in job.outputs() if o[0] and o[0][-1]["role"] == "assistant"]
        return bool(outs) and _text(outs[-1][0][-1]).strip() not in ("",) and \
            not _text(outs[-1][0][-1]).startswith("*Loading")

    while not answering() and not job.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not job.done(), "the answer finished before it could be cancelled"
    assert job.cancel()
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.status().code.name == "CANCELLED"
    assert not any("**Sources**" in _text(out[0][-1]) for out in job.outputs() if out[0])
    # the server is free for the next request
    gallery, _ = server.client.predict("a globular cluster", "image", 3, api_name="/search_text")
    assert len(gallery) == 3


@pytest.mark.sample
@pytest.mark.slow
@needs_assistant
def test_queue_is_bounded(server):
    from gradio_client.exceptions import AppError

    # Chat runs LLM_CONCURRENCY at a time (batched); with UNIT_QUEUE_SIZE waiting, the rest
    # are turned away at once with a message rather than piling up on the server.
    from astrovlm.webapp.ui import LLM_CONCURRENCY

    questions = [f"What is M{n}?" for n in (13, 31, 42, 51, 57, 81, 82, 87, 97, 104, 1, 2, 3, 4, 5, 6)]
    jobs = [server.client.submit({"text": q, "files": []}, [], api_name="/chat") for q in questions]
    answered, refused = 0, []
    for job in jobs:
        try:
            job.result(timeout=600)
            answered += 1
        except (AppError, Exception) as exc:  # gradio_client raises QueueError for a full queue
            refused.append(str(exc))
    assert answered >= 1
    assert refused and all("Queue is full" in r for r in refused), refused
    assert answered <= UNIT_QUEUE_SIZE + LLM_CONCURRENCY + 1   # running, queued (+1 for timing)


def _text(message) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return str(content or "")


@pytest.mark.sample
@pytest.mark.slow
def test_classify_an_image_and_a_spectrum_of_one_object(server, sample_sky):
    from gradio_client import handle_file

    # an object with both a real image and a real spectrum in the sample sky (NGC 7331)
    spectra = {r.object_id: r for r in sample_sky.spectra if r.object_id and not r.simulated}
    image = next(r for r in sample_sky.images if r.object_id in spectra)
    spectrum = spectra[image.object_id]
    probs, drivers, summary, previews = server.client.predict(
        [handle_file(str(sample_sky.path(image.path))), handle_file(str(sample_sky.path(spectrum.path)))],
        "", api_name="/classify")
    from astrovlm.encoders.zeroshot import DEFAULT_LABELS

    # two modalities: the image's label set by default, and each modality's share of the decision
    assert {c["label"] for c in probs["confidences"]} == set(DEFAULT_LABELS["image"])
    assert abs(sum(c["confidence"] for c in probs["confidences"]) - 1) < 0.02
    shares = {c["label"]: c["confidence"] for c in drivers["confidences"]}
    assert set(shares) == {"image", "spectrum"} and abs(sum(shares.values()) - 1) < 0.01
    assert "image alone" in summary and "spectrum alone" in summary
    assert len(previews) == 2
    # the spectrum's chi-square template fit beside the zero-shot answer, as `astrovlm classify` gives it
    from astrovlm.encoders.template_fit import fit_or_reason

    fit = fit_or_reason(sample_sky.path(spectrum.path))
    assert "Template fit" in summary and f"{fit['class']} ({fit['subclass']}), z = {fit['z']:.5f}" in summary


@pytest.mark.sample
@pytest.mark.slow
@needs_assistant
def test_object_page_and_ask_by_api(server):
    title, image, spectrum, facts, passages, neighbours = server.client.predict(
        "Ring Nebula", api_name="/object")
    assert "M57" in title and "Lyra" in facts and "Position (ICRS)" in facts
    assert image is not None and len(neighbours) >= 3
    answer = server.client.predict("What kind of object is M57?", api_name="/ask")
    assert answer["text"] and answer["objects"] == ["NGC6720"]
    assert any(s["object_id"] == "NGC6720" for s in answer["sources"])
