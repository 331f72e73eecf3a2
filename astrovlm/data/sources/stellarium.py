"""Stellarium's deep-sky images and sky-culture texts (Debian ``stellarium-data``).

``nebulae/default/textures.json`` lists each image with the sky positions of its four
corners (RA/Dec in degrees, J2000) and a credit. The file is not strict JSON (numbers such
as ``-.97``), so it is repaired with a regex before parsing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrovlm.errors import AstroVLMError, NotFoundError, UnreadableError

NEBULAE = Path("usr/share/stellarium/nebulae/default")
SKYCULTURES = Path("usr/share/stellarium/skycultures")
COPYRIGHT = Path("usr/share/doc/stellarium-data/copyright")
SOURCE = "Stellarium deep-sky images (Debian stellarium-data)"
PACKAGE_LICENSE = "GPL-2+ (Stellarium); image terms per credit holder, see the package copyright"


@dataclass
class NebulaImage:
    """One Stellarium deep-sky image and where it lies on the sky."""

    path: Path
    credit: str
    info_url: str | None
    license: str
    ra_deg: float                # centre of the four corners, ICRS
    dec_deg: float
    fov_deg: float               # the longer side of the image on the sky
    corners: list                # [[ra, dec] x 4] in degrees

    @property
    def stem(self) -> str:
        return self.path.stem


_BARE_DECIMAL = re.compile(r"(?<=[\[\s,:])(-?)\.(\d)")


def parse_textures_json(text: str, path: Path | str = "textures.json") -> dict:
    """Parse Stellarium's textures.json (repairs ``-.97`` style numbers first)."""
    fixed = _BARE_DECIMAL.sub(r"\g<1>0.\2", text)
    try:
        return json.loads(fixed)
    except json.JSONDecodeError as exc:
        raise UnreadableError(f"cannot parse even after repairing numbers: {exc.msg} "
                            f"at line {exc.lineno}", path=path) from None


def _unit(ra_deg, dec_deg) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _sep_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), np.dot(a, b))))


def corners_centre(corners) -> tuple[float, float, float]:
    """Centre (RA, Dec) and the longer side, in degrees, of a sky quadrilateral.

    Averages unit vectors, so corners across RA = 0 (or given as negative RA) work.
    """
    c = np.asarray(corners, dtype=float)
    if c.shape != (4, 2) or not np.all(np.isfinite(c)):
        raise UnreadableError(f"expected 4 finite [ra, dec] corners, got {c.tolist()}", field="worldCoords")
    v = _unit(c[:, 0], c[:, 1])
    m = v.mean(axis=0)
    m /= np.linalg.norm(m)
    ra = float(np.degrees(np.arctan2(m[1], m[0])) % 360.0)
    dec = float(np.degrees(np.arcsin(np.clip(m[2], -1, 1))))
    sides = [_sep_deg(v[i], v[(i + 1) % 4]) for i in range(4)]
    return ra, dec, max(sides)


def _credit(tile: dict) -> tuple[str, str | None]:
    cr = tile.get("imageCredits") or {}
    # Both "short" and "Short" occur in the file.
    short = cr.get("short") or cr.get("Short") or ""
    return short.strip(), cr.get("infoUrl")


class ImageLicences:
    """Image terms as the Debian copyright file states them, found by the credit's name."""

    def __init__(self, copyright_text: str):
        # Section 4 ("Graphics") lists "4.N Images of ... from NAME ... License: ...".
        items = re.split(r"\n\s+(?=4\.\d+[a-z]?\s)", copyright_text)
        items = [re.sub(r"\s+", " ", it) for it in items if re.match(r"4\.\d+", it.strip())]
        # Only the items about deep-sky pictures (others cover planet maps, icons, ...).
        self.items = [it for it in items if re.search(r"(?i)images? of|nebula pictures", it)]

    def licence_for(self, credit: str) -> str:
        words = [w.lower() for w in re.split(r"[^A-Za-z]+", credit) if len(w) > 3]
        for item in self.items:
            if words and all(w in item.lower() for w in words):
                m = re.search(r"License:\s*(.+?)(?:\s+\.\s|$)", item)
                if m:
                    return m.group(1).strip()
        return PACKAGE_LICENSE


