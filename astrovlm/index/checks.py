"""Checks on what callers give the index: ``k``, vectors and query vectors.

Every check raises ``BadArgumentError`` naming the field. The one-query check runs on every
search, so its common case (one float32 encoder vector) is kept to well under a microsecond.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from astrovlm.errors import BadArgumentError

# Bound once: the per-query path runs in tens of microseconds, where module attribute
# lookups and numpy's dtype parsing show.
_F32 = np.dtype("float32")
_swig_ptr = faiss.swig_ptr
_norm2 = faiss.fvec_norm_L2sqr


def check_k(k) -> int:
    if type(k) is int and k >= 1:
        return k
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise BadArgumentError(f"k must be a whole number, got {k!r}", field="k")
    if k < 1:
        raise BadArgumentError(f"k must be at least 1, got {k}", field="k")
    return int(k)


def check_query(vector, dim: int, what: str = "query vector") -> np.ndarray:
    """One query as a C-contiguous, L2-normalised float32 (1, dim) row."""
    if type(vector) is np.ndarray and vector.shape == (dim,) and vector.dtype.kind in "fiub":
        # The common case (one encoder vector): a NaN or an infinity makes the squared norm
        # non-finite. An already normalised, C-contiguous float32 row is used as it is (a
        # view, no copy); FAISS's own norm is called on it because numpy's dot dispatch
        # costs more than the sum. Anything else (not numbers, NaN, zero) goes on to the
        # full checks and their errors.
        if vector.dtype is _F32 and vector.flags.c_contiguous:
            x = vector
            n2 = _norm2(_swig_ptr(x), dim)
        else:
            x = vector.astype(_F32)
            n2 = float(np.dot(x, x))
        if math.isfinite(n2) and n2 > 0:
            if abs(n2 - 1.0) > 2e-4:
                x = x / np.float32(math.sqrt(n2))
            return x.reshape(1, dim)
    return check_vectors(vector, dim, what, single=True)


def check_vectors(vectors, dim: int, what: str = "vectors", single: bool = False) -> np.ndarray:
    """Vectors as a C-contiguous, L2-normalised float32 (n, dim) array (n = 1 if ``single``)."""
    try:
        x = np.asarray(vectors, dtype="float32")
    except (TypeError, ValueError):
        raise BadArgumentError(f"{what} must be numbers", field=what) from None
    if single and x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or (single and x.shape[0] != 1):
        want = f"({dim},)" if single else f"(n, {dim})"
        raise BadArgumentError(f"{what} must have shape {want}, got {x.shape}", field=what)
    if x.shape[1] != dim:
        raise BadArgumentError(f"{what} have dimension {x.shape[1]}, the index holds dimension {dim}",
                               field=what)
    if not np.isfinite(x).all():
        raise BadArgumentError(f"{what} contain NaN or infinite values", field=what)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise BadArgumentError(f"{what} contain a zero vector (no direction to compare)", field=what)
    if not np.allclose(norms, 1.0, atol=1e-4):
        x = x / norms
    return np.ascontiguousarray(x, dtype="float32")
