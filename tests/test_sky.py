"""One door: ``Sky.open`` opens dataset + encoder + index + resolver with every fingerprint
checked; one retriever for the CLI, the app and the assistant; one name key everywhere."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from astrovlm.data.names import name_key
from astrovlm.errors import AstroVLMError, BadArgumentError, IncompatibleError, NotFoundError

# Spellings a user types, and the object each must reach, whichever door it comes in by.
TRICKY_NAMES = [
    ("NGC 0224", "NGC0224"), ("M 31", "NGC0224"), ("Messier 31", "NGC0224"), ("messier 031", "NGC0224"),
    ("ngc-224", "NGC0224"), ("omega Cen", "NGC5139"), ("Omega Centauri", "NGC5139"),
    ("Cat's Eye", "NGC6543"), ("Cat's Eye Nebula", "NGC6543"),
]


@pytest.fixture(scope="module")
def encoder():
    import torch

    from astrovlm.encoders import AlignedEncoder

    torch.set_num_threads(2)
    return AlignedEncoder.from_pretrained()


@pytest.fixture(scope="module")
def resolver():
    from astrovlm.data.resolver import NameResolver

    return NameResolver(objects=[])


def test_name_key_meets_the_spellings_of_one_designation():
    assert len({name_key(n) for n in ("NGC 0224", "ngc224", "NGC-224", "ngc 224.")}) == 1
    assert len({name_key(n) for n in ("M 31", "Messier 31", "m31", "messier 031")}) == 1
    # a hyphen between two numbers separates them: these stay two names
    assert name_key("Sh2-155") == name_key("Sharpless 2-155") != name_key("Sh2155")


@pytest.mark.parametrize("name,object_id", TRICKY_NAMES)
def test_resolver_reaches_the_object_from_every_spelling(resolver, name, object_id):
    assert resolver.resolve(name).object_id == object_id


def test_a_constellation_or_a_one_word_remainder_is_not_an_object(resolver):
    # "Triangulum Galaxy" and "Ring Nebula" are names; "Triangulum" and "Ring" alone are not.
    assert resolver.find("Triangulum Galaxy").object_id == "NGC0598"
    assert resolver.find("Triangulum") is None and resolver.find("Ring") is None


def _small_index(encoder):
    """A real index of a few unit vectors, with the names the sample sky stores."""
    from astrovlm.index import CrossModalIndex

    rng = np.random.default_rng(0)
    index = CrossModalIndex(dim=encoder.embed_dim, fingerprint=encoder.fingerprint)
    rows = [("NGC0224", "M31", "image", "train", None), ("NGC0224", "M31", "text", "train", "literature"),
            ("NGC5139", "NGC 5139", "image", "test", None), ("NGC6543", "NGC 6543", "image", "val", None),
            ("NGC6543", "NGC 6543", "text", "val", "catalog_card"), (None, None, "spectrum", "train", None),
            (None, None, "spectrum", "train", None)]
    meta = [{"item_id": f"{mod}:{i}", "object_id": oid, "modality": mod, "name": name, "split": split,
             "kind": kind, "template": "A0V" if mod == "spectrum" else None}
            for i, (oid, name, mod, split, kind) in enumerate(rows)]
    x = rng.normal(size=(len(rows), encoder.embed_dim)).astype("float32")
    index.add(x / np.linalg.norm(x, axis=1, keepdims=True), meta)
    return index, x


@pytest.mark.parametrize("name,object_id", TRICKY_NAMES)
def test_retriever_resolves_the_same_spellings_in_the_index(encoder, resolver, name, object_id):
    from astrovlm.index.search import Retriever

    index, _ = _small_index(encoder)
    assert Retriever(encoder, index, resolver).resolve(name) == object_id


def test_ingest_groups_files_whose_object_cards_spell_one_name_differently(tmp_path):
    from fits_fixtures import make_wcs_1d

    from astrovlm.data.ingest import ingest_folder
    from astrovlm.data.records import SkyDataset

    from astropy.io import fits

    folder = tmp_path / "obs"
    folder.mkdir()
    for name, obj in (("a", "NGC 0224"), ("b", "NGC-224"), ("c", "NGC 1003")):
        path = make_wcs_1d(folder / f"{name}.fits", obj=obj)
        with fits.open(path, mode="update") as h:  # no position: grouped by name alone
            del h[0].header["RA"], h[0].header["DEC"]
    ingest_folder(folder, tmp_path / "ds", progress=False)
    ds = SkyDataset(tmp_path / "ds")
    by_object = {}
    for rec in ds.spectra:
        by_object.setdefault(rec.object_id, []).append(rec.path)
    assert sorted(len(v) for v in by_object.values()) == [1, 2]


def test_retriever_narrows_in_one_place(encoder, resolver):
    from astrovlm.index.search import Retriever

    index, x = _small_index(encoder)
    r = Retriever(encoder, index, resolver)
    q = x[5] / np.linalg.norm(x[5])
    # two spectra from one template: one per "object" (the template stands for it)
    assert len(r.nearest(q, k=7, modality="spectrum", per_object=1)) == 1
    assert len(r.nearest(q, k=7, modality="spectrum")) == 2
    hits = r.nearest(q, k=7, splits={"train"}).hits
    assert hits and {h.metadata["split"] for h in hits} == {"train"}
    lit = r.nearest(q, k=7, modality="text", kinds={"literature"})
    assert [h.item_id for h in lit] == ["text:1"]
    assert all(h.score >= 0.5 for h in r.nearest(q, k=7, min_score=0.5))
    similar = r.similar("M 31", k=5)
    assert "NGC0224" not in {h.object_id for h in similar} and all(h.object_id for h in similar)
    with pytest.raises(BadArgumentError):
        r.nearest(q, k=0)
    with pytest.raises(NotFoundError):
        r.similar("NGC 99999")


def test_an_index_of_another_encoder_is_refused_by_kind(encoder, tmp_path):
    from astrovlm.index import CrossModalIndex
    from astrovlm.index.search import Retriever

    other = CrossModalIndex(dim=encoder.embed_dim, fingerprint="0123456789abcdef")
    with pytest.raises(IncompatibleError, match="0123456789abcdef"):
        Retriever(encoder, other)


# ------------------------------------------------------------------ the assistant's encoder
def _shipped_config():
    from astrovlm.assistant.model import SHIPPED_DIR, AssistantConfig

    return AssistantConfig.from_dict(json.loads((SHIPPED_DIR / "config.json").read_text()))


def _stale(config, encoder):
    """The shipped config as if its spectrum projector were trained on another spectrum tower."""
    return replace(config, encoder_fingerprint="0" * 16, checked_with=[],
                   encoder_towers={"image": encoder.tower_fingerprint("image"), "spectrum": "1" * 16})


def test_shipped_assistant_records_the_encoder_it_was_trained_on(encoder):
    from astrovlm.assistant.model import check_encoder

    config = _shipped_config()
    # stage 3 refitted it on this encoder, or on the one the radio stage started from (which
    # changed no tower the projectors read): the fingerprint it names is one of the two
    radio = encoder.config["training"].get("radio", {})
    assert config.encoder_fingerprint in (encoder.fingerprint, radio.get("init_fingerprint"))
    assert config.encoder_towers == {m: encoder.tower_fingerprint(m) for m in ("image", "spectrum")}
    assert "reproject" in config.trained and check_encoder(config, encoder) == []
    warnings = check_encoder(replace(_stale(config, encoder), checked_with=[
        {"encoder": encoder.fingerprint, "checked_by": "a benchmark", "figures": {"facts_right": 0.9}}]), encoder)
    assert len(warnings) == 1 and encoder.fingerprint in warnings[0]   # measured after: a warning
    assert "spectrum projector" in warnings[0] and "the image projector was trained on" not in warnings[0]


def test_assistant_trained_on_another_encoder_is_refused_unless_asked(encoder):
    from astrovlm.assistant.model import check_encoder

    unchecked = _stale(_shipped_config(), encoder)
    with pytest.raises(IncompatibleError) as err:
        check_encoder(unchecked, encoder)
    assert unchecked.encoder_fingerprint in str(err.value) and encoder.fingerprint in str(err.value)
    assert "allow_other_encoder" in str(err.value)
    assert "Loaded anyway" in check_encoder(unchecked, encoder, allow_other=True)[0]
    # trained on this very encoder, or on one whose image and spectrum towers are identical
    assert check_encoder(replace(unchecked, encoder_fingerprint=encoder.fingerprint), encoder) == []
    same_towers = {m: encoder.tower_fingerprint(m) for m in ("image", "spectrum")}
    assert check_encoder(replace(unchecked, encoder_towers=same_towers), encoder) == []


def test_assistant_refuses_an_other_encoder_at_construction(encoder):
    from types import SimpleNamespace

    from astrovlm.assistant.rag import Assistant
    from astrovlm.index import CrossModalIndex
    from astrovlm.index.search import Retriever

    index = CrossModalIndex(dim=encoder.embed_dim, fingerprint=encoder.fingerprint)
    model = SimpleNamespace(config=_stale(_shipped_config(), encoder))
    with pytest.raises(IncompatibleError):
        Assistant(model, None, Retriever(encoder, index), resolver=None)
    assert Assistant(model, None, Retriever(encoder, index), allow_other_encoder=True).encoder_warnings


# ------------------------------------------------------------------ one zero-shot call
@pytest.fixture(scope="module")
def sky(sample_sky, encoder):
    from astrovlm.sky import Sky

    return Sky.open(home=sample_sky.root.parent, encoder=encoder, build=True, progress=False)


@pytest.mark.sample
@pytest.mark.slow
def test_chat_and_classify_name_the_same_class_for_an_image(sky, capsys):
    from astrovlm.assistant.context import ContextBuilder
    from astrovlm.cli import main

    context = ContextBuilder(sky.dataset, sky.retriever)
    for rec in [r for r in sky.dataset.images if r.split == "test"][:4]:
        path = sky.dataset.path(rec.path)
        r = context.gather("What is this?", image=path)
        capsys.readouterr()
        assert main(["classify", str(path), "--json"]) == 0
        cli = json.loads(capsys.readouterr().out)
        assert r.attachment["zero_shot"] == cli["label"] == sky.retriever.classify(image=path).label
        assert any(s.text.startswith(f"Zero-shot class of the attached image: {cli['label']} ")
                   for s in r.sources)


@pytest.mark.sample
def test_sky_open_names_what_is_missing(tmp_path, encoder):
    from astrovlm.sky import Sky

    with pytest.raises(NotFoundError, match="sample sky is not built"):
        Sky.open(home=tmp_path, encoder=encoder)
    with pytest.raises(AstroVLMError):
        Sky.open(home=tmp_path, encoder=encoder, index=tmp_path / "no-index")


@pytest.mark.sample
def test_sky_open_checks_every_fingerprint(sky):
    assert sky.index.fingerprint == sky.encoder.fingerprint
    assert sky.resolver.resolve("Ring Nebula").object_id == "NGC6720"
    assert sky.retriever.resolver is sky.resolver
