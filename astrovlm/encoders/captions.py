"""Captions that pair each observation with text: the bridge every modality shares.

Several phrasings per item (an augmentation of the text side): the catalog card, the
object's names and type, and plain class sentences in the words of the zero-shot prompts.
Only facts in the catalog record are used.
"""

from __future__ import annotations

import numpy as np

from astrovlm.encoders.zeroshot import CLASS_PHRASES, IMAGE_TEMPLATES, SPECTRUM_TEMPLATES, label_phrase


def _names(obj) -> str:
    names = [obj.name] + [a for a in (obj.aliases or []) if a and a != obj.name][:2]
    return ", ".join(dict.fromkeys(names))


def image_captions(obj, card: str | None = None) -> list[str]:
    """Phrasings for an image of ``obj`` (a SkyObject)."""
    kind = obj.otype or obj.coarse_class
    cls = CLASS_PHRASES.get(obj.coarse_class, label_phrase(obj.coarse_class))
    caps = [t.format(cls) for t in IMAGE_TEMPLATES[:2]]
    caps.append(f"{_names(obj)}: {kind}" + (f" in {obj.constellation}" if obj.constellation else "") + ".")
    caps.append(f"A telescope image of {obj.name}, {label_phrase(kind)}.")
    if obj.hubble_type and obj.coarse_class == "galaxy":
        caps.append(f"An image of a galaxy of Hubble type {obj.hubble_type}.")
    if obj.major_axis_arcmin:
        caps.append(f"An image of {label_phrase(kind)} {obj.major_axis_arcmin:.1f} arcminutes across.")
    if card:
        caps.append(card)
    return caps


def redshift_words(z: float) -> str:
    """Redshift in words at the precision a caption needs (the exact value has its own head)."""
    if z < 0.005:
        return "at rest (redshift about 0)"
    if z < 0.5:
        return f"at redshift about {z:.2f}"
    return f"at redshift about {z:.1f}"


def spectrum_captions(spectral_class: str, subclass: str = "", z: float = 0.0, name: str = "",
                      band: str = "") -> list[str]:
    """Phrasings for a spectrum; ``band`` names its range ("near-infrared") where it is not
    the optical range of most spectra here."""
    cls = CLASS_PHRASES.get(spectral_class, label_phrase(spectral_class))
    caps = [t.format(cls) for t in SPECTRUM_TEMPLATES[:2]]
    caps.append(f"The spectrum of {cls} {redshift_words(z)}.")
    if subclass:
        caps.append(f"A spectrum of {label_phrase(subclass)} ({spectral_class}).")
    if band:
        caps.append(f"A {band} spectrum of {cls}.")
    if name:
        caps.append(f"The spectrum of {name}, {cls}.")
    return caps


def pick(captions: list[str], rng: np.random.Generator, card_weight: float = 0.0) -> str:
    """One caption; the last one (the catalog card, when present) drawn with ``card_weight``."""
    if card_weight and rng.random() < card_weight:
        return captions[-1]
    return captions[int(rng.integers(len(captions)))]
