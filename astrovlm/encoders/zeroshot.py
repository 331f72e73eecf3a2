"""Zero-shot classification from text prompts, in the open_clip style.

Each label becomes a prompt ensemble ("a telescope image of a planetary nebula.", ...);
the class vector is the normalised mean of the ensemble's text embeddings. Probabilities
are a softmax of cosine similarities over a temperature fitted on the validation split
(stored in the encoder's config), so that "0.8" means about 80% right.

Images get two more inference-time choices, both picked on the validation split by
benchmarks/zeroshot_ablation.py (the weights are untouched):

- test-time augmentation: the embedding of one image to classify is the mean over its 8
  dihedral views (``views``; bulk embedding for the index stays at 1 view);
- coarse image classes with visible sub-types ("a spiral galaxy", "an H II region", ...)
  score the soft maximum (logsumexp) of their sub-class prompts' cosines, as CLIP does for
  fine-grained classes. The softmax temperature for these scores was refitted on the
  validation split and lives next to the weights in ``zero_shot.json`` (outside the
  fingerprint, which covers only what changes embeddings).

For an object with both an image and a spectrum, the two log-probabilities are added
(independent evidence) and each modality's share of the decision is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from astrovlm.errors import BadArgumentError

IMAGE_TEMPLATES = (
    "a telescope image of {}.",
    "an astronomical image of {}.",
    "a deep-sky photograph of {}.",
    "an image of {} in the night sky.",
)
SPECTRUM_TEMPLATES = (
    "the optical spectrum of {}.",
    "a spectrum of {}.",
    "an optical spectrum showing {}.",
    "the spectrum of {} observed with a spectrograph.",
)
TEMPLATES = {"image": IMAGE_TEMPLATES, "spectrum": SPECTRUM_TEMPLATES}

# Coarse classes in words the text tower knows; training captions use the same words.
CLASS_PHRASES = {
    "galaxy": "a galaxy",
    "globular cluster": "a globular star cluster",
    "open cluster": "an open star cluster",
    "planetary nebula": "a planetary nebula",
    "nebula": "a nebula of gas and dust",
    "O/B star": "a hot O or B type star",
    "A star": "an A type star",
    "F star": "an F type star",
    "G star": "a G type star like the Sun",
    "K star": "a K type star",
    "M star": "a cool M type star",
    "M dwarf": "a cool M dwarf star",
    "L dwarf": "an L dwarf, a very cool dwarf star or brown dwarf",
    "T dwarf": "a T dwarf, a brown dwarf with methane bands",
    "giant": "a cool giant star",
    "hot subdwarf": "a hot subdwarf star",
    "carbon star": "a carbon star",
    "white dwarf": "a white dwarf",
    "quasar": "a quasar",
    "FR I radio galaxy": "a radio galaxy whose jets are brightest near the core and fade outwards",
    "FR II radio galaxy": "a radio galaxy with bright lobes ending in hot spots far from the core",
    "compact radio source": "a compact, point-like radio source",
    "bent-tail radio galaxy": "a radio galaxy whose jets are bent back, a head-tail or wide-angle tail source",
}
# Image classes by their visible sub-types (the object types of the training captions); a
# label scores the soft maximum over its phrases. Labels not listed score their one phrase.
SUBCLASS_PHRASES = {
    "galaxy": ("a galaxy", "a spiral galaxy", "a barred spiral galaxy", "an elliptical galaxy",
               "a lenticular galaxy", "an irregular galaxy", "an edge-on spiral galaxy", "a pair of galaxies"),
    "globular cluster": ("a globular star cluster", "a globular cluster"),
    "open cluster": ("an open star cluster", "an open cluster", "an association of stars"),
    "planetary nebula": ("a planetary nebula", "a ring-shaped planetary nebula"),
    "nebula": ("a nebula of gas and dust", "an emission nebula", "an H II region", "a reflection nebula",
               "a dark nebula", "a supernova remnant", "a star cluster with nebula"),
}
IMAGE_VIEWS = 8   # test-time views when classifying images (see AlignedEncoder.encode_images)
DEFAULT_LABELS = {
    "image": ["galaxy", "globular cluster", "open cluster", "planetary nebula", "nebula"],
    "spectrum": ["O/B star", "A star", "F star", "G star", "K star", "M star", "L dwarf", "T dwarf",
                 "white dwarf", "galaxy", "quasar"],
    # radio morphology (images of the "radio" band; their prompts are the image prompts)
    "radio": ["FR I radio galaxy", "FR II radio galaxy", "compact radio source", "bent-tail radio galaxy"],
}


def label_phrase(label: str) -> str:
    """The words used for a label in prompts: known classes get their phrase, others an article."""
    if label in CLASS_PHRASES:
        return CLASS_PHRASES[label]
    low = label.strip()
    if low.lower().startswith(("a ", "an ", "the ")):
        return low
    return ("an " if low[:1].lower() in "aeiou" else "a ") + low


def check_labels(labels) -> list[str]:
    if labels is None:
        raise BadArgumentError("no labels given", field="labels")
    if isinstance(labels, str):
        labels = labels.split(",")
    cleaned = [str(x).strip() for x in labels]
    if any(not x for x in cleaned) or not cleaned:
        raise BadArgumentError("the label list is empty or has an empty label", field="labels")
    seen, dups = set(), []
    for x in cleaned:
        key = x.lower()
        if key in seen:
            dups.append(x)
        seen.add(key)
    if dups:
        raise BadArgumentError(f"duplicated labels: {', '.join(sorted(set(dups)))}", field="labels")
    if len(cleaned) < 2:
        raise BadArgumentError("give at least two labels to choose between", field="labels")
    return cleaned


def class_vectors(encoder, labels: list[str], modality: str) -> np.ndarray:
    """(n_labels, D) prompt-ensemble vectors, L2-normalised."""
    return phrase_vectors(encoder, [label_phrase(lab) for lab in labels], modality)


def phrase_vectors(encoder, phrases: list[str], modality: str) -> np.ndarray:
    """(n_phrases, D) prompt-ensemble vectors of phrases used as written, L2-normalised."""
    templates = TEMPLATES[modality]
    prompts = [t.format(ph) for ph in phrases for t in templates]
    emb = encoder.encode_text(prompts).reshape(len(phrases), len(templates), -1).mean(1)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def label_phrases(label: str, modality: str) -> tuple[str, ...]:
    """The phrases a label's prompts use: its sub-class phrases (images), else its one phrase."""
    if modality == "image" and label in SUBCLASS_PHRASES:
        return SUBCLASS_PHRASES[label]
    return (label_phrase(label),)


