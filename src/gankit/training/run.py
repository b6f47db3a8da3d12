"""The run directory, and loading a finished (or running) run back.

Layout of ``runs/<name>/``::

    config.yaml        the resolved config (every setting explicit)
    metrics.jsonl      one JSON line per log interval
    checkpoints/       step_XXXXXXXX.pt, the newest K
    samples/           step_XXXXXXXX.png, drawn from the fixed noise
    fixed_noise.pt     the latent used for every preview, so grids compare across resumes
    loss_curves.png    drawn when training stops
    train.lock         held by the process that trains the run (training/lock.py)

A run's name is one folder name, never a path (:func:`gankit.config.check_run_name`).
``--overwrite`` replaces only a folder that is recognisably a run (:func:`replaceable`),
and sets the old run aside as ``<name>~old`` until the new one has saved its first
checkpoint (:func:`fresh_run_dir`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gankit.config import load_yaml, resolve_config
from gankit.data import DataBundle, load_data
from gankit.errors import GankitError, warn
from gankit.files import (
    PARTIAL_WRITE,
    WRITTEN_LIST,
    LinkError,
    is_link,
    no_links,
    read_bytes,
    read_jsonl,
    remove_partial_writes,
    written_names,
)
from gankit.models.base import Model
from gankit.registry import create_model, list_models
from gankit.training.checkpoint import (
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    load_latest,
    one_line,
    upgrade_checkpoint,
)
from gankit.training.ema import make_ema
from gankit.training.lock import LOCK_NAME, lock_holder, run_lock
from gankit.training.runtime import seed_everything

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
#: The largest config.yaml and eval.json read (the YAML reader's own bound is 1 MiB).
MAX_CONFIG_BYTES = MAX_EVAL_BYTES = 4 << 20
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


def resume_config(run_dir: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The saved config of the run at ``run_dir`` with ``train.*`` overrides applied."""
    saved = run_config(run_dir)
    for key in overrides:
        if not key.startswith("train."):
            raise GankitError(
                f"--resume keeps the run's model and data; only train.* settings may change, "
                f"not '{key}'"
            )
    model = saved.get("model") if isinstance(saved.get("model"), dict) else {}
    import_run_modules(run_dir, saved, model.get("name"))
    return resolve_config(saved, overrides, import_listed=False)


def resume_state(run_dir: Path, steps: int, writer: bool = True) -> dict[str, Any]:
    """The newest intact checkpoint of the run at ``run_dir``, checked against the steps
    asked for.

    The ``writer`` (the process holding the run's lock) also tidies what killed or
    failed processes left: partial writes are deleted, damaged checkpoints newer than
    the one resumed from are renamed ``*.pt.damaged`` (so that they neither shadow nor
    displace the new ones), and an old run set aside by ``--overwrite`` is deleted (the
    run that replaced it has a checkpoint).

    Raises:
        GankitError: ``run_dir`` has no checkpoint, or already has ``steps`` steps.
    """
    paths = RunPaths(run_dir)
    if writer:
        for folder in (paths.root, paths.checkpoints, paths.snapshots):
            remove_partial_writes(folder)
    found = load_latest(paths.checkpoints)
    if found is None:
        raise GankitError(f"cannot resume: run '{run_dir}' has no checkpoint yet")
    step, _, state = found
    if step >= steps:
        raise GankitError(
            f"run '{run_dir}' already has {step} of {steps} steps; "
            f"raise train.steps to continue (e.g. --set train.steps={2 * step})"
        )
    if writer:
        for newer_step, newer in list_checkpoints(paths.checkpoints):
            if newer_step > step:
                os.replace(newer, newer.with_name(newer.name + ".damaged"))
        if paths.aside.exists() and replaceable(paths.aside) is None:
            delete_run(paths.aside)
    return state


def build(config: dict[str, Any], data_dir: str | None = None) -> tuple[Model, DataBundle]:
    """Load the data and build the model of a resolved config, seeded by the run seed."""
    bundle = load_data(config["data"], data_dir)
    seed_everything(config["train"]["seed"])
    model_args = {k: v for k, v in config["model"].items() if k != "name"}
    model = create_model(
        config["model"]["name"],
        data_shape=bundle.shape,
        num_classes=bundle.num_classes,
        data_shape_b=bundle.domain_b.shape if bundle.domain_b is not None else None,
        class_names=bundle.class_names,
        **model_args,
    )
    return model, bundle


