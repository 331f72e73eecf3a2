"""CrossModalIndex: add, search, filters, upsert/delete, index kinds, atomic save/load.

The index knows vectors and metadata, not models, so these tests make their own vectors:
clustered, normalised, like embeddings of objects of a few classes.
"""

from __future__ import annotations

import json

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from astrovlm.errors import AstroVLMError
from astrovlm.index import CrossModalIndex, SkyFilter, factory, parse_cone
from astrovlm.index.filters import cone_mask

CLASSES = ("galaxy", "globular cluster", "open cluster", "planetary nebula", "nebula")
MODS = ("image", "spectrum", "text")


def sky_vectors(n: int, dim: int = 32, clusters: int = 20, seed: int = 0, spread: float = 0.6):
    """Clustered unit vectors plus metadata: three modalities per object, positions on the sky."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    label = rng.integers(0, clusters, n)
    x = centers[label] + spread * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    meta = [{"item_id": f"{MODS[i % 3]}:obj{i // 3}", "object_id": f"obj{i // 3}",
             "name": f"Object {i // 3}", "modality": MODS[i % 3], "source": "test",
             "ra_deg": float(ra[i]), "dec_deg": float(dec[i]),
             "coarse_class": CLASSES[label[i] % 5], "otype": f"{CLASSES[label[i] % 5]} (type {label[i]})",
             "credit": "made by the test", "simulated": True, "preview": f"images/{i}.png"}
            for i in range(n)]
    return x.astype("float32"), meta


def exact_top(x, q, k):
    s = x @ q
    return np.argsort(-s, kind="stable")[:k]


@pytest.fixture
def small():
    x, meta = sky_vectors(600)
    index = CrossModalIndex(32, "fp-test")
    index.add(x, meta)
    return index, x, meta


# ----------------------------------------------------------------------------- basic search
def test_flat_search_is_exact_and_carries_metadata(small):
    index, x, meta = small
    assert index.kind == "flat" and len(index) == 600
    q = x[7] + 0.1 * np.random.default_rng(1).normal(size=32)
    q /= np.linalg.norm(q)
    res = index.search(q, k=10)
    want = [meta[i]["item_id"] for i in exact_top(x, q, 10)]
    assert [h.item_id for h in res] == want
    scores = [h.score for h in res]
    assert scores == sorted(scores, reverse=True) and 0.5 < scores[0] <= 1.0001
    top = res[0]
    assert top.metadata["credit"] == "made by the test" and top.metadata["simulated"] is True
    assert top.preview == meta[exact_top(x, q, 1)[0]]["preview"]
    assert res.reason is None and res.to_dict()["returned"] == 10
    json.dumps(res.to_dict())  # the CLI prints it


def test_modality_type_and_cone_filters(small):
    index, x, meta = small
    center, radius = SkyCoord(120 * u.deg, 30 * u.deg), 70 * u.deg
    res = index.search(x[3], k=8, modality="spectrum", object_type="galaxy", center=center, radius=radius)
    assert len(res) == 8 and res.reason is None
    for h in res:
        assert h.modality == "spectrum" and h.metadata["coarse_class"] == "galaxy"
        pos = SkyCoord(h.metadata["ra_deg"] * u.deg, h.metadata["dec_deg"] * u.deg)
        assert pos.separation(center) <= radius
    # The same as brute force over exactly the rows that pass (checked with astropy).
    keep = [i for i, m in enumerate(meta) if m["modality"] == "spectrum" and m["coarse_class"] == "galaxy"
            and SkyCoord(m["ra_deg"] * u.deg, m["dec_deg"] * u.deg).separation(center) <= radius]
    want = [meta[keep[i]]["item_id"] for i in exact_top(x[keep], x[3], 8)]
    assert [h.item_id for h in res] == want


def test_type_filter_matches_catalog_type_words(small):
    index, x, _ = small
    res = index.search(x[0], k=5, object_type="Type 3")  # a word of the catalog type, any case
    assert len(res) == 5 and all("(type 3)" in h.metadata["otype"] for h in res)


def test_exclude_objects(small):
    index, x, meta = small
    res = index.search(x[0], k=5, exclude_objects=[meta[0]["object_id"]])
    assert all(h.object_id != meta[0]["object_id"] for h in res)


def test_filter_matching_nothing_gives_empty_result_with_reason(small):
    index, x, _ = small
    res = index.search(x[0], k=5, object_type="quasar")
    assert len(res) == 0 and "no item matches the filter" in res.reason and "quasar" in res.reason
    res = index.search(x[0], k=5, center=SkyCoord(10 * u.deg, 89.99 * u.deg), radius=1 * u.arcsec)
    assert len(res) == 0 and "cone" in res.reason


def test_k_larger_than_the_index_is_clamped_and_said(small):
    index, x, _ = small
    res = index.search(x[0], k=5000)
    assert len(res) == 600 and "only 600" in res.reason
    res = index.search(x[0], k=500, modality="text")
    assert len(res) == 200 and "only 200" in res.reason and "modality=text" in res.reason


@pytest.mark.parametrize("k", [0, -3, 2.5, "10", True])
def test_bad_k(small, k):
    index, x, _ = small
    with pytest.raises(AstroVLMError, match="k must"):
        index.search(x[0], k=k)


def test_bad_vectors(small):
    index, x, meta = small
    with pytest.raises(AstroVLMError, match="dimension 16, the index holds dimension 32"):
        index.search(np.ones(16), k=3)
    with pytest.raises(AstroVLMError, match="NaN"):
        index.search(np.full(32, np.nan), k=3)
    with pytest.raises(AstroVLMError, match="zero vector"):
        index.search(np.zeros(32), k=3)
    with pytest.raises(AstroVLMError, match="shape"):
        index.search(x[:2], k=3)
    with pytest.raises(AstroVLMError, match="dimension 8"):
        index.add(np.ones((1, 8)), [{"item_id": "a", "modality": "image"}])


def test_unknown_modality(small):
    index, x, _ = small
    with pytest.raises(AstroVLMError, match="unknown modality 'radio'"):
        index.search(x[0], modality="radio")
    with pytest.raises(AstroVLMError, match="unknown modality 'radio'"):
        index.add(x[:1], [{"item_id": "new", "modality": "radio"}])


def test_bad_metadata(small):
    index, x, _ = small
    with pytest.raises(AstroVLMError, match="item_id"):
        index.add(x[:1], [{"modality": "image"}])
    with pytest.raises(AstroVLMError, match="dec_deg"):
        index.add(x[:1], [{"item_id": "n1", "modality": "image", "ra_deg": 10, "dec_deg": 95}])
    with pytest.raises(AstroVLMError, match="2 vectors but 1 metadata rows"):
        index.add(x[:2], [{"item_id": "n1", "modality": "image"}])
    with pytest.raises(AstroVLMError, match="already in the index"):
        index.add(x[:1], [{"item_id": "image:obj0", "modality": "image"}])
    assert len(index) == 600  # nothing half-added


def test_cone_needs_units():
    with pytest.raises(AstroVLMError, match="radius"):
        SkyFilter.make(center=SkyCoord(1 * u.deg, 2 * u.deg), radius=2.0)
    with pytest.raises(AstroVLMError, match="angle"):
        SkyFilter.make(center=SkyCoord(1 * u.deg, 2 * u.deg), radius=2 * u.m)
    with pytest.raises(AstroVLMError, match="SkyCoord"):
        SkyFilter.make(center=(1, 2), radius=2 * u.deg)
    with pytest.raises(AstroVLMError, match="both"):
        SkyFilter.make(radius=2 * u.deg)


def test_parse_cone():
    c, r = parse_cone("83.8 -5.4 2deg")
    assert abs(c.ra.deg - 83.8) < 1e-9 and abs(c.dec.deg + 5.4) < 1e-9 and r == 2 * u.deg
    c, r = parse_cone("05h35m17.3s -05d23m28s 30arcmin")
    assert abs(c.ra.deg - 83.822) < 1e-3 and abs(r.to(u.deg).value - 0.5) < 1e-12
    _, r = parse_cone("10 20 1.5")
    assert r == 1.5 * u.deg
    for bad in ("83.8 -5.4", "83.8 -5.4 2kg", "xx yy 2deg", "83.8 -5.4 -1deg"):
        with pytest.raises(AstroVLMError, match="cone|radius"):
            parse_cone(bad)


def test_cone_mask_wraps_at_ra_zero():
    ra = np.array([359.5, 0.5, 180.0, np.nan])
    dec = np.array([0.0, 0.0, 0.0, 0.0])
    assert cone_mask(ra, dec, SkyCoord(0 * u.deg, 0 * u.deg), 1 * u.deg).tolist() == [True, True, False, False]


# ----------------------------------------------------------------------------- upsert / delete
def test_upsert_and_delete(small):
    index, x, meta = small
    new = -x[0]  # far from everything it was
    index.upsert(new[None, :], [dict(meta[0], caption="replaced")])
    assert len(index) == 600
    assert index.search(new, k=1)[0].item_id == meta[0]["item_id"]
    assert index.item(meta[0]["item_id"])["caption"] == "replaced"
    assert np.allclose(index.vectors([meta[0]["item_id"]])[0], new, atol=1e-6)
    assert index.delete([meta[0]["item_id"], meta[1]["item_id"]]) == 2
    assert len(index) == 598 and meta[0]["item_id"] not in index
    assert all(h.item_id not in (meta[0]["item_id"], meta[1]["item_id"]) for h in index.search(x[1], k=20))
    with pytest.raises(AstroVLMError, match="not in the index"):
        index.delete(["nope"])
    assert index.delete(["nope"], missing_ok=True) == 0


def test_items_of_object_and_counts(small):
    index, _, meta = small
    assert sorted(index.items_of_object("obj4")) == ["image:obj4", "spectrum:obj4", "text:obj4"]
    assert index.items_of_object("obj4", modality="text") == ["text:obj4"]
    assert index.counts() == {"image": 200, "spectrum": 200, "text": 200}


# ----------------------------------------------------------------------------- index kinds
def test_choose_kind_by_size():
    assert factory.choose_kind(1_000, 256) == "flat"
    assert factory.choose_kind(1_000_000, 256) == "hnsw"
    assert factory.choose_kind(50_000_000, 256) == "ivfpq"
    assert factory.choose_kind(10, 256, "hnsw") == "hnsw"
    with pytest.raises(AstroVLMError, match="unknown index kind"):
        factory.choose_kind(10, 256, "lsh")


def test_hnsw_reaches_its_recall_target_and_filters_exactly():
    x, meta = sky_vectors(12_000, dim=32, clusters=60, spread=0.8, seed=2)
    index = CrossModalIndex(32, "fp", kind="hnsw", recall_target=0.95)
    index.add(x, meta)
    assert index.kind == "hnsw" and index.tuning["recall_at_k"] >= 0.95
    rng = np.random.default_rng(5)
    noise = rng.normal(size=(100, 32)).astype("float32")
    qs = x[rng.choice(len(x), 100, replace=False)] + 0.4 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    recall = np.mean([len({h.item_id for h in index.search(q, k=10)}
                          & {meta[i]["item_id"] for i in exact_top(x, q, 10)}) / 10 for q in qs])
    assert recall >= 0.93  # held-out queries, not the tuning set
    # A selective filter is answered by a scan of the kept rows even on a graph index
    # (over its 8-bit vectors: only near-ties may swap).
    res = index.search(qs[0], k=5, object_type="type 7", modality="image")
    keep = [i for i, m in enumerate(meta) if m["otype"].endswith("(type 7)") and m["modality"] == "image"]
    true = {meta[i]["item_id"]: float(x[i] @ qs[0]) for i in keep}
    fifth = sorted(true.values(), reverse=True)[4]
    assert len(res) == 5 and all(h.item_id in true and true[h.item_id] >= fifth - 0.01 for h in res)
    assert all(abs(h.score - true[h.item_id]) < 0.01 for h in res)


def test_hnsw_k_at_or_above_the_index_size_returns_every_item():
    # A graph walk cannot promise k results when k nears the index size (it found 136 of
    # 500 here); the search then scans the stored vectors, and the reason says what it returns.
    x, meta = sky_vectors(500, seed=1)
    index = CrossModalIndex(32, "fp", kind="hnsw")
    index.add(x, meta)
    assert index.kind == "hnsw" and index.search_params["efSearch"] < 100

    def check(res, want):
        scores = [h.score for h in res]
        assert len(res) == want and len({h.item_id for h in res}) == want
        assert scores == sorted(scores, reverse=True)
        assert res[0].item_id == meta[3]["item_id"]

    for k in (500, 600, 10_000):
        res = index.search(x[3], k=k)
        check(res, 500)
        if k > 500:
            assert "only 500 items in the index" in res.reason and "returning 500" in res.reason
        else:
            assert res.reason is None
    for k in (480, 499, 150):  # below the size, still far above efSearch
        res = index.search(x[3], k=k)
        check(res, k)
        assert res.reason is None
    # Tombstones (masked search): the same, counting the live items only.
    index.delete([m["item_id"] for m in meta[-20:]])
    res = index.search(x[3], k=500)
    check(res, 480)
    assert "only 480 items in the index; returning 480" in res.reason
    assert not {h.item_id for h in res} & {m["item_id"] for m in meta[-20:]}


def test_hnsw_delete_masks_then_rebuilds(tmp_path):
    x, meta = sky_vectors(3000, seed=3)
    index = CrossModalIndex(32, "fp", kind="hnsw")
    index.add(x, meta)
    gone = [m["item_id"] for m in meta[:100]]
    index.delete(gone)
    assert len(index.backend.tombstones) == 100
    for q in x[:20]:
        assert not {h.item_id for h in index.search(q, k=10)} & set(gone)
    index.save(tmp_path / "ix")
    back = CrossModalIndex.load(tmp_path / "ix")
    assert len(back) == 2900 and back.backend.tombstones == index.backend.tombstones
    assert sum(back.counts().values()) == 2900
    assert not {h.item_id for h in back.search(x[0], k=10)} & set(gone)
    index.delete([m["item_id"] for m in meta[100:900]])  # past a quarter: graph rebuilt
    assert index.backend.tombstones == set() and index.backend.ntotal == len(index) == 2100


def test_ivfpq_add_search_delete_save(tmp_path):
    x, meta = sky_vectors(6000, seed=4)
    index = CrossModalIndex(32, "fp", kind="ivfpq", recall_target=0.9)
    index.add(x, meta)
    assert index.kind == "ivfpq" and "nprobe" in index.search_params
    res = index.search(x[10], k=5)
    assert res[0].item_id == meta[10]["item_id"]
    index.delete([meta[10]["item_id"]])
    assert meta[10]["item_id"] not in {h.item_id for h in index.search(x[10], k=5)}
    # k above what the probed lists hold: every list is probed for that query.
    assert index.search_params["nprobe"] < factory.ivf_of(index.backend.faiss).nlist
    for k, want in ((10_000, 5999), (5000, 5000)):
        res = index.search(x[11], k=k)
        scores = [h.score for h in res]
        assert len(res) == len({h.item_id for h in res}) == want and scores == sorted(scores, reverse=True)
        assert (res.reason is None) == (k <= 5999) and (k <= 5999 or "returning 5999" in res.reason)
    index.save(tmp_path / "ivf")
    back = CrossModalIndex.load(tmp_path / "ivf", expected_fingerprint="fp")
    assert back.kind == "ivfpq" and len(back) == 5999
    assert [h.item_id for h in back.search(x[11], k=5)] == [h.item_id for h in index.search(x[11], k=5)]
    with pytest.raises(AstroVLMError, match="at least"):
        CrossModalIndex(32, "fp", kind="ivfpq").add(x[:50], meta[:50])


def test_auto_moves_from_flat_to_hnsw_as_it_grows(monkeypatch):
    monkeypatch.setattr(factory, "FLAT_MAX", 1000)
    x, meta = sky_vectors(1600, seed=6)
    index = CrossModalIndex(32, "fp")
    index.add(x[:800], meta[:800])
    assert index.kind == "flat"
    index.add(x[800:], meta[800:])
    assert index.kind == "hnsw" and len(index) == 1600
    assert index.search(x[1200], k=1)[0].item_id == meta[1200]["item_id"]
    assert index.search(x[5], k=1)[0].item_id == meta[5]["item_id"]


# ----------------------------------------------------------------------------- save / load
def test_save_load_round_trip(small, tmp_path):
    index, x, meta = small
    index.dataset_root = str(tmp_path / "sky")
    path = index.save(tmp_path / "ix")
    config = json.loads((path / "config.json").read_text())
    assert config["fingerprint"] == "fp-test" and config["dim"] == 32 and config["count"] == 600
    assert set(config["files"]) == {"index.faiss", "meta.parquet"}
    back = CrossModalIndex.load(path, expected_fingerprint="fp-test")
    a, b = index.search(x[9], k=7, modality="image"), back.search(x[9], k=7, modality="image")
    assert [h.item_id for h in a] == [h.item_id for h in b]
    assert b[0].metadata == a[0].metadata
    assert b[0].preview == str(tmp_path / "sky" / a[0].metadata["preview"])
    # Saving again over the same folder replaces it (and leaves no temp folders).
    back.add(x[:1] * -1, [{"item_id": "extra", "modality": "text"}])
    back.save(path)
    assert len(CrossModalIndex.load(path)) == 601
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_index_of_another_encoder_is_refused(small, tmp_path):
    index, *_ = small
    index.save(tmp_path / "ix")
    with pytest.raises(AstroVLMError, match="different encoder.*Rebuild"):
        CrossModalIndex.load(tmp_path / "ix", expected_fingerprint="another-model")


def test_truncated_and_corrupt_files_are_named(small, tmp_path):
    index, *_ = small
    path = index.save(tmp_path / "ix")
    blob = (path / "index.faiss").read_bytes()
    (path / "index.faiss").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(AstroVLMError, match="index.faiss is truncated"):
        CrossModalIndex.load(path)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    (path / "index.faiss").write_bytes(bytes(flipped))
    with pytest.raises(AstroVLMError, match="index.faiss is corrupt"):
        CrossModalIndex.load(path)
    (path / "index.faiss").write_bytes(b"\0" * len(blob))  # unreadable, checksum not checked
    with pytest.raises(AstroVLMError, match="FAISS cannot read"):
        CrossModalIndex.load(path, verify=False)
    (path / "config.json").write_text("{not json")
    with pytest.raises(AstroVLMError, match="config.json is unreadable"):
        CrossModalIndex.load(path)


def test_loading_what_is_not_an_index(tmp_path):
    with pytest.raises(AstroVLMError, match="no index here"):
        CrossModalIndex.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AstroVLMError, match="not an astrovlm index"):
        CrossModalIndex.load(tmp_path / "empty")


def test_empty_index_search_says_so(tmp_path):
    index = CrossModalIndex(8, "fp")
    res = index.search(np.ones(8), k=3)
    assert len(res) == 0 and res.reason == "the index is empty"
    index.save(tmp_path / "empty")
    back = CrossModalIndex.load(tmp_path / "empty")
    assert len(back) == 0 and back.search(np.ones(8), k=1).reason == "the index is empty"
    back.add(np.eye(8)[:2], [{"item_id": "a", "modality": "text"}, {"item_id": "b", "modality": "image"}])
    assert back.kind == "flat" and back.search(np.eye(8)[1], k=1)[0].item_id == "b"


def test_constructor_checks():
    with pytest.raises(AstroVLMError, match="fingerprint"):
        CrossModalIndex(8, "")
    with pytest.raises(AstroVLMError, match="dimension"):
        CrossModalIndex(0, "fp")
    with pytest.raises(AstroVLMError, match="recall"):
        CrossModalIndex(8, "fp", recall_target=1.5)


# ----------------------------------------------------------------------------- with the encoder
def make_dataset(root, passages: int = 24):
    """A small dataset in the project's form: 12 objects of 4 classes, one drawn image and one
    spectrum each (flagged simulated), and catalog-card passages."""
    import astropy.units as u
    from PIL import Image

    from astrovlm.data.records import ImageRecord, Passage, SkyObject, SpectrumRecord, write_jsonl
    from astrovlm.data.spectrum import Spectrum

    rng = np.random.default_rng(0)
    classes = ["galaxy", "globular cluster", "open cluster", "planetary nebula"]
    objects, images, spectra, texts = [], [], [], []
    (root / "images").mkdir(parents=True)
    (root / "spectra").mkdir()
    for i in range(12):
        oid, cls = f"NGC{1000 + i}", classes[i % 4]
        objects.append(SkyObject(oid, f"NGC {1000 + i}", cls, cls, ra_deg=float(i * 30), dec_deg=float(i - 6)))
        yy, xx = np.mgrid[:64, :64]
        blob = np.exp(-((xx - 32) ** 2 / (4 + 3 * i) + (yy - 32) ** 2 / (4 + i)))
        Image.fromarray((255 * blob).astype("uint8")).convert("RGB").save(root / "images" / f"{oid}.png")
        images.append(ImageRecord(f"{oid}-img", oid, f"images/{oid}.png", credit="drawn by the test",
                                  simulated=True))
        wave = np.linspace(3800, 9000, 900) * u.AA
        flux = 1 + 0.3 * np.sin(wave.value / (200 + 20 * i)) + 0.01 * rng.normal(size=900)
        Spectrum(wave, flux).to_fits(root / "spectra" / f"{oid}.fits")
        spectra.append(SpectrumRecord(f"{oid}-spec", oid, f"spectra/{oid}.fits", "galaxy",
                                      simulated=True, credit="drawn by the test"))
    for j in range(passages):
        o = objects[j % 12]
        texts.append(Passage(f"p{j}", f"{o.name} is a {o.otype} (note {j}) seen at RA {o.ra_deg} degrees.",
                             title=o.name, kind="catalog_card", object_id=o.object_id))
    write_jsonl(root / "objects.jsonl", objects)
    write_jsonl(root / "images.jsonl", images)
    write_jsonl(root / "spectra.jsonl", spectra)
    write_jsonl(root / "passages.jsonl", texts)
    return root


@pytest.fixture(scope="module")
def encoder():
    """The shipped encoder when it exists, else the real model with its heads as initialised:
    the index only needs every query and item to come from the same encoder."""
    import torch

    from astrovlm.encoders import AlignedEncoder
    from astrovlm.encoders.model import SHIPPED

    torch.set_num_threads(2)
    if (SHIPPED / "model.safetensors").exists():
        return AlignedEncoder.from_pretrained()
    torch.manual_seed(0)
    return AlignedEncoder()


@pytest.fixture(scope="module")
def built(encoder, tmp_path_factory):
    from astrovlm.index.build import build_index

    root = make_dataset(tmp_path_factory.mktemp("sky") / "sky")
    index, summary = build_index(root, encoder, tmp_path_factory.mktemp("ix") / "ix", progress=False)
    return root, index, summary


def test_build_indexes_every_item_with_its_metadata(built, encoder):
    root, index, summary = built
    assert summary["counts"] == {"image": 12, "spectrum": 12, "text": 24} and not summary["skipped"]
    back = CrossModalIndex.load(summary["path"], expected_fingerprint=encoder.fingerprint)
    img = back.item("image:NGC1003-img")
    assert img["object_id"] == "NGC1003" and img["coarse_class"] == "planetary nebula"
    assert img["credit"] == "drawn by the test" and img["simulated"] is True and img["ra_deg"] == 90.0
    # Stored vectors are the encoder's vectors of the files.
    v = encoder.encode_images([root / "images" / "NGC1003.png"])[0]
    assert float(back.vectors(["image:NGC1003-img"])[0] @ v) > 0.9999


def test_graph_index_is_tuned_on_text_queries(built):
    from astrovlm.index.build import tune_on_text

    _, index, _ = built
    items = [index.rows.item_ids[r] for r in range(len(index))]
    x = index.vectors(items)
    graph = CrossModalIndex(index.dim, index.fingerprint, kind="hnsw")
    graph.add(x, [index.item(i) for i in items])
    texts = [r for r, i in enumerate(items) if i.startswith("text:")]
    tune_on_text(graph, x, texts)
    assert graph.tuning["queries"] == len(texts) == 24 and graph.tuning["recall_at_k"] >= 0.95


def test_cross_modal_queries(built, encoder):
    from astrovlm.index.search import SkySearch

    root, index, _ = built
    sky = SkySearch(encoder, index)
    res = sky.text("NGC 1005 is a globular cluster", modality="text", k=3)
    assert res[0].item_id.startswith("text:") and res[0].object_id == "NGC1005"
    res = sky.text("a planetary nebula", modality="image", k=5)
    assert len(res) == 5 and all(h.modality == "image" for h in res)
    assert res[0].preview == str(root.resolve() / res[0].metadata["preview"])
    res = sky.image(root / "images" / "NGC1002.png", modality="spectrum", k=4)
    assert all(h.modality == "spectrum" for h in res) and len(res) == 4
    res = sky.spectrum(root / "spectra" / "NGC1007.fits", modality="image", k=2)
    assert all(h.modality == "image" for h in res)
    # An image finds itself first among images.
    assert sky.image(root / "images" / "NGC1009.png", modality="image", k=1)[0].item_id == "image:NGC1009-img"
    # A fused query: the mean of the views' vectors, normalised.
    v_text = encoder.encode_text(["a galaxy"])[0]
    v_img = encoder.encode_images([root / "images" / "NGC1000.png"])[0]
    fused = sky.query(text="a galaxy", image=root / "images" / "NGC1000.png", k=5)
    want = index.search((v_text + v_img) / np.linalg.norm(v_text + v_img), k=5)
    assert [h.item_id for h in fused] == [h.item_id for h in want]


def test_similar_objects(built, encoder):
    from astrovlm.index.search import SkySearch

    _, index, _ = built
    sky = SkySearch(encoder, index)
    res = sky.similar("NGC 1004", k=5)
    ids = [h.object_id for h in res]
    assert len(ids) == 5 and len(set(ids)) == 5 and "NGC1004" not in ids
    assert res.filter["object_id"] == "NGC1004"
    assert sky.similar("ngc1004", k=3, modality="image")[0].modality == "image"
    res = sky.similar("NGC1004", k=50)
    assert len(res) == 11 and "only 11 other objects" in res.reason
    with pytest.raises(AstroVLMError, match="unknown object|no object named"):
        sky.similar("NGC 99999")


def test_bad_queries(built, encoder, tmp_path):
    from astrovlm.index.search import SkySearch, fuse

    _, index, _ = built
    sky = SkySearch(encoder, index)
    with pytest.raises(AstroVLMError, match="empty"):
        sky.text("   ")
    with pytest.raises(AstroVLMError, match="unknown modality 'video'"):
        sky.text("a galaxy", modality="video")
    with pytest.raises(AstroVLMError, match="not found"):
        sky.image(tmp_path / "missing.png")
    with pytest.raises(AstroVLMError, match="give a query"):
        sky.query()
    res = sky.text("a galaxy", modality="image", object_type="quasar")
    assert len(res) == 0 and "no item matches" in res.reason
    with pytest.raises(AstroVLMError, match="cancel"):
        fuse(np.stack([np.ones(4), -np.ones(4)]))
    other = CrossModalIndex(encoder.embed_dim, "another-encoder")
    with pytest.raises(AstroVLMError, match="different encoder|not with the loaded encoder"):
        SkySearch(encoder, other)


def test_cli_search_and_similar(built, encoder, tmp_path, capsys):
    from astrovlm.cli import main

    root, index, summary = built
    enc_dir = encoder.save_pretrained(tmp_path / "enc")
    common = ["--index", summary["path"], "--encoder", str(enc_dir), "--json"]
    assert main(["search", "a planetary nebula", "--modality", "image", "-k", "3", *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["returned"] == 3 and all(h["modality"] == "image" for h in out["hits"])
    assert main(["search", "--image", str(root / "images" / "NGC1001.png"), "--modality", "spectrum",
                 "--cone", "30 -5 20deg", *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hits"] and all(h["modality"] == "spectrum" for h in out["hits"])
    assert out["filter"]["cone"]["radius_deg"] == 20.0
    assert main(["similar", "NGC 1001", "-k", "2", *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [h["object_id"] != "NGC1001" for h in out["hits"]] == [True, True]
    assert main(["search", "  ", *common]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["search", "x", "--cone", "1 2", *common]) == 2
    assert "RA DEC RADIUS" in capsys.readouterr().err
    other = tmp_path / "other"
    CrossModalIndex(encoder.embed_dim, "another").save(other)
    assert main(["search", "a galaxy", "--index", str(other), "--encoder", str(enc_dir)]) == 2
    assert "different encoder" in capsys.readouterr().err