def class_scores(encoder, embeddings: np.ndarray, labels: list[str], modality: str) -> np.ndarray:
    """(n, n_labels) scores in cosine units, the logits of ``probabilities`` times the temperature.

    A label with one phrase scores the cosine to its prompt-ensemble vector (``class_vectors``);
    a label with sub-class phrases scores ``t * (logsumexp(cos_k / t) - log K)`` over its K
    phrases' ensemble vectors, at the config's calibrated temperature ``t``: between their mean
    and their maximum, and not raised by the mere number of phrases.
    """
    phrases = [label_phrases(lab, modality) for lab in labels]
    if all(len(p) == 1 for p in phrases):
        return embeddings @ class_vectors(encoder, labels, modality).T
    sims = embeddings @ phrase_vectors(encoder, [ph for group in phrases for ph in group], modality).T
    t = temperature(encoder, modality)
    cols, start = [], 0
    for group in phrases:
        part = sims[:, start:start + len(group)] / t
        start += len(group)
        top = part.max(1, keepdims=True)
        cols.append(t * (top[:, 0] + np.log(np.exp(part - top).sum(1)) - np.log(len(group))))
    return np.stack(cols, axis=1).astype(np.float32)


def temperature(encoder, modality: str) -> float:
    """The calibrated softmax temperature (cosine units) fitted on the validation split for
    plain cosines to ``class_vectors`` (1 view), stored in the encoder's config."""
    zs = encoder.config.get("zero_shot", {})
    return float(zs.get(f"temperature_{modality}", 1.0 / np.exp(encoder.config["init_logit_scale"])))


def scores_temperature(encoder, labels: list[str], modality: str) -> float:
    """The softmax temperature for ``class_scores``: where a label pools sub-class phrases,
    the one refitted on the validation split for pooled scores (``zero_shot.json`` next to the
    weights), else (or when the folder has none) the config's ``temperature``."""
    if any(len(label_phrases(lab, modality)) > 1 for lab in labels):
        pooled = getattr(encoder, "zero_shot_calibration", {}).get(modality, {}).get("temperature")
        if pooled:
            return float(pooled)
    return temperature(encoder, modality)


def embed(encoder, modality: str, items, views: int = IMAGE_VIEWS, **kwargs) -> np.ndarray:
    """The embeddings zero-shot classification uses: images with test-time ``views`` (and a
    ``band``, "optical" or "radio")."""
    if modality == "image":
        return encoder.encode_images(items, views=views, **kwargs)
    return encoder.encode_spectra(items, **kwargs)


def predict(encoder, embeddings: np.ndarray, labels: list[str], modality: str) -> np.ndarray:
    """(n, n_labels) calibrated probabilities of ``embed``'s embeddings."""
    scores = class_scores(encoder, embeddings, labels, modality)
    return softmax(scores, scores_temperature(encoder, labels, modality))


