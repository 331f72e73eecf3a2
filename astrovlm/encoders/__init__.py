"""Aligned encoders: image, spectrum and text towers in one L2-normalised space."""

from astrovlm.encoders.model import AlignedEncoder

__all__ = ["AlignedEncoder"]
