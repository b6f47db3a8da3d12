"""User-facing errors.

Anything a user can get wrong (a config key, a preset name, a data path, a run
directory) raises :class:`GankitError` at the edge where the input enters. The CLI
prints its message as one line and exits with code 2; library users catch it as a
``ValueError``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
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


def int_list(text: str | Sequence[int] | None, option: str) -> list[int] | None:
    """``"3,3,7"`` -> ``[3, 3, 7]`` (a sequence of integers is taken as it is; None stays
    None).

    Raises:
        GankitError: naming ``option``, when a part is not an integer.
    """
    if text is None or not isinstance(text, str):
        return None if text is None else [int(part) for part in text]
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GankitError(
            f"{option} must be comma-separated integers such as 3,3,7; got '{text}'"
        ) from None


def float_list(
    text: str | Sequence[float] | None, option: str, example: str
) -> tuple[float, ...] | None:
    """``"0.5,1.0"`` -> ``(0.5, 1.0)`` (a sequence of numbers is taken as it is; None stays
    None).

    Raises:
        GankitError: naming ``option`` and ``example``, when a part is not a number.
    """
    if text is None or not isinstance(text, str):
        return None if text is None else tuple(float(part) for part in text)
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise GankitError(
            f"{option} must be comma-separated numbers such as {example}; got '{text}'"
        ) from None


#: How long a rank other than 0 waits, after a user error, for rank 0 to report it.
OTHER_RANK_GRACE_S = 10.0


def error_line(message: str, code: int) -> str | None:
    """The line a process prints for an error that ends a command with exit ``code``,
    or None where this process says nothing.

    Under torchrun every rank meets the same user error; rank 0 alone says so. The
    launcher stops every worker as soon as one exits with an error, so another rank
    waits (:data:`OTHER_RANK_GRACE_S`) before its line: rank 0 exits first with its
    line, and the launcher ends the waiting rank quietly. A rank still here after the
    wait met an error of its own, and says so with its rank. An interrupt (code 130)
    reaches every rank alike: rank 0 says so, the others say nothing.
    """
    import os
    import time

    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:
        if code == 130:
            return None
        time.sleep(OTHER_RANK_GRACE_S)
    prefix = "gankit: error: " if rank == 0 else f"gankit: error: rank {rank}: "
    return f"{prefix}{message}"
