"""The aligned encoders: one space, folder round trips, zero-shot classification, bad input."""

from __future__ import annotations

import json
import shutil

import astropy.units as u
import numpy as np
import pytest
import torch

from astrovlm.data.spectrum import Spectrum
from astrovlm.encoders import AlignedEncoder
from astrovlm.encoders.model import SHIPPED
from astrovlm.encoders.preprocess import image_to_tensor, sky_augmentations, spectrum_to_tensor
from astrovlm.encoders.zeroshot import check_labels, classify, fuse
from astrovlm.errors import AstroVLMError

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def encoder():
    return AlignedEncoder.from_pretrained()


def blackbody_spectrum(temperature_k=5800.0, lo=3500, hi=9500, n=3000):
    lam = np.linspace(lo, hi, n) * u.AA
    x = (6.626e-34 * 2.998e8 / (lam.to_value(u.m) * 1.381e-23 * temperature_k))
    flux = 1 / (lam.to_value(u.um) ** 5 * (np.exp(x) - 1))
    return Spectrum(lam, flux / np.median(flux), np.full(n, 100.0))


def test_shipped_folder_has_config_and_safetensors():
    assert (SHIPPED / "config.json").exists() and (SHIPPED / "model.safetensors").exists()
    cfg = json.loads((SHIPPED / "config.json").read_text())
    assert cfg["embed_dim"] == 256 and "zero_shot" in cfg and "training" in cfg


def test_every_modality_lands_in_one_normalised_space(encoder):
    from PIL import Image

    img = Image.fromarray((np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8))
    vecs = [encoder.encode_text(["a planetary nebula"]), encoder.encode_images([img]),
            encoder.encode_spectra([blackbody_spectrum()])]
    for v in vecs:
        assert v.shape == (1, 256) and v.dtype == np.float32
        assert abs(np.linalg.norm(v) - 1) < 1e-4


def test_save_and_reload_in_one_call_keeps_vectors_and_fingerprint(encoder, tmp_path):
    folder = encoder.save_pretrained(tmp_path / "enc")
    again = AlignedEncoder.from_pretrained(folder)
    texts = ["an open star cluster", "the spectrum of a quasar"]
    np.testing.assert_allclose(encoder.encode_text(texts), again.encode_text(texts), atol=1e-5)
    assert again.fingerprint == encoder.fingerprint


def test_checkpoint_of_another_version_is_refused(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    cfg["format_version"] = 99
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AstroVLMError, match="format version 99"):
        AlignedEncoder.from_pretrained(tmp_path / "old")
    with pytest.raises(AstroVLMError, match="not an astrovlm encoder folder"):
        AlignedEncoder.from_pretrained(tmp_path / "nothing-here")


def test_spectrum_on_any_grid_resamples_to_the_common_log_grid():
    x = spectrum_to_tensor(blackbody_spectrum(lo=5000, hi=7000))
    assert x.shape == (2, 1024)
    mask = x[1].numpy().astype(bool)
    assert 0 < mask.sum() < 1024          # outside 5000-7000 Angstrom is a masked gap
    assert np.all(x[0].numpy()[~mask] == 0)


