"""A run folder on disk: every path it holds, finding and checking runs, and the one
place that replaces or deletes a run.

Layout of ``runs/<name>/``::

    config.yaml        the resolved config (every setting explicit)
    metrics.jsonl      one JSON line per log interval
    checkpoints/       step_XXXXXXXX.pt, the newest K (runs/checkpoint.py)
    samples/           step_XXXXXXXX.png, drawn from the fixed noise
    snapshots/         toy runs: frames of G against D
    explore/           the pictures of gankit explore, listed in .gankit-written
    export/            gankit export's files
    tensorboard/       event files, with train.tensorboard
    fixed_noise.pt     the latent used for every preview, so grids compare across resumes
    loss_curves.png    drawn when training stops
    eval.json          gankit eval's latest scores and their history
    train.lock         held by the process that trains the run (runs/lock.py)

A run's name is one folder name, never a path (:func:`gankit.config.check_run_name`).
``--overwrite`` replaces only a folder that is recognisably a run (:func:`replaceable`),
and sets the old run aside as ``<name>~old`` until the new one has saved its first
checkpoint (:func:`fresh_run_dir`). A new file in a run: a property of :class:`RunPaths`,
its name in :data:`RUN_ENTRIES` (a folder: its names in :data:`RUN_FOLDER_FILES`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit.config import load_yaml
from gankit.errors import GankitError, warn
from gankit.files import (
    PARTIAL_WRITE,
    WRITTEN_LIST,
    is_link,
    no_links,
    read_bytes,
    read_jsonl,
    written_names,
)
from gankit.runs.checkpoint import list_checkpoints, load_latest
from gankit.runs.lock import LOCK_NAME, run_lock

#: What gankit writes in a run folder; anything else there is the user's.
RUN_ENTRIES = frozenset(
    {
        "config.yaml",
        "metrics.jsonl",
        "checkpoints",
        "samples",
        "snapshots",
        "explore",
        "export",
        "tensorboard",
        "fixed_noise.pt",
        "loss_curves.png",
        "eval.json",
        LOCK_NAME,
    }
)
#: The largest config.yaml read (the YAML reader's own bound is 1 MiB).
MAX_CONFIG_BYTES = 4 << 20
#: The largest eval.json read: its history grows by one small entry per evaluation, and
#: a sequence run's samples are the largest part.
MAX_EVAL_BYTES = 32 << 20
#: Suffix of the folder that ``--overwrite`` moves the old run to; no run name has "~".
ASIDE_SUFFIX = "~old"


@dataclass
class RunPaths:
    """The paths of a run folder. Each is checked when asked for: none may be reached
    through a link below ``root`` (:func:`gankit.files.no_links`), so whatever reads or
    writes it stays inside the run. Files inside the sub-folders are opened without
    following links (:func:`gankit.files.open_regular`) or written by renaming over them
    (:func:`gankit.files.atomic_write`)."""

    root: Path

    def entry(self, *parts: str) -> Path:
        """``root / parts``, checked for links below ``root``."""
        return no_links(self.root, *parts)

    @property
    def config(self) -> Path:
        return self.entry("config.yaml")

    @property
    def metrics(self) -> Path:
        return self.entry("metrics.jsonl")

    @property
    def checkpoints(self) -> Path:
        return self.entry("checkpoints")

    @property
    def samples(self) -> Path:
        return self.entry("samples")

    @property
    def snapshots(self) -> Path:
        """Toy runs: small frames of G against D for ``explore --what toy --animate``."""
        return self.entry("snapshots")

    @property
    def explore(self) -> Path:
        return self.entry("explore")

    @property
    def export(self) -> Path:
        return self.entry("export")

    @property
    def tensorboard(self) -> Path:
        return self.entry("tensorboard")

    @property
    def fixed_noise(self) -> Path:
        return self.entry("fixed_noise.pt")

    @property
    def loss_curves(self) -> Path:
        return self.entry("loss_curves.png")

    @property
    def eval(self) -> Path:
        return self.entry("eval.json")

    @property
    def lock(self) -> Path:
        return self.entry(LOCK_NAME)

    @property
    def aside(self) -> Path:
        """Where ``--overwrite`` keeps the run it replaces until the new one has started."""
        return self.root.with_name(self.root.name + ASIDE_SUFFIX)


def is_run(path: Path) -> bool:
    """A folder with a config.yaml or a step checkpoint."""
    path = Path(path)
    if not path.is_dir():
        return False
    paths = RunPaths(path)
    return paths.config.is_file() or bool(list_checkpoints(paths.checkpoints))


def user_entries(path: Path) -> list[str]:
    """The names at the top of a run folder that are not gankit's (nor its lock or
    partial writes)."""
    if not Path(path).is_dir():
        return []
    return sorted(
        entry.name
        for entry in Path(path).iterdir()
        if entry.name not in RUN_ENTRIES and not PARTIAL_WRITE.match(entry.name)
    )


#: What gankit writes inside each folder of a run, by name. ``explore`` holds the
#: pictures that ``gankit explore`` listed as it wrote them (:func:`gankit.files.
#: record_written`), and ``explore/step_N`` folders of the same kind.
RUN_FOLDER_FILES = {
    "checkpoints": re.compile(r"^step_\d{8}\.pt(\.damaged|\.bak)?$"),
    "samples": re.compile(r"^(step_\d{8}\.(png|txt)|sample_n\d+_seed-?\d+(_step\d+)?\.png)$"),
    "snapshots": re.compile(r"^step_\d{8}\.pt$"),
    "tensorboard": re.compile(r"^events\.out\.tfevents\.[^/]+$"),
    "export": re.compile(r"^step_\d{8}\.(safetensors|pt|onnx)(\.json)?$"),
}
PICTURE_STEP_FOLDER = re.compile(r"^step_\d{8}$")


def foreign_entries(run_dir: Path) -> list[str]:
    """Everything in the run folder that gankit did not write, at every level, as paths
    relative to it: the user's own files, links (never gankit's), and anything else.
    Partial writes of killed saves count as gankit's."""
    run_dir = Path(run_dir)
    foreign = []

    def walk(folder: Path, relative: str, pattern: re.Pattern | None) -> None:
        """``pattern``: the names gankit writes there; None for a folder of pictures,
        whose own list names them (and which may hold ``step_N`` folders like it)."""
        listed = written_names(folder) | {WRITTEN_LIST} if pattern is None else set()
        for entry in sorted(folder.iterdir()):
            name, where = entry.name, f"{relative}/{entry.name}"
            if is_link(entry):
                foreign.append(where)
            elif entry.is_dir():
                if pattern is None and PICTURE_STEP_FOLDER.match(name):
                    walk(entry, where, None)
                else:
                    foreign.append(where)
            elif PARTIAL_WRITE.match(name):
                continue
            elif not (pattern.match(name) if pattern is not None else name in listed):
                foreign.append(where)

    for entry in sorted(run_dir.iterdir()):
        name = entry.name
        if PARTIAL_WRITE.match(name) and not is_link(entry) and entry.is_file():
            continue
        if name not in RUN_ENTRIES or is_link(entry):
            foreign.append(name)
        elif name in RUN_FOLDER_FILES or name == "explore":
            if entry.is_dir():
                walk(entry, name, RUN_FOLDER_FILES.get(name))
            else:
                foreign.append(name)
        elif not entry.is_file():
            foreign.append(name)
    return foreign


