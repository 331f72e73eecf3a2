"""The index's parts through their own seams: each FAISS backend behind the one interface,
the row store, the tuning functions, and the index folder's checks with their error kinds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from astrovlm.errors import BadArgumentError, IncompatibleError, NotFoundError, UnreadableError
from astrovlm.index import CrossModalIndex, SkyFilter, persist, tuning
from astrovlm.index.backends import BACKENDS, GpuBackend, new_backend, open_backend
from astrovlm.index.rows import RowStore, check_metadata

from test_index import exact_top, sky_vectors


def filled(kind: str, n: int = 6000, seed: int = 8):
    x, _ = sky_vectors(n, seed=seed)
    backend = new_backend(kind, 32, 0.95, n)
    backend.add(x, np.arange(n, dtype="int64"))
    return backend, x


def queries(x, n=20, seed=1):
    rng = np.random.default_rng(seed)
    q = x[rng.choice(len(x), n, replace=False)] + 0.3 * rng.normal(size=(n, x.shape[1])).astype("float32")
    return np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), dtype="float32")


# ----------------------------------------------------------------------------- backends
@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_every_backend_answers_through_the_one_interface(kind, tmp_path):
    backend, x = filled(kind)
    assert backend.kind == kind and backend.ntotal == len(x)
    qs = queries(x)
    # Exact kinds are exact; approximate ones, once tuned, find most of what their own exact
    # search finds (for IVF-PQ that is the scan of every list: its codes are lossy).
    if backend.knob:
        measured = tuning.tune(backend, np.arange(len(x), dtype="int64"), 0.9, queries=qs)
        assert measured[backend.knob] in backend.ladder()
    truth = [exact_top(x, q, 10).tolist() for q in qs] if backend.exact else \
        backend.exact_searcher()(qs, 10)[1].tolist()
    found = [set(backend.search(q[None, :], 10)[1].tolist()) for q in qs]
    recall = np.mean([len(f & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall == 1.0 if backend.exact else recall >= 0.85
    # A mask keeps its rows only, inside the search and in the exhaustive fallback.
    mask = np.zeros(len(x), dtype=bool)
    mask[::3] = True
    for scores, ids in (backend.search_masked(qs[0][None, :], 10, mask, 3.0),
                        backend.exhaustive(qs[0][None, :], 10, mask)):
        ids = ids[ids >= 0]
        assert len(ids) == 10 and mask[ids].all() and list(scores[:len(ids)]) == sorted(scores[:len(ids)], reverse=True)
    # Stored vectors come back (8-bit and PQ codes: close, not equal).
    back = backend.reconstruct(np.array([5, 17], dtype="int64"))
    assert back.shape == (2, 32) and (np.sum(back * x[[5, 17]], axis=1) > 0.9).all()
    # Written and read back, it answers the same.
    backend.write(tmp_path)
    again = open_backend(persist.read_faiss_index(tmp_path, {"files": {}}), kind)
    again.apply({backend.knob: 24} if backend.knob else {})
    backend.apply({backend.knob: 24} if backend.knob else {})
    for q in qs[:5]:
        assert backend.search(q[None, :], 10)[1].tolist() == again.search(q[None, :], 10)[1].tolist()


def test_graph_deletes_are_tombstones_until_a_rebuild():
    backend, x = filled("hnsw", 2000)
    backend.remove(np.arange(100, dtype="int64"))
    assert backend.ntotal == 2000 and len(backend.tombstones) == 100 and not backend.needs_rebuild()
    backend.remove(np.arange(100, 600, dtype="int64"))
    assert backend.needs_rebuild()
    flat, _ = filled("flat", 2000)
    flat.remove(np.arange(100, dtype="int64"))
    assert flat.ntotal == 1900 and not flat.tombstones


def test_gpu_backend_searches_like_its_cpu_backend():
    # Without a GPU (or with the CPU build of FAISS) the clone fails and the CPU answers;
    # with one, the GPU copy answers the same exact search.
    cpu, x = filled("flat", 3000)
    gpu = GpuBackend(cpu)
    assert gpu.kind == "flat" and gpu.exact and gpu.ntotal == 3000
    for q in queries(x, 5):
        assert gpu.search(q[None, :], 10)[1].tolist() == cpu.search(q[None, :], 10)[1].tolist()
    gpu.add(x[:1], np.array([3000], dtype="int64"))
    assert gpu._gpu is None and gpu.ntotal == 3001  # a change drops the GPU copy


def test_unknown_kind_is_a_bad_argument():
    with pytest.raises(BadArgumentError, match="unknown index kind"):
        new_backend("lsh", 8)
    with pytest.raises(BadArgumentError, match="at least"):
        new_backend("ivfpq", 32, 0.9, 6000).add(*filled("flat", 50)[1:], np.arange(50, dtype="int64"))


# ----------------------------------------------------------------------------- rows
def test_row_store_masks_names_and_errors():
    x, meta = sky_vectors(30)
    rows = RowStore.of_columns(*check_metadata(meta, 30))
    assert len(rows) == 30 and rows.next_row == 30
    assert rows.object_names()[:2] == [("obj0", "Object 0"), ("obj0", "Object 0")]
    mask = rows.mask(SkyFilter.make(modality="text"))
    assert mask.sum() == 10 and all(rows.value("modality", r) == "text" for r in np.flatnonzero(mask))
    assert rows.kill(["image:obj0"]).tolist() == [0]
    assert "image:obj0" not in rows and rows.next_row == 30 and rows.rows_alive()[0] == 1
    assert ("obj0", "Object 0") in rows.object_names()  # its other items are alive
    with pytest.raises(NotFoundError, match="not in the index"):
        rows.kill(["image:obj0"])
    with pytest.raises(NotFoundError, match="not in the index"):
        rows.row("nope")
    with pytest.raises(BadArgumentError, match="already in the index"):
        rows.refuse_present(["text:obj0"])
    back = RowStore.from_columns(rows.to_table().to_pydict(), rows.next_row)
    assert back.rows_alive().tolist() == rows.rows_alive().tolist() and back.meta(5) == rows.meta(5)


# ----------------------------------------------------------------------------- tuning
def test_recall_without_self_drops_the_query_itself():
    truth = np.array([[7, 1, 2, 3]])
    assert tuning.recall_without_self(np.array([[7, 1, 2, 9]]), truth, np.array([7]), 3) == 2 / 3
    assert tuning.recall_without_self(np.array([[1, 2, 3, -1]]), truth, np.array([-2]), 3) == 2 / 3


def test_tuning_picks_the_cheapest_setting_that_reaches_the_target():
    backend, x = filled("hnsw", 8000)
    live = np.arange(len(x), dtype="int64")
    low = tuning.tune(backend, live, 0.8, base=(live, x))
    high = tuning.tune(backend, live, 0.99, base=(live, x))
    assert low["efSearch"] <= high["efSearch"] and low["recall_at_k"] >= 0.85  # 0.8 + the margin
    assert backend.hnsw.hnsw.efSearch == high["efSearch"] and high["queries_from"] == "moved stored vectors"
    with pytest.raises(BadArgumentError, match="query rows"):
        tuning.tune(backend, live, 0.9, queries=x[:5], query_rows=[1, 2])


# ----------------------------------------------------------------------------- the folder
def test_folder_errors_say_which_kind_of_problem(tmp_path):
    x, meta = sky_vectors(300)
    index = CrossModalIndex(32, "fp-a")
    index.add(x, meta)
    path = index.save(tmp_path / "ix")
    with pytest.raises(NotFoundError, match="no index here"):
        CrossModalIndex.load(tmp_path / "missing")
    with pytest.raises(IncompatibleError, match="different encoder"):
        CrossModalIndex.load(path, expected_fingerprint="fp-b")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(dict(config, format_version=99)))
    with pytest.raises(IncompatibleError, match="newer"):
        CrossModalIndex.load(path)
    (path / "config.json").write_text(json.dumps(config))
    blob = bytearray((path / "meta.parquet").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (path / "meta.parquet").write_bytes(bytes(blob))
    with pytest.raises(UnreadableError, match="meta.parquet is corrupt"):
        CrossModalIndex.load(path)
    (path / "index.faiss").unlink()
    with pytest.raises(UnreadableError, match="index.faiss is missing"):
        CrossModalIndex.load(path, verify=False)
    with pytest.raises(BadArgumentError, match="k must"):
        index.search(x[0], k=0)
    with pytest.raises(NotFoundError, match="not in the index"):
        index.item("nope")


def test_index_round_trip_keeps_hits_for_every_kind(tmp_path):
    for kind, n in (("flat", 3000), ("hnsw", 6000), ("ivfpq", 6000)):
        x, meta = sky_vectors(n, seed=9)
        index = CrossModalIndex(32, "fp", kind=kind, recall_target=0.9)
        index.add(x, meta)
        index.delete([m["item_id"] for m in meta[:10]])
        back = CrossModalIndex.load(index.save(tmp_path / kind), expected_fingerprint="fp")
        assert back.kind == kind and back.search_params == index.search_params and len(back) == n - 10
        for q in queries(x, 5):
            for f in ({}, {"modality": "image"}, {"object_type": "type 3"}):
                assert [h.item_id for h in back.search(q, k=8, **f)] == [h.item_id for h in index.search(q, k=8, **f)]


# ----------------------------------------------------------------------------- OpenMP
def test_faiss_threads_sleep_while_they_wait_and_the_setting_stays_faiss_own():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["OMP_DISPLAY_ENV"] = "verbose"  # libgomp prints its settings when it loads
    code = ("import os, astrovlm.index as ix; "
            "print(ix.FAISS_OMP_WAIT_POLICY, os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "None"]  # set for faiss's import only
    assert "GOMP_SPINCOUNT = '0'" in out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # the user's choice wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ACTIVE", "ACTIVE"] and "GOMP_SPINCOUNT = '0'" not in out.stderr


def test_an_index_saved_empty_with_a_kind_gets_that_kind_on_its_first_add(tmp_path):
    # (It used to come back as an empty flat FAISS index labelled "hnsw", and the first add
    # failed when it tuned the graph it did not have.)
    CrossModalIndex(32, "fp", kind="hnsw").save(tmp_path / "ix")
    back = CrossModalIndex.load(tmp_path / "ix")
    assert back.kind == "hnsw" and back.backend is None
    x, meta = sky_vectors(5000)
    back.add(x, meta)
    assert back.backend.kind == "hnsw" and "efSearch" in back.search_params
    assert back.search(x[0], k=1)[0].item_id == meta[0]["item_id"]