def test_shipped_tower_reads_the_ultraviolet_to_the_k_band_on_its_own_grid(encoder):
    """The shipped spectrum tower's grid (its config) runs 1000-26000 Angstrom: a K-band
    spectrum and an ultraviolet one are read, masked where they have no data; one wholly
    beyond the grid, or with two pixels on it, is a clear error; frequency units are
    converted, not misread."""
    grid = encoder.spectrum_grid
    assert grid[0] == pytest.approx(1000.0) and grid[-1] == pytest.approx(26000.0) and len(grid) == 2048
    k_band = blackbody_spectrum(2000.0, lo=19500, hi=24000, n=400)
    x = spectrum_to_tensor(k_band, grid=grid)
    covered = grid[x[1].numpy() > 0]
    assert covered.min() >= 19500 and covered.max() <= 24000 and len(covered) > 64
    ultraviolet = blackbody_spectrum(20000.0, lo=1200, hi=3000, n=800)
    assert encoder.encode_spectra([k_band, ultraviolet]).shape == (2, encoder.embed_dim)
    with pytest.raises(AstroVLMError, match="1000-26000 Angstrom"):
        encoder.encode_spectra([blackbody_spectrum(1500.0, lo=30000, hi=40000, n=300)])
    with pytest.raises(AstroVLMError, match="valid pixels"):  # two pixels inside the grid
        encoder.encode_spectra([blackbody_spectrum(1500.0, lo=25990, hi=40000, n=300)])
    star = blackbody_spectrum(2000.0, lo=9000, hi=24000, n=600)
    in_hz = Spectrum(star.wavelength.to(u.Hz, equivalencies=u.spectral())[::-1], star.flux[::-1],
                     star.ivar[::-1])
    np.testing.assert_allclose(encoder.encode_spectra([in_hz]), encoder.encode_spectra([star]), atol=1e-5)
    # an encoder saved before the wide grid keeps reading the optical grid it was trained on
    assert len(spectrum_to_tensor(star)[0]) == 1024


def test_spectrum_with_too_few_valid_pixels_is_an_error():
    s = blackbody_spectrum()
    s.ivar[:] = 0
    s.ivar[:20] = 1
    with pytest.raises(AstroVLMError, match="valid pixels"):
        spectrum_to_tensor(s)


@pytest.mark.parametrize("labels,match", [
    ("", "empty"), (["galaxy", " "], "empty"), ("galaxy,Galaxy", "duplicated"), (["galaxy"], "at least two")])
def test_bad_label_lists(labels, match):
    with pytest.raises(AstroVLMError, match=match):
        check_labels(labels)


def test_classify_returns_calibrated_probabilities_for_any_labels(encoder):
    res = classify(encoder, spectrum=blackbody_spectrum(), labels="a G type star,a quasar,a white dwarf")
    assert abs(sum(res.probabilities.values()) - 1) < 1e-3
    assert res.contributions == {"spectrum": 1.0}


def test_fusion_reports_which_modality_drove_the_answer():
    confident = np.array([0.9, 0.05, 0.05])
    unsure = np.array([0.34, 0.33, 0.33])
    fused, contrib = fuse({"image": confident, "spectrum": unsure})
    assert fused.argmax() == 0
    assert contrib["image"] > 0.9 > contrib["spectrum"]


def test_sky_augmentations_keep_size_and_vary():
    from PIL import Image

    img = Image.fromarray((np.random.default_rng(1).random((50, 70, 3)) * 255).astype(np.uint8))
    views = sky_augmentations(img, np.random.default_rng(0), 8)
    assert len(views) == 8
    tensors = [image_to_tensor(v) for v in views]
    assert all(t.shape == (3, 224, 224) for t in tensors)
    assert not torch.allclose(tensors[0], tensors[5])


@pytest.mark.sample
def test_zero_shot_types_real_held_out_images(sample_sky, encoder):
    """On real held-out Stellarium images the zero-shot answer is mostly right (>= 0.7 here;
    the benchmark reports the exact figure)."""
    from astrovlm.encoders.zeroshot import DEFAULT_LABELS, class_vectors

    rows = [(r, sample_sky.get_object(r.object_id)) for r in sample_sky.split("test").images]
    rows = [(r, o) for r, o in rows if o and o.coarse_class in DEFAULT_LABELS["image"]][:40]
    emb = encoder.encode_images([sample_sky.path(r.path) for r, _ in rows])
    labels = DEFAULT_LABELS["image"]
    pred = (emb @ class_vectors(encoder, labels, "image").T).argmax(1)
    acc = np.mean([labels[p] == o.coarse_class for p, (_, o) in zip(pred, rows)])
    assert acc >= 0.7