def _domains(data: dict[str, Any]) -> str:
    """``digits -> digits-m`` of a data config, with the sizes that shape its images."""

    def sized(name: Any, options: dict[str, Any]) -> str:
        sizes = [f"{k} {options[k]}" for k in ("resolution", "channels") if k in options]
        return f"{name}" + (f" ({', '.join(sizes)})" if sizes else "")

    return (
        f"{sized(data.get('name'), data)} -> "
        f"{sized(data.get('target'), data.get('target_options') or {})}"
    )


def with_pretrained(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict]]:
    """Read the finished runs that a model config names for its :attr:`Model.pretrained`
    parts, before a fresh run is built.

    Returns the config with the settings those runs fix (recorded in the new run's
    config.yaml), and part -> the state dict that fills it once the model is built.

    Raises:
        GankitError: a named run is missing, or learned another pair of domains.
    """
    from gankit.registry import get_spec

    cls = get_spec(config["model"]["name"]).cls
    weights: dict[str, dict] = {}
    for option, part in cls.pretrained.items():
        where = config["model"].get(option)
        if where is None:
            continue
        if not is_run(Path(where)):
            raise GankitError(
                f"model.{option}: '{where}' is not a run folder (no config.yaml); name the "
                f"folder of a finished run, e.g. runs/cyclegan-digits-m"
            )
        run = load_run(Path(where))
        ours, theirs = _domains(config["data"]), _domains(run.config["data"])
        if ours != theirs:
            raise GankitError(
                f"model.{option}: '{where}' maps {theirs}; this run adapts {ours}: train "
                "one on the same pair of domains (the same data.name, data.target and sizes)"
            )
        settings = cls.pretrained_settings(option, run.config["model"])
        config = {**config, "model": {**config["model"], **settings}}
        weights[part] = {
            "state": run.model.state_dict(),
            "from": str(where),
            "model_name": run.config["model"]["name"],
        }
    return config, weights


def load_pretrained(model: Model, weights: dict[str, dict]) -> None:
    """Fill each part of ``model`` with the weights :func:`with_pretrained` read."""
    for part, found in weights.items():
        try:
            model.get_submodule(part).load_state_dict(found["state"])
        except RuntimeError as err:
            raise GankitError(
                f"model: the run '{found['from']}' (a '{found['model_name']}') does not fit "
                f"this model's {part} ({one_line(err)})"
            ) from None


def build_from_checkpoint(state: dict[str, Any]) -> tuple[Model, torch.nn.Module | None]:
    """Rebuild the model (and the EMA generator, if any) from a checkpoint alone."""
    hparams = dict(state["hparams"])
    model = create_model(state["model_name"], **hparams)
    model.load_state_dict(state["model"])
    ema_net = None
    if state.get("ema") is not None:
        ema = make_ema(model.generator, state["config"]["train"]["ema_decay"])
        ema.load_state_dict(state["ema"])
        ema_net = ema.module
    return model, ema_net


@dataclass
class Run:
    """A run directory with its newest checkpoint loaded.

    Attributes:
        path: the run directory.
        config: the resolved config the run was trained with.
        step: the step of the loaded checkpoint.
        model: the model in eval mode, on the CPU.
        sampler_net: the network samples come from: the EMA generator when the run
            kept one, else the generator.
    """

    path: Path
    config: dict[str, Any]
    step: int
    checkpoint: Path
    model: Model
    sampler_net: torch.nn.Module | None

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.path)

    def sample(self, n: int, seed: int = 0, labels: list[int] | None = None) -> torch.Tensor:
        """``n`` samples drawn with ``seed``: (n, C, H, W) in [-1, 1] or (n, D).

        ``labels``: for conditional models, one class for all samples or one per sample.
        """
        if n < 1:
            raise GankitError(f"--n must be >= 1, got {n}")
        generator = torch.Generator().manual_seed(seed)
        latent = self.model.sample_latent(n, generator)
        if labels is not None:
            latent = self.model.with_labels(latent, torch.tensor(labels))
        return self.model.render(latent, net=self.sampler_net)


