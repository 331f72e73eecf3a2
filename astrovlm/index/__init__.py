"""The cross-modal index: image, spectrum and text vectors in one FAISS space, with metadata.

- ``store``     ``CrossModalIndex`` (add / upsert / delete, the filtered-search planner, save/load)
- ``rows``      the row store: item and object ids, metadata columns, alive mask, filter masks
- ``backends``  one class per FAISS kind (flat, HNSW, IVF-PQ, GPU) behind one interface
- ``factory``   which FAISS index for how many vectors and what recall
- ``tuning``    recall tuning (efSearch / nprobe for a recall target), exact ground truth
- ``persist``   the index folder: atomic save, checksums, format version, fingerprint check
- ``results``   ``Hit`` and ``SearchResult``
- ``filters``   ``SkyFilter``: modality, object type, a cone on the sky
- ``search``    ``SkySearch``: queries by text, image, spectrum or object, through an encoder
- ``build``     the index of a dataset (local); ``ray_build`` the same on Ray, sharded IVF-PQ
"""

import os

# FAISS's OpenMP threads (its own libgomp, read once when faiss is first imported) spin
# for a while before sleeping when they wait at a barrier or for a lock. On a machine whose
# cores are shared with other work, a spinning thread holds a core that the thread it waits
# for needs, and an HNSW build ran 3.6x slower than hnswlib's in the same run (see
# benchmarks/index_ann.py). Waiting threads sleep instead unless the user chose otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from astrovlm.index.filters import MODALITIES, SkyFilter, parse_cone  # noqa: E402
from astrovlm.index.results import Hit, SearchResult  # noqa: E402
from astrovlm.index.store import CrossModalIndex  # noqa: E402

__all__ = ["CrossModalIndex", "Hit", "SearchResult", "SkyFilter", "parse_cone", "MODALITIES"]
