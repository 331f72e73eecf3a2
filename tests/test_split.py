"""The split by object: deterministic, proportional, every class in test, no object in two
splits, simulated spectra with their template."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from astrovlm.data.split import assign_splits, template_unit, unit_number


def _strata(n: int, stratum: str = "object/galaxy", prefix: str = "NGC") -> dict[str, str]:
    return {f"{prefix}{i:04d}": stratum for i in range(n)}


def test_unit_number_is_the_sha256_rule():
    digest = hashlib.sha256(b"NGC5194").digest()
    assert unit_number("NGC5194") == int.from_bytes(digest[:8], "big") / 2**64
    assert 0 <= unit_number("anything") < 1


def test_split_is_deterministic_and_order_free():
    strata = {**_strata(300), **_strata(40, "spectrum/A star", "HD ")}
    first = assign_splits(strata)
    items = list(strata.items())
    random.Random(7).shuffle(items)
    assert assign_splits(dict(items)) == first
    assert assign_splits(strata) == first


def test_proportions_70_15_15():
    splits = assign_splits(_strata(1000))
    assert Counter(splits.values()) == {"train": 700, "val": 150, "test": 150}


def test_every_class_gets_test_units():
    strata = {**_strata(2, "spectrum/white dwarf", "wd"), **_strata(3, "spectrum/K star", "k"),
              **_strata(5, "object/open cluster", "ocl"), **_strata(1, "object/other", "x")}
    splits = assign_splits(strata)
    for stratum in ("spectrum/white dwarf", "spectrum/K star", "object/open cluster"):
        got = Counter(splits[u] for u, s in strata.items() if s == stratum)
        assert got["test"] >= 1, stratum
    assert Counter(splits[u] for u, s in strata.items() if s == "spectrum/K star")["val"] >= 1
    assert splits["x0000"] == "train"  # a lone unit trains


def test_other_strata_do_not_move_a_units_split():
    base = _strata(200)
    more = {**base, **_strata(50, "object/nebula", "neb")}
    a, b = assign_splits(base), assign_splits(more)
    assert all(a[u] == b[u] for u in base)


def test_template_units_are_named():
    assert template_unit("sdssAstar") == "template:sdssAstar"


@pytest.mark.sample
def test_sample_sky_no_object_in_two_splits(sample_sky):
    obj_split = {o.object_id: o.split for o in sample_sky.objects}
    for rec in [*sample_sky.images, *sample_sky.spectra, *sample_sky.passages]:
        if rec.object_id is not None:
            assert rec.split == obj_split[rec.object_id], rec
    # A template and every simulated variant of it share one split (leave-template-out).
    real = {s.template: s.split for s in sample_sky.spectra if not s.simulated}
    for s in sample_sky.spectra:
        if s.simulated:
            assert s.split == real[s.template], s.spectrum_id


@pytest.mark.sample
def test_sample_sky_classes_have_test_objects(sample_sky):
    from astrovlm.data.records import IMAGE_CLASSES

    by_id = {o.object_id: o for o in sample_sky.objects}
    test_image_classes = {by_id[r.object_id].coarse_class for r in sample_sky.images
                          if r.object_id and r.split == "test"}
    assert set(IMAGE_CLASSES) <= test_image_classes
    test_spectrum_classes = {s.spectral_class for s in sample_sky.spectra if not s.simulated and s.split == "test"}
    real_classes = {s.spectral_class for s in sample_sky.spectra if not s.simulated}
    assert test_spectrum_classes == real_classes
