"""The cross-modal index: image, spectrum and text vectors in one FAISS space, with metadata.

- ``store``    ``CrossModalIndex`` (add / upsert / delete, filtered search, atomic save/load)
- ``filters``  ``SkyFilter``: modality, object type, a cone on the sky
- ``factory``  which FAISS index for how many vectors and what recall
- ``search``   ``SkySearch``: queries by text, image, spectrum or object, through an encoder
- ``build``    the index of a dataset (local); ``ray_build`` the same on Ray, sharded IVF-PQ
"""

from astrovlm.index.filters import MODALITIES, SkyFilter, parse_cone
from astrovlm.index.store import CrossModalIndex, Hit, SearchResult

__all__ = ["CrossModalIndex", "Hit", "SearchResult", "SkyFilter", "parse_cone", "MODALITIES"]
