"""Make the README's two pictures (small PNGs committed in docs/).

    python docs/figures.py plot                        # docs/spectrum.png, from the sample sky
    python docs/figures.py screenshot http://127.0.0.1:7860/   # docs/app_search.png, from a running app

The plot needs the sample sky in ``$ASTROVLM_HOME`` (``astrovlm data sample``); the screenshot
needs ``astrovlm app`` running and playwright with Debian's chromium (``setup.sh --dev``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def plot(out: Path = DOCS / "spectrum.png") -> Path:
    """The SDSS quasar composite (rest frame) with its lines marked, by astrovlm.viz."""
    from astrovlm.config import sample_dir
    from astrovlm.data.readers import read_spectrum
    from astrovlm.viz import plot_spectrum

    spectrum = read_spectrum(sample_dir() / "spectra" / "real" / "sdssQSO.fits")
    fig = plot_spectrum(spectrum, title="SDSS quasar composite, rest frame (RVSAO template)")
    fig.set_size_inches(7, 3)
    fig.tight_layout()
    return _save(out, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def screenshot(url: str, out: Path = DOCS / "app_search.png", query: str = "a planetary nebula") -> Path:
    """The Search tab after a text search (image results), cropped to the page's content."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                    args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1200}, device_scale_factor=1)
        page.goto(url)
        page.wait_for_selector("#search-query textarea")
        page.click("text=... or search with your own image or spectrum")  # fold the upload box
        page.fill("#search-query textarea", query)
        page.fill("#search-k input[type=number]", "8")
        page.click("#search-btn")
        page.wait_for_function("[...document.querySelectorAll('#search-gallery img')]"
                               ".filter(i => i.complete && i.naturalWidth > 16).length >= 8",
                               timeout=120_000)
        page.wait_for_timeout(500)
        bottom = page.eval_on_selector("#search-gallery", "e => e.getBoundingClientRect().bottom")
        shot = page.screenshot(clip={"x": 0, "y": 0, "width": 1100, "height": min(1200, bottom + 12)})
        browser.close()
    return _save(out, lambda tmp: _small_png(shot, tmp))


def _small_png(data: bytes, tmp: Path) -> None:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    # 256 colours keep a UI screenshot sharp at a fraction of the size
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(tmp, format="PNG", optimize=True)


def _save(out: Path, write) -> Path:
    tmp = out.with_name(f".{out.name}.tmp.png")
    write(tmp)
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size // 1024} kB)")
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["plot"]:
        plot()
    elif sys.argv[1:2] == ["screenshot"] and len(sys.argv) == 3:
        screenshot(sys.argv[2])
    else:
        raise SystemExit(__doc__)
