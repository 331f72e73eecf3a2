"""Shared fixtures. The real sample sky is built once per machine into a test data home
(``$ASTROVLM_TEST_HOME``, default ``~/.astrovlm-test``) and reused by later runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_HOME = Path(os.environ.get("ASTROVLM_TEST_HOME", Path.home() / ".astrovlm-test"))


@pytest.fixture(scope="session")
def test_home() -> Path:
    TEST_HOME.mkdir(parents=True, exist_ok=True)
    return TEST_HOME


@pytest.fixture(scope="session")
def sample_sky(test_home):
    """The real sample sky (built on first use; later sessions reuse it)."""
    from astrovlm.data.records import SkyDataset
    from astrovlm.data.sample import build_sample_sky

    old = os.environ.get("ASTROVLM_HOME")
    os.environ["ASTROVLM_HOME"] = str(test_home)
    try:
        root = test_home / "sample"
        if not (root / "manifest.json").exists():
            build_sample_sky(root, progress=False)
        yield SkyDataset(root)
    finally:
        if old is None:
            os.environ.pop("ASTROVLM_HOME", None)
        else:
            os.environ["ASTROVLM_HOME"] = old
