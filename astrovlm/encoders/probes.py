"""Probes of an embedding space, shared by the benchmarks and the training recipes' checks.

- ``match_ranks``: where each query's own item lands in its row of similarities (the
  retrieval recall@k and PAPERCLIP's top-10% accuracy are read off these ranks);
- ``knn_regression``: AstroCLIP's probe, a distance-weighted k-nearest-neighbour estimate
  of a quantity (redshift) from the embeddings alone.
"""

from __future__ import annotations

import numpy as np


def match_ranks(sims: np.ndarray) -> np.ndarray:
    """(n,) rank of item i in row i of an (n, n) query-by-gallery similarity matrix, 0 = first
    (ties counted in the query's favour)."""
    sims = np.asarray(sims)
    return np.array([int((row > row[i]).sum()) for i, row in enumerate(sims)])


def knn_regression(sims: np.ndarray, targets: np.ndarray, k: int = 64) -> np.ndarray:
    """(n_query,) estimates from the k most similar gallery items, each weighted by the
    inverse cosine distance: ``sims`` is (n_query, n_gallery) cosine similarity, ``targets``
    the gallery's (n_gallery,) values."""
    nn_idx = np.argsort(-sims, axis=1)[:, :k]
    w = 1 / np.clip(1 - np.take_along_axis(sims, nn_idx, 1), 1e-6, None)
    return (np.asarray(targets)[nn_idx] * w).sum(1) / w.sum(1)
