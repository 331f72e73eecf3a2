"""``SkySearch``: ask the index with words, an image, a spectrum or an object.

An encoder turns the query into a vector; the index answers with hits of any modality:

    text -> image        sky.text("an edge-on spiral galaxy", modality="image")
    text -> spectrum     sky.text("a quasar with broad emission lines", modality="spectrum")
    image -> spectrum    sky.image("m51.fits", modality="spectrum")
    spectrum -> image    sky.spectrum("hd37043.fits", modality="image")
    object -> similar    sky.similar("M51")           (one hit per object, itself left out)
    fused                sky.query(text=..., image=..., spectrum=...)   (one object, several views)

A fused query is the mean of the normalised vectors, normalised again: in a contrastive
space each view points at the object from its own side, and their mean points at what the
views share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrovlm.data.names import name_key
from astrovlm.errors import AstroVLMError
from astrovlm.index.filters import SkyFilter, check_modalities
from astrovlm.index.store import CrossModalIndex, SearchResult


def fuse(vectors) -> np.ndarray:
    """Mean of L2-normalised vectors, renormalised: one query from several views of an object."""
    x = np.asarray(vectors, dtype="float32")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or len(x) == 0:
        raise AstroVLMError("nothing to fuse (give at least one vector)", field="vectors")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any() or not np.isfinite(x).all():
        raise AstroVLMError("cannot fuse zero or non-finite vectors", field="vectors")
    mean = (x / norms).mean(axis=0)
    n = np.linalg.norm(mean)
    if n < 1e-6:
        raise AstroVLMError("the vectors cancel out (they point in opposite directions)", field="vectors")
    return (mean / n).astype("float32")


class SkySearch:
    """An encoder and an index built by it: every cross-modal query in one place."""

    def __init__(self, encoder, index: CrossModalIndex):
        if encoder.fingerprint != index.fingerprint:
            raise AstroVLMError(
                f"the index was built with encoder {index.fingerprint[:16]}, not with the loaded "
                f"encoder {encoder.fingerprint[:16]}; rebuild it with 'astrovlm index build'",
                field="fingerprint")
        if encoder.embed_dim != index.dim:
            raise AstroVLMError(f"encoder dimension {encoder.embed_dim} != index dimension {index.dim}",
                                field="dim")
        self.encoder, self.index = encoder, index
        self._resolver = None

    @classmethod
    def load(cls, index_dir: str | Path | None = None, encoder=None) -> "SkySearch":
        """The default index of the sample sky (or ``index_dir``) with the shipped encoder
        (or ``encoder``: an ``AlignedEncoder`` or the folder of one)."""
        from astrovlm.config import default_index_dir
        from astrovlm.encoders import AlignedEncoder

        if encoder is None or isinstance(encoder, (str, Path)):
            encoder = AlignedEncoder.from_pretrained(encoder)
        index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        index = CrossModalIndex.load(index_dir, expected_fingerprint=encoder.fingerprint)
        return cls(encoder, index)

    # ------------------------------------------------------------------ queries
    def text(self, query: str, modality=None, k: int = 10, **filters) -> SearchResult:
        return self.query(text=query, modality=modality, k=k, **filters)

    def image(self, image, modality=None, k: int = 10, **filters) -> SearchResult:
        return self.query(image=image, modality=modality, k=k, **filters)

    def spectrum(self, spectrum, modality=None, k: int = 10, **filters) -> SearchResult:
        return self.query(spectrum=spectrum, modality=modality, k=k, **filters)

    def query(self, text: str | None = None, image=None, spectrum=None, modality=None, k: int = 10,
              **filters) -> SearchResult:
        """Search with any of text, an image (file, PIL image or array) and a spectrum (file or
        ``Spectrum``); several together make one fused query."""
        vectors = self.encode_query(text=text, image=image, spectrum=spectrum)
        f = SkyFilter.make(modality=modality, **filters)
        return self.index.search(fuse(vectors), k=k, where=f)

    def encode_query(self, text: str | None = None, image=None, spectrum=None) -> np.ndarray:
        vectors = []
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise AstroVLMError("the query text is empty", field="query")
            vectors.append(self.encoder.encode_text([text.strip()])[0])
        if image is not None:
            vectors.append(self.encoder.encode_images([_existing(image, "image")])[0])
        if spectrum is not None:
            vectors.append(self.encoder.encode_spectra([_existing(spectrum, "spectrum")])[0])
        if not vectors:
            raise AstroVLMError("give a query: text, an image or a spectrum", field="query")
        return np.stack(vectors)

    def similar(self, obj: str, k: int = 10, modality=None, use=None, **filters) -> SearchResult:
        """Objects like ``obj`` (a name the resolver knows, or an object id in the index):
        its stored vectors (of the modalities in ``use``, default all) are fused into one
        query; hits are grouped to one per object, best first, ``obj`` itself left out."""
        object_id = self.resolve(obj)
        items = self.index.items_of_object(object_id, modality=use)
        if not items:
            what = f" in modality {'|'.join(check_modalities(use))}" if check_modalities(use) else ""
            raise AstroVLMError(f"object '{obj}' ({object_id}) has no items in the index{what}",
                                field="object")
        query = fuse(self.index.vectors(items))
        exclude = set(filters.pop("exclude_objects", ())) | {object_id}
        f = SkyFilter.make(modality=modality, exclude_objects=exclude, **filters)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise AstroVLMError(f"k must be a whole number of at least 1, got {k!r}", field="k")
        fetch = max(4 * k, 20)
        while True:
            res = self.index.search(query, k=fetch, where=f)
            best: dict[str, object] = {}
            for h in res.hits:
                if h.object_id and h.object_id not in best:
                    best[h.object_id] = h
            if len(best) >= k or len(res.hits) < fetch:
                break
            fetch *= 4
        hits = list(best.values())[:k]
        reason = res.reason if not hits else None
        if hits and len(hits) < k:
            reason = f"asked for k={k} but only {len(hits)} other objects match ({f.describe()})"
        out = SearchResult(hits, k, reason, f.to_dict())
        out.filter["object_id"] = object_id
        return out

    # ------------------------------------------------------------------ names
    def resolve(self, name: str) -> str:
        """The object id in the index for a name: the id itself, a name or id stored in the
        index ("NGC 5194", "ngc5194"), or what the catalog name resolver makes of it
        ("M51", "Whirlpool Galaxy", "alpha CMa")."""
        if not isinstance(name, str) or not name.strip():
            raise AstroVLMError("the object name is empty", field="object")
        name = name.strip()
        ids = set(self.index.object_ids())
        if name in ids:
            return name
        key = name_key(name)
        by_key = {}
        for oid, obj_name in self.index.rows.object_names():
            by_key.setdefault(name_key(oid), oid)
            if obj_name:
                by_key.setdefault(name_key(obj_name), oid)
        if key in by_key:
            return by_key[key]
        resolver = self._catalog_resolver()
        if resolver is None:
            raise AstroVLMError(f"unknown object '{name}' (not an object id or name in the index)",
                                field="object")
        found = resolver.find(name)
        if found is None:
            close = resolver.suggest(name)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise AstroVLMError(f"no object named '{name}'{hint}", field="object")
        for candidate in (found.object_id, *getattr(found, "aliases", ())):
            if candidate in ids:
                return candidate
            if name_key(candidate) in by_key:
                return by_key[name_key(candidate)]
        raise AstroVLMError(f"'{name}' is {found.object_id} ({found.otype}), which has nothing in this "
                            f"index", field="object")

    def _catalog_resolver(self):
        if self._resolver is None:
            try:
                from astrovlm.data.resolver import NameResolver

                self._resolver = NameResolver.from_dataset(self.index.dataset_root)
            except ImportError:
                self._resolver = False
        return self._resolver or None


def _existing(source, what: str):
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists():
            raise AstroVLMError(f"{what} file not found", path=p)
        if p.is_dir():
            raise AstroVLMError(f"expected a {what} file, got a folder", path=p)
        return p
    return source
