"""Common names of deep-sky objects from Stellarium's ``nebulae/default/names.dat``.

OpenNGC lacks some names everyone uses ("Pinwheel Galaxy" for M101, "Sculptor Galaxy" for
NGC 253). Stellarium's list has about 1,200 of them, each line with the catalog designation
and the sources that use the name (``# SIMBAD, DSW, B500``). A name given to more than one
object ("Pinwheel Galaxy": M101, M33 and M99) is ambiguous; the resolver takes the object
the most sources give it to and says which others share the name.

The file is read from the unpacked ``stellarium-data`` package if it is already on this
machine (the sample sky's build unpacks it); nothing is fetched for it.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NAMES_FILE = "usr/share/stellarium/nebulae/default/names.dat"
CREDIT = "Stellarium nebulae names.dat (stellarium-data)"
_LINE = re.compile(r'^(?P<prefix>\S+)\s+(?P<id>\S+)\s+_\("(?P<name>[^"]+)"\)\s*(?:#\s*(?P<sources>.*))?$')
# names.dat prefixes -> how the resolver writes the designation.
_PREFIX = {"NGC": "NGC ", "IC": "IC ", "M": "M", "B": "B ", "SH2": "Sh2-", "MEL": "Mel ", "CR": "Cr ",
           "LDN": "LDN ", "LBN": "LBN ", "PGC": "PGC ", "UGC": "UGC "}


@dataclass(frozen=True)
class CommonName:
    designation: str      # "NGC 5457"
    name: str             # "Pinwheel Galaxy"
    n_sources: int        # how many of Stellarium's sources use the name for this object


def names_path() -> Path | None:
    """names.dat if the stellarium-data package is unpacked here, else None (no download)."""
    from astrovlm.data.sources.debian import ENV_ROOT, debian_cache_dir

    roots = [Path(os.environ[ENV_ROOT]).expanduser()] if os.environ.get(ENV_ROOT) else []
    roots.append(debian_cache_dir() / "root" / "stellarium-data")
    for root in roots:
        if (root / NAMES_FILE).is_file():
            return root / NAMES_FILE
    return None


def read_common_names(path: str | Path | None = None) -> list[CommonName]:
    """The names in names.dat (empty when the file is not on this machine)."""
    path = Path(path) if path else names_path()
    if path is None:
        log.info("Stellarium's names.dat is not unpacked here: common names from OpenNGC only")
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.match(line.strip())
        if not m or m.group("prefix").upper() not in _PREFIX:
            continue
        sources = [s for s in re.split(r"[,\s]+", m.group("sources") or "") if s]
        out.append(CommonName(_PREFIX[m.group("prefix").upper()] + m.group("id"), m.group("name").strip(),
                              max(1, len(sources))))
    return out