def delete_run(run_dir: Path) -> list[str]:
    """Delete what gankit wrote in the run folder, and the folder once it is empty; the
    one place that deletes a run. Anything else (:func:`foreign_entries`) is left where
    it is, so nothing of the user's goes even if a check before was wrong. Returns what
    was left (relative paths)."""
    run_dir = Path(run_dir)
    if is_link(run_dir) or not run_dir.is_dir():
        return [] if not run_dir.exists() and not is_link(run_dir) else ["."]
    left = foreign_entries(run_dir)
    kept = set(left)
    for path in sorted(run_dir.rglob("*"), key=lambda p: -len(p.parts)):
        relative = path.relative_to(run_dir).as_posix()
        if any(relative == k or relative.startswith(k + "/") for k in kept):
            continue
        if any(k.startswith(relative + "/") for k in kept):
            continue  # a folder that holds something kept
        if is_link(path) or not path.is_dir():
            path.unlink(missing_ok=True)
        else:
            path.rmdir()
    if not left:
        run_dir.rmdir()
    return left


def find_run(run: str | Path, runs_dir: str | Path = "runs") -> Path:
    """A run directory given as a path or as a name under ``runs_dir``."""
    for candidate in (Path(run), Path(runs_dir) / str(run)):
        if is_run(candidate):
            return candidate
    runs_root = Path(runs_dir)
    known = sorted(p.name for p in runs_root.iterdir() if is_run(p)) if runs_root.is_dir() else []
    listing = ", ".join(known) if known else "none"
    raise GankitError(f"run '{run}' not found (no config.yaml); runs in '{runs_root}': {listing}")


