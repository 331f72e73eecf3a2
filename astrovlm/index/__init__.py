"""The cross-modal index: image, spectrum and text vectors in one FAISS space, with metadata.

- ``store``     ``CrossModalIndex`` (add / upsert / delete, the filtered-search planner, save/load)
- ``rows``      the row store: item and object ids, metadata columns, alive mask, filter masks
- ``backends``  one class per FAISS kind (flat, HNSW, IVF-PQ, GPU) behind one interface
- ``factory``   which FAISS index for how many vectors and what recall
- ``tuning``    recall tuning (efSearch / nprobe for a recall target), exact ground truth
- ``persist``   the index folder: atomic save, checksums, format version, fingerprint check
- ``results``   ``Hit`` and ``SearchResult``
- ``filters``   ``SkyFilter``: modality, object type, a cone on the sky
- ``search``    ``Retriever``: the one door for the CLI, app and assistant (queries by text, image,
                spectrum or object; per-object grouping, split/kind/score narrowing; zero-shot)
- ``build``     the index of a dataset (local); ``ray_build`` the same on Ray, sharded IVF-PQ
"""

import os
import sys


def _load_faiss() -> str:
    """Import faiss with its OpenMP threads set to sleep, not spin, while they wait.

    FAISS's OpenMP runtime (its own libgomp) reads ``OMP_WAIT_POLICY`` once, when faiss is
    first imported. By default a waiting thread spins for a while before it sleeps: at a
    barrier, or for a graph node's lock during an HNSW build. On a machine whose cores are
    shared with other work, the spinning thread holds a core that the thread it waits for
    needs; a 50k-vector HNSW build took 64-68 s instead of 39-47 s (benchmarks/index_ann.py,
    loaded 2-core machine). The variable is set only around the import, so that libraries
    loaded later (torch's own OpenMP runtime) keep their defaults; a policy the user set, or
    a faiss imported before astrovlm, is left as it is. Returns the policy faiss runs with.
    """
    if "faiss" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return os.environ.get("OMP_WAIT_POLICY", "default")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        import faiss  # noqa: F401
    finally:
        del os.environ["OMP_WAIT_POLICY"]
    return "PASSIVE"


FAISS_OMP_WAIT_POLICY = _load_faiss()

from astrovlm.index.filters import MODALITIES, SkyFilter, parse_cone  # noqa: E402
from astrovlm.index.results import Hit, SearchResult  # noqa: E402
from astrovlm.index.store import CrossModalIndex  # noqa: E402

__all__ = ["CrossModalIndex", "Hit", "SearchResult", "SkyFilter", "parse_cone", "MODALITIES"]
