"""A run folder as the report reads it: files only, never a checkpoint.

Reading files rather than loading the model lets ``gankit report`` show a run that is
still training (the trainer writes every file atomically or by whole lines), a run
whose newest checkpoint is still being written, and a run that has none yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit.errors import warn
from gankit.files import is_link, link_error, read_bytes, read_jsonl, regular_files
from gankit.runs.checkpoint import list_checkpoints
from gankit.runs.folder import RunPaths, find_run, run_config
from gankit.runs.lock import lock_holder
from gankit.runs.summary import read_eval

#: The most previews a report embeds: evenly spaced over training, the newest always in.
MAX_FRAMES = 40
#: Picture files of ``RUN/explore`` a report embeds.
PICTURE_SUFFIXES = {".png": "image/png", ".gif": "image/gif"}
#: The largest file a report embeds (a preview, a picture, eval.json): pictures of
#: gankit's are under 1 MB.
MAX_EMBEDDED_BYTES = 16 << 20
STEP_FILE = re.compile(r"step_(\d+)\.(png|txt)$")
SNAPSHOT_FILE = re.compile(r"step_(\d+)\.pt$")


@dataclass
class Preview:
    """One picture (or text) drawn during training at ``step``."""

    step: int
    path: Path

    @property
    def mime(self) -> str:
        return "image/png" if self.path.suffix == ".png" else "text/plain"

    def content(self) -> bytes | str:
        data = read_bytes(self.path, MAX_EMBEDDED_BYTES)  # never through a link
        return data.decode("utf-8", errors="replace") if self.mime == "text/plain" else data


@dataclass
class RunFolder:
    """What a run folder holds, read once.

    Attributes:
        path: the run folder.
        config: the resolved config (``config.yaml``, else the newest checkpoint's).
        rows: the lines of ``metrics.jsonl`` (a line cut short by a killed run skipped).
        previews: the pictures of ``samples/``, at most :data:`MAX_FRAMES`, by step.
        evaluation: ``eval.json`` (what ``gankit eval`` wrote last), or None.
        pictures: the pictures of ``explore/``.
        checkpoints: (step, path) of each checkpoint, oldest first.
        snapshots: toy runs' frames of G against D (``snapshots/``), at most
            :data:`MAX_FRAMES`, oldest first.
        holder: who holds the run's lock (``process 123 on HOST``), read once; None
            when nobody does.
    """

    path: Path
    config: dict[str, Any]
    rows: list[dict] = field(default_factory=list)
    previews: list[Preview] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    pictures: list[Path] = field(default_factory=list)
    checkpoints: list[tuple[int, Path]] = field(default_factory=list)
    snapshots: list[Path] = field(default_factory=list)
    holder: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.path)

    @property
    def training(self) -> bool:
        """A process holds the run's lock, so the run is training now (a lock file that
        is a link is no lock)."""
        return self.holder is not None

    @property
    def step(self) -> int:
        """The newest step the folder shows: logged, previewed or checkpointed."""
        steps = [0, *(r["step"] for r in self.rows if isinstance(r.get("step"), int))]
        steps += [p.step for p in self.previews] + [s for s, _ in self.checkpoints]
        return max(steps)


def read_folder(run: str | Path, runs_dir: str | Path = "runs") -> RunFolder:
    """The run folder ``run`` (a path, or a name under ``runs_dir``), read.

    Raises:
        GankitError: no such run, or an ``eval.json`` that is not JSON (named).
    """
    path = find_run(run, runs_dir)
    paths = RunPaths(path)
    previews = sorted(
        (
            Preview(int(m.group(1)), p)
            for p in _files(paths.samples)
            if (m := STEP_FILE.match(p.name))
        ),
        key=lambda preview: preview.step,
    )
    return RunFolder(
        path=path,
        config=run_config(path),
        rows=read_jsonl(paths.metrics) if paths.metrics.is_file() else [],
        previews=spread(previews, MAX_FRAMES),
        evaluation=read_eval(paths.eval),
        pictures=[p for p in _files(paths.explore) if p.suffix in PICTURE_SUFFIXES],
        checkpoints=list_checkpoints(paths.checkpoints),
        snapshots=spread(
            [p for p in _files(paths.snapshots) if SNAPSHOT_FILE.match(p.name)], MAX_FRAMES
        ),
        holder=lock_holder(path),
    )


def spread(items: list, most: int) -> list:
    """At most ``most`` of ``items``, evenly spaced, the first and the last kept."""
    if len(items) <= most:
        return list(items)
    chosen = {round(i * (len(items) - 1) / (most - 1)) for i in range(most)}
    return [items[i] for i in sorted(chosen)]


def _files(folder: Path) -> list[Path]:
    """The regular files of ``folder``; a link is left out, with a warning (the report is
    meant to be mailed, and a link could embed any file of the machine that wrote it)."""
    if is_link(folder) or not folder.is_dir():
        return []
    for path in sorted(folder.iterdir()):
        if is_link(path):
            warn(f"{link_error(path)}; the report leaves it out")
    return regular_files(folder)