def softmax(scores: np.ndarray, temp: float) -> np.ndarray:
    logits = scores / temp
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def probabilities(embeddings: np.ndarray, classes: np.ndarray, temp: float) -> np.ndarray:
    return softmax(embeddings @ classes.T, temp)


@dataclass
class ZeroShotResult:
    labels: list[str]
    probabilities: dict[str, float]                      # fused, sums to 1
    per_modality: dict[str, dict[str, float]] = field(default_factory=dict)
    contributions: dict[str, float] = field(default_factory=dict)   # share of the decision

    @property
    def label(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def to_dict(self) -> dict:
        return {"label": self.label, "probabilities": self.probabilities,
                "per_modality": self.per_modality, "contributions": self.contributions}


def _information(p: np.ndarray) -> float:
    """KL divergence from the uniform distribution: how much a modality moved the answer."""
    p = np.clip(p, 1e-12, 1)
    return float(np.sum(p * np.log(p * len(p))))


def fuse(per_modality: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, float]]:
    logp = sum(np.log(np.clip(p, 1e-12, 1)) for p in per_modality.values())
    logp -= logp.max()
    fused = np.exp(logp) / np.exp(logp).sum()
    info = {m: _information(p) for m, p in per_modality.items()}
    total = sum(info.values()) or 1.0
    return fused, {m: round(v / total, 4) for m, v in info.items()}


def classify(encoder, image=None, spectrum=None, labels=None, views: int = IMAGE_VIEWS,
             embeddings: dict | None = None, band: str = "optical") -> ZeroShotResult:
    """Classify an image and/or a spectrum of one object against text labels.

    ``image``: a file path, PIL image or array; ``spectrum``: a ``Spectrum`` or a file path.
    ``labels``: a list or comma-separated string; None picks the default set of the
    modality given (the image set when both are given). ``views``: test-time views of the
    image (1, 4 or 8; 8 costs 8 passes of the image tower, about a second on 2 CPU cores).
    ``band``: the image's band, "optical" or "radio" (radio morphology; default labels
    ``DEFAULT_LABELS["radio"]``), for an encoder with a radio head.
    ``embeddings``: {"image": vector, "spectrum": vector} already made by this encoder, in
    place of (or beside) the files; used as given (no views are added to a vector).
    """
    from astrovlm.encoders.preprocess import check_views

    views = check_views(views)
    given = {m: v for m, v in (embeddings or {}).items() if v is not None}
    unknown = set(given) - {"image", "spectrum"}
    if unknown:
        raise BadArgumentError(f"embeddings of unknown modality {sorted(unknown)} (image or spectrum)",
                               field="embeddings")
    if image is None and spectrum is None and not given:
        raise BadArgumentError("give an image or a spectrum to classify")
    has_image = image is not None or "image" in given
    band = encoder.check_band(band)
    if labels is None:
        labels = DEFAULT_LABELS[("radio" if band == "radio" else "image") if has_image else "spectrum"]
    labels = check_labels(labels)
    vectors: dict[str, np.ndarray] = {}
    for modality, vec in given.items():
        vec = np.asarray(vec, dtype=np.float32).reshape(1, -1)
        if vec.shape[1] != encoder.embed_dim:
            raise BadArgumentError(f"the {modality} vector has {vec.shape[1]} dimensions, the encoder "
                                   f"{encoder.embed_dim}", field=modality)
        vectors[modality] = vec
    if image is not None:
        vectors["image"] = embed(encoder, "image", [image], views=views, band=band)
    if spectrum is not None:
        vectors["spectrum"] = embed(encoder, "spectrum", [spectrum])
    per = {m: predict(encoder, vectors[m], labels, m)[0] for m in ("image", "spectrum") if m in vectors}
    fused, contrib = fuse(per) if len(per) > 1 else (next(iter(per.values())), {next(iter(per)): 1.0})
    as_dict = lambda p: {lab: round(float(x), 4) for lab, x in zip(labels, p)}  # noqa: E731
    return ZeroShotResult(labels, as_dict(fused), {m: as_dict(p) for m, p in per.items()}, contrib)


def modality_of(path: str | Path) -> str:
    """Decide whether a user's file is an image or a spectrum (by content for FITS)."""
    from astrovlm.encoders.preprocess import RASTER_SUFFIXES

    path = Path(path)
    if path.suffix.lower() in RASTER_SUFFIXES:
        return "image"
    from astrovlm.data.readers import sniff

    kind = sniff(path)
    if kind not in ("image", "spectrum"):
        raise BadArgumentError(f"this file is a {kind}, neither an image nor a spectrum", path=path)
    return kind
