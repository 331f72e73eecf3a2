"""Which FAISS index to build for a collection, and how to build it.

- ``flat``  exact inner product (``IndexFlatIP``): below about 50k vectors a scan is fast
  enough (~5 ms at 50k x 256 on one core) and never misses.
- ``hnsw``  ``IndexHNSWSQ``: graph search over 8-bit scalar-quantised vectors (256 bytes
  each at dim 256 instead of 1 KiB). On normalised embeddings the codes cost about one
  point of recall@10, which a slightly larger ``efSearch`` wins back, while each query
  reads a quarter of the memory (on 100k clustered 256-d vectors here: 0.10 vs 0.17 ms
  a query at efSearch 24, recall@10 0.990 vs 0.996, and half the build time). The codes
  cap recall@10 near 0.985, so recall targets of 0.98 and more get float vectors
  (``IndexHNSWFlat``). ``M`` grows with the recall target and ``efSearch`` is tuned on
  the data to reach it (``CrossModalIndex.tune``).
- ``ivfpq`` ``IndexIVFPQ``: compressed codes in inverted lists, for collections whose raw
  vectors do not fit in memory, and the form the sharded Ray build produces (shards share
  one trained quantizer, so their lists merge). ``nprobe`` is tuned like ``efSearch``.

Every index is searched by external int64 ids (the row numbers of ``CrossModalIndex``):
flat and HNSW inside ``IndexIDMap2`` (which also reconstructs by id), IVF natively.
``astrovlm.index.backends`` wraps each kind in its backend class.
"""

from __future__ import annotations

import math
import os

import faiss

from astrovlm.errors import BadArgumentError

KINDS = ("auto", "flat", "hnsw", "ivfpq")
FLAT_MAX = 50_000              # above this, "auto" leaves exact search for HNSW
HNSW_MAX_BYTES = 8 * 2**30     # above this much raw vector data, "auto" compresses with IVF-PQ
SQ_RANGE_MARGIN = 0.1
SQ_MAX_RECALL = 0.98           # 8-bit codes tie near neighbours: above this target, float vectors
GPU_KINDS = ("flat", "ivfpq")  # FAISS has no GPU HNSW
EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


def choose_kind(n: int, dim: int, requested: str = "auto") -> str:
    """The index type for ``n`` vectors of ``dim`` floats (``requested`` wins unless "auto")."""
    if requested not in KINDS:
        raise BadArgumentError(f"unknown index kind '{requested}' (choose from {', '.join(KINDS)})",
                            field="kind")
    if requested != "auto":
        return requested
    if n <= FLAT_MAX:
        return "flat"
    if n * dim * 4 <= HNSW_MAX_BYTES:
        return "hnsw"
    return "ivfpq"


def hnsw_m(recall_target: float) -> int:
    """Graph degree: more links per node reach higher recall at a given efSearch."""
    if recall_target < 0.9:
        return 16
    if recall_target < 0.99:
        return 32
    return 48


def ivf_nlist(n: int) -> int:
    """About 4 sqrt(n) lists, at least 39 training points per list (FAISS's k-means rule)."""
    nlist = 2 ** round(math.log2(max(4 * math.sqrt(max(n, 1)), 1)))
    return int(max(1, min(nlist, 65536, n // 39)))


def pq_m(dim: int, recall_target: float) -> int:
    """Sub-quantizers: 4 dims each (64 bytes a vector at dim 256) for recall targets of 0.9
    and more, 8 otherwise (must divide dim). Finer codes cost PQ training time out of
    proportion (k-means in 2-d sub-spaces is slow in FAISS) for little recall."""
    per = 4 if recall_target >= 0.9 else 8
    m = max(1, dim // per)
    while dim % m:
        m -= 1
    return m


def nprobe_ladder(nlist: int) -> tuple[int, ...]:
    out, p = [], 1
    while p < nlist:
        out.append(p)
        p *= 2
    out.append(nlist)
    return tuple(out)


def make_index(kind: str, dim: int, recall_target: float = 0.95, n_expected: int = 0,
               ef_construction: int = 80) -> faiss.Index:
    """An empty index of ``kind`` (IVF-PQ comes back untrained)."""
    metric = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        if recall_target >= SQ_MAX_RECALL:
            hnsw = faiss.IndexHNSWFlat(dim, hnsw_m(recall_target), metric)
            hnsw.hnsw.efConstruction = ef_construction
            hnsw.hnsw.efSearch = 64
            return faiss.IndexIDMap2(hnsw)
        hnsw = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, hnsw_m(recall_target), metric)
        # Each dimension's 8-bit range is learnt from the first vectors, widened by 10% on
        # each side so that vectors added later (another modality) are not clipped.
        faiss.downcast_index(hnsw.storage).sq.rangestat_arg = SQ_RANGE_MARGIN
        hnsw.hnsw.efConstruction = ef_construction
        hnsw.hnsw.efSearch = 64
        return faiss.IndexIDMap2(hnsw)
    if kind == "ivfpq":
        return make_ivfpq(dim, ivf_nlist(n_expected), pq_m(dim, recall_target))
    raise BadArgumentError(f"unknown index kind '{kind}' (choose from {', '.join(KINDS[1:])})", field="kind")


def make_ivfpq(dim: int, nlist: int, m: int, nbits: int = 8) -> faiss.IndexIVFPQ:
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the IVF index owns and frees its quantizer
    index.nprobe = min(16, nlist)
    # 10 k-means iterations on ~10k points per sub-quantizer: the codebooks come out as good
    # and training takes seconds instead of minutes, whatever the collection's size.
    index.pq.cp.niter = 10
    index.pq.cp.max_points_per_centroid = 39
    return index


def ivf_of(index: faiss.Index):
    """The IVF layer of an index, or None."""
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def hnsw_of(index: faiss.Index):
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    return inner if isinstance(inner, faiss.IndexHNSW) else None


def gpu_available() -> bool:
    """Whether the GPU build of FAISS sees a GPU (and ``ASTROVLM_NO_GPU`` is not set)."""
    if os.environ.get("ASTROVLM_NO_GPU"):
        return False
    try:
        return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() >= 1
    except (RuntimeError, AttributeError):
        return False


def gpu_clone(index: faiss.Index, kind: str):
    """A GPU copy for searching when the GPU build of FAISS sees a GPU (flat and IVF only:
    FAISS has no GPU HNSW). Returns None on CPU-only builds or if cloning fails."""
    if kind not in GPU_KINDS or not gpu_available():
        return None
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except (RuntimeError, AttributeError):
        return None
