"""One class per FAISS index kind, behind one small interface, so that ``CrossModalIndex``
asks "search", "reconstruct", "tune your knob" without knowing which kind it holds.

    FlatBackend    exact inner product (``IndexIDMap2(IndexFlatIP)``)
    HnswBackend    graph search over 8-bit or float vectors (``IndexIDMap2(IndexHNSW*)``);
                   its graph cannot unlink nodes, so deleted rows stay in it, masked
                   (``tombstones``), until the index rebuilds it
    IvfPqBackend   compressed codes in inverted lists (``IndexIVFPQ``, ids native), in
                   memory or memory-mapped from a merged Ray build's ``index.ivfdata``
    GpuBackend     a flat or IVF-PQ backend whose unfiltered searches run on a GPU copy

Every backend searches by external int64 ids (``CrossModalIndex``'s row numbers) and
returns FAISS's (scores, ids) with -1 for missing results. ``new_backend`` and
``open_backend`` pick the class for a kind (the kind itself is ``factory.choose_kind``'s).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import faiss
import numpy as np

from astrovlm.errors import BadArgumentError
from astrovlm.index import factory
from astrovlm.index.persist import INDEX_FILE, IVFDATA_FILE, fsync_file, write_faiss_index

TRAIN_MAX = 100_000            # IVF-PQ quantizer training sample
MAX_EF = 4096                  # efSearch a filtered graph search may widen to

_F32 = np.dtype("float32")
_I64 = np.dtype("int64")
_swig_ptr = faiss.swig_ptr
_empty = np.empty
_NO_TOMBSTONES: frozenset = frozenset()


class Backend:
    """A FAISS index of one kind. Subclasses set ``kind`` and, for approximate kinds, the
    ``knob`` tuning turns (``efSearch``, ``nprobe``) and its ``ladder`` of values."""

    kind = ""
    knob: str | None = None     # the search parameter that trades recall for speed
    exact = False               # whether its own search is already exact
    tombstones = _NO_TOMBSTONES  # rows deleted but still in the structure (HNSW only)

    def __init__(self, index: faiss.Index):
        self.faiss = index
        # The SWIG method, bound once: faiss's Python ``search`` wrapper copies, checks and
        # builds 2-d outputs, a few microseconds a query, the order of a small index's search.
        self._search_c = index.search_c

    @property
    def ntotal(self) -> int:
        return int(self.faiss.ntotal)

    # --------------------------------------------------------------- filling
    def add(self, x: np.ndarray, rows: np.ndarray) -> None:
        self.faiss.add_with_ids(x, rows)

    def remove(self, rows: np.ndarray) -> None:
        self.faiss.remove_ids(rows)

    def needs_rebuild(self) -> bool:
        return False

    def restore_tombstones(self, live_rows: np.ndarray) -> None:
        """After loading: which stored rows are dead (only a graph keeps dead rows)."""

    # --------------------------------------------------------------- searching
    def search(self, q: np.ndarray, k: int):
        """One query ``q`` (a C-contiguous float32 (1, dim) row): (scores, ids), 1-d."""
        D = _empty(k, dtype=_F32)
        I = _empty(k, dtype=_I64)
        self._search_c(1, _swig_ptr(q), k, _swig_ptr(D), _swig_ptr(I), None)
        return D, I

    def search_many(self, xq: np.ndarray, k: int):
        """Several queries at once (tuning): (scores, ids), 2-d."""
        return self.faiss.search(xq, k)

    def search_masked(self, q: np.ndarray, k: int, mask: np.ndarray, widen: float):
        """One query over the rows ``mask`` keeps, inside the search (FAISS's IDSelector);
        ``widen``: how much to widen the search (the inverse of the kept fraction)."""
        bits = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(len(bits), _swig_ptr(bits))
        D, I = self.faiss.search(q, k, params=self._masked_params(sel, k, widen))
        del bits  # kept alive until here: the selector points into it
        return D[0], I[0]

    def _masked_params(self, sel, k: int, widen: float):
        return faiss.SearchParameters(sel=sel)

    def exhaustive(self, q: np.ndarray, k: int, mask: np.ndarray | None = None):
        """Exact search of every stored vector (of the rows ``mask`` keeps): for when an
        approximate search comes back with fewer than ``k`` results."""
        if mask is None:
            return self.search(q, k)
        return self.exact_subset(q, k, np.flatnonzero(mask).astype("int64"))

    def exact_subset(self, q: np.ndarray, k: int, rows: np.ndarray):
        """Exact cosine over some rows (their stored vectors)."""
        s = self.reconstruct(rows) @ q[0]
        top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        top = top[np.argsort(-s[top], kind="stable")]
        return s[top].astype("float32"), rows[top]

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.faiss.reconstruct_batch(np.asarray(rows, dtype="int64")),
                                    dtype="float32")

    # --------------------------------------------------------------- tuning
    def ladder(self) -> tuple[int, ...]:
        """The knob's values, cheapest first."""
        return ()

    def set_knob(self, value: int, k: int = 10) -> None:
        """Set the knob for a search of ``k`` results."""

    def apply(self, search_params: dict) -> None:
        """Set the knob from saved search settings (``{"efSearch": 96}``)."""
        if self.knob and self.knob in search_params:
            self.set_knob(int(search_params[self.knob]), 0)

    def exact_searcher(self, base=None):
        """A function (queries, k) -> (scores, ids) answering exactly, to measure recall
        against. ``base``: (rows, vectors), the exact float vectors of every live row, when
        the caller has them."""
        return lambda xq, k: self.search_many(xq, k)

    # --------------------------------------------------------------- on disk
    def write(self, folder: Path) -> None:
        write_faiss_index(self.faiss, folder / INDEX_FILE)

    def saved(self, folder: Path) -> None:
        """Called once the index folder is in place at ``folder``."""


class FlatBackend(Backend):
    kind = "flat"
    exact = True


class HnswBackend(Backend):
    kind = "hnsw"
    knob = "efSearch"
    REBUILD_FRACTION = 0.25     # tombstones past this fraction of the graph: rebuild it

    def __init__(self, index: faiss.Index):
        super().__init__(index)
        self.hnsw = factory.hnsw_of(index)
        self.tombstones: set[int] = set()

    def add(self, x: np.ndarray, rows: np.ndarray) -> None:
        # 8-bit codes learn each dimension's range from the first vectors.
        if not self.faiss.is_trained:
            self.faiss.train(x)
        self.faiss.add_with_ids(x, rows)

    def remove(self, rows: np.ndarray) -> None:
        # A graph cannot unlink nodes: dead rows are masked until the next rebuild.
        self.tombstones.update(rows.tolist())

    def needs_rebuild(self) -> bool:
        return len(self.tombstones) > self.REBUILD_FRACTION * self.ntotal

    def restore_tombstones(self, live_rows: np.ndarray) -> None:
        ids = faiss.vector_to_array(self.faiss.id_map)
        self.tombstones = set(np.setdiff1d(ids, np.asarray(live_rows, dtype="int64")).tolist())

    def _masked_params(self, sel, k: int, widen: float):
        ef = int(min(max(self.hnsw.hnsw.efSearch * widen, k), MAX_EF))
        return faiss.SearchParametersHNSW(sel=sel, efSearch=ef)

    def exhaustive(self, q: np.ndarray, k: int, mask: np.ndarray | None = None):
        """A scan of the graph's storage (float or 8-bit vectors, the ones its walk scores)."""
        storage = faiss.downcast_index(self.hnsw.storage)
        ids = faiss.vector_to_array(self.faiss.id_map)
        params = bits = None
        if mask is not None:
            # The selector sees the storage's positions, not the row ids.
            bits = np.packbits(mask[ids], bitorder="little")
            params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(bits), _swig_ptr(bits)))
        D, I = storage.search(q, k, params=params)
        D, I = D[0], I[0]
        del bits  # kept alive until here: the selector points into it
        valid = I >= 0
        return D[valid], ids[I[valid]]

    def ladder(self) -> tuple[int, ...]:
        return factory.EF_LADDER

    def set_knob(self, value: int, k: int = 10) -> None:
        self.hnsw.hnsw.efSearch = max(int(value), k + 1) if k else int(value)

    def stored_vectors(self):
        """The graph's stored vectors (decoded from its codes) and their row ids."""
        storage = faiss.downcast_index(self.hnsw.storage)
        ids = faiss.vector_to_array(self.faiss.id_map)
        if isinstance(storage, faiss.IndexFlat):
            d = storage.d
            return faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * d).reshape(-1, d), ids
        codes = faiss.vector_to_array(storage.codes).reshape(storage.ntotal, -1)
        return storage.sa_decode(codes), ids

    def exact_searcher(self, base=None):
        """Brute force over ``base``'s exact vectors, or else the graph's decoded ones,
        dead rows left out."""
        if base is not None:
            ids, xb = np.asarray(base[0], dtype="int64"), base[1]
        else:
            xb, ids = self.stored_vectors()
        if self.tombstones:
            keep = ~np.isin(ids, np.fromiter(self.tombstones, dtype="int64"))
            xb, ids = xb[keep], ids[keep]

        def search(xq, k):
            D, gi = faiss.knn(xq, xb, k, metric=faiss.METRIC_INNER_PRODUCT)
            return D, ids[gi]

        return search


