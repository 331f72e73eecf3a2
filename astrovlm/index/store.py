"""``CrossModalIndex``: image, spectrum and text vectors in one space, with what they are.

Every vector has a row number (its FAISS id, int64, never reused) and a row of metadata:
which object it shows, in which modality, where on the sky, its class, credit, whether it is
simulated, and a ``preview`` (the relative path of its image or spectrum file). Vectors are
stored L2-normalised, so the inner product FAISS ranks by is the cosine similarity.

The index is the composition of its parts, each in its own module:

    rows.py       the row store: ids, metadata columns, the alive mask, filter masks
    backends.py   one class per FAISS kind (flat, HNSW, IVF-PQ, GPU) behind one interface
    tuning.py     recall tuning: the smallest efSearch / nprobe that reaches the target
    persist.py    the folder on disk: atomic save, checksums, format version, fingerprint
    results.py    ``Hit`` and ``SearchResult``

What stays here is the search planner. Searches take a ``SkyFilter``, which becomes a mask
over rows; how it is applied depends on how much it keeps: exact search over the kept rows
when they are few (a graph walk restricted to a handful of nodes misses most of them),
FAISS's ``IDSelector`` inside the ANN search otherwise, widening ``efSearch``/``nprobe`` by
the inverse of the kept fraction and falling back to exact search if that still returns too
few. An unfiltered search that comes back short (k near the index size, or above efSearch)
falls back the same way: HNSW scans its stored vectors, IVF probes every list for that query.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import faiss
import numpy as np

from astrovlm.errors import BadArgumentError, UnreadableError
from astrovlm.index import factory, persist, tuning
from astrovlm.index.backends import new_backend, open_backend
from astrovlm.index.checks import check_k, check_query, check_vectors
from astrovlm.index.filters import NO_FILTER, SkyFilter
from astrovlm.index.persist import IVFDATA_FILE, META_FILE
from astrovlm.index.results import Hit, SearchResult
from astrovlm.index.rows import RowStore, check_metadata

log = logging.getLogger(__name__)

FORMAT_VERSION = persist.FORMAT_VERSION
EXACT_SUBSET_MAX = 4096        # a filter keeping at most this many rows is searched exactly
EXACT_SUBSET_FRACTION = 0.02   # ... or at most this fraction of the index
TUNE_QUERIES = tuning.TUNE_QUERIES
HOLDOUT = tuning.HOLDOUT
_omp_threads = faiss.omp_get_max_threads
_omp_set_threads = faiss.omp_set_num_threads


class CrossModalIndex:
    """Vectors of every modality in one inner-product space, with metadata; FAISS underneath.

    >>> index = CrossModalIndex(dim=256, fingerprint=encoder.fingerprint)
    >>> index.add(vectors, [{"item_id": "image:M51", "object_id": "NGC5194", "modality": "image"}])
    >>> index.search(encoder.encode_text(["a face-on spiral"])[0], k=5, modality="image")

    ``rows`` is its row store (``astrovlm.index.rows.RowStore``), ``backend`` its FAISS
    backend (``astrovlm.index.backends``; None until the first vectors choose the kind).
    """

    def __init__(self, dim: int, fingerprint: str, kind: str = "auto", recall_target: float = 0.95,
                 *, dataset_root: str | Path | None = None):
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise BadArgumentError(f"dimension must be a positive integer, got {dim!r}", field="dim")
        if not fingerprint or not isinstance(fingerprint, str):
            raise BadArgumentError("an index needs the encoder's fingerprint (a non-empty string)",
                                   field="fingerprint")
        if not 0 < float(recall_target) <= 1:
            raise BadArgumentError(f"recall target must be in (0, 1], got {recall_target}",
                                   field="recall_target")
        factory.choose_kind(0, int(dim), kind)  # validates the name
        self.dim = int(dim)
        self.fingerprint = fingerprint
        self.requested_kind = kind
        self.recall_target = float(recall_target)
        self.dataset_root = None if dataset_root is None else str(dataset_root)
        self.search_params: dict = {}
        self.tuning: dict = {}
        self.rows = RowStore()
        self.backend = None
        self._tuned_at = 0

    @property
    def kind(self) -> str | None:
        """"flat", "hnsw" or "ivfpq"; None while an "auto" index is still empty."""
        if self.backend is not None:
            return self.backend.kind
        return None if self.requested_kind == "auto" else self.requested_kind

    # ------------------------------------------------------------------ size and content
    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.rows

    def __repr__(self) -> str:
        return (f"CrossModalIndex(dim={self.dim}, kind={self.kind or 'auto'}, count={len(self)}, "
                f"fingerprint={self.fingerprint[:12]!r})")

    def counts(self) -> dict:
        """Live vectors per modality."""
        return self.rows.counts()

    def item(self, item_id: str) -> dict:
        return {"item_id": item_id, **self.rows.meta(self.rows.row(item_id))}

    def items_of_object(self, object_id: str, modality=None) -> list[str]:
        """Item ids of one object, optionally of some modalities only."""
        return self.rows.items_of_object(object_id, modality)

    def object_ids(self) -> list[str]:
        return self.rows.object_ids()

    def vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """The stored (normalised) vectors of some items; lossy for IVF-PQ."""
        rows = np.array([self.rows.row(i) for i in item_ids], dtype="int64")
        if rows.size == 0:
            return np.zeros((0, self.dim), dtype="float32")
        return self.backend.reconstruct(rows)

    def preview_path(self, rel: str | None) -> str | None:
        """A stored preview path, made absolute against the dataset folder when known."""
        if not rel:
            return None
        if self.dataset_root and not os.path.isabs(rel):
            return os.path.join(self.dataset_root, rel)
        return rel

    # ------------------------------------------------------------------ add / upsert / delete
    def add(self, vectors, metadata) -> list[str]:
        """Add new vectors with their metadata (a list of dicts, or a dict of columns).

        Each needs an ``item_id`` (unique) and a ``modality``; an existing item id is refused
        (use ``upsert``). Returns the item ids added.
        """
        x = check_vectors(vectors, self.dim, "vectors")
        cols, extra = check_metadata(metadata, len(x))
        self.rows.refuse_present(cols["item_id"])
        if len(x) == 0:
            return []
        first = self.rows.next_row == 0
        rows = np.arange(self.rows.next_row, self.rows.next_row + len(x), dtype="int64")
        if self.backend is None or self.backend.ntotal == 0:
            tuned = self._fill(x, rows)
        else:
            self.backend.add(x, rows)
            tuned = False
        self.rows.append(cols, extra)
        if tuned:
            self._tuned_at = len(self)
        # When this add filled an empty index, its vectors are the exact reference for tuning.
        self._maybe_grow(base=(rows, x) if first else None)
        return list(cols["item_id"])

    def upsert(self, vectors, metadata) -> list[str]:
        """Add vectors, replacing any item with the same item id."""
        x = check_vectors(vectors, self.dim, "vectors")
        cols, _ = check_metadata(metadata, len(x))
        present = [i for i in cols["item_id"] if i in self.rows]
        if present:
            self.delete(present)
        return self.add(x, metadata)

    def delete(self, item_ids: Iterable[str], missing_ok: bool = False) -> int:
        """Remove items by id; returns how many were removed."""
        rows = self.rows.kill(item_ids, missing_ok)
        if rows.size == 0:
            return 0
        self.backend.remove(rows)
        if self.backend.needs_rebuild():
            self._rebuild(self.backend.kind)
        return int(rows.size)

    def attach(self, faiss_index: faiss.Index, kind: str, metadata, ondisk: Path | None = None) -> None:
        """Adopt a FAISS index built elsewhere (the Ray engine's merged shards) whose ids are
        0..n-1 in the order of ``metadata``. ``ondisk``: its ivfdata file, if any."""
        if self.backend is not None or self.rows.next_row:
            raise BadArgumentError("attach needs an empty CrossModalIndex", field="index")
        if faiss_index.d != self.dim:
            raise BadArgumentError(f"the FAISS index has dimension {faiss_index.d}, not {self.dim}",
                                   field="dim")
        n = int(faiss_index.ntotal)
        cols, extra = check_metadata(metadata, n)
        if len(set(cols["item_id"])) != n:
            raise BadArgumentError("item ids must be unique", field="item_id")
        self.backend = open_backend(faiss_index, kind, ondisk)
        self.rows = RowStore.of_columns(cols, extra)
        self.backend.apply(self.search_params)

    # ------------------------------------------------------------------ search
    def search(self, vector, k: int = 10, *, modality=None, object_type: str | None = None,
               center=None, radius=None, exclude_objects=(), where: SkyFilter | None = None) -> SearchResult:
        """The ``k`` stored vectors closest to ``vector`` (cosine), with optional filters."""
        q = check_query(vector, self.dim)
        if where is None and modality is None and object_type is None and center is None \
                and radius is None and not exclude_objects:
            f = NO_FILTER
        else:
            f = where or SkyFilter.make(modality, object_type, center, radius, exclude_objects)
        return self._search(q, k if type(k) is int and k >= 1 else check_k(k), f)

    def search_batch(self, vectors, k: int = 10, **filters) -> list[SearchResult]:
        q = check_vectors(vectors, self.dim, "query vectors")
        f = filters.pop("where", None) or SkyFilter.make(**filters)
        k = check_k(k)
        return [self._search(q[i:i + 1], k, f) for i in range(len(q))]

    def _search(self, q: np.ndarray, k: int, f: SkyFilter) -> SearchResult:
        n = len(self.rows.row_of)
        if n == 0:
            return SearchResult([], k, "the index is empty", f.to_dict())
        backend = self.backend
        if (f is NO_FILTER or f.is_empty) and not backend.tombstones:
            # No filter and no dead rows, the common case: straight to FAISS, no mask.
            k_eff = k if k < n else n
            # One query is answered on one thread: FAISS's OpenMP regions cost more than
            # they save for a single query, and on a busy machine their barriers wait for
            # descheduled threads (p95 12 ms instead of 0.15 ms measured here). The setting
            # is per thread.
            threads = _omp_threads()
            if threads > 1:
                _omp_set_threads(1)
                try:
                    scores, rows = backend.search(q, k_eff)
                finally:
                    _omp_set_threads(threads)
            else:
                scores, rows = backend.search(q, k_eff)
            if rows[k_eff - 1] < 0:
                # FAISS puts missing results (-1) last. A graph walk cannot promise k results
                # (k near or above the index size, or above efSearch), nor can the probed
                # lists of an IVF index: answer from all the stored vectors instead.
                scores, rows = backend.exhaustive(q, k_eff)
            return self._result(scores, rows, k, k_eff, n, None, f)
        mask = self.rows.mask(f)
        m = int(np.count_nonzero(mask))
        if m == 0:
            return SearchResult([], k, f"no item matches the filter ({f.describe()})", f.to_dict())
        k_eff = min(k, m)
        if not backend.exact and (m <= EXACT_SUBSET_MAX or m <= EXACT_SUBSET_FRACTION * n):
            scores, rows = backend.exact_subset(q, k_eff, np.flatnonzero(mask).astype("int64"))
        else:
            threads = _omp_threads()
            _omp_set_threads(1)
            try:
                scores, rows = backend.search_masked(q, k_eff, mask, min(1.0 / max(m / n, 1e-6), 20.0))
            finally:
                _omp_set_threads(threads)
            if np.count_nonzero(rows >= 0) < k_eff:
                # The restricted graph walk / probed lists came back short: scan the kept rows.
                scores, rows = backend.exhaustive(q, k_eff, mask)
        # (No filter but HNSW tombstones masked: the count is of the index, not of a filter.)
        return self._result(scores, rows, k, k_eff, m, None if f.is_empty else f, f)

    def _result(self, scores, rows, k, k_eff, available, f_or_none, f) -> SearchResult:
        hits = Hit.of_rows(self, self.rows.item_ids, scores.tolist(), rows.tolist())
        reason = None
        if len(hits) < k:
            # Says how many come back, counted from the hits themselves.
            what = f"items match the filter ({f.describe()})" if f_or_none else "items in the index"
            if k_eff < k:
                reason = f"asked for k={k} but only {available} {what}; returning {len(hits)}"
            else:
                reason = f"asked for k={k} but the search found only {len(hits)}; returning {len(hits)}"
        return SearchResult(hits, k, reason, {} if f is NO_FILTER else f.to_dict())

    # ------------------------------------------------------------------ tuning
    def tune(self, recall_target: float | None = None, queries=None, n_queries: int = TUNE_QUERIES,
             k: int = 10, seed: int = 0, base=None, query_rows=None) -> dict:
        """Pick the smallest efSearch (HNSW) or nprobe (IVF) that reaches the recall target.

        A fresh index is tuned when it is filled, on a sample of its vectors kept out of it
        until then (``_fill``); this re-tunes later. ``queries``: vectors like the ones users
        will send (e.g. text embeddings); ``query_rows``: their rows, when they are stored
        vectors themselves. Without them, stored vectors moved off the data are the queries
        and the target gets a margin (``tuning.tune``). ``base``: (rows, vectors), the exact
        vectors of every live row, when the caller has them (a fresh build).
        """
        target = float(recall_target or self.recall_target)
        if self.backend is None or self.backend.knob is None or len(self) <= k + 1:
            self.tuning = {"recall_at_k": 1.0, "k": k, "exact": True}
            return self.tuning
        xq = None if queries is None else check_vectors(queries, self.dim, "tuning queries")
        self._tuned(tuning.tune(self.backend, self.rows.rows_alive(), target, xq, query_rows,
                                n_queries, k, seed, base))
        return self.tuning

    def _tuned(self, measured: dict) -> None:
        knob = self.backend.knob
        self.search_params[knob] = measured[knob]
        self.tuning = measured
        self._tuned_at = len(self)

    def _fill(self, x: np.ndarray, rows: np.ndarray) -> bool:
        """Add vectors to an empty index. A graph or IVF index keeps a random sample back,
        tunes its search on them (queries that are truly not in the index, like a user's),
        then adds them. Returns whether it tuned."""
        if self.backend is None:
            kind = factory.choose_kind(len(x), self.dim, self.requested_kind)
            self.backend = new_backend(kind, self.dim, self.recall_target, len(x))
        backend = self.backend
        if backend.knob is None or len(x) < 20 * HOLDOUT:
            backend.add(x, rows)
            return False
        held, rest = tuning.holdout_split(len(x))
        x_rest, rows_rest = x[rest], rows[rest]
        backend.add(x_rest, rows_rest)
        exact = backend.exact_searcher(base=(rows_rest, x_rest))
        del x_rest
        self._tuned(tuning.tune_on_holdout(backend, x[held], exact, self.recall_target))
        del exact
        backend.add(x[held], rows[held])
        return True

    def _maybe_grow(self, base=None) -> None:
        """"auto" moves a growing flat index to HNSW, and keeps HNSW/IVF search tuned."""
        if self.requested_kind == "auto" and self.backend.exact:  # exact: the small kind
            if factory.choose_kind(len(self), self.dim) == "hnsw":
                base = self._rebuild("hnsw")  # from the flat index: exact vectors
        if self.backend.knob is not None and len(self) > 1.2 * self._tuned_at:
            self.tune(base=base)

    def _rebuild(self, kind: str):
        """Rebuild the FAISS index from the live vectors (drops HNSW tombstones).
        Returns the rows and the vectors it was rebuilt from."""
        rows = self.rows.rows_alive()
        x = self.backend.reconstruct(rows) if rows.size else np.zeros((0, self.dim), "float32")
        log.info("rebuilding the %s index as %s over %d vectors", self.kind, kind, rows.size)
        self.backend = new_backend(kind, self.dim, self.recall_target, rows.size)
        tuned = self._fill(x, rows) if rows.size else False
        self.backend.apply(self.search_params)
        if tuned:
            self._tuned_at = len(self)
        return rows, x

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        """Write the index folder atomically: a crash leaves the previous folder intact."""
        path = Path(path)
        backend = self.backend
        if backend is None:  # nothing added yet: an empty exact index holds the place
            def write(folder):
                persist.write_faiss_index(factory.make_index("flat", self.dim), folder / persist.INDEX_FILE)
        else:
            write = backend.write
        config = {
            "fingerprint": self.fingerprint, "dim": self.dim, "metric": "inner_product",
            "kind": self.kind, "requested_kind": self.requested_kind,
            "recall_target": self.recall_target, "count": len(self),
            "counts": self.counts(), "next_row": self.rows.next_row,
            "search_params": self.search_params, "tuning": self.tuning,
            "dataset_root": self.dataset_root,
        }
        persist.write_index_folder(path, write, self.rows.to_table(), config)
        if backend is not None:
            backend.saved(path)
        return path

    @classmethod
    def load(cls, path: str | Path, expected_fingerprint: str | None = None, verify: bool = True
             ) -> "CrossModalIndex":
        """Read an index folder. ``expected_fingerprint`` (the encoder's) must match the one the
        index was built with; ``verify`` checks file sizes and SHA-256 against the config."""
        path, config = persist.open_index_folder(path, expected_fingerprint, verify)
        self = cls(config["dim"], config["fingerprint"], config.get("requested_kind") or "auto",
                   config.get("recall_target", 0.95), dataset_root=config.get("dataset_root"))
        self.search_params = dict(config.get("search_params") or {})
        self.tuning = dict(config.get("tuning") or {})
        index = persist.read_faiss_index(path, config)
        if index.d != self.dim:
            raise UnreadableError(f"{persist.INDEX_FILE} holds vectors of dimension {index.d}, "
                                  f"config says {self.dim}", path=path)
        self.rows = RowStore.from_columns(persist.read_meta_columns(path), int(config.get("next_row", 0)),
                                          where=path / META_FILE)
        if len(self) != config["count"]:
            raise UnreadableError(f"{META_FILE} has {len(self)} live rows, config says {config['count']}",
                                  path=path)
        kind = config["kind"]
        # Saved before anything was added, the kind is chosen on the first add.
        if kind is not None and (index.ntotal > 0 or self.rows.next_row > 0):
            ondisk = path / IVFDATA_FILE if IVFDATA_FILE in config["files"] else None
            self.backend = open_backend(index, kind, ondisk)
            self.backend.restore_tombstones(self.rows.rows_alive())
        expected = len(self) + len(self.backend.tombstones if self.backend is not None else ())
        ntotal = index.ntotal if self.backend is not None else 0
        if ntotal != expected:
            raise UnreadableError(f"{persist.INDEX_FILE} holds {ntotal} vectors but the metadata "
                                  f"describes {expected}; rebuild the index", path=path)
        if self.backend is not None:
            self.backend.apply(self.search_params)
        self._tuned_at = len(self)
        return self
