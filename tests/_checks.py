"""Assertions shared by the bad-input and fuzz tests."""

from __future__ import annotations

import pytest

from astrovlm.errors import AstroVLMError


def fails(func, path, *words):
    """Call ``func(path)``; it must raise AstroVLMError whose message names the file and
    contains every word (case-insensitive)."""
    with pytest.raises(AstroVLMError) as info:
        func(path)
    message = str(info.value)
    assert str(path) in message, message
    for word in words:
        assert word.lower() in message.lower(), message
    return message