def load_run(run: str | Path, runs_dir: str | Path = "runs", step: int | None = None) -> Run:
    """Load a run's newest intact checkpoint: ``load_run("runs/dcgan-digits").sample(16)``,
    or the checkpoint of ``step``, which must be one the run keeps.

    Only tensors and plain values are loaded (``weights_only``): a run someone hands
    you cannot run code.

    Raises:
        GankitError: the run has no checkpoint, or none of ``step`` (the message lists
            the steps it keeps).
    """
    path = find_run(run, runs_dir)
    if step is None:
        found = load_latest(RunPaths(path).checkpoints)
    else:
        found = _checkpoint_of_step(path, step)
    if found is None:
        raise GankitError(f"run '{path}' has no checkpoint yet (nothing in {path}/checkpoints)")
    step, ckpt_path, state = found
    import_run_modules(path, state["config"], state.get("model_name"))
    try:
        model, ema_net = build_from_checkpoint(state)
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        if isinstance(err, GankitError):
            raise
        raise CheckpointError(
            f"checkpoint '{ckpt_path}' does not fit the model it names ({one_line(err)})"
        ) from None
    model.eval()
    sampler = ema_net or model.generator
    return Run(path, state["config"], step, ckpt_path, model, sampler)


def import_run_modules(path: Path, config: dict[str, Any], model_name: Any) -> None:
    """Check that the model a run was trained with is registered here.

    A run trained with the user's own models lists their modules in its config
    (``imports``). Loading a run never imports them: importing a module runs its code,
    and a run folder can come from anyone. The user passes ``--import MODULE`` (or
    installs a package with a ``gankit.models`` entry point), which is their consent.

    Raises:
        GankitError: the model is unknown here; the message names the modules the run
            lists and the ``--import`` that would register it.
    """
    if not isinstance(model_name, str) or model_name in list_models():
        return
    modules = (config.get("imports") or []) if isinstance(config, dict) else []
    modules = [m for m in modules if isinstance(m, str)]
    if modules:
        flags = " ".join(f"--import {m}" for m in modules)
        raise GankitError(
            f"run '{path}' was trained with model '{model_name}' from the module(s) "
            f"{', '.join(modules)}, which loading a run never imports (importing runs their "
            f"code); if you trust them, pass {flags}"
        )
    raise GankitError(
        f"run '{path}' was trained with model '{model_name}', which no module imported "
        "here registers; import the module that registers it, e.g. gankit sample RUN "
        "--import mypkg.models (or install the package that provides it)"
    )


def _checkpoint_of_step(path: Path, step: int) -> tuple[int, Path, dict[str, Any]] | None:
    """(step, file, state) of the kept checkpoint of ``step``; None if the run has none."""
    kept = dict(list_checkpoints(RunPaths(path).checkpoints))
    if not kept:
        return None
    if step not in kept:
        raise GankitError(
            f"run '{path}' keeps no checkpoint of step {step}; kept steps: "
            f"{', '.join(map(str, sorted(kept)))} (train.keep_checkpoints sets how many)"
        )
    return step, kept[step], load_checkpoint(kept[step])


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
        saved = json.loads(read_bytes(paths.eval, MAX_EVAL_BYTES)) if paths.eval.is_file() else None
    except (OSError, ValueError):  # LinkError and a file over the bound are ValueErrors
        saved = None
    if isinstance(saved, dict) and isinstance(saved.get("scores"), dict):
        scores = [(k, v) for k, v in saved["scores"].items() if _number(v)]
        if scores:
            return f"{scores[0][0]} {scores[0][1]:.4g} (eval, step {saved.get('step', '?')})"
    for row in reversed(rows):
        scores = [(k, v) for k, v in row.items() if k.startswith("eval_") and k != "eval_seconds"]
        scores = [(k, v) for k, v in scores if _number(v)]
        if scores:
            return f"{scores[0][0][5:]} {scores[0][1]:.4g} (step {row.get('step', '?')})"
    return None


def upgrade_checkpoints(
    target: str | Path, runs_dir: str | Path = "runs"
) -> list[tuple[Path, Path | None]]:
    """Rewrite the older checkpoints of a run (or one checkpoint file) in today's format.

    Unpickles each old file in full, which runs any code it holds: the caller has the
    user's word that they trust it (``gankit checkpoint upgrade --trust``). A run is
    locked while its checkpoints are rewritten.

    Returns:
        (checkpoint, backup) per file; backup is None where nothing needed converting.
    """
    target = Path(target)
    if target.is_file():
        return [(target, upgrade_checkpoint(target))]
    run_dir = find_run(target, runs_dir)
    with run_lock(run_dir):
        found = list_checkpoints(RunPaths(run_dir).checkpoints)
        if not found:
            raise GankitError(f"run '{run_dir}' has no checkpoint to upgrade")
        return [(path, upgrade_checkpoint(path)) for _, path in found]