# ----- test-time views and the zero-shot recipe ------------------------------------------------
def sky_picture(w=224, h=224, seed=3):
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = (rng.random((h, w, 3)) ** 4 * 255).astype(np.uint8)   # a few bright "stars" on dark sky
    arr[h // 3:h // 2, w // 5:w // 2] = (200, 120, 60)             # and an off-centre blob: no symmetry
    return Image.fromarray(arr)


def test_dihedral_views_are_the_8_exact_turns_and_mirrors():
    from astrovlm.encoders.preprocess import dihedral_views

    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    v8 = dihedral_views(x, 8).view(2, 8, 3, 4, 4)
    assert torch.equal(v8[:, 0], x) and torch.equal(dihedral_views(x, 1), x)
    assert torch.equal(dihedral_views(x, 4).view(2, 4, 3, 4, 4), v8[:, :4])
    assert torch.equal(v8[:, 1], torch.rot90(x, 1, dims=(2, 3))) and torch.equal(v8[:, 4], torch.flip(x, dims=(3,)))
    flat = {tuple(v8[0, k].flatten().tolist()) for k in range(8)}
    assert len(flat) == 8                                  # all distinct


def test_views_of_a_rotated_or_mirrored_image_give_the_same_embedding(encoder):
    from PIL import Image

    img = sky_picture()
    turned, mirrored = img.rotate(90), img.transpose(Image.FLIP_TOP_BOTTOM)
    one = encoder.encode_images([img, turned, mirrored])
    assert np.abs(one[0] - one[1]).max() > 1e-3           # a single view does see "up"
    four = encoder.encode_images([img, turned], views=4)
    np.testing.assert_allclose(four[0], four[1], atol=1e-5)
    eight = encoder.encode_images([img, turned, mirrored], views=8)
    np.testing.assert_allclose(eight[0], eight[1], atol=1e-5)
    np.testing.assert_allclose(eight[0], eight[2], atol=1e-5)
    assert abs(np.linalg.norm(eight, axis=1) - 1).max() < 1e-4
    # a non-square image turned before padding and resizing: the same up to resampling
    wide = sky_picture(300, 180)
    v = encoder.encode_images([wide, wide.rotate(90, expand=True)], views=8)
    assert float(v[0] @ v[1]) > 0.999


def test_one_view_is_the_index_embedding_and_batches_do_not_matter(encoder):
    imgs = [sky_picture(seed=s) for s in range(3)]
    plain = encoder.encode_images(imgs)
    with torch.inference_mode():
        direct = encoder.embed_image_features(encoder.image_features(torch.stack([image_to_tensor(i) for i in imgs])))
    np.testing.assert_array_equal(plain, encoder.encode_images(imgs, views=1))
    np.testing.assert_allclose(plain, direct.numpy(), atol=1e-6)
    np.testing.assert_allclose(encoder.encode_images(imgs, views=8, batch_size=8),
                               encoder.encode_images(imgs, views=8, batch_size=64), atol=1e-5)


@pytest.mark.parametrize("views", [0, 2, 3, 16, -4, 8.0, "8", True, None])
def test_views_argument_is_validated(encoder, views):
    with pytest.raises(AstroVLMError, match="views must be one of 1, 4, 8"):
        encoder.encode_images([sky_picture()], views=views)
    with pytest.raises(AstroVLMError, match="views must be one of"):
        classify(encoder, image=sky_picture(), views=views)


def test_classify_cli_takes_views(tmp_path, capsys):
    from astrovlm.cli import main

    path = tmp_path / "sky.png"
    sky_picture().save(path)
    assert main(["classify", str(path), "--views", "4", "--json"]) == 0
    printed = capsys.readouterr().out
    out = json.loads(printed)   # stdout holds the JSON alone (the backbone's load message goes to stderr)
    assert abs(sum(out["probabilities"].values()) - 1) < 1e-3
    with pytest.raises(SystemExit):
        main(["classify", str(path), "--views", "3"])


def test_sub_class_phrases_pool_between_mean_and_max(encoder):
    from astrovlm.encoders import zeroshot

    emb = encoder.encode_images([sky_picture(seed=s) for s in range(4)], views=4)
    labels = ["galaxy", "open cluster", "a comet"]
    scores = zeroshot.class_scores(encoder, emb, labels, "image")
    assert scores.shape == (4, 3)
    phrases = zeroshot.SUBCLASS_PHRASES["galaxy"]
    sims = emb @ zeroshot.class_vectors(encoder, list(phrases), "image").T   # a phrase is its own label
    assert np.all(scores[:, 0] <= sims.max(1) + 1e-5) and np.all(scores[:, 0] >= sims.mean(1) - 1e-5)
    # a label with one phrase scores its plain cosine, the same as class_vectors
    np.testing.assert_allclose(scores[:, 2], emb @ zeroshot.class_vectors(encoder, ["a comet"], "image")[0], atol=1e-5)
    # no sub-classes for spectra: exactly the old scores
    spec = encoder.encode_spectra([blackbody_spectrum()])
    np.testing.assert_allclose(zeroshot.class_scores(encoder, spec, ["galaxy", "G star"], "spectrum"),
                               spec @ zeroshot.class_vectors(encoder, ["galaxy", "G star"], "spectrum").T, atol=1e-6)


def test_pooled_scores_use_the_temperature_refitted_for_them(encoder, tmp_path):
    from astrovlm.encoders import zeroshot

    fitted = encoder.zero_shot_calibration["image"]["temperature"]     # the shipped zero_shot.json
    assert encoder.zero_shot_calibration["encoder_fingerprint"] == encoder.fingerprint
    assert zeroshot.scores_temperature(encoder, zeroshot.DEFAULT_LABELS["image"], "image") == fitted
    assert zeroshot.scores_temperature(encoder, ["a comet", "a meteor"], "image") == zeroshot.temperature(encoder, "image")
    assert zeroshot.scores_temperature(encoder, zeroshot.DEFAULT_LABELS["spectrum"], "spectrum") == \
        zeroshot.temperature(encoder, "spectrum")
    res = classify(encoder, image=sky_picture())
    assert set(res.probabilities) == set(zeroshot.DEFAULT_LABELS["image"])
    assert abs(sum(res.probabilities.values()) - 1) < 1e-3
    # the calibration survives a save and reload, and is not part of the fingerprint
    again = AlignedEncoder.from_pretrained(encoder.save_pretrained(tmp_path / "enc"))
    assert again.zero_shot_calibration == encoder.zero_shot_calibration and again.fingerprint == encoder.fingerprint
    # one fitted for other weights is ignored, with a warning
    stale = dict(encoder.zero_shot_calibration, encoder_fingerprint="0" * 16)
    (tmp_path / "enc" / "zero_shot.json").write_text(json.dumps(stale))
    with pytest.warns(UserWarning, match="another encoder"):
        other = AlignedEncoder.from_pretrained(tmp_path / "enc")
    assert other.zero_shot_calibration == {}
    assert zeroshot.scores_temperature(other, zeroshot.DEFAULT_LABELS["image"], "image") == \
        zeroshot.temperature(other, "image")


# ----- the position-aware spectrum tower and stage 2 of the recipe ---------------------------
def _line_spectrum(center_aa: float):
    """A flat continuum with one absorption line (pixels on the common grid)."""
    lam = np.linspace(3600, 10400, 4000) * u.AA
    flux = 1 - 0.6 * np.exp(-0.5 * ((lam.value - center_aa) / 8) ** 2)
    return Spectrum(lam, flux, np.full(lam.size, 100.0))


def test_spectrum_tower_derived_inputs_show_lines_and_where_they_are():
    from astrovlm.encoders.towers import SpectrumCNN

    tower = SpectrumCNN(derived_inputs=True, position_bins=16)
    x = spectrum_to_tensor(_line_spectrum(6563.0))[None]
    flux, mask, lines, coord = tower.expand_inputs(x)[0]
    line_px = int(torch.where(mask > 0, flux, torch.inf).argmin())
    assert mask.sum() > 1000 and lines[line_px] < -0.4  # the line stands out of its continuum
    assert abs(float(lines[300])) < 0.05                # and the continuum is ~0 away from it
    assert coord[0] == -1 and coord[-1] == 1 and torch.all(coord.diff() > 0)
    assert tower(x).shape == (1, tower.out_dim) == (1, 128 * 18)


def test_position_aware_tower_tells_a_shifted_line_apart_where_pooling_alone_cannot():
    """The same line at H-alpha and at a redshift of 0.2: global pooling of a plain CNN is
    (nearly) blind to the shift; the coordinate input and binned pooling are not."""
    from astrovlm.encoders.towers import SpectrumCNN

    torch.manual_seed(0)
    x = torch.stack([spectrum_to_tensor(_line_spectrum(c)) for c in (6563.0, 6563.0 * 1.2)])
    with torch.no_grad():
        plain = SpectrumCNN().eval()(x)
        aware = SpectrumCNN(derived_inputs=True, position_bins=16).eval()(x)
    rel = lambda f: float((f[0] - f[1]).norm() / f[0].norm())  # noqa: E731
    assert rel(aware) > 5 * rel(plain)


def run_recipe(script: str, argv: list[str]) -> None:
    """Run one of training/encoders' recipes in this process (they import their stage 1)."""
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "training" / "encoders"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(Path(script).stem, folder / script)
        recipe = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(recipe)
        recipe.main(argv)
    finally:
        sys.path.remove(str(folder))


def noise_image():
    from PIL import Image

    return Image.fromarray((np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8))


def test_stage2_recipe_locks_image_and_text_and_reloads(sample_sky, tmp_path):
    """A few steps of training/encoders/train_spectra.py: the folder reloads in one call, has
    the new tower, carries zero_shot.json over, and image and text embeddings are unchanged."""
    run_recipe("train_spectra.py", ["--steps", "4", "--output", str(tmp_path / "enc"),
                                    "--set", f"dataset={sample_sky.root}",
                                    "--set", f"run_dir={tmp_path / 'run'}", "--set", "eval_every=2",
                                    "--set", "spectrum.pool_per_template=3", "--set", "spectrum.batch_size=8"])
    base, new = AlignedEncoder.from_pretrained(), AlignedEncoder.from_pretrained(tmp_path / "enc")
    assert new.config["spectrum_tower"]["derived_inputs"] and new.fingerprint != base.fingerprint
    texts = ["a planetary nebula", "M13 is a globular cluster in Hercules."]
    np.testing.assert_array_equal(new.encode_text(texts), base.encode_text(texts))
    np.testing.assert_array_equal(new.encode_images([noise_image()]), base.encode_images([noise_image()]))
    assert new.zero_shot_calibration.get("encoder_fingerprint") == new.fingerprint
    assert (tmp_path / "run" / "loss_curves_spectra.png").exists()


def test_stage3_recipe_locks_images_and_spectra_and_refits_zero_shot(sample_sky, tmp_path):
    """A few steps of training/encoders/train_text.py: only text embeddings change; image and
    spectrum embeddings are bit-identical, and zero_shot.json is refitted for the new weights."""
    run_recipe("train_text.py", ["--steps", "4", "--output", str(tmp_path / "enc"),
                                 "--set", f"dataset={sample_sky.root}",
                                 "--set", f"run_dir={tmp_path / 'run'}", "--set", "eval_every=2",
                                 "--set", "image.views_per_image=1", "--set", "zero_shot_views=1",
                                 "--set", "spectrum.pool_per_template=3", "--set", "spectrum.batch_size=8"])
    base, new = AlignedEncoder.from_pretrained(), AlignedEncoder.from_pretrained(tmp_path / "enc")
    texts = ["a planetary nebula", "M13 is a globular cluster in Hercules."]
    assert not np.allclose(new.encode_text(texts), base.encode_text(texts))
    np.testing.assert_array_equal(new.encode_images([noise_image()]), base.encode_images([noise_image()]))
    star = blackbody_spectrum()
    np.testing.assert_array_equal(new.encode_spectra([star]), base.encode_spectra([star]))
    calib = new.zero_shot_calibration
    assert calib["encoder_fingerprint"] == new.fingerprint and calib["image"]["views"] == 1
    assert "train_text.py" in calib["fitted_on"] and new.config["training"]["stage3"]["train_cards"] > 0
    assert (tmp_path / "run" / "loss_curves_text.png").exists()


def test_probes_rank_the_matching_item_and_weight_near_neighbours():
    from astrovlm.encoders.probes import knn_regression, match_ranks

    sims = np.array([[0.9, 0.1, 0.2], [0.8, 0.3, 0.1], [0.1, 0.2, 0.7]])
    assert match_ranks(sims).tolist() == [0, 1, 0]
    # the two nearest of three: cosine distances 0.01 and 1.0, weights 100 and 1
    z = knn_regression(np.array([[0.99, 0.0, -0.5]]), np.array([1.0, 2.0, 3.0]), k=2)
    assert np.isclose(z[0], (100 * 1.0 + 1 * 2.0) / 101)


def test_radio_band_needs_a_radio_head(encoder, tmp_path):
    """An encoder without a radio head says so for band="radio"; an unknown band is refused."""
    with pytest.raises(AstroVLMError, match="band"):
        encoder.encode_images([noise_image()], band="x-ray")
    if "radio" not in encoder.bands:
        with pytest.raises(AstroVLMError, match="no radio head"):
            encoder.encode_images([noise_image()], band="radio")


def test_radio_recipe_adds_a_band_and_locks_everything_else(test_home, tmp_path, monkeypatch):
    """A few steps of training/encoders/train_radio.py on FIRST images: the folder reloads
    with a radio band whose embeddings differ from the optical ones, while optical images,
    spectra and texts embed bit-identically and the assistant's per-tower check still holds."""
    monkeypatch.setenv("ASTROVLM_HOME", str(test_home))
    base = AlignedEncoder.from_pretrained()
    run_recipe("train_radio.py", ["--steps", "4", "--output", str(tmp_path / "enc"),
                                  "--set", f"run_dir={tmp_path / 'run'}", "--set", "eval_every=2",
                                  "--set", "views=1", "--set", "max_images=24", "--set", "batch_size=8"])
    new = AlignedEncoder.from_pretrained(tmp_path / "enc")
    assert new.bands == ("optical", "radio") and new.fingerprint != base.fingerprint
    img = noise_image()
    np.testing.assert_array_equal(new.encode_images([img]), base.encode_images([img]))
    assert not np.allclose(new.encode_images([img], band="radio"), new.encode_images([img]))
    np.testing.assert_array_equal(new.encode_spectra([blackbody_spectrum()]), base.encode_spectra([blackbody_spectrum()]))
    texts = ["a planetary nebula", "a radio galaxy with two lobes"]
    np.testing.assert_array_equal(new.encode_text(texts), base.encode_text(texts))
    for m in ("image", "spectrum"):
        assert new.tower_fingerprint(m) == base.tower_fingerprint(m)
    assert new.zero_shot_calibration.get("encoder_fingerprint") == new.fingerprint
    result = classify(new, image=img, band="radio", views=1)
    assert result.labels == ["FR I radio galaxy", "FR II radio galaxy", "compact radio source",
                             "bent-tail radio galaxy"]


def test_radio_maps_with_blanks_are_stretched_and_an_empty_one_refused(tmp_path):
    """A radio FITS map with NaN blanks (as VLA and FIRST maps have) is stretched over its
    good pixels with the blanks at 0; a map with no finite pixel is a clear error."""
    from astropy.io import fits

    from astrovlm.encoders.preprocess import radio_rgb

    y, x = np.mgrid[:64, :64]
    sky = np.exp(-((x - 20) ** 2 + (y - 32) ** 2) / 20) + np.exp(-((x - 44) ** 2 + (y - 32) ** 2) / 20)
    sky[:8] = np.nan  # blanked rows
    fits.PrimaryHDU(sky.astype(np.float32)).writeto(tmp_path / "map.fits")
    rgb = radio_rgb(tmp_path / "map.fits")
    assert rgb.dtype == np.uint8 and rgb.max() == 255 and (rgb[-8:] == 0).all()  # north up: blanks at the bottom
    assert image_to_tensor(tmp_path / "map.fits", band="radio").shape == (3, 224, 224)
    with pytest.raises(AstroVLMError, match="no finite pixels"):
        radio_rgb(np.full((32, 32), np.nan, np.float32))
