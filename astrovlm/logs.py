"""One logging set-up for the ``astrovlm`` command and the web app.

Library modules log through ``logging.getLogger(__name__)`` and set no handler (a library
that configures logging fights its host). The two entry points call ``setup_logging`` once:
every ``astrovlm.*`` record then goes to stderr as ``astrovlm: message``, which keeps stdout
for a command's result (``--json``). Progress bars (tqdm) are not logging and stay as they are.
"""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "astrovlm"
FORMAT = "astrovlm: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when a record comes.

    The CLI also runs in-process (tests, notebooks) where ``sys.stderr`` is swapped after
    set-up; holding the stream of set-up time would write past the swap.
    """

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def add_verbosity_arguments(parser, inherit: bool = False) -> None:
    """``-v/--verbose`` (DEBUG) and ``-q/--quiet`` (WARNING) into ``args.log_level`` (INFO).

    ``inherit``: for a subcommand's parser, so ``astrovlm -v index build`` and ``astrovlm index
    build -v`` both work and a subcommand without the flag keeps what the top level set.
    """
    import argparse

    group = parser.add_mutually_exclusive_group()
    default = argparse.SUPPRESS if inherit else logging.INFO
    group.add_argument("-v", "--verbose", dest="log_level", action="store_const", const=logging.DEBUG,
                       default=default, help="log more (debug lines)")
    group.add_argument("-q", "--quiet", dest="log_level", action="store_const", const=logging.WARNING,
                       default=default, help="log only warnings and errors")


def setup_logging(level: int | str = logging.INFO) -> logging.Logger:
    """Send ``astrovlm`` log records at ``level`` and above to stderr; returns the logger.

    Called again (a second command in one process, the app after the CLI) it replaces its
    own handler instead of adding one, so no line is printed twice.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    # propagate stays on: pytest's caplog and a host's own root handler still see the records.
    return logger


__all__ = ["setup_logging", "add_verbosity_arguments", "LOGGER_NAME", "FORMAT"]
