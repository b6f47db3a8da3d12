"""User-facing errors.

Anything a user can get wrong (a config key, a preset name, a data path, a run
directory) raises :class:`GankitError` at the edge where the input enters. The CLI
prints its message as one line and exits with code 2; library users catch it as a
``ValueError``.
"""

from __future__ import annotations

import sys


class GankitError(ValueError):
    """Bad user input: the message names the thing at fault and what would be valid."""


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss; the last good checkpoint is kept."""


def choices(valid) -> str:
    """Format a collection of valid names for an error message."""
    return ", ".join(sorted(str(v) for v in valid))


def warn(message: str) -> None:
    """One line on stderr, ``gankit: warning: ...``: something was wrong and gankit went
    on without it (a damaged file it could do without)."""
    sys.stderr.write(f"gankit: warning: {message}\n")
