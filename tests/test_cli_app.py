"""``astrovlm app`` and ``python app.py``: one set of options, Gradio loaded only when the app runs;
``-v/-q`` set the one log handler of the command line and the app."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import astrovlm
from astrovlm.cli import build_parser, main

REPO = Path(__file__).resolve().parent.parent
SRC = str(Path(astrovlm.__file__).resolve().parent.parent)


def _options(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings} - {"-h", "--help"}


def _app_parser():
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return action.choices["app"]


def test_astrovlm_app_has_the_options_of_app_py():
    from astrovlm.webapp.launch import build_parser as app_py_parser

    options = _options(_app_parser())
    assert options == _options(app_py_parser())
    assert {"--host", "--port", "--home", "--no-build", "--no-assistant", "--encoder", "--assistant",
            "--queue-size", "-v", "-q"} <= options


def _run(*args, **env):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=SRC, **env))


def test_the_command_line_does_not_load_gradio_until_the_app_runs():
    code = ("import sys\nfrom astrovlm.cli import main\n"
            "for argv in (['--help'], ['app', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('loaded:', sorted(m for m in ('gradio', 'torch', 'faiss') if m in sys.modules))")
    out = _run("-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("loaded: []")


def test_app_without_a_sample_sky_and_no_build_exits_2_both_ways(tmp_path):
    for argv in (["-m", "astrovlm", "app"], ["app.py"]):
        out = _run(*argv, "--no-build", "--no-assistant", "--home", str(tmp_path))
        assert out.returncode == 2, out.stderr
        assert "astrovlm: error:" in out.stderr and "sample sky is not built" in out.stderr


def test_verbosity_flags_set_the_astrovlm_handler(capsys):
    log = logging.getLogger("astrovlm.tests")
    try:
        for argv, shown, hidden in ((["-v"], "debug line", None), ([], "info line", "debug line"),
                                    (["-q"], "warning line", "info line")):
            assert main(argv) == 0  # no command: prints the help
            capsys.readouterr()
            log.debug("debug line")
            log.info("info line")
            log.warning("warning line")
            err = capsys.readouterr().err
            assert f"astrovlm: {shown}\n" in err, (argv, err)
            if hidden:
                assert hidden not in err, (argv, err)
            # one handler however often the command line is set up
            assert err.count(f"astrovlm: {shown}") == 1
    finally:  # leave the logger as other tests expect it: no handler, level unset
        logger = logging.getLogger("astrovlm")
        logger.setLevel(logging.NOTSET)
        for handler in [h for h in logger.handlers if type(h).__module__ == "astrovlm.logs"]:
            logger.removeHandler(handler)


def test_verbosity_flags_go_before_or_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["-v", "index", "build"]).log_level == logging.DEBUG
    assert parser.parse_args(["index", "build", "-q"]).log_level == logging.WARNING
    assert parser.parse_args(["data", "ingest", "DIR"]).log_level == logging.INFO
