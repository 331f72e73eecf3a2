"""``CrossModalIndex``: image, spectrum and text vectors in one space, with what they are.

Every vector has a row number (its FAISS id, int64, never reused) and a row of metadata:
which object it shows, in which modality, where on the sky, its class, credit, whether it is
simulated, and a ``preview`` (the relative path of its image or spectrum file). Vectors are
stored L2-normalised, so the inner product FAISS ranks by is the cosine similarity.

Searches take a ``SkyFilter``. A filter becomes a boolean mask over rows; how it is applied
depends on how much it keeps: exact search over the kept rows when they are few (a graph
walk restricted to a handful of nodes misses most of them), FAISS's ``IDSelector`` inside
the ANN search otherwise, widening ``efSearch``/``nprobe`` by the inverse of the kept
fraction and falling back to exact search if that still returns too few. An unfiltered
search that comes back short (k near the index size, or above efSearch) falls back the same
way: HNSW scans its stored vectors, IVF probes every list for that query.

On disk an index is a folder, written atomically (temp folder, fsync, rename)::

    index.faiss      the FAISS index
    index.ivfdata    on-disk inverted lists (only for a merged Ray build)
    meta.parquet     one row per live vector: row id + metadata columns
    config.json      encoder fingerprint, dim, kind, count, search settings, file checksums
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import faiss
import numpy as np

from astrovlm.config import atomic_directory
from astrovlm.errors import AstroVLMError
from astrovlm.index import factory
from astrovlm.index.filters import MODALITIES, NO_FILTER, SkyFilter, cone_mask

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_FILE, IVFDATA_FILE, META_FILE, CONFIG_FILE = "index.faiss", "index.ivfdata", "meta.parquet", "config.json"

# Metadata columns and their empty values. Anything else given with a vector is kept in "extra".
STR_COLUMNS = ("item_id", "object_id", "name", "modality", "source", "coarse_class", "otype",
               "credit", "license", "preview", "caption", "split")
FLOAT_COLUMNS = ("ra_deg", "dec_deg")
BOOL_COLUMNS = ("simulated",)
COLUMNS = STR_COLUMNS + FLOAT_COLUMNS + BOOL_COLUMNS
META_COLUMNS = tuple(c for c in COLUMNS if c != "item_id")

EXACT_SUBSET_MAX = 4096        # a filter keeping at most this many rows is searched exactly
EXACT_SUBSET_FRACTION = 0.02   # ... or at most this fraction of the index
TUNE_QUERIES = 200
TRAIN_MAX = 100_000            # IVF-PQ quantizer training sample
HOLDOUT = 200                  # vectors a fresh graph/IVF index is tuned on before they join it

# Bound once: the per-query path runs in tens of microseconds, where module attribute
# lookups and numpy's dtype parsing show.
_F32 = np.dtype("float32")
_I64 = np.dtype("int64")
_swig_ptr = faiss.swig_ptr
_norm2 = faiss.fvec_norm_L2sqr
_new_object = object.__new__


class _Unread:
    """Marks a Hit field not yet read from its index; one instance, which a pickled (or
    copied) Hit keeps, so the field is still read on first use after loading."""

    __slots__ = ()

    def __reduce__(self):
        return "_UNREAD"

    def __repr__(self) -> str:
        return "<unread>"


_UNREAD = _Unread()


class Hit:
    """One search result: a stored vector, how close it is, and what it is.

    ``object_id``, ``modality``, ``metadata`` and ``preview`` are read from the index when
    first asked for, so a search whose caller only wants ids and scores does not pay for
    them: on a large index each column read is a cache miss, and ten hits' worth of them
    are a visible part of a 0.1 ms query. (Row numbers are never reused, so a row's
    columns still say the same later.)
    """

    __slots__ = ("score", "item_id", "_object_id", "_modality", "_metadata", "_preview", "_index", "_row")

    def __init__(self, score: float, item_id: str, object_id: str | None, modality: str,
                 metadata: dict | None = None, preview: str | None = None, *, index=None, row: int = -1):
        self.score, self.item_id, self._object_id, self._modality = float(score), item_id, object_id, modality
        self._metadata, self._preview, self._index, self._row = metadata, preview, index, row

    @classmethod
    def _of_rows(cls, index: "CrossModalIndex", scores: list, rows: list) -> "list[Hit]":
        """The hits of one search, from FAISS's scores and row ids (rows of -1 are missing
        results: a graph walk or the probed lists found fewer than asked for)."""
        # Built in one loop, with no __init__ call per hit: a search makes ten of these per
        # query, and the calls with keywords and float() (the scores are floats already,
        # from ndarray.tolist()) cost a third of a small index's search.
        items, new, hits = index._cols["item_id"], _new_object, []
        for score, row in zip(scores, rows):
            if row >= 0:
                hit = new(cls)
                hit.score, hit.item_id, hit._index, hit._row = score, items[row], index, row
                hit._object_id = hit._modality = _UNREAD
                hit._metadata = hit._preview = None
                hits.append(hit)
        return hits

    @property
    def object_id(self) -> str | None:
        if self._object_id is _UNREAD:
            self._object_id = self._index._cols["object_id"][self._row]
        return self._object_id

    @object_id.setter
    def object_id(self, value: str | None) -> None:
        self._object_id = value

    @property
    def modality(self) -> str:
        if self._modality is _UNREAD:
            self._modality = self._index._cols["modality"][self._row]
        return self._modality

    @modality.setter
    def modality(self, value: str) -> None:
        self._modality = value

    @property
    def metadata(self) -> dict:
        """object name, class, type, position, source, credit, licence, simulated, caption, ..."""
        if self._metadata is None:
            self._metadata = self._index._meta(self._row) if self._index is not None else {}
        return self._metadata

    @property
    def preview(self) -> str | None:
        """Path of the image / spectrum file (absolute when the dataset folder is known)."""
        if self._preview is None and self._index is not None:
            self._preview = self._index._preview(self.metadata.get("preview"))
        return self._preview

    def to_dict(self) -> dict:
        return {"score": round(float(self.score), 6), "item_id": self.item_id,
                "object_id": self.object_id, "modality": self.modality,
                "preview": self.preview, "metadata": self.metadata}

    def __repr__(self) -> str:
        return (f"Hit(score={self.score:.4f}, item_id={self.item_id!r}, object_id={self.object_id!r}, "
                f"modality={self.modality!r})")


@dataclass
class SearchResult:
    """Hits, best first, and why there are fewer than asked for (if there are)."""

    hits: list[Hit]
    k: int                                    # what was asked for
    reason: str | None = None                 # e.g. "no item matches the filter (...)"
    filter: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self):
        return iter(self.hits)

    def __getitem__(self, i):
        return self.hits[i]

    def to_dict(self) -> dict:
        return {"k": self.k, "returned": len(self.hits), "reason": self.reason,
                "filter": self.filter, "hits": [h.to_dict() for h in self.hits]}


class CrossModalIndex:
    """Vectors of every modality in one inner-product space, with metadata; FAISS underneath.

    >>> index = CrossModalIndex(dim=256, fingerprint=encoder.fingerprint)
    >>> index.add(vectors, [{"item_id": "image:M51", "object_id": "NGC5194", "modality": "image"}])
    >>> index.search(encoder.encode_text(["a face-on spiral"])[0], k=5, modality="image")
    """

    def __init__(self, dim: int, fingerprint: str, kind: str = "auto", recall_target: float = 0.95,
                 *, dataset_root: str | Path | None = None):
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise AstroVLMError(f"dimension must be a positive integer, got {dim!r}", field="dim")
        if not fingerprint or not isinstance(fingerprint, str):
            raise AstroVLMError("an index needs the encoder's fingerprint (a non-empty string)",
                                field="fingerprint")
        if not 0 < float(recall_target) <= 1:
            raise AstroVLMError(f"recall target must be in (0, 1], got {recall_target}",
                                field="recall_target")
        factory.choose_kind(0, int(dim), kind)  # validates the name
        self.dim = int(dim)
        self.fingerprint = fingerprint
        self.requested_kind = kind
        self.kind: str | None = None if kind == "auto" else kind
        self.recall_target = float(recall_target)
        self.dataset_root = None if dataset_root is None else str(dataset_root)
        self.search_params: dict = {}
        self.tuning: dict = {}
        self._faiss: faiss.Index | None = None
        self._gpu = None
        self._cols: dict[str, list] = {c: [] for c in COLUMNS}
        self._extra: list[dict | None] = []
        self._alive: list[bool] = []
        self._row_of: dict[str, int] = {}
        self._tombstones: set[int] = set()   # HNSW rows deleted but still in the graph
        self._np: dict[str, np.ndarray] = {}  # column arrays for filtering, rebuilt after changes
        self._tuned_at = 0
        self._ondisk_source: Path | None = None  # ivfdata file backing the inverted lists

    # ------------------------------------------------------------------ size and content
    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._row_of

    def __repr__(self) -> str:
        return (f"CrossModalIndex(dim={self.dim}, kind={self.kind or 'auto'}, count={len(self)}, "
                f"fingerprint={self.fingerprint[:12]!r})")

    def counts(self) -> dict:
        """Live vectors per modality."""
        mods = self._array("modality")
        alive = self._array("_alive")
        return {m: int(np.count_nonzero(alive & (mods == i))) for i, m in enumerate(MODALITIES)}

    def item(self, item_id: str) -> dict:
        row = self._row(item_id)
        return {"item_id": item_id, **self._meta(row)}

    def items_of_object(self, object_id: str, modality=None) -> list[str]:
        """Item ids of one object, optionally of some modalities only."""
        f = SkyFilter.make(modality=modality)
        mask = self._array("_alive") & (self._array("object_id") == str(object_id))
        if f.modality:
            mask &= np.isin(self._array("modality"), [MODALITIES.index(m) for m in f.modality])
        items = self._cols["item_id"]
        return [items[r] for r in np.flatnonzero(mask)]

    def object_ids(self) -> list[str]:
        ids = self._array("object_id")[self._array("_alive")]
        return sorted({o for o in ids.tolist() if o})

    def vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """The stored (normalised) vectors of some items; lossy for IVF-PQ."""
        rows = np.array([self._row(i) for i in item_ids], dtype="int64")
        if rows.size == 0:
            return np.zeros((0, self.dim), dtype="float32")
        return self._reconstruct(rows)

    # ------------------------------------------------------------------ add / upsert / delete
    def add(self, vectors, metadata) -> list[str]:
        """Add new vectors with their metadata (a list of dicts, or a dict of columns).

        Each needs an ``item_id`` (unique) and a ``modality``; an existing item id is refused
        (use ``upsert``). Returns the item ids added.
        """
        x = self._check_vectors(vectors, "vectors")
        cols, extra = self._check_metadata(metadata, len(x))
        ids = cols["item_id"]
        seen = set()
        for item_id in ids:
            if item_id in self._row_of or item_id in seen:
                raise AstroVLMError(f"item '{item_id}' is already in the index (use upsert to replace it)",
                                    field="item_id")
            seen.add(item_id)
        if len(x) == 0:
            return []
        start = len(self._alive)
        rows = np.arange(start, start + len(x), dtype="int64")
        empty = self._faiss is None or self._faiss.ntotal == 0
        tuned = self._fill(x, rows) if empty else (self._add_vectors(x, rows) or False)
        for c in COLUMNS:
            self._cols[c].extend(cols[c])
        self._extra.extend(extra)
        self._alive.extend([True] * len(x))
        self._row_of.update(zip(ids, range(start, start + len(x))))
        self._changed()
        if tuned:
            self._tuned_at = len(self)
        # When this add filled an empty index, its vectors are the exact reference for tuning.
        self._maybe_grow(base=(rows, x) if start == 0 else None)
        return list(ids)

    def upsert(self, vectors, metadata) -> list[str]:
        """Add vectors, replacing any item with the same item id."""
        x = self._check_vectors(vectors, "vectors")
        cols, _ = self._check_metadata(metadata, len(x))
        present = [i for i in cols["item_id"] if i in self._row_of]
        if present:
            self.delete(present)
        return self.add(x, metadata)

    def delete(self, item_ids: Iterable[str], missing_ok: bool = False) -> int:
        """Remove items by id; returns how many were removed."""
        if isinstance(item_ids, str):
            item_ids = [item_ids]
        item_ids = list(dict.fromkeys(item_ids))
        unknown = [i for i in item_ids if i not in self._row_of]
        if unknown and not missing_ok:
            shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise AstroVLMError(f"{len(unknown)} item(s) not in the index: {shown}", field="item_id")
        rows = np.array([self._row_of.pop(i) for i in item_ids if i in self._row_of], dtype="int64")
        if rows.size == 0:
            return 0
        for r in rows:
            self._alive[r] = False
        self._changed()
        if self.kind == "hnsw":
            # HNSW graphs cannot unlink nodes; dead rows are masked until the next rebuild.
            self._tombstones.update(rows.tolist())
            if len(self._tombstones) > 0.25 * self._faiss.ntotal:
                self._rebuild("hnsw")
        else:
            self._writable_ivf()
            self._faiss.remove_ids(rows)
        self._changed()
        return int(rows.size)

    def attach(self, faiss_index: faiss.Index, kind: str, metadata, ondisk: Path | None = None) -> None:
        """Adopt a FAISS index built elsewhere (the Ray engine's merged shards) whose ids are
        0..n-1 in the order of ``metadata``. ``ondisk``: its ivfdata file, if any."""
        if self._faiss is not None or self._alive:
            raise AstroVLMError("attach needs an empty CrossModalIndex", field="index")
        if faiss_index.d != self.dim:
            raise AstroVLMError(f"the FAISS index has dimension {faiss_index.d}, not {self.dim}", field="dim")
        n = int(faiss_index.ntotal)
        cols, extra = self._check_metadata(metadata, n)
        if len(set(cols["item_id"])) != n:
            raise AstroVLMError("item ids must be unique", field="item_id")
        self.kind, self._faiss = kind, faiss_index
        self._ondisk_source = None if ondisk is None else Path(ondisk)
        self._cols = {c: list(cols[c]) for c in COLUMNS}
        self._extra, self._alive = list(extra), [True] * n
        self._row_of = {item_id: r for r, item_id in enumerate(cols["item_id"])}
        self._ensure_direct_map()
        self._apply_search_params()
        self._changed()

    # ------------------------------------------------------------------ search
    def search(self, vector, k: int = 10, *, modality=None, object_type: str | None = None,
               center=None, radius=None, exclude_objects=(), where: SkyFilter | None = None) -> SearchResult:
        """The ``k`` stored vectors closest to ``vector`` (cosine), with optional filters."""
        q = self._check_vectors(vector, "query vector", single=True)
        if where is None and modality is None and object_type is None and center is None \
                and radius is None and not exclude_objects:
            f = NO_FILTER
        else:
            f = where or SkyFilter.make(modality, object_type, center, radius, exclude_objects)
        return self._search(q, self._check_k(k), f)

    def search_batch(self, vectors, k: int = 10, **filters) -> list[SearchResult]:
        q = self._check_vectors(vectors, "query vectors")
        f = filters.pop("where", None) or SkyFilter.make(**filters)
        k = self._check_k(k)
        return [self._search(q[i:i + 1], k, f) for i in range(len(q))]

    def _search(self, q: np.ndarray, k: int, f: SkyFilter) -> SearchResult:
        n = len(self._row_of)
        if n == 0:
            return SearchResult([], k, "the index is empty", f.to_dict())
        if (f is NO_FILTER or f.is_empty) and not self._tombstones:
            # No filter and no dead rows, the common case: straight to FAISS, no mask.
            k_eff = k if k < n else n
            scores, rows = self._ann(q, k_eff)
            if rows[k_eff - 1] < 0:
                # FAISS puts missing results (-1) last. A graph walk cannot promise k results
                # (k near or above the index size, or above efSearch), nor can the probed
                # lists of an IVF index: answer from all the stored vectors instead.
                scores, rows = self._exhaustive(q, k_eff)
            return self._result(scores, rows, k, k_eff, n, None, f)
        mask = self._mask(f)
        m = int(np.count_nonzero(mask))
        if m == 0:
            return SearchResult([], k, f"no item matches the filter ({f.describe()})", f.to_dict())
        k_eff = min(k, m)
        if self.kind != "flat" and (m <= EXACT_SUBSET_MAX or m <= EXACT_SUBSET_FRACTION * n):
            scores, rows = self._exact_subset(q, k_eff, np.flatnonzero(mask))
        else:
            scores, rows = self._ann(q, k_eff, mask, m / max(n, 1))
            if np.count_nonzero(rows >= 0) < k_eff:
                # The restricted graph walk / probed lists came back short: scan the kept rows.
                scores, rows = self._exhaustive(q, k_eff, mask)
        # (No filter but HNSW tombstones masked: the count is of the index, not of a filter.)
        return self._result(scores, rows, k, k_eff, m, None if f.is_empty else f, f)

    def _result(self, scores, rows, k, k_eff, available, f_or_none, f) -> SearchResult:
        hits = Hit._of_rows(self, scores.tolist(), rows.tolist())
        reason = None
        if len(hits) < k:
            # Says how many come back, counted from the hits themselves.
            what = f"items match the filter ({f.describe()})" if f_or_none else "items in the index"
            if k_eff < k:
                reason = f"asked for k={k} but only {available} {what}; returning {len(hits)}"
            else:
                reason = f"asked for k={k} but the search found only {len(hits)}; returning {len(hits)}"
        return SearchResult(hits, k, reason, {} if f is NO_FILTER else f.to_dict())

    def _ann(self, q: np.ndarray, k: int, mask: np.ndarray | None = None, kept: float = 1.0):
        # One query is answered on one thread: FAISS's OpenMP regions cost more than they
        # save for a single query, and on a busy machine their barriers wait for descheduled
        # threads (p95 12 ms instead of 0.15 ms measured here). The setting is per thread.
        threads = faiss.omp_get_max_threads()
        if threads > 1:
            faiss.omp_set_num_threads(1)
        try:
            if mask is None:
                return self._knn(q, k)
            return self._ann_filtered(q, k, mask, kept)
        finally:
            if threads > 1:
                faiss.omp_set_num_threads(threads)

    def _knn(self, q: np.ndarray, k: int):
        """Unfiltered search of one query ``q``, a C-contiguous float32 (1, dim) row."""
        if self.kind != "hnsw":
            if self._gpu is None and self._faiss.ntotal > 0:
                self._gpu = factory.gpu_clone(self._faiss, self.kind) or False
            if self._gpu:
                D, I = self._gpu.search(q, k)
                return D[0], I[0]
        D = np.empty(k, dtype=_F32)
        I = np.empty(k, dtype=_I64)
        # The SWIG call under faiss's Python ``search``: _check_vectors has already made q
        # what it needs, and the wrapper's copy, checks and 2-d outputs cost a few
        # microseconds a query, the order of a small index's whole search.
        self._faiss.search_c(1, _swig_ptr(q), k, _swig_ptr(D), _swig_ptr(I), None)
        return D, I

    def _ann_filtered(self, q: np.ndarray, k: int, mask: np.ndarray, kept: float):
        index = self._faiss
        bits = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        widen = min(1.0 / max(kept, 1e-6), 20.0)
        if self.kind == "hnsw":
            ef = int(min(max(self.search_params.get("efSearch", 64) * widen, k), 4096))
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef)
        elif self.kind == "ivfpq":
            ivf = factory.ivf_of(index)
            nprobe = int(min(ivf.nlist, math.ceil(self.search_params.get("nprobe", ivf.nprobe) * widen)))
            params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
        else:
            params = faiss.SearchParameters(sel=sel)
        D, I = index.search(q, k, params=params)
        del bits  # kept alive until here: the selector points into it
        return D[0], I[0]

    def _exhaustive(self, q: np.ndarray, k: int, mask: np.ndarray | None = None):
        """Exact search of every stored vector (of the rows ``mask`` keeps, if given): for
        when an approximate search comes back with fewer than ``k`` results. HNSW scans its
        storage (float or 8-bit vectors, the ones its graph walk scores), IVF probes all its
        lists; a flat index is exact already."""
        index, params, bits = self._faiss, None, None
        hnsw = factory.hnsw_of(index) if self.kind == "hnsw" else None
        if hnsw is not None:
            storage = faiss.downcast_index(hnsw.storage)
            ids = faiss.vector_to_array(index.id_map)
            if mask is None and self._tombstones:
                mask = self._array("_alive")
            if mask is not None:
                # The selector sees the storage's positions, not the row ids.
                bits = np.packbits(mask[ids], bitorder="little")
                params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits)))
            D, I = storage.search(q, k, params=params)
            D, I = D[0], I[0]
            del bits  # kept alive until here: the selector points into it
            valid = I >= 0
            return D[valid], ids[I[valid]]
        ivf = factory.ivf_of(index)
        if ivf is not None:
            sel = None
            if mask is not None:
                bits = np.packbits(mask, bitorder="little")
                sel = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
            params = faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nlist, max_codes=0)
            D, I = index.search(q, k, params=params)
            del bits
            return D[0], I[0]
        rows = np.flatnonzero(self._array("_alive") if mask is None else mask).astype("int64")
        return self._exact_subset(q, k, rows)

    def _exact_subset(self, q: np.ndarray, k: int, rows: np.ndarray):
        """Exact cosine over some rows (their stored vectors)."""
        x = self._reconstruct(rows)
        s = x @ q[0]
        top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        top = top[np.argsort(-s[top], kind="stable")]
        return s[top].astype("float32"), rows[top]

    # ------------------------------------------------------------------ tuning
    def tune(self, recall_target: float | None = None, queries=None, n_queries: int = TUNE_QUERIES,
             k: int = 10, seed: int = 0, base=None, query_rows=None) -> dict:
        """Pick the smallest efSearch (HNSW) or nprobe (IVF) that reaches the recall target.

        A fresh index is tuned when it is filled, on a sample of its vectors kept out of it
        until then (``_fill``); this re-tunes later. ``queries``: vectors like the ones users
        will send (e.g. text embeddings); ``query_rows``: their rows, when they are stored
        vectors themselves (each is then dropped from its own answers, as a new query would
        not find itself). Without them, the tuning queries are stored vectors
        moved by half their nearest-neighbour distance, their own rows dropped from both
        answers, and the setting must reach the target plus a quarter of what is left to 1
        (0.9625 for 0.95): a margin for queries less like the data than these.
        ``base``: (rows, vectors), the exact vectors of every live row, when the caller has
        them (a fresh build); otherwise HNSW's ground truth is its decoded 8-bit vectors, and
        IVF-PQ is measured against its own exhaustive scan (its codes are lossy).
        """
        target = float(recall_target or self.recall_target)
        if self.kind in (None, "flat") or len(self) <= k + 1:
            self.tuning = {"recall_at_k": 1.0, "k": k, "exact": True}
            return self.tuning
        rng = np.random.default_rng(seed)
        if self.kind == "hnsw":
            if base is not None:
                ids, xb = np.asarray(base[0], dtype="int64"), base[1]
            else:
                xb, ids = self._hnsw_vectors()
            if self._tombstones:
                keep = ~np.isin(ids, np.fromiter(self._tombstones, dtype="int64"))
                xb, ids = xb[keep], ids[keep]
        else:
            factory.ivf_of(self._faiss).nprobe = factory.ivf_of(self._faiss).nlist  # exhaustive
        if queries is not None:
            xq = self._check_vectors(queries, "tuning queries")
            own = np.full(len(xq), -2, dtype="int64")
            if query_rows is not None:
                own = np.asarray(query_rows, dtype="int64").reshape(-1)
                if own.shape != (len(xq),):
                    raise AstroVLMError(f"{len(xq)} tuning queries but {own.size} query rows",
                                        field="query_rows")
        else:
            # Stored vectors moved by half their nearest-neighbour distance in a random
            # direction: queries near the data but not on a graph node (a stored vector as a
            # query finds its neighbours too easily and would tune efSearch too low).
            live = np.flatnonzero(self._array("_alive"))
            own = rng.choice(live, size=min(n_queries, live.size), replace=False).astype("int64")
            xs = self._reconstruct(own)
            if self.kind == "hnsw":
                sims, _ = faiss.knn(xs, xb, 2, metric=faiss.METRIC_INNER_PRODUCT)
            else:
                sims, _ = self._faiss.search(xs, 2)
            dist = np.sqrt(np.clip(2 - 2 * sims[:, 1:2], 1e-6, 4)).astype("float32")
            u = rng.normal(size=xs.shape).astype("float32")
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            xq = xs + 0.5 * dist * u
            xq /= np.linalg.norm(xq, axis=1, keepdims=True)
        if self.kind == "hnsw":
            _, gi = faiss.knn(xq, xb, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
            truth = ids[gi]
        else:
            _, truth = self._faiss.search(xq, k + 1)  # nprobe = nlist: the exhaustive scan
        # Made-up queries get a margin: a quarter of what is left to 1 (0.9625 for 0.95).
        if queries is not None:
            self._pick_setting(xq, truth, own, target, k, source="given queries")
        else:
            self._pick_setting(xq, truth, own, target, k, margin=0.25, source="moved stored vectors")
        return self.tuning

    def _pick_setting(self, xq: np.ndarray, truth: np.ndarray, own: np.ndarray, target: float, k: int,
                      margin: float = 0.0, source: str = "held-out vectors") -> dict:
        """The smallest efSearch / nprobe of the ladder whose recall@k reaches the target."""
        if self.kind == "hnsw":
            ladder, name, hnsw = factory.EF_LADDER, "efSearch", factory.hnsw_of(self._faiss)
        else:
            ivf = factory.ivf_of(self._faiss)
            ladder, name = factory.nprobe_ladder(ivf.nlist), "nprobe"
        aim = target + margin * (1.0 - target)
        t0, chosen, recall = time.perf_counter(), ladder[-1], 0.0
        for value in ladder:
            if name == "efSearch":
                hnsw.hnsw.efSearch = max(value, k + 1)
            else:
                ivf.nprobe = value
            _, got = self._faiss.search(xq, k + 1)
            recall = _recall_without_self(got, truth, own, k)
            if recall >= aim:
                chosen = value
                break
        self.search_params[name] = int(chosen)
        self._apply_search_params()
        self._tuned_at = len(self)
        self.tuning = {"recall_at_k": round(recall, 4), "k": k, "target": target, name: int(chosen),
                       "queries": int(len(xq)), "queries_from": source,
                       "seconds": round(time.perf_counter() - t0, 3)}
        return self.tuning

    def _apply_search_params(self):
        if self.kind == "hnsw" and "efSearch" in self.search_params:
            factory.hnsw_of(self._faiss).hnsw.efSearch = int(self.search_params["efSearch"])
        if self.kind == "ivfpq" and "nprobe" in self.search_params:
            factory.ivf_of(self._faiss).nprobe = int(self.search_params["nprobe"])
        self._gpu = None

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        """Write the index folder atomically: a crash leaves the previous folder intact."""
        path = Path(path)
        with atomic_directory(path) as tmp:
            self._write_faiss(tmp)
            _write_parquet(tmp / META_FILE, self._meta_table())
            files = {}
            for name in (INDEX_FILE, IVFDATA_FILE, META_FILE):
                p = tmp / name
                if p.exists():
                    files[name] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            config = {
                "format": "astrovlm-cross-modal-index", "format_version": FORMAT_VERSION,
                "fingerprint": self.fingerprint, "dim": self.dim, "metric": "inner_product",
                "kind": self.kind, "requested_kind": self.requested_kind,
                "recall_target": self.recall_target, "count": len(self),
                "counts": self.counts(), "next_row": len(self._alive),
                "search_params": self.search_params, "tuning": self.tuning,
                "dataset_root": self.dataset_root, "faiss_version": faiss.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files,
            }
            _write_synced(tmp / CONFIG_FILE, json.dumps(config, indent=2).encode())
            _fsync_dir(tmp)
        _fsync_dir(path.parent)
        if self._ondisk_source is not None:
            self._ondisk_source = path / IVFDATA_FILE
        return path

    def _write_faiss(self, folder: Path) -> None:
        index = self._faiss if self._faiss is not None else factory.make_index("flat", self.dim)
        ivf = factory.ivf_of(index)
        if ivf is not None and self._ondisk_source is not None:
            # On-disk lists (a merged Ray build): the index file names its ivfdata file, which
            # travels beside it and is found again by IO_FLAG_ONDISK_SAME_DIR.
            shutil.copyfile(self._ondisk_source, folder / IVFDATA_FILE)
            _fsync_file(folder / IVFDATA_FILE)
            invlists = faiss.downcast_InvertedLists(ivf.invlists)
            old = invlists.filename
            invlists.filename = str(folder / IVFDATA_FILE)
            try:
                faiss.write_index(index, str(folder / INDEX_FILE))
            finally:
                invlists.filename = old
        else:
            faiss.write_index(index, str(folder / INDEX_FILE))
        _fsync_file(folder / INDEX_FILE)

    @classmethod
    def load(cls, path: str | Path, expected_fingerprint: str | None = None, verify: bool = True
             ) -> "CrossModalIndex":
        """Read an index folder. ``expected_fingerprint`` (the encoder's) must match the one the
        index was built with; ``verify`` checks file sizes and SHA-256 against the config."""
        path = _existing_index_dir(Path(path))
        config = _read_config(path)
        if expected_fingerprint is not None and config["fingerprint"] != expected_fingerprint:
            raise AstroVLMError(
                f"this index was built with a different encoder (fingerprint {config['fingerprint'][:16]}, "
                f"the loaded encoder is {expected_fingerprint[:16]}); its vectors are not comparable. "
                f"Rebuild it with 'astrovlm index build --out {path}'", path=path)
        for name, info in config["files"].items():
            p = path / name
            if not p.exists():
                raise AstroVLMError(f"index file {name} is missing", path=path)
            size = p.stat().st_size
            if size != info["bytes"]:
                raise AstroVLMError(f"{name} is truncated or altered ({size} bytes, expected "
                                    f"{info['bytes']}); rebuild the index", path=p)
            if verify and _sha256(p) != info["sha256"]:
                raise AstroVLMError(f"{name} is corrupt (checksum mismatch); rebuild the index", path=p)
        self = cls(config["dim"], config["fingerprint"], config.get("requested_kind") or "auto",
                   config.get("recall_target", 0.95), dataset_root=config.get("dataset_root"))
        self.kind = config["kind"]
        self.search_params = dict(config.get("search_params") or {})
        self.tuning = dict(config.get("tuning") or {})
        flags = faiss.IO_FLAG_ONDISK_SAME_DIR if IVFDATA_FILE in config["files"] else 0
        try:
            with stdout_to_stderr():  # FAISS's C++ prints about on-disk lists on stdout
                self._faiss = faiss.read_index(str(path / INDEX_FILE), flags)
        except RuntimeError as exc:
            raise AstroVLMError(f"FAISS cannot read {INDEX_FILE} ({str(exc).splitlines()[-1][:200]})",
                                path=path / INDEX_FILE) from None
        if flags:
            self._ondisk_source = path / IVFDATA_FILE
        if self.kind is None:  # saved before anything was added: choose the kind on first add
            self._faiss = None
        if self._faiss is not None and self._faiss.d != self.dim:
            raise AstroVLMError(f"{INDEX_FILE} holds vectors of dimension {self._faiss.d}, "
                                f"config says {self.dim}", path=path)
        self._load_meta(path / META_FILE, int(config.get("next_row", 0)))
        self._ensure_direct_map()
        if len(self) != config["count"]:
            raise AstroVLMError(f"{META_FILE} has {len(self)} live rows, config says {config['count']}",
                                path=path)
        expected = len(self) + len(self._tombstones)
        ntotal = self._faiss.ntotal if self._faiss is not None else 0
        if ntotal != expected:
            raise AstroVLMError(f"{INDEX_FILE} holds {ntotal} vectors but the metadata "
                                f"describes {expected}; rebuild the index", path=path)
        self._apply_search_params()
        self._tuned_at = len(self)
        return self

    def _load_meta(self, meta_path: Path, next_row: int) -> None:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(meta_path)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise AstroVLMError(f"cannot read the metadata ({exc})", path=meta_path) from None
        data = table.to_pydict()
        missing = [c for c in ("row", *COLUMNS) if c not in data]
        if missing:
            raise AstroVLMError(f"metadata lacks column(s) {', '.join(missing)}", path=meta_path)
        rows = data["row"]
        n_rows = max(next_row, (max(rows) + 1) if rows else 0)
        defaults = _column_defaults()
        self._cols = {c: [defaults[c]] * n_rows for c in COLUMNS}
        self._extra = [None] * n_rows
        self._alive = [False] * n_rows
        for c in FLOAT_COLUMNS:
            data[c] = [None if (v is not None and v != v) else v for v in data[c]]
        if rows == list(range(n_rows)):
            # Nothing was ever deleted (the usual case): the columns are the rows, in order.
            self._cols = {c: data[c] for c in COLUMNS}
            self._alive = [True] * n_rows
        else:
            for c in COLUMNS:
                col = self._cols[c]
                for r, v in zip(rows, data[c]):
                    col[r] = v
            for r in rows:
                self._alive[r] = True
        for r, e in zip(rows, data.get("extra") or [None] * len(rows)):
            if e:
                self._extra[r] = json.loads(e)
        self._row_of = dict(zip(data["item_id"], rows))
        if len(self._row_of) != len(rows):
            raise AstroVLMError("metadata has duplicate item ids", path=meta_path)
        if self.kind == "hnsw":
            ids = faiss.vector_to_array(self._faiss.id_map)
            self._tombstones = set(np.setdiff1d(ids, np.asarray(rows, dtype="int64")).tolist())
        self._changed()

    def _meta_table(self):
        import pyarrow as pa

        live = np.flatnonzero(self._array("_alive"))
        data = {"row": pa.array(live, type=pa.int64())}
        for c in STR_COLUMNS:
            col = self._cols[c]
            data[c] = pa.array([col[r] for r in live], type=pa.string())
        for c in FLOAT_COLUMNS:
            data[c] = pa.array(self._array(c)[live], type=pa.float64(), from_pandas=True)  # NaN -> null
        data["simulated"] = pa.array([bool(self._cols["simulated"][r]) for r in live], type=pa.bool_())
        data["extra"] = pa.array([json.dumps(self._extra[r]) if self._extra[r] else None for r in live],
                                 type=pa.string())
        return pa.table(data)

    # ------------------------------------------------------------------ internals
    def _check_k(self, k) -> int:
        if type(k) is int and k >= 1:
            return k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise AstroVLMError(f"k must be a whole number, got {k!r}", field="k")
        if k < 1:
            raise AstroVLMError(f"k must be at least 1, got {k}", field="k")
        return int(k)

    def _check_vectors(self, vectors, what: str, single: bool = False) -> np.ndarray:
        if single and type(vectors) is np.ndarray and vectors.shape == (self.dim,) \
                and vectors.dtype.kind in "fiub":
            # The common case (one encoder vector), checked in well under a microsecond: a
            # NaN or an infinity makes the squared norm non-finite. An already normalised,
            # C-contiguous float32 row is used as it is (a view, no copy); FAISS's own norm
            # is called on it because numpy's dot dispatch costs more than the sum. Anything
            # else (not numbers, NaN, zero) goes on to the checks below and their errors.
            if vectors.dtype is _F32 and vectors.flags.c_contiguous:
                x = vectors
                n2 = _norm2(_swig_ptr(x), self.dim)
            else:
                x = vectors.astype(_F32)
                n2 = float(np.dot(x, x))
            if math.isfinite(n2) and n2 > 0:
                if abs(n2 - 1.0) > 2e-4:
                    x = x / np.float32(math.sqrt(n2))
                return x.reshape(1, self.dim)
        try:
            x = np.asarray(vectors, dtype="float32")
        except (TypeError, ValueError):
            raise AstroVLMError(f"{what} must be numbers", field=what) from None
        if single and x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or (single and x.shape[0] != 1):
            want = f"({self.dim},)" if single else f"(n, {self.dim})"
            raise AstroVLMError(f"{what} must have shape {want}, got {x.shape}", field=what)
        if x.shape[1] != self.dim:
            raise AstroVLMError(f"{what} have dimension {x.shape[1]}, the index holds dimension {self.dim}",
                                field=what)
        if not np.isfinite(x).all():
            raise AstroVLMError(f"{what} contain NaN or infinite values", field=what)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if (norms == 0).any():
            raise AstroVLMError(f"{what} contain a zero vector (no direction to compare)", field=what)
        if not np.allclose(norms, 1.0, atol=1e-4):
            x = x / norms
        return np.ascontiguousarray(x, dtype="float32")

    def _check_metadata(self, metadata, n: int):
        """Metadata (rows or columns) -> (columns dict of lists, extras list), checked."""
        defaults = _column_defaults()
        if isinstance(metadata, Mapping):
            lengths = {k: len(v) for k, v in metadata.items()}
            if any(v != n for v in lengths.values()):
                raise AstroVLMError(f"metadata columns must each have {n} entries, got {lengths}",
                                    field="metadata")
            cols = {c: list(metadata[c]) if c in metadata else [defaults[c]] * n for c in COLUMNS}
            others = [k for k in metadata if k not in COLUMNS]
            extra = [{k: metadata[k][i] for k in others} or None for i in range(n)] if others else [None] * n
        else:
            rows = list(metadata)
            if len(rows) != n:
                raise AstroVLMError(f"{n} vectors but {len(rows)} metadata rows", field="metadata")
            cols = {c: [r.get(c, defaults[c]) for r in rows] for c in COLUMNS}
            extra = [{k: v for k, v in r.items() if k not in COLUMNS} or None for r in rows]
        for i, item_id in enumerate(cols["item_id"]):
            if not isinstance(item_id, str) or not item_id.strip():
                raise AstroVLMError(f"row {i} has no item_id (a non-empty string)", field="item_id")
        bad = set(cols["modality"]) - set(MODALITIES)
        if bad:
            raise AstroVLMError(f"unknown modality {sorted(map(str, bad))[0]!r} "
                                f"(choose from {', '.join(MODALITIES)})", field="modality")
        for c in STR_COLUMNS:
            if c not in ("item_id", "modality"):
                cols[c] = [None if v is None else str(v) for v in cols[c]]
        for c in FLOAT_COLUMNS:
            vals = np.array([np.nan if v is None else v for v in cols[c]], dtype="float64")
            lo, hi = (0.0, 360.0) if c == "ra_deg" else (-90.0, 90.0)
            out = np.isfinite(vals) & ((vals < lo) | (vals > hi))
            if out.any():
                raise AstroVLMError(f"row {int(np.flatnonzero(out)[0])} has {c}={vals[out][0]} "
                                    f"outside [{lo}, {hi}]", field=c)
            cols[c] = [v if v == v else None for v in vals.tolist()]  # missing -> None
        cols["simulated"] = [bool(v) for v in cols["simulated"]]
        for e in extra:
            if e:
                try:
                    json.dumps(e)
                except TypeError as exc:
                    raise AstroVLMError(f"extra metadata must be JSON-able ({exc})", field="metadata") from None
        return cols, extra

    def _fill(self, x: np.ndarray, rows: np.ndarray) -> bool:
        """Add vectors to an empty index. A graph or IVF index keeps a random sample back,
        tunes its search on them (queries that are truly not in the index, like a user's),
        then adds them. Returns whether it tuned."""
        if self._faiss is None:
            self.kind = factory.choose_kind(len(x), self.dim, self.requested_kind)
            self._faiss = factory.make_index(self.kind, self.dim, self.recall_target, len(x))
        if self.kind not in ("hnsw", "ivfpq") or len(x) < 20 * HOLDOUT:
            self._add_vectors(x, rows)
            return False
        perm = np.random.default_rng(0).permutation(len(x))
        held, rest = np.sort(perm[:HOLDOUT]), np.sort(perm[HOLDOUT:])
        self._add_vectors(x[rest], rows[rest])
        k = 10
        if self.kind == "hnsw":
            _, gi = faiss.knn(x[held], x[rest], k + 1, metric=faiss.METRIC_INNER_PRODUCT)
            truth = rows[rest][gi]
        else:  # IVF-PQ against its own exhaustive scan (its codes are lossy)
            ivf = factory.ivf_of(self._faiss)
            ivf.nprobe = ivf.nlist
            _, truth = self._faiss.search(x[held], k + 1)
        self._pick_setting(x[held], truth, np.full(HOLDOUT, -2, dtype="int64"), self.recall_target, k)
        self._add_vectors(x[held], rows[held])
        return True

    def _add_vectors(self, x: np.ndarray, rows: np.ndarray) -> None:
        if self._faiss is None:
            self.kind = factory.choose_kind(len(x), self.dim, self.requested_kind)
            self._faiss = factory.make_index(self.kind, self.dim, self.recall_target, len(x))
        ivf = factory.ivf_of(self._faiss)
        if ivf is None:
            self._train_if_needed(x)
        else:
            self._writable_ivf()
            if not ivf.is_trained:
                if len(x) < max(ivf.nlist, 256):
                    raise AstroVLMError(
                        f"an IVF-PQ index needs at least {max(ivf.nlist, 256)} vectors to train, got "
                        f"{len(x)}; use kind='flat' for small collections", field="kind")
                # k-means needs ~39-256 points per list; a sample trains as well as the lot.
                n_train = min(len(x), max(TRAIN_MAX, 39 * ivf.nlist))
                pick = np.random.default_rng(0).choice(len(x), n_train, replace=False) if n_train < len(x) else None
                ivf.train(x if pick is None else x[np.sort(pick)])
            self._ensure_direct_map()
        self._faiss.add_with_ids(x, rows)
        self._gpu = None

    def _maybe_grow(self, base=None) -> None:
        """"auto" moves a growing flat index to HNSW, and keeps HNSW/IVF search tuned."""
        if self.requested_kind == "auto" and self.kind == "flat":
            wanted = factory.choose_kind(len(self), self.dim)
            if wanted == "hnsw":
                base = self._rebuild("hnsw")  # from the flat index: exact vectors
        if self.kind in ("hnsw", "ivfpq") and len(self) > 1.2 * self._tuned_at:
            self.tune(base=base)

    def _rebuild(self, kind: str):
        """Rebuild the FAISS index from the live vectors (drops HNSW tombstones).
        Returns the rows and the vectors it was rebuilt from."""
        rows = np.flatnonzero(self._array("_alive")).astype("int64")
        x = self._reconstruct(rows) if rows.size else np.zeros((0, self.dim), "float32")
        log.info("rebuilding the %s index as %s over %d vectors", self.kind, kind, rows.size)
        self.kind = kind
        self._faiss = factory.make_index(kind, self.dim, self.recall_target, rows.size)
        self._tombstones = set()
        tuned = self._fill(x, rows) if rows.size else False
        self._apply_search_params()
        self._changed()
        if tuned:
            self._tuned_at = len(self)
        return rows, x

    def _train_if_needed(self, x: np.ndarray) -> None:
        """HNSW's 8-bit codes learn each dimension's range from the first vectors."""
        if not self._faiss.is_trained:
            self._faiss.train(x)

    def _reconstruct(self, rows: np.ndarray) -> np.ndarray:
        self._ensure_direct_map()
        return np.ascontiguousarray(self._faiss.reconstruct_batch(np.asarray(rows, dtype="int64")),
                                    dtype="float32")

    def _hnsw_vectors(self):
        """The HNSW graph's stored vectors (decoded from its codes) and their row ids."""
        hnsw = factory.hnsw_of(self._faiss)
        storage = faiss.downcast_index(hnsw.storage)
        ids = faiss.vector_to_array(self._faiss.id_map)
        if isinstance(storage, faiss.IndexFlat):
            xb = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * self.dim).reshape(-1, self.dim)
            return xb, ids
        codes = faiss.vector_to_array(storage.codes).reshape(storage.ntotal, -1)
        return storage.sa_decode(codes), ids

    def _ensure_direct_map(self) -> None:
        ivf = factory.ivf_of(self._faiss) if self._faiss is not None else None
        if ivf is not None and ivf.direct_map.type != faiss.DirectMap.Hashtable:
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)

    def _writable_ivf(self) -> None:
        """Bring on-disk inverted lists (a merged Ray build) into memory before changing them."""
        ivf = factory.ivf_of(self._faiss) if self._faiss is not None else None
        if ivf is None or self._ondisk_source is None:
            return
        mem = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
        src = ivf.invlists
        for lst in range(ivf.nlist):
            size = src.list_size(lst)
            if size:
                mem.add_entries(lst, size, src.get_ids(lst), src.get_codes(lst))
        ivf.replace_invlists(mem, True)
        mem.this.disown()
        self._ondisk_source = None
        ivf.set_direct_map_type(faiss.DirectMap.NoMap)
        self._ensure_direct_map()

    def _changed(self) -> None:
        self._np.clear()
        self._gpu = None

    def _array(self, name: str) -> np.ndarray:
        """A column as a numpy array (cached until the next change)."""
        arr = self._np.get(name)
        if arr is None:
            if name == "_alive":
                arr = np.array(self._alive, dtype=bool)
            elif name == "modality":
                codes = {m: i for i, m in enumerate(MODALITIES)}
                arr = np.array([codes.get(m, -1) for m in self._cols["modality"]], dtype="int8")
            elif name in FLOAT_COLUMNS:
                arr = np.array(self._cols[name], dtype="float64")
            elif name in ("coarse_class", "otype"):
                arr = np.array([(v or "").lower() for v in self._cols[name]], dtype=str)
            else:
                arr = np.array([v or "" for v in self._cols[name]], dtype=object)
            self._np[name] = arr
        return arr

    def _mask(self, f: SkyFilter) -> np.ndarray:
        mask = self._array("_alive").copy()
        if f.modality:
            mask &= np.isin(self._array("modality"), [MODALITIES.index(m) for m in f.modality])
        if f.object_type:
            t = f.object_type
            coarse, otype = self._array("coarse_class"), self._array("otype")
            mask &= (coarse == t) | (np.char.find(otype, t) >= 0)
        if f.center is not None:
            mask &= cone_mask(self._array("ra_deg"), self._array("dec_deg"), f.center, f.radius)
        if f.exclude_objects:
            mask &= ~np.isin(self._array("object_id"), list(f.exclude_objects))
        return mask

    def _row(self, item_id: str) -> int:
        try:
            return self._row_of[item_id]
        except KeyError:
            raise AstroVLMError(f"item '{item_id}' is not in the index", field="item_id") from None

    def _meta(self, row: int) -> dict:
        cols = self._cols
        meta = {c: cols[c][row] for c in META_COLUMNS}
        extra = self._extra[row]
        if extra:
            meta.update(extra)
        return meta

    def _preview(self, rel: str | None) -> str | None:
        if not rel:
            return None
        if self.dataset_root and not os.path.isabs(rel):
            return os.path.join(self.dataset_root, rel)
        return rel


@contextmanager
def stdout_to_stderr():
    """Send what C++ code prints on file descriptor 1 to 2 meanwhile, so that stdout stays
    for results (``--json``). Python's own ``sys.stdout`` is flushed first."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _recall_without_self(got: np.ndarray, truth: np.ndarray, self_rows: np.ndarray, k: int) -> float:
    hits = 0
    for g, t, own in zip(got, truth, self_rows):
        g = [x for x in g if x != own and x >= 0][:k]
        t = [x for x in t if x != own][:k]
        hits += len(set(g) & set(t))
    return hits / (k * len(self_rows))


def _column_defaults() -> dict:
    d = {c: None for c in STR_COLUMNS + FLOAT_COLUMNS}
    d["simulated"] = False
    return d


def _sha256(path: Path, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _write_parquet(path: Path, table) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    _fsync_file(path)


def _existing_index_dir(path: Path) -> Path:
    """The index folder; if a crash fell between atomic_directory's two renames, the previous
    version waits in the '.NAME.old' sibling and is used."""
    if (path / CONFIG_FILE).exists():
        return path
    old = path.parent / f".{path.name}.old"
    if not path.exists() and (old / CONFIG_FILE).exists():
        log.warning("index %s is missing; using the previous version left at %s", path, old)
        return old
    if path.exists() and not path.is_dir():
        raise AstroVLMError("not an index folder (a file)", path=path)
    if path.exists():
        raise AstroVLMError(f"not an astrovlm index (no {CONFIG_FILE}); build one with "
                            f"'astrovlm index build'", path=path)
    raise AstroVLMError("no index here; build one with 'astrovlm index build'", path=path)


def _read_config(path: Path) -> dict:
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AstroVLMError(f"{CONFIG_FILE} is unreadable or corrupt ({exc})", path=path / CONFIG_FILE) from None
    if not isinstance(config, dict) or config.get("format") != "astrovlm-cross-modal-index":
        raise AstroVLMError(f"{CONFIG_FILE} does not describe an astrovlm index", path=path / CONFIG_FILE)
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise AstroVLMError(f"index format {config['format_version']} is newer than this astrovlm "
                            f"reads ({FORMAT_VERSION}); upgrade astrovlm", path=path)
    for key in ("fingerprint", "dim", "kind", "count", "files"):
        if key not in config:
            raise AstroVLMError(f"{CONFIG_FILE} lacks '{key}'", path=path / CONFIG_FILE)
    if INDEX_FILE not in config["files"] or META_FILE not in config["files"]:
        raise AstroVLMError(f"{CONFIG_FILE} lists no {INDEX_FILE}/{META_FILE}", path=path / CONFIG_FILE)
    return config
