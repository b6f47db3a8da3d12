"""What a run folder says about itself, read from its files without loading a
checkpoint: the rows of ``gankit runs``, ``gankit info``'s text, and the one reader of
``eval.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit.config import dump_yaml, load_yaml
from gankit.errors import GankitError, warn
from gankit.files import (
    LinkError,
    read_bytes,
    read_jsonl,
)
from gankit.runs.checkpoint import list_checkpoints
from gankit.runs.folder import (
    MAX_CONFIG_BYTES,
    MAX_EVAL_BYTES,
    RunPaths,
    find_run,
    is_run,
    run_config,
)
from gankit.runs.lock import lock_holder


@dataclass
class RunSummary:
    """One row of ``gankit runs``: what a run folder says about itself, read from its
    files without loading a checkpoint.

    Attributes:
        state: ``training`` (a process holds its lock), ``diverged`` (its log ends with
            a non-finite loss), ``done`` (its newest checkpoint has every step asked
            for), or ``stopped`` (interrupted, killed, or not started).
        losses: the latest logged ``loss*`` numbers.
        headline: the first score of ``eval.json``, or else of the latest ``eval_*``
            line, with its step; None when never evaluated.
    """

    path: Path
    model: str
    data: str
    steps_done: int
    steps: int | None
    state: str
    losses: dict[str, float]
    headline: str | None

    #: The columns of :meth:`cells`, as ``gankit runs`` heads them.
    COLUMNS = ("run", "model", "data", "steps", "state", "latest losses", "latest eval")

    def cells(self) -> tuple[str, ...]:
        """The row of ``gankit runs``, one text per column of :attr:`COLUMNS`."""
        steps = f"{self.steps_done}/{self.steps if self.steps is not None else '?'}"
        losses = ", ".join(f"{k} {v:.3g}" for k, v in self.losses.items()) or "-"
        return (self.path.name, self.model, self.data, steps, self.state, losses,
                self.headline or "-")  # fmt: skip


def summarize_runs(folder: str | Path) -> list[RunSummary]:
    """The runs directly under ``folder``, by name.

    Raises:
        GankitError: ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GankitError(f"'{folder}' is not a folder of runs; pass one (default: runs)")
    summaries = []
    for path in sorted(folder.iterdir()):
        try:
            if is_run(path):
                summaries.append(summarize_run(path))
        except LinkError as err:  # one handed-over folder does not hide the others
            warn(f"{err}; run '{path.name}' is left out")
    return summaries


def summarize_run(path: Path) -> RunSummary:
    paths = RunPaths(path)
    config = _readable_config(paths)
    model = config.get("model", {}).get("name", "?") if config else "?"
    data = config.get("data", {}).get("name", "?") if config else "?"
    steps = config.get("train", {}).get("steps") if config else None
    kept = list_checkpoints(paths.checkpoints)
    done = kept[-1][0] if kept else 0
    rows = read_jsonl(paths.metrics)
    if lock_holder(path) is not None:
        state = "training"
    elif rows and "diverged" in rows[-1]:
        state = "diverged"
    elif isinstance(steps, int) and done >= steps:
        state = "done"
    else:
        state = "stopped"
    losses = next(
        (
            {k: v for k, v in row.items() if k.startswith("loss") and _number(v)}
            for row in reversed(rows)
            if any(k.startswith("loss") and _number(v) for k, v in row.items())
        ),
        {},
    )
    return RunSummary(path, model, data, done, steps, state, losses, _headline(paths, rows))


def describe_run(run: str | Path, runs_dir: str | Path = "runs") -> str:
    """``gankit info``: a run's folder, model and data, steps done, kept checkpoints,
    latest logged numbers and its config, as text (no checkpoint is loaded).

    Raises:
        GankitError: no run of that name or path, or a config that cannot be read.
    """
    paths = RunPaths(find_run(run, runs_dir))
    config = run_config(paths.root)
    checkpoints = list_checkpoints(paths.checkpoints)
    rows = read_jsonl(paths.metrics)
    done = checkpoints[-1][0] if checkpoints else 0
    lines = [
        f"run:         {paths.root}",
        f"model:       {config['model']['name']} on {config['data']['name']}",
        f"steps done:  {done} of {config['train']['steps']} (newest checkpoint)",
        f"checkpoints: {', '.join(p.name for _, p in checkpoints) or 'none'}",
    ]
    if rows:
        last = rows[-1]
        nonfinite = last.get("nonfinite") or {}  # logged as null, named here (finite_json)
        values = ", ".join(
            f"{k} {nonfinite.get(k, v)}" if not isinstance(v, (int, float)) else f"{k} {v:.4g}"
            for k, v in last.items()
            if k not in ("step", "time", "nonfinite")
        )
        lines.append(f"latest log:  step {last['step']}: {values}")
    lines.append("config:")
    lines.append("  " + dump_yaml(config).strip().replace("\n", "\n  "))
    return "\n".join(lines)


def _readable_config(paths: RunPaths) -> dict[str, Any]:
    """config.yaml as a dict, or {} when it is missing or damaged (a summary goes on)."""
    try:
        text = read_bytes(paths.config, MAX_CONFIG_BYTES).decode("utf-8", errors="replace")
        config = load_yaml(text, str(paths.config))
    except (OSError, GankitError):
        return {}
    return config if isinstance(config, dict) else {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _headline(paths: RunPaths, rows: list[dict]) -> str | None:
    try:
        saved = read_eval(paths.eval)
    except GankitError:  # damaged: the summary goes on without it
        saved = None
    if saved is not None:
        scores = [(k, v) for k, v in saved["scores"].items() if _number(v)]
        if scores:
            return f"{scores[0][0]} {scores[0][1]:.4g} (eval, step {saved.get('step', '?')})"
    for row in reversed(rows):
        scores = [(k, v) for k, v in row.items() if k.startswith("eval_") and k != "eval_seconds"]
        scores = [(k, v) for k, v in scores if _number(v)]
        if scores:
            return f"{scores[0][0][5:]} {scores[0][1]:.4g} (step {row.get('step', '?')})"
    return None


def read_eval(path: Path) -> dict[str, Any] | None:
    """What ``eval.json`` at ``path`` holds (never through a link), or None when there is
    none: the one reader of it, for ``gankit eval``, ``runs`` and ``report``.

    Raises:
        GankitError: the file is larger than :data:`~gankit.runs.folder.MAX_EVAL_BYTES`,
            is not JSON, or holds no scores (the message says how to replace it).
    """
    if not path.is_file():
        return None
    problem = None
    if path.stat().st_size > MAX_EVAL_BYTES:
        problem = f"is over {MAX_EVAL_BYTES // 2**20} MiB"
    else:
        try:
            saved = json.loads(read_bytes(path, MAX_EVAL_BYTES).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            saved, problem = None, "is not the JSON gankit eval writes"
        if problem is None and not (
            isinstance(saved, dict) and isinstance(saved.get("scores"), dict)
        ):
            problem = "holds no scores"
    if problem is not None:
        raise GankitError(
            f"'{path}' {problem}; score the run again with gankit eval --overwrite, or delete it"
        )
    return saved
