"""User-facing errors.

Anything a user can get wrong (a config key, a preset name, a data path, a run
directory) raises :class:`GankitError` at the edge where the input enters. The CLI
prints its message as one line and exits with code 2; library users catch it as a
``ValueError``.
"""

from __future__ import annotations

import math
import sys
from typing import Any


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (a newline becomes ``\\n``), so that a
    value quoted in a message (a file name, a YAML string) cannot break it into lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class GankitError(ValueError):
    """Bad user input: the message names the thing at fault and what would be valid.

    The message is always one line: control characters in it are escaped.
    """

    def __init__(self, message: Any = "") -> None:
        super().__init__(one_line(str(message).strip()))


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss; the last good checkpoint is kept."""


def choices(valid) -> str:
    """Format a collection of valid names for an error message."""
    return ", ".join(sorted(str(v) for v in valid))


def did_you_mean(word: str, valid) -> str:
    """``" (did you mean 'x'?)"`` naming the valid name nearest ``word``, or ``""`` when
    none is near: difflib's similarity ratio of at least 0.75, which a swapped, missing
    or extra letter passes (``stepz``, ``trian``) and a different name does not
    (``stylegan`` is not ``cyclegan``)."""
    import difflib

    near = difflib.get_close_matches(str(word), [str(v) for v in valid], n=1, cutoff=0.75)
    return f" (did you mean '{near[0]}'?)" if near else ""


def warn(message: str) -> None:
    """One line on stderr, ``gankit: warning: ...``: something was wrong and gankit went
    on without it (a damaged file it could do without)."""
    sys.stderr.write(f"gankit: warning: {message}\n")


def note(message: str) -> None:
    """One line on stderr, ``gankit: note: ...``: a rule that changes what a setting does
    is about to apply (nothing is wrong)."""
    sys.stderr.write(f"gankit: note: {message}\n")


def check_int(what: str, value: int, low: int, high: int | None = None) -> None:
    """Refuse an integer setting outside ``[low, high]`` (``high`` None: no upper bound).

    Raises:
        GankitError: naming ``what`` (e.g. ``"model: latent_dim"``), the value and the range.
    """
    if not low <= value <= (value if high is None else high):
        valid = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise GankitError(f"{what} must be an integer {valid}, got {value}")


def check_finite(what: str, value: float, low: float = -math.inf, above: bool = False) -> None:
    """Refuse a number that is NaN, infinite, or below ``low`` (at or below it, if ``above``).

    Raises:
        GankitError: naming ``what``, the value and the valid range.
    """
    if not math.isfinite(value) or value < low or (above and value == low):
        bound = "" if low == -math.inf else f" {'>' if above else '>='} {low:g}"
        raise GankitError(f"{what} must be a finite number{bound}, got {value}")