class IvfPqBackend(Backend):
    kind = "ivfpq"
    knob = "nprobe"

    def __init__(self, index: faiss.Index, ondisk: Path | None = None):
        super().__init__(index)
        self.ivf = factory.ivf_of(index)
        self.ondisk = None if ondisk is None else Path(ondisk)  # the ivfdata file backing the lists
        self._direct_map()

    def add(self, x: np.ndarray, rows: np.ndarray) -> None:
        ivf = self.ivf
        self._writable()
        if not ivf.is_trained:
            need = max(ivf.nlist, 256)
            if len(x) < need:
                raise BadArgumentError(f"an IVF-PQ index needs at least {need} vectors to train, got "
                                       f"{len(x)}; use kind='flat' for small collections", field="kind")
            # k-means needs ~39-256 points per list; a sample trains as well as the lot.
            n_train = min(len(x), max(TRAIN_MAX, 39 * ivf.nlist))
            pick = np.random.default_rng(0).choice(len(x), n_train, replace=False) if n_train < len(x) else None
            ivf.train(x if pick is None else x[np.sort(pick)])
        self._direct_map()
        self.faiss.add_with_ids(x, rows)

    def remove(self, rows: np.ndarray) -> None:
        self._writable()
        self.faiss.remove_ids(rows)

    def _masked_params(self, sel, k: int, widen: float):
        nprobe = int(min(self.ivf.nlist, math.ceil(self.ivf.nprobe * widen)))
        return faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)

    def exhaustive(self, q: np.ndarray, k: int, mask: np.ndarray | None = None):
        """Every list probed."""
        sel = bits = None
        if mask is not None:
            bits = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(len(bits), _swig_ptr(bits))
        D, I = self.faiss.search(q, k, params=faiss.SearchParametersIVF(sel=sel, nprobe=self.ivf.nlist,
                                                                         max_codes=0))
        del bits
        return D[0], I[0]

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        self._direct_map()
        return super().reconstruct(rows)

    def ladder(self) -> tuple[int, ...]:
        return factory.nprobe_ladder(self.ivf.nlist)

    def set_knob(self, value: int, k: int = 10) -> None:
        self.ivf.nprobe = int(value)

    def exact_searcher(self, base=None):
        """Its own exhaustive scan (every list probed): its codes are lossy, so exact float
        vectors would measure the codes' loss, which no nprobe wins back."""
        params = faiss.SearchParametersIVF(nprobe=self.ivf.nlist, max_codes=0)
        return lambda xq, k: self.faiss.search(xq, k, params=params)

    def write(self, folder: Path) -> None:
        if self.ondisk is None:
            return super().write(folder)
        # On-disk lists (a merged Ray build): the index file names its ivfdata file, which
        # travels beside it and is found again by IO_FLAG_ONDISK_SAME_DIR.
        shutil.copyfile(self.ondisk, folder / IVFDATA_FILE)
        fsync_file(folder / IVFDATA_FILE)
        invlists = faiss.downcast_InvertedLists(self.ivf.invlists)
        old = invlists.filename
        invlists.filename = str(folder / IVFDATA_FILE)
        try:
            write_faiss_index(self.faiss, folder / INDEX_FILE)
        finally:
            invlists.filename = old

    def saved(self, folder: Path) -> None:
        if self.ondisk is not None:
            self.ondisk = Path(folder) / IVFDATA_FILE

    def _direct_map(self) -> None:
        """Reconstruct and remove by id need the id -> list position map."""
        if self.ivf.direct_map.type != faiss.DirectMap.Hashtable:
            self.ivf.set_direct_map_type(faiss.DirectMap.Hashtable)

    def _writable(self) -> None:
        """Bring on-disk inverted lists (a merged Ray build) into memory before changing them."""
        if self.ondisk is None:
            return
        ivf = self.ivf
        mem = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
        src = ivf.invlists
        for lst in range(ivf.nlist):
            size = src.list_size(lst)
            if size:
                mem.add_entries(lst, size, src.get_ids(lst), src.get_codes(lst))
        ivf.replace_invlists(mem, True)
        mem.this.disown()
        self.ondisk = None
        ivf.set_direct_map_type(faiss.DirectMap.NoMap)
        self._direct_map()


