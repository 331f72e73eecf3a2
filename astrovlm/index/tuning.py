"""Recall tuning: the smallest efSearch (HNSW) or nprobe (IVF-PQ) that reaches a recall target.

Free functions over a backend (``astrovlm.index.backends``) and numpy arrays, as faiss
contrib's ``evaluation.py`` keeps operating points beside the index: ground truth comes from
the backend's ``exact_searcher``, the setting from a walk up its knob's ladder.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from astrovlm.errors import BadArgumentError

log = logging.getLogger(__name__)

TUNE_QUERIES = 200
HOLDOUT = 200                  # vectors a fresh graph/IVF index is tuned on before they join it
MADE_UP_MARGIN = 0.25          # made-up queries aim a quarter of the way from the target to 1


def recall_without_self(got: np.ndarray, truth: np.ndarray, self_rows: np.ndarray, k: int) -> float:
    """recall@k of ``got`` against ``truth``, each query's own row (``self_rows``; -2 for
    none) dropped from both: a stored vector finds itself at once, a user's query does not."""
    hits = 0
    for g, t, own in zip(got, truth, self_rows):
        g = [x for x in g if x != own and x >= 0][:k]
        t = [x for x in t if x != own][:k]
        hits += len(set(g) & set(t))
    return hits / (k * len(self_rows))


def pick_setting(backend, xq: np.ndarray, truth: np.ndarray, own: np.ndarray, target: float, k: int,
                 margin: float = 0.0, source: str = "held-out vectors") -> dict:
    """Set the backend's knob to the smallest value of its ladder whose recall@k reaches the
    target (plus ``margin`` of what is left to 1); returns what was measured."""
    ladder, name = backend.ladder(), backend.knob
    aim = target + margin * (1.0 - target)
    t0, chosen, recall = time.perf_counter(), ladder[-1], 0.0
    for value in ladder:
        backend.set_knob(value, k)
        _, got = backend.search_many(xq, k + 1)
        recall = recall_without_self(got, truth, own, k)
        if recall >= aim:
            chosen = value
            break
    backend.apply({name: int(chosen)})
    tuning = {"recall_at_k": round(recall, 4), "k": k, "target": target, name: int(chosen),
              "queries": int(len(xq)), "queries_from": source,
              "seconds": round(time.perf_counter() - t0, 3)}
    log.info("tuned %s: %s=%d gives recall@%d %.4f on %d %s", backend.kind, name, chosen, k, recall,
             len(xq), source)
    return tuning


def tune_on_holdout(backend, held: np.ndarray, exact, target: float, k: int = 10) -> dict:
    """Tune a freshly filled backend on vectors kept out of it (``held``), which are queries
    truly not in the index, like a user's. ``exact``: its ``exact_searcher``."""
    _, truth = exact(held, k + 1)
    return pick_setting(backend, held, truth, np.full(len(held), -2, dtype="int64"), target, k)


def tune(backend, live_rows: np.ndarray, target: float, queries=None, query_rows=None,
         n_queries: int = TUNE_QUERIES, k: int = 10, seed: int = 0, base=None) -> dict:
    """Tune an approximate backend holding ``live_rows``.

    ``queries``: vectors like the ones users will send (checked, normalised float32);
    ``query_rows``: their rows, when they are stored vectors themselves (each is then dropped
    from its own answers). Without them, the tuning queries are stored vectors moved by half
    their nearest-neighbour distance, their own rows dropped from both answers, and the
    setting must reach the target plus a quarter of what is left to 1 (0.9625 for 0.95): a
    margin for queries less like the data than these. ``base``: (rows, vectors), the exact
    vectors of every live row, when the caller has them (see ``exact_searcher``).
    """
    exact = backend.exact_searcher(base)
    if queries is not None:
        xq = queries
        own = np.full(len(xq), -2, dtype="int64")
        if query_rows is not None:
            own = np.asarray(query_rows, dtype="int64").reshape(-1)
            if own.shape != (len(xq),):
                raise BadArgumentError(f"{len(xq)} tuning queries but {own.size} query rows",
                                       field="query_rows")
        _, truth = exact(xq, k + 1)
        return pick_setting(backend, xq, truth, own, target, k, source="given queries")
    rng = np.random.default_rng(seed)
    own = rng.choice(live_rows, size=min(n_queries, live_rows.size), replace=False).astype("int64")
    xq = moved_queries(backend.reconstruct(own), exact, rng)
    _, truth = exact(xq, k + 1)
    return pick_setting(backend, xq, truth, own, target, k, margin=MADE_UP_MARGIN,
                        source="moved stored vectors")


def moved_queries(xs: np.ndarray, exact, rng) -> np.ndarray:
    """Stored vectors moved by half their nearest-neighbour distance in a random direction:
    queries near the data but not on a graph node (a stored vector as a query finds its
    neighbours too easily and would tune efSearch too low)."""
    sims, _ = exact(xs, 2)
    dist = np.sqrt(np.clip(2 - 2 * sims[:, 1:2], 1e-6, 4)).astype("float32")
    u = rng.normal(size=xs.shape).astype("float32")
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    xq = xs + 0.5 * dist * u
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    return np.ascontiguousarray(xq, dtype="float32")


def holdout_split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``HOLDOUT`` vectors to keep back for tuning, and of the rest (sorted)."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:HOLDOUT]), np.sort(perm[HOLDOUT:])


__all__ = ["recall_without_self", "pick_setting", "tune", "tune_on_holdout", "moved_queries",
           "holdout_split", "TUNE_QUERIES", "HOLDOUT"]
