"""astrovlm: an offline-first vision-language assistant for astronomers.

The data's path is the package layout: ``data`` (sources, readers, the sample sky) ->
``encoders`` (image, spectrum and text towers in one space) -> ``index`` (FAISS) ->
``assistant`` (retrieval-augmented LLaVA-style answering) -> ``cli`` / ``app.py``.
``Sky.open()`` (``astrovlm.sky``) opens them together, every fingerprint checked.
"""

__version__ = "0.1.0"

from astrovlm.errors import (AstroVLMError, BadArgumentError, IncompatibleError,  # noqa: E402
                             NotFoundError, UnreadableError)

__all__ = ["AstroVLMError", "BadArgumentError", "IncompatibleError", "NotFoundError", "Sky",
           "UnreadableError", "__version__"]


def __getattr__(name):
    # ``Sky`` is imported on first use: ``import astrovlm`` stays light (no torch, no FAISS).
    if name == "Sky":
        from astrovlm.sky import Sky

        return Sky
    raise AttributeError(f"module 'astrovlm' has no attribute {name!r}")
