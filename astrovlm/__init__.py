"""astrovlm: an offline-first vision-language assistant for astronomers.

The data's path is the package layout: ``data`` (sources, readers, the sample sky) ->
``encoders`` (image, spectrum and text towers in one space) -> ``index`` (FAISS) ->
``assistant`` (retrieval-augmented LLaVA-style answering) -> ``cli`` / ``app.py``.
"""

__version__ = "0.1.0"

from astrovlm.errors import AstroVLMError  # noqa: E402

__all__ = ["AstroVLMError", "__version__"]