# --------------------------------------------------------------------------- a run's life
def check_runs_dir(runs_dir: str | Path) -> Path:
    """``runs_dir`` as a path, refused when it (or the nearest existing folder above
    it) is a file: runs go into folders."""
    runs_root = Path(runs_dir)
    existing = next((p for p in (runs_root, *runs_root.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "is" if existing == runs_root else f"is inside '{existing}', which is"
        raise GankitError(
            f"--runs-dir '{runs_root}' {where} a file, not a folder; pass a folder "
            "(it is created if missing)"
        )
    return runs_root


def check_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse an existing run unless ``overwrite`` was asked for, and refuse to
    overwrite anything that is not a gankit run (checked on every rank before any
    collective, so all ranks fail together)."""
    aside = RunPaths(run_dir).aside
    if aside.exists() and not overwrite:
        raise GankitError(
            f"'{aside}' holds the run that an interrupted --overwrite of '{run_dir.name}' set "
            f"aside; move it back to '{run_dir}', delete it, or pass --overwrite to finish "
            "replacing it"
        )
    if not occupied(run_dir):
        return
    if not overwrite:
        raise _already_exists(run_dir)
    refused = replaceable(run_dir)
    if refused:
        raise GankitError(
            f"--overwrite replaces only a gankit run, and '{run_dir}' {refused}; nothing was "
            "deleted: pick another --name (or --runs-dir), or move those files away"
        )


def _already_exists(run_dir: Path) -> GankitError:
    return GankitError(
        f"run directory '{run_dir}' already exists; pass --resume to continue it, "
        "--overwrite to replace it, or --name to start another"
    )


def occupied(run_dir: Path) -> bool:
    """``run_dir`` holds a run or anything of the user's (a lock file alone does not
    count: it is what a process killed at its start leaves)."""
    return run_dir.exists() and bool(
        not run_dir.is_dir() or user_entries(run_dir) or is_run(run_dir)
    )


def replaceable(run_dir: Path) -> str | None:
    """None if ``run_dir`` is a gankit run holding nothing but gankit's files, else why
    it is not (in words that follow "'run_dir' ...")."""
    if run_dir.is_symlink():
        return "is a link to another folder"
    if not run_dir.is_dir():
        return "is not a folder"
    if not is_run(run_dir):
        return "has no config.yaml and no checkpoint"
    foreign = foreign_entries(run_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        return f"holds files gankit did not write ({shown})"
    return None


class Replacement:
    """The old run that ``--overwrite`` moved aside: deleted by :meth:`commit` once the
    new run has saved a checkpoint, moved back by :meth:`restore` if it never does."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.aside = run_dir, RunPaths(run_dir).aside
        self.settled = False

    def commit(self, *_: Any) -> None:
        if not self.settled:
            self.settled = True
            delete_run(self.aside)

    def restore(self) -> None:
        if not self.settled:
            self.settled = True
            left = delete_run(self.run_dir)
            if left:  # something not gankit's appeared in the new run: keep both
                warn(
                    f"'{self.run_dir}' holds files gankit did not write ({', '.join(left[:5])});"
                    f" the run it replaced stays in '{self.aside}'"
                )
                return
            os.replace(self.aside, self.run_dir)


@contextlib.contextmanager
def fresh_run_dir(run_dir: Path, overwrite: bool) -> Iterator[Replacement | None]:
    """Create and lock the folder of a new run for the block; yields the
    :class:`Replacement` of the run it replaces (``overwrite``), or None.

    The old run is renamed to ``<name>~old`` (one rename: it is whole, here or there).
    An exception out of the block before :meth:`Replacement.commit` deletes the new
    folder and renames the old run back. A ``<name>~old`` left by a replacement that
    was killed is settled first: deleted if the run at ``run_dir`` had saved a
    checkpoint (it had started cleanly), else kept as the run being replaced while the
    half-made run at ``run_dir`` is deleted.
    """
    check_run_dir(run_dir, overwrite)
    paths = RunPaths(run_dir)
    replaced = None
    if overwrite and paths.aside.exists():
        started = bool(list_checkpoints(paths.checkpoints))
        unwanted = paths.aside if started else run_dir
        foreign = foreign_entries(unwanted)
        if foreign:
            raise GankitError(
                f"--overwrite: '{unwanted}' holds files gankit did not write "
                f"({', '.join(foreign[:5])}); move them away"
            )
        delete_run(unwanted)
        if not started:
            replaced = Replacement(run_dir)
    if replaced is None and overwrite and is_run(run_dir):
        os.replace(run_dir, paths.aside)
        replaced = Replacement(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        if occupied(run_dir):  # another process made a run here since the first check
            raise _already_exists(run_dir)
        try:
            yield replaced
        except BaseException:
            if replaced is not None:
                replaced.restore()
            elif not has_started(run_dir):
                delete_run(run_dir)  # nothing to keep: no checkpoint, no logged line
            raise
    if replaced is not None:
        replaced.commit()


def has_started(run_dir: Path) -> bool:
    """The run has saved a checkpoint or logged a line (a divergence at its first
    steps is logged, and ``gankit runs`` shows it)."""
    paths = RunPaths(run_dir)
    return bool(list_checkpoints(paths.checkpoints) or read_jsonl(paths.metrics, most=1))


def run_config(run_dir: Path) -> dict[str, Any]:
    """The run's config.yaml; if that is missing or empty, the config embedded in its
    newest intact checkpoint (with a warning), never a default.

    Raises:
        GankitError: config.yaml is not valid YAML (a hand edit gone wrong: the user
            fixes or deletes it), or it is unusable and no checkpoint has a config.
    """
    path = RunPaths(run_dir).config
    text = read_bytes(path, MAX_CONFIG_BYTES).decode("utf-8", "replace") if path.is_file() else ""
    if text.strip():
        try:
            saved = load_yaml(text, f"'{path}'")
        except GankitError as err:
            raise GankitError(
                f"{err}; fix it, or delete it to use the config saved in the newest checkpoint"
            ) from None
        if isinstance(saved, dict):
            return saved
        if saved is not None:
            raise GankitError(
                f"'{path}' is not a run config (a mapping with name, model, data and train); "
                "fix it, or delete it to use the config saved in the newest checkpoint"
            )
    problem = "is empty" if path.is_file() else "is missing"
    found = load_latest(RunPaths(run_dir).checkpoints)
    if found is None:
        raise GankitError(f"'{path}' {problem} and the run has no checkpoint to take it from")
    warn(f"'{path}' {problem}; using the config saved in '{found[1]}'")
    return found[2]["config"]
