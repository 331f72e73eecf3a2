"""``Retriever``: the one door to the index, for the CLI, the app and the assistant.

An encoder turns the query into a vector; the index answers with hits of any modality:

    text -> image        r.text("an edge-on spiral galaxy", modality="image")
    text -> spectrum     r.text("a quasar with broad emission lines", modality="spectrum")
    image -> spectrum    r.image("m51.fits", modality="spectrum")
    spectrum -> image    r.spectrum("hd37043.fits", modality="image")
    object -> similar    r.similar("M51")           (one hit per object, itself left out)
    fused                r.query(text=..., image=..., spectrum=...)   (one object, several views)
    zero-shot class      r.classify(image="m57.fits")   (the call `astrovlm classify` makes)

Every query takes the same narrowing arguments, applied here and nowhere else: ``modality``,
``object_type``, a cone, ``exclude_objects`` (FAISS-side filters), and ``per_object`` (at most
that many hits of one object, or of one template for spectra of no catalogued object),
``splits`` and ``kinds`` (the dataset split, the passage kind) and ``min_score``, for which
the retriever over-fetches until ``k`` hits survive or the index has no more.

A fused query is the mean of the normalised vectors, normalised again: in a contrastive
space each view points at the object from its own side, and their mean points at what the
views share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrovlm.data.names import name_key
from astrovlm.errors import BadArgumentError, IncompatibleError, NotFoundError
from astrovlm.index.filters import SkyFilter, check_modalities
from astrovlm.index.store import CrossModalIndex, SearchResult


def fuse(vectors) -> np.ndarray:
    """Mean of L2-normalised vectors, renormalised: one query from several views of an object."""
    x = np.asarray(vectors, dtype="float32")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or len(x) == 0:
        raise BadArgumentError("nothing to fuse (give at least one vector)", field="vectors")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any() or not np.isfinite(x).all():
        raise BadArgumentError("cannot fuse zero or non-finite vectors", field="vectors")
    mean = (x / norms).mean(axis=0)
    n = np.linalg.norm(mean)
    if n < 1e-6:
        raise BadArgumentError("the vectors cancel out (they point in opposite directions)", field="vectors")
    return (mean / n).astype("float32")


def group_key(hit) -> str:
    """What counts as "the same thing" in a result list: the object, else the template a
    simulated spectrum was made from, else the item itself."""
    return hit.object_id or (hit.metadata or {}).get("template") or hit.item_id


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise BadArgumentError(f"k must be a whole number of at least 1, got {k!r}", field="k")
    return int(k)


class Retriever:
    """An encoder, an index built by it and a name resolver: every query in one place."""

    def __init__(self, encoder, index: CrossModalIndex, resolver=None, dataset=None):
        if encoder.fingerprint != index.fingerprint:
            raise IncompatibleError(
                f"the index was built with encoder {index.fingerprint[:16]}, not with the loaded "
                f"encoder {encoder.fingerprint[:16]}; rebuild it with 'astrovlm index build'",
                field="fingerprint")
        if encoder.embed_dim != index.dim:
            raise IncompatibleError(f"encoder dimension {encoder.embed_dim} != index dimension {index.dim}",
                                    field="dim")
        self.encoder, self.index = encoder, index
        self._resolver, self._dataset = resolver, dataset

    # ------------------------------------------------------------------ queries
    def text(self, query: str, modality=None, k: int = 10, **narrow) -> SearchResult:
        return self.query(text=query, modality=modality, k=k, **narrow)

    def image(self, image, modality=None, k: int = 10, **narrow) -> SearchResult:
        return self.query(image=image, modality=modality, k=k, **narrow)

    def spectrum(self, spectrum, modality=None, k: int = 10, **narrow) -> SearchResult:
        return self.query(spectrum=spectrum, modality=modality, k=k, **narrow)

    def query(self, text: str | None = None, image=None, spectrum=None, modality=None, k: int = 10,
              **narrow) -> SearchResult:
        """Search with any of text, an image (file, PIL image or array) and a spectrum (file or
        ``Spectrum``); several together make one fused query."""
        vectors = self.encode_query(text=text, image=image, spectrum=spectrum)
        return self.nearest(fuse(vectors), k=k, modality=modality, **narrow)

    def nearest(self, vector, k: int = 10, *, modality=None, per_object: int | None = None,
                splits=None, kinds=None, min_score: float | None = None, named_only: bool = False,
                **filters) -> SearchResult:
        """The ``k`` best hits for a query vector, narrowed as the module docstring says.

        FAISS-side filters (modality, object_type, cone, exclude_objects) go to the index;
        the rest are applied to its hits, fetching deeper (x4 each round) until ``k`` survive,
        the index has no more, or the scores fall below ``min_score``.
        """
        k = check_k(k)
        if per_object is not None and (isinstance(per_object, bool) or int(per_object) < 1):
            raise BadArgumentError(f"per_object must be at least 1, got {per_object!r}", field="per_object")
        f = SkyFilter.make(modality=modality, **filters)
        splits = _as_set(splits, "splits")
        kinds = _as_set(kinds, "kinds")
        if per_object is None and not splits and not kinds and min_score is None and not named_only:
            return self.index.search(vector, k=k, where=f)

        def accept(hit) -> bool:
            meta = hit.metadata or {}
            return ((not named_only or bool(hit.object_id))
                    and (not splits or meta.get("split") in splits)
                    and (not kinds or meta.get("kind") in kinds))

        fetch = max(4 * k, 20)
        while True:
            res = self.index.search(vector, k=min(fetch, max(len(self.index), 1)), where=f)
            kept, count, low = [], {}, False
            for hit in res.hits:
                if min_score is not None and hit.score < min_score:
                    low = True
                    break  # hits come best first
                if not accept(hit):
                    continue
                key = group_key(hit)
                if per_object is not None and count.get(key, 0) >= per_object:
                    continue
                count[key] = count.get(key, 0) + 1
                kept.append(hit)
                if len(kept) == k:
                    break
            if len(kept) >= k or low or len(res.hits) < fetch or fetch >= len(self.index):
                break
            fetch *= 4
        narrowed = {"per_object": per_object, "splits": sorted(splits) if splits else None,
                    "kinds": sorted(kinds) if kinds else None, "min_score": min_score,
                    "named_only": named_only or None}
        narrowed = {key: v for key, v in narrowed.items() if v is not None}
        reason = res.reason if not kept else None
        if kept and len(kept) < k:
            what = ", ".join(f"{key}={v}" for key, v in narrowed.items())
            reason = f"asked for k={k} but only {len(kept)} match ({f.describe()}; {what})"
        return SearchResult(kept, k, reason, {**f.to_dict(), **narrowed})

    def encode_query(self, text: str | None = None, image=None, spectrum=None) -> np.ndarray:
        vectors = []
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise BadArgumentError("the query text is empty", field="query")
            vectors.append(self.encoder.encode_text([text.strip()])[0])
        if image is not None:
            vectors.append(self.encoder.encode_images([_existing(image, "image")])[0])
        if spectrum is not None:
            vectors.append(self.encoder.encode_spectra([_existing(spectrum, "spectrum")])[0])
        if not vectors:
            raise BadArgumentError("give a query: text, an image or a spectrum", field="query")
        return np.stack(vectors)

    def similar(self, obj: str, k: int = 10, modality=None, use=None, **narrow) -> SearchResult:
        """Objects like ``obj`` (a name the resolver knows, or an object id in the index):
        its stored vectors (of the modalities in ``use``, default all) are fused into one
        query; hits are grouped to one per object, best first, ``obj`` itself left out."""
        object_id = self.resolve(obj)
        items = self.index.items_of_object(object_id, modality=use)
        if not items:
            what = f" in modality {'|'.join(check_modalities(use))}" if check_modalities(use) else ""
            raise NotFoundError(f"object '{obj}' ({object_id}) has no items in the index{what}",
                                field="object")
        exclude = set(narrow.pop("exclude_objects", ())) | {object_id}
        narrow.setdefault("per_object", 1)
        out = self.nearest(fuse(self.index.vectors(items)), k=k, modality=modality, named_only=True,
                           exclude_objects=exclude, **narrow)
        if out.hits and len(out.hits) < out.k:
            out.reason = f"asked for k={out.k} but only {len(out.hits)} other objects match"
        out.filter["object_id"] = object_id
        return out

    # ------------------------------------------------------------------ zero-shot
    def classify(self, image=None, spectrum=None, labels=None, views: int | None = None,
                 embeddings: dict | None = None, band: str = "optical"):
        """Zero-shot class of an image and/or a spectrum of one object: the same call as
        ``astrovlm classify`` and the app's Classify tab (prompt ensembles, sub-class pooling,
        test-time views of an image; ``band="radio"`` for a radio map). ``embeddings``:
        vectors already made by the encoder ({"image": ..., "spectrum": ...}), used as they are."""
        from astrovlm.encoders import zeroshot

        kwargs = {} if views is None else {"views": views}
        return zeroshot.classify(self.encoder, image=image, spectrum=spectrum, labels=labels,
                                 embeddings=embeddings, band=band, **kwargs)

    # ------------------------------------------------------------------ names
    def resolve(self, name: str) -> str:
        """The object id in the index for a name: the id itself, a name or id stored in the
        index ("NGC 5194", "ngc5194"), or what the catalog name resolver makes of it
        ("M51", "Whirlpool Galaxy", "alpha CMa")."""
        if not isinstance(name, str) or not name.strip():
            raise BadArgumentError("the object name is empty", field="object")
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
        resolver = self.resolver
        found = resolver.find(name)
        if found is None:
            close = resolver.suggest(name)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise NotFoundError(f"no object named '{name}'{hint}", field="object")
        for candidate in (found.object_id, *getattr(found, "aliases", ())):
            if candidate in ids:
                return candidate
            if name_key(candidate) in by_key:
                return by_key[name_key(candidate)]
        raise NotFoundError(f"'{name}' is {found.object_id} ({found.otype}), which has nothing in this "
                            f"index", field="object")

    @property
    def resolver(self):
        """The offline name resolver (the one ``Sky.open`` made, or one for the index's dataset)."""
        if self._resolver is None:
            from astrovlm.data.resolver import NameResolver

            self._resolver = NameResolver.from_dataset(self._dataset or self.index.dataset_root)
        return self._resolver


def _existing(source, what: str):
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists():
            raise NotFoundError(f"{what} file not found", path=p)
        if p.is_dir():
            raise BadArgumentError(f"expected a {what} file, got a folder", path=p)
        return p
    return source


def _as_set(values, field: str) -> set | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    out = {str(v) for v in values}
    if not out:
        raise BadArgumentError(f"{field} is empty (give None for no restriction)", field=field)
    return out


# The name this class had before it became the one door; kept for scripts that use it.
SkySearch = Retriever
