"""``astrovlm app --help`` works from an installed wheel, not only from a checkout.

The wheel is built from this checkout and installed with ``--no-deps`` into a fresh venv; the
dependencies come from the running interpreter's site-packages, placed after the wheel's own
on ``PYTHONPATH``, and the command runs outside the checkout so no source tree is importable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


# No PYTHONPATH of the caller's: a checkout on it would pass for the installed package (and an
# egg-info left there by a build makes pip think astrovlm is installed already).
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(cmd, env=CLEAN_ENV, **kw):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, env=env, **kw)
    assert out.returncode == 0, f"{cmd}:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.mark.slow
def test_astrovlm_app_help_from_an_installed_wheel(tmp_path):
    # Built from a copy: setuptools reuses a build/ folder, where a module deleted from the
    # tree would live on and pass the test. The running environment's setuptools builds it
    # (no download of build requirements).
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "runs", "built"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", tmp_path / "dist", src])
    wheel, = (tmp_path / "dist").glob("astrovlm-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=tmp_path)
    wheel_site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    deps_site = sysconfig.get_paths()["purelib"]   # .pth files (the editable install) are not read here
    env = dict(CLEAN_ENV)
    env["PYTHONPATH"] = os.pathsep.join([wheel_site, deps_site])
    away = tmp_path / "elsewhere"
    away.mkdir()

    out = _run([venv / "bin" / "astrovlm", "app", "--help"], env=env, cwd=away)
    assert "usage: astrovlm app" in out.stdout and "--no-assistant" in out.stdout
    # the installed package, its shipped weights, and the app's Gradio side all import from there
    code = ("import astrovlm, astrovlm.webapp\n"
            "from astrovlm.encoders.model import SHIPPED\n"
            "print(astrovlm.__file__)\n"
            "print((SHIPPED / 'model.safetensors').is_file())")
    where, weights = _run([python, "-c", code], env=env, cwd=away).stdout.split()
    assert Path(where).is_relative_to(venv) and weights == "True"