def nebula_images(root: Path) -> list[NebulaImage]:
    """Every image listed in textures.json whose file exists, with centre, size and credit."""
    folder = Path(root) / NEBULAE
    tj = folder / "textures.json"
    if not tj.exists():
        raise NotFoundError("Stellarium textures.json not found; is stellarium-data unpacked?", path=tj)
    data = parse_textures_json(tj.read_text(encoding="utf-8"), tj)
    copyright_file = Path(root) / COPYRIGHT
    licences = ImageLicences(copyright_file.read_text(encoding="utf-8", errors="replace")
                             if copyright_file.exists() else "")
    images = []
    for i, tile in enumerate(data.get("subTiles", [])):
        url = tile.get("imageUrl")
        coords = tile.get("worldCoords")
        if not url or not coords:
            continue
        path = folder / url
        if not path.exists():
            continue
        try:
            ra, dec, fov = corners_centre(coords[0])
        except AstroVLMError as exc:
            raise UnreadableError(f"tile {i} ({url}): {exc}", path=tj) from None
        credit, info = _credit(tile)
        images.append(NebulaImage(path=path, credit=credit, info_url=info,
                                  license=licences.licence_for(credit) if credit else PACKAGE_LICENSE,
                                  ra_deg=ra, dec_deg=dec, fov_deg=fov,
                                  corners=[[float(a), float(b)] for a, b in coords[0]]))
    return images


@dataclass
class SkyCultureText:
    culture: str
    name: str
    author: str
    license: str
    html: str
    path: Path


def skyculture_texts(root: Path) -> list[SkyCultureText]:
    """The English description of every sky culture (HTML), with its author and licence."""
    folder = Path(root) / SKYCULTURES
    out = []
    for desc in sorted(folder.glob("*/description.en.utf8")):
        info = _read_ini(desc.parent / "info.ini")
        out.append(SkyCultureText(culture=desc.parent.name, name=info.get("name", desc.parent.name),
                                  author=info.get("author", "Stellarium contributors"),
                                  license=info.get("license", PACKAGE_LICENSE),
                                  html=desc.read_text(encoding="utf-8", errors="replace"), path=desc))
    return out


def _read_ini(path: Path) -> dict:
    out = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


# --- what each image shows ------------------------------------------------------------------
# File names say which catalog object an image shows (m57dumont.png, n7293.png, ic434.png,
# sh2-155.png, ...). A hint is (name to resolve, fallback object if no catalog has it).

@dataclass(frozen=True)
class OwnObject:
    """An object the image's name identifies but OpenNGC lacks (Sharpless, Lynds, ...)."""

    object_id: str
    name: str
    otype: str
    coarse_class: str
    aliases: tuple = ()


_CATALOG_PATTERNS = [
    # (regex on the file stem, designation, what that catalog lists, coarse class)
    (r"m(\d+)", "M{}", None, None),
    (r"(?:n|ngc)(\d+)", "NGC {}", None, None),
    (r"ic(\d+)", "IC {}", None, None),
    (r"u(\d+)", "UGC {}", "galaxy", "galaxy"),
    (r"p(\d+)", "PGC {}", "galaxy", "galaxy"),
    (r"sh2-(\d+)", "Sh2-{}", "HII region", "nebula"),
    (r"barnard(\d+)", "Barnard {}", "dark nebula", "nebula"),
    (r"ldn(\d+)", "LDN {}", "dark nebula", "nebula"),
    (r"lbn(\d+)", "LBN {}", "bright nebula", "nebula"),
    (r"rcw(\d+)", "RCW {}", "HII region", "nebula"),
    (r"vdb(\d+)", "vdB {}", "reflection nebula", "nebula"),
    (r"abell(\d+)", "Abell {}", "planetary nebula", "planetary nebula"),
]

