"""The Ray engine on a local Ray (2 CPUs): embedding with Ray Data actors, a sharded IVF-PQ
index merged on disk, and the saved folder a CrossModalIndex reads back."""

from __future__ import annotations

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import faiss  # noqa: E402

from astrovlm.index import CrossModalIndex  # noqa: E402
from astrovlm.index.ray_build import build_sharded_ivfpq  # noqa: E402
from test_index import make_dataset  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def clustered(n, dim=32, clusters=40, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(clusters, dim))
    x = c[rng.integers(0, clusters, n)] + 0.5 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


def test_shards_merge_into_one_index_with_every_vector_in_its_list(local_ray, tmp_path):
    x = clustered(6000)
    ids = np.arange(len(x), dtype="int64")
    merged = build_sharded_ivfpq(local_ray, x, ids, tmp_path / "work", shards=3)
    assert merged.ntotal == len(x) and (tmp_path / "work" / "index.ivfdata").stat().st_size > 0
    # Every id is stored exactly once, in the list its vector's nearest centroid names.
    ivf = faiss.extract_index_ivf(merged)
    _, assign = ivf.quantizer.search(x, 1)
    seen = np.full(len(x), -1)
    for lst in range(ivf.nlist):
        n = ivf.invlists.list_size(lst)
        got = faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), n).copy() if n else np.array([], dtype="int64")
        assert (seen[got] == -1).all()
        seen[got] = lst
    assert (seen == assign[:, 0]).all()
    # Wrapped as a CrossModalIndex, saved (ivfdata travels with it) and read back.
    index = CrossModalIndex(32, "fp", kind="ivfpq")
    index.attach(merged, "ivfpq", {"item_id": [f"v{i}" for i in ids], "modality": ["image"] * len(x)},
                 ondisk=tmp_path / "work" / "index.ivfdata")
    index.tune()
    index.save(tmp_path / "ix")
    back = CrossModalIndex.load(tmp_path / "ix", expected_fingerprint="fp")
    assert set(json.loads((tmp_path / "ix" / "config.json").read_text())["files"]) == {
        "index.faiss", "index.ivfdata", "meta.parquet"}
    top1 = np.mean([back.search(x[i], k=1)[0].item_id == f"v{i}" for i in range(0, 6000, 60)])
    assert top1 >= 0.9
    # Changing a merged index brings its lists into memory first.
    back.delete(["v0"])
    back.add(-x[:1], [{"item_id": "new", "modality": "text"}])
    assert back.search(-x[0], k=1)[0].item_id == "new" and len(back) == 6000


# ----------------------------------------------------------------------------- full Ray build
@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    """The shipped encoder when it exists, else the real model with its heads as initialised
    (the index does not care how good the space is, only that every engine uses the same one)."""
    import torch

    from astrovlm.encoders import AlignedEncoder
    from astrovlm.encoders.model import SHIPPED

    if (SHIPPED / "model.safetensors").exists():
        return SHIPPED
    torch.manual_seed(0)
    return AlignedEncoder().save_pretrained(tmp_path_factory.mktemp("encoder") / "enc")


@pytest.mark.slow
def test_ray_build_matches_the_local_encoder(local_ray, tmp_path, encoder_dir):
    import torch

    from astrovlm.encoders import AlignedEncoder
    from astrovlm.index.build import dataset_items, embed_items
    from astrovlm.index.ray_build import build_index_ray
    from astrovlm.data.records import SkyDataset

    torch.set_num_threads(1)
    root = make_dataset(tmp_path / "sky", passages=280)
    index, summary = build_index_ray(root, encoder=encoder_dir, out=tmp_path / "ix", shards=2,
                                     batch_size=64, progress=False)
    assert summary["engine"] == "ray" and summary["kind"] == "ivfpq" and summary["shards"] == 2
    assert summary["count"] == 12 + 12 + 280 and not summary["skipped"]
    assert summary["counts"] == {"image": 12, "spectrum": 12, "text": 280}

    encoder = AlignedEncoder.from_pretrained(encoder_dir)
    back = CrossModalIndex.load(tmp_path / "ix", expected_fingerprint=encoder.fingerprint)
    assert back.kind == "ivfpq" and len(back) == 304
    # The Ray actors embedded exactly what the local engine embeds.
    items = dataset_items(SkyDataset(root))
    sample = [items[i] for i in (0, 5, 12, 20, 30, 100, 250)]
    local, _ = embed_items(encoder, sample, root, progress=False)
    for it, v in zip(sample, local):
        stored = back.vectors([it.item_id])[0]       # IVF-PQ codes: close, not equal
        assert float(stored @ v) > 0.9
        assert back.search(v, k=1, modality=it.modality)[0].item_id == it.item_id or \
            float(back.search(v, k=1, modality=it.modality)[0].score) >= float(stored @ v) - 1e-3
    hit = back.search(local[0], k=3, modality="image")[0]
    assert hit.metadata["credit"] == "drawn by the test" and hit.metadata["simulated"] is True
    assert hit.preview == str(root.resolve() / hit.metadata["preview"])