class GpuBackend:
    """A flat or IVF-PQ backend whose unfiltered searches run on a GPU copy of its index
    (FAISS has no GPU HNSW, and filtered searches need the CPU's selectors). The copy is
    made on the first search after each change, and dropped by the next change; if FAISS
    cannot make it, searches stay on the CPU until then. Everything else is the CPU one's."""

    def __init__(self, cpu: Backend):
        self.cpu = cpu
        self._gpu = None  # None: not tried since the last change; False: failed

    def __getattr__(self, name):
        return getattr(self.cpu, name)

    def search(self, q: np.ndarray, k: int):
        if self._gpu is None:
            self._gpu = factory.gpu_clone(self.cpu.faiss, self.cpu.kind) or False
        if self._gpu:
            D, I = self._gpu.search(q, k)
            return D[0], I[0]
        return self.cpu.search(q, k)

    def add(self, x, rows) -> None:
        self._gpu = None
        self.cpu.add(x, rows)

    def remove(self, rows) -> None:
        self._gpu = None
        self.cpu.remove(rows)

    def set_knob(self, value: int, k: int = 10) -> None:
        self._gpu = None
        self.cpu.set_knob(value, k)

    def apply(self, search_params: dict) -> None:
        self._gpu = None
        self.cpu.apply(search_params)


BACKENDS = {"flat": FlatBackend, "hnsw": HnswBackend, "ivfpq": IvfPqBackend}


def open_backend(index: faiss.Index, kind: str, ondisk: Path | None = None):
    """The backend of ``kind`` around an existing FAISS index (loaded, or built elsewhere);
    GPU-wrapped when the kind can search on a GPU and FAISS sees one."""
    if kind not in BACKENDS:
        raise BadArgumentError(f"unknown index kind '{kind}' (choose from {', '.join(BACKENDS)})",
                               field="kind")
    backend = IvfPqBackend(index, ondisk) if kind == "ivfpq" else BACKENDS[kind](index)
    if kind in factory.GPU_KINDS and factory.gpu_available():
        return GpuBackend(backend)
    return backend


def new_backend(kind: str, dim: int, recall_target: float = 0.95, n_expected: int = 0):
    """An empty backend of ``kind`` for about ``n_expected`` vectors."""
    return open_backend(factory.make_index(kind, dim, recall_target, n_expected), kind)