# Images named for an object rather than a catalog number (what the name says, nothing more).
_NAMED = {
    "pleiades": ("M45", None),
    "etacarinae": ("NGC 3372", None),
    "lmc": ("Large Magellanic Cloud", None),
    "smc": ("Small Magellanic Cloud", None),
    "cassiopeia_a": (None, OwnObject("Cassiopeia A", "Cassiopeia A", "supernova remnant", "nebula",
                                     ("Cas A", "3C 461"))),
    "velasnr": (None, OwnObject("Vela SNR", "Vela Supernova Remnant", "supernova remnant", "nebula")),
    "barnard_loop": (None, OwnObject("Barnard's Loop", "Barnard's Loop", "emission nebula", "nebula",
                                     ("Sh2-276",))),
    "rho": (None, OwnObject("rho Oph cloud complex", "Rho Ophiuchi cloud complex",
                            "dark and reflection nebula complex", "nebula")),
    "darkshark": (None, OwnObject("LDN 1235", "Dark Shark Nebula", "dark nebula", "nebula")),
    "gammacygni": (None, OwnObject("Gamma Cygni Nebula", "Gamma Cygni Nebula", "emission nebula",
                                   "nebula", ("Sh2-108",))),
    "medusa": (None, OwnObject("Abell 21", "Medusa Nebula", "planetary nebula", "planetary nebula",
                               ("Sh2-274",))),
    "jones-emberson1": (None, OwnObject("Jones-Emberson 1", "Jones-Emberson 1", "planetary nebula",
                                        "planetary nebula", ("PK 164+31.1",))),
    # Protoplanetary nebulae: not yet planetary nebulae.
    "calabash": (None, OwnObject("Calabash Nebula", "Calabash Nebula", "protoplanetary nebula",
                                 "nebula", ("OH 231.8+4.2",))),
    "red_rectangle": (None, OwnObject("Red Rectangle", "Red Rectangle Nebula", "protoplanetary nebula",
                                      "nebula", ("HD 44179",))),
    # Abell 85 is in Abell's planetary-nebula list but is the supernova remnant CTB 1.
    "abell85": (None, OwnObject("Abell 85", "Abell 85", "supernova remnant", "nebula", ("CTB 1",))),
    "wilds": (None, OwnObject("Wild's Triplet", "Wild's Triplet", "galaxy triplet", "galaxy",
                              ("Arp 248",))),
    # Clusters of galaxies are no IMAGE_CLASS: "other".
    "virgo_cluster": (None, OwnObject("Virgo Cluster", "Virgo Cluster", "cluster of galaxies", "other")),
    "coma_cluster": (None, OwnObject("Coma Cluster", "Coma Cluster", "cluster of galaxies", "other",
                                     ("Abell 1656",))),
    "fornax_cluster": (None, OwnObject("Fornax Cluster", "Fornax Cluster", "cluster of galaxies", "other")),
    "hercules_cluster": (None, OwnObject("Hercules Cluster", "Hercules Cluster", "cluster of galaxies",
                                         "other", ("Abell 2151",))),
    "hydra_cluster": (None, OwnObject("Hydra Cluster", "Hydra Cluster", "cluster of galaxies", "other",
                                      ("Abell 1060",))),
    "leo_cluster": (None, OwnObject("Leo Cluster", "Leo Cluster", "cluster of galaxies", "other",
                                    ("Abell 1367",))),
    "perseus_cluster": (None, OwnObject("Perseus Cluster", "Perseus Cluster", "cluster of galaxies",
                                        "other", ("Abell 426",))),
}


def name_hint(stem: str) -> tuple[str | None, OwnObject | None]:
    """What the file name says: (a name to resolve, an object to use if nothing resolves)."""
    s = stem.lower()
    for key, hint in _NAMED.items():
        if s == key or s.startswith(key + "-") or s.startswith(key + "_") or (
                key in ("lmc", "smc", "rho") and s.startswith(key)):
            return hint
    for pattern, designation, otype, coarse in _CATALOG_PATTERNS:
        m = re.match(pattern + r"(?![0-9])", s)
        if m:
            n = int(m.group(1))
            name = designation.format(n)
            own = OwnObject(name, name, otype, coarse) if otype else None
            return name, own
    return None, None
