"""Debian data packages, fetched and unpacked without installing them.

``apt-get download PKG`` needs no root and touches nothing outside the cache; ``dpkg -x``
unpacks the ``.deb`` into a folder of our own. Both land in
``$ASTROVLM_HOME/cache/debian`` and are reused by later builds.

``ASTROVLM_DEBIAN_ROOT`` may point to a tree where the packages are already unpacked
(``usr/share/...`` below it), e.g. for development or an air-gapped machine.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from astrovlm.config import data_home
from astrovlm.errors import BadArgumentError, NotFoundError, UnreadableError

log = logging.getLogger(__name__)

# The packages the sample sky reads, each with a path that proves it is unpacked.
PACKAGES = {
    "stellarium-data": "usr/share/stellarium/nebulae/default/textures.json",
    "iraf-rvsao": "usr/lib/iraf/extern/rvsao/templates",
    "kstars-data": "usr/share/kstars/stars.dat",
    "dict-gcide": "usr/share/dictd/gcide.dict.dz",        # definitions: GCIDE
    "wordnet-base": "usr/share/wordnet/data.noun",        # definitions: WordNet 3.0
}
# Packages other sources read that the sample sky does not (yet): the sample build fetches
# every one of PACKAGES and records its version, so these are kept apart.
MORE_PACKAGES = {
    "gnuastro": "usr/share/info/gnuastro.info-1.gz",      # definitions: the Gnuastro manual
}

ENV_ROOT = "ASTROVLM_DEBIAN_ROOT"
_DONE = ".unpacked"


def debian_cache_dir() -> Path:
    return data_home() / "cache" / "debian"


def _check_package(package: str) -> str:
    known = {**PACKAGES, **MORE_PACKAGES}
    if package not in known:
        raise BadArgumentError(f"unknown data package '{package}' (known: {', '.join(known)})",
                            field="package")
    return known[package]


def package_root(package: str, *, progress: bool = True) -> Path:
    """The folder under which ``package``'s files lie (``root/usr/share/...``).

    Uses ``$ASTROVLM_DEBIAN_ROOT`` if set, else the cache, fetching and unpacking the
    package there the first time.
    """
    marker = _check_package(package)
    env = os.environ.get(ENV_ROOT)
    if env:
        root = Path(env).expanduser()
        if not (root / marker).exists():
            raise NotFoundError(
                f"{ENV_ROOT} is set but {marker} is not below it; unpack {package} there "
                f"(dpkg -x {package}_*.deb {root}) or unset {ENV_ROOT}", path=root)
        return root
    root = debian_cache_dir() / "root" / package
    if (root / _DONE).exists() and (root / marker).exists():
        return root
    deb = download(package, progress=progress)
    _unpack(deb, root, package, progress=progress)
    if not (root / marker).exists():
        raise UnreadableError(f"{deb.name} unpacked but has no {marker}; is it the right package?",
                            path=deb)
    return root


def download(package: str, *, progress: bool = True) -> Path:
    """The package's ``.deb`` in the cache, fetched with ``apt-get download`` if missing."""
    _check_package(package)
    debs = debian_cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise NotFoundError(
            f"apt-get is not available, so {package} cannot be fetched; on a non-Debian system "
            f"download {package}_*.deb from packages.debian.org into {debs}, or unpack it and "
            f"point {ENV_ROOT} at the folder")
    if progress:
        log.info("fetching %s with apt-get download ...", package)
    result = _apt_download(package, debs)
    if result.returncode != 0 and _is_root():
        # A fresh machine has no package lists yet; only root can fetch them.
        if progress:
            log.info("apt-get download failed; running apt-get update first ...")
        subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        result = _apt_download(package, debs)
    if result.returncode != 0:
        hint = ("run 'sudo apt-get update' and try again" if not _is_root()
                else "check that the machine reaches a Debian mirror")
        raise NotFoundError(
            f"apt-get download {package} failed ({_last_line(result.stderr)}); {hint}, or "
            f"unpack the package yourself and point {ENV_ROOT} at it")
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise NotFoundError(f"apt-get download {package} reported success but left no .deb", path=debs)
    return found[-1]


def _apt_download(package: str, where: Path) -> subprocess.CompletedProcess:
    # Download into a temp folder, then move: an interrupted fetch leaves no partial .deb.
    with tempfile.TemporaryDirectory(dir=where, prefix=".dl-") as tmp:
        result = subprocess.run(["apt-get", "download", package], cwd=tmp,
                                capture_output=True, text=True)
        for deb in Path(tmp).glob("*.deb"):
            os.replace(deb, where / deb.name)
    return result


def _unpack(deb: Path, root: Path, package: str, *, progress: bool) -> None:
    if shutil.which("dpkg") is None and shutil.which("dpkg-deb") is None:
        raise NotFoundError(f"dpkg is not available to unpack {deb.name}; install dpkg or "
                            f"unpack it elsewhere and point {ENV_ROOT} at the folder", path=deb)
    if progress:
        log.info("unpacking %s ...", deb.name)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{package}.tmp-"))
    try:
        tool = ["dpkg", "-x"] if shutil.which("dpkg") else ["dpkg-deb", "-x"]
        result = subprocess.run([*tool, str(deb), str(tmp)], capture_output=True, text=True)
        if result.returncode != 0:
            raise UnreadableError(f"dpkg -x failed ({_last_line(result.stderr)}); the file may be "
                                f"truncated: delete it and build again", path=deb)
        (tmp / _DONE).write_text(deb.name + "\n")
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def package_version(package: str, root: Path) -> str | None:
    """The Debian version, from the first line of the package's changelog.Debian.gz."""
    log = root / "usr" / "share" / "doc" / package / "changelog.Debian.gz"
    try:
        with gzip.open(log, "rt", encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
    except OSError:
        return None
    # "stellarium (0.22.2-1) unstable; urgency=medium"
    if "(" in first and ")" in first:
        return first.split("(", 1)[1].split(")", 1)[0]
    return None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"
