"""What a long command is doing, on stderr: one line per stage and a bar over its parts.

``gankit eval``, ``gankit fid`` and ``gankit inspect`` can run for minutes on a CPU
(InceptionV3 features of thousands of images, filter patterns by gradient ascent);
without this they print nothing until the end. The commands show it by default
(``--no-progress`` turns it off); library calls are quiet unless given a
``Progress(True)``. Stdout stays the command's result, so it can be piped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Progress:
    """Stage lines and tqdm bars on stderr, or nothing when not ``enabled``.

    Args:
        enabled: show anything at all.
    """

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled

    def say(self, message: str) -> None:
        """One line on stderr: the stage that starts now, e.g. "extracting ... features"."""
        if self.enabled:
            print(message, file=sys.stderr, flush=True)

    def bar(self, total: int, desc: str, unit: str = "image"):
        """A tqdm bar of ``total`` parts (disabled when quiet); use it as a context manager
        and ``update(k)`` it as parts finish."""
        from tqdm.auto import tqdm

        # In a log file (CI, nohup) every redraw is a new chunk of text: redraw rarely,
        # as the trainer's bar does.
        interactive = sys.stderr.isatty()
        return tqdm(
            total=total, desc=desc, unit=unit, disable=not self.enabled, file=sys.stderr,
            mininterval=0.2 if interactive else 30.0, dynamic_ncols=True,
        )  # fmt: skip

    def iterate(self, items: Iterable[T], total: int, desc: str, unit: str = "step") -> Iterator[T]:
        """``items`` with a bar that advances by one per item."""
        with self.bar(total, desc, unit) as bar:
            for item in items:
                yield item
                bar.update(1)


#: Shows nothing: the default of library calls and of scoring inside training.
QUIET = Progress(False)
