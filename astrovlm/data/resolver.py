"""Offline name resolution: "M51", "messier 51", "Whirlpool Galaxy", "NGC 5194", "ngc5194",
"IC 434", "Sirius", "alpha CMa", "HD 37043" -> one ``SkyObject``.

Names are compared by a key (``name_key``) that ignores case, spaces, punctuation, zero
padding and spelled-out catalog words ("Messier", "Sharpless", Greek letters). The index
covers OpenNGC (designations, Messier numbers, cross-identifications, common names; Dup rows
followed), the KStars stars (proper names, Bayer names, HD numbers), any extra objects
(the sample sky's own objects, e.g. Sharpless regions or the HD stars of the spectra) and
Stellarium's common names where OpenNGC lacks them ("Pinwheel Galaxy" -> M101).
Designations win over common names when two objects share a key. A common name that several
objects share goes to the one most sources give it to; ``shared_with`` names the others.

One-word names ("the Pinwheel", "Triangulum", "Andromeda") are kept apart (``head_object``):
the first word of a two-word common name ("Triangulum Galaxy") is a name only in context,
since it is often a constellation too; ``assistant.names_in_context`` decides.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from astrovlm.data.names import GREEK, name_key
from astrovlm.data.records import SkyObject
from astrovlm.data.sources.openngc import CONSTELLATIONS, row_to_object
from astrovlm.errors import BadArgumentError, NotFoundError

def _spectral_class(sptype: str | None) -> str:
    letter = (sptype or "").strip()[:1].upper()
    return {"O": "O/B star", "B": "O/B star", "A": "A star", "F": "F star", "G": "G star",
            "K": "K star", "M": "M star"}.get(letter, "star")


def star_object(row) -> SkyObject:
    """A KStars stars.dat row as a ``SkyObject`` (facts from the catalog only)."""
    hd = row.get("hd")
    hd = None if hd is None or pd.isna(hd) else int(hd)
    bayer = row.get("bayer") if isinstance(row.get("bayer"), str) else None
    proper = row.get("name") if isinstance(row.get("name"), str) else None
    object_id = f"HD {hd}" if hd else (bayer or proper or f"star J{row['ra_deg']:.5f}{row['dec_deg']:+.5f}")
    name = proper or bayer or object_id
    aliases = [a for a in (bayer, _bayer_long(bayer), f"HD {hd}" if hd else None) if a and a != name]
    const = None
    if bayer:
        abbr = bayer.split()[-1] if " " in bayer else bayer[-3:]
        const = CONSTELLATIONS.get(abbr)
    sp = row.get("spectral_type") if isinstance(row.get("spectral_type"), str) else None
    return SkyObject(
        object_id=object_id, name=name, otype="star", coarse_class=_spectral_class(sp),
        ra_deg=float(row["ra_deg"]), dec_deg=float(row["dec_deg"]), aliases=aliases,
        constellation=const, spectral_type=sp, v_mag=_opt(row.get("v_mag")), source="KStars stars.dat")


def _bayer_long(bayer: str | None) -> str | None:
    if not bayer:
        return None
    m = re.match(r"([a-z]{2,3})(\d?)\s*([A-Za-z]{3})$", bayer)
    if not m or m.group(1) not in GREEK:
        return None
    return f"{GREEK[m.group(1)]}{m.group(2)} {m.group(3)}"


_KIND_WORDS = ("Nebula", "Galaxy", "Cluster", "Cloud")


def _short_forms(common_name: str) -> list[str]:
    """Spellings of a common name that people type: "Omega Centauri" -> "omega Cen" (a Greek
    letter and a constellation's genitive, as Bayer names are abbreviated); "Cat's Eye
    Nebula" -> "Cat's Eye" (the kind word dropped, when two or more words remain, so that a
    one-word remainder such as "Ring" or a constellation such as "Triangulum" is not taken
    for the object)."""
    out = []
    words = common_name.split()
    if len(words) == 2 and words[0].lower() in GREEK.values():
        abbr = words[1][:3].capitalize()
        if abbr in CONSTELLATIONS:
            out.append(f"{words[0]} {abbr}")
    if len(words) >= 3 and words[-1] in _KIND_WORDS:
        out.append(" ".join(words[:-1]))
    return out


def _opt(v):
    return None if v is None or pd.isna(v) else float(v)


class NameResolver:
    """Resolve object names offline; unknown names raise ``NotFoundError`` with suggestions."""

    def __init__(self, openngc: pd.DataFrame | None = None, stars: pd.DataFrame | None = None,
                 objects: Iterable[SkyObject] = (), identifiers: pd.DataFrame | None = None,
                 common_names: Iterable | None = None):
        from astrovlm.data.sources.openngc import load_identifiers, load_openngc
        from astrovlm.data.sources.stellarium_names import read_common_names

        self.openngc = (openngc if openngc is not None else load_openngc()).reset_index(drop=True)
        # OpenNGC's cross-identifications (PGC, UGC, MCG, LBN ...): pyongc always ships them.
        self.identifiers = identifiers if identifiers is not None else load_identifiers()
        self.stars = stars.reset_index(drop=True) if stars is not None else None
        self.objects = {o.object_id: o for o in objects}
        self._index: dict[str, tuple[str, object]] = {}
        self._display: dict[str, str] = {}      # key -> a name to show in suggestions
        # Stellarium's names (None: read them if the package is unpacked on this machine).
        self.common_names = list(read_common_names() if common_names is None else common_names)
        self._shared: dict[str, list[str]] = {}  # name key -> other objects that bear the name
        self._heads: dict[str, tuple] = {}       # one-word key -> (target, full name, others)
        self._build()

    # -- building the index ------------------------------------------------------------
    def _add(self, name: str | None, target: tuple[str, object], display: bool = True) -> None:
        if not name or not isinstance(name, str):
            return
        key = name_key(name)
        if key and key not in self._index:
            self._index[key] = target
            if display:
                self._display[key] = name

    def _build(self) -> None:
        df = self.openngc
        real = self._dup_targets(df)
        common: list[tuple[str, tuple]] = []
        ids = self.identifiers
        cols = {c: df[c].tolist() for c in ("name", "display", "type", "messier", "identifiers", "commonnames")}
        for i in range(len(df)):
            target = ("ngc", real[i])
            messier, otype = cols["messier"][i], cols["type"][i]
            if messier and otype != "Dup":
                self._add(f"M{int(messier)}", target)
            self._add(cols["display"][i], target)
            self._add(cols["name"][i], target, display=False)
            for ident in (cols["identifiers"][i] or "").split(","):
                self._add(ident.strip(), target, display=False)
            for cname in (cols["commonnames"][i] or "").split(","):
                if cname.strip():
                    common.append((cname.strip(), target))
        if ids is not None:
            pos = {n: i for i, n in enumerate(cols["name"])}
            for name, ident in zip(ids["name"].tolist(), ids["identifier"].tolist()):
                if name in pos:
                    self._add(ident, ("ngc", real[pos[name]]), display=False)
        for oid, obj in self.objects.items():
            for n in [oid, obj.name, *obj.aliases]:
                self._add(n, ("obj", oid))
        if self.stars is not None:
            st = self.stars
            if "hd" in st:
                hd = st["hd"]
                for i, n in zip(st.index[hd.notna()], hd[hd.notna()].astype(int)):
                    key = f"hd{n}"  # name_key("HD n"), without the regexes: 38k of them
                    if key not in self._index:
                        self._index[key] = ("star", int(i))
                        self._display[key] = f"HD {n}"
            for col in ("bayer", "name"):
                if col in st:
                    values = st[col]
                    for i, v in zip(st.index[values.notna()], values[values.notna()]):
                        self._add(v, ("star", int(i)))
                        if col == "bayer":
                            self._add(_bayer_long(v), ("star", int(i)))
        for cname, target in common:
            self._add(cname, target)
        for cname, target in common:  # shorter spellings people type, never over a real name
            for short in _short_forms(cname):
                self._add(short, target, display=False)
        self._add_shared_names([(c, t, 1) for c, t in common])

    def _add_shared_names(self, openngc_names: list[tuple[str, tuple, int]]) -> None:
        """Stellarium's common names, and the one-word heads of all two-word common names.
        Where several objects bear a name, the one with the most sources gets it."""
        weighted = list(openngc_names)
        for cn in self.common_names:
            target = self._index.get(name_key(cn.designation))
            if target is not None:
                weighted.append((cn.name, target, cn.n_sources))
        by_name: dict[str, dict] = {}
        by_head: dict[str, dict] = {}
        for cname, target, n in weighted:
            by_name.setdefault(name_key(cname), {}).setdefault(target, [cname, 0])[1] += n
            words = cname.split()
            if len(words) == 2 and words[1] in _KIND_WORDS and words[0][:1].isupper():
                by_head.setdefault(name_key(words[0]), {}).setdefault(target, [cname, 0])[1] += n
        for key, cands in by_name.items():
            best = max(cands, key=lambda t: cands[t][1])
            self._add(cands[best][0], best)
            if len(cands) > 1 and self._index.get(key) == best:
                self._shared[key] = [self._object(t).name for t in cands if t != best]
        for key, cands in by_head.items():
            if key in self._index:      # a real one-word name ("Sirius") is not a head
                continue
            best = max(cands, key=lambda t: cands[t][1])
            others = [f"{self._object(t).name} ({c[0]})" for t, c in cands.items() if t != best]
            self._heads[key] = (best, cands[best][0], others)

    @staticmethod
    def _dup_targets(df: pd.DataFrame) -> list[int]:
        by_name = {n: i for i, n in enumerate(df["name"])}
        by_messier = {int(m): i for i, (m, t) in enumerate(zip(df["messier"], df["type"]))
                      if m and t != "Dup"}
        out = []
        for i, (t, dup) in enumerate(zip(df["type"], df["dup_of"])):
            j, hops = i, 0
            while df.at[j, "type"] == "Dup" and hops < 5:
                d = df.at[j, "dup_of"]
                if isinstance(d, (tuple, list)):
                    nxt = by_messier.get(int(d[1]))
                elif isinstance(d, str) and d.startswith("M") and d[1:].isdigit():
                    nxt = by_messier.get(int(d[1:]))
                else:
                    nxt = by_name.get(d) if d else None
                if nxt is None:
                    break
                j, hops = nxt, hops + 1
            out.append(j)
        return out

    # -- queries -----------------------------------------------------------------------
    def _object(self, target: tuple[str, object]) -> SkyObject:
        kind, ref = target
        if kind == "obj":
            return self.objects[ref]
        if kind == "ngc":
            row = self.openngc.iloc[ref]
            return self.objects.get(row["name"]) or row_to_object(row)
        obj = star_object(self.stars.iloc[ref])
        return self.objects.get(obj.object_id) or obj

    def __contains__(self, name: str) -> bool:
        return name_key(name) in self._index

    def find(self, name: str) -> SkyObject | None:
        """The object called ``name``, or None (no suggestions: cheap)."""
        target = self._index.get(name_key(name)) if name else None
        return None if target is None else self._object(target)

    def shared_with(self, name: str) -> list[str]:
        """Other objects that also bear the common name ``name`` (empty if it is unique)."""
        return list(self._shared.get(name_key(name), []))

    def head_object(self, word: str) -> tuple[SkyObject, str, list[str]] | None:
        """For a one-word name that starts a two-word common name ("Pinwheel", "Triangulum"):
        (the object, its full common name, "M33 (Pinwheel Galaxy)"-style notes on the others
        that share the word), or None."""
        got = self._heads.get(name_key(word)) if word else None
        return None if got is None else (self._object(got[0]), got[1], list(got[2]))

    def resolve(self, name: str) -> SkyObject:
        """The object called ``name``; ``NotFoundError`` (with close names) if none is."""
        if not name or not str(name).strip():
            raise BadArgumentError("empty object name", field="name")
        target = self._index.get(name_key(name))
        if target is None:
            close = self.suggest(name)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            if self.stars is None:
                hint += " (star names need the KStars table: build the sample sky with 'astrovlm data sample')"
            raise NotFoundError(f"no object named '{name}' in OpenNGC, the KStars stars or the "
                                f"sample sky{hint}", field="name")
        return self._object(target)

    def suggest(self, name: str, n: int = 5) -> list[str]:
        """Up to ``n`` known names closest to ``name`` (difflib on the comparison keys)."""
        key = name_key(name)
        keys = difflib.get_close_matches(key, list(self._display), n=n, cutoff=0.6)
        return [self._display[k] for k in keys]

    # -- construction from the sample sky ---------------------------------------------------
    @classmethod
    def from_dataset(cls, root=None) -> "NameResolver":
        """Resolver over a built dataset (a ``SkyDataset`` or its folder: its tables and
        objects), or OpenNGC alone if there is none."""
        from astrovlm.config import sample_dir
        from astrovlm.data.records import SkyDataset, dataset_dir
        from astrovlm.data.sources.openngc import load_openngc

        if isinstance(root, SkyDataset):  # already open: do not read its records again
            dataset, root = root, Path(root.root)
        else:
            root = dataset_dir(root if root else sample_dir())
            dataset = SkyDataset(root) if (root / "objects.jsonl").exists() else None
        openngc = load_openngc()
        stars, objects = None, dataset.objects if dataset is not None else []
        if (root / "tables" / "stars.parquet").exists():
            stars = pd.read_parquet(root / "tables" / "stars.parquet")
        return cls(openngc, stars, objects)   # Stellarium's common names: read if unpacked here
