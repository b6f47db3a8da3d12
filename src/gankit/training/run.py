"""The resume rules, and building a fresh run's model and data from its config.

The run folder itself (its paths, finding, replacing and loading runs) is
:mod:`gankit.runs`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gankit.config import resolve_config
from gankit.data import DataBundle, load_data
from gankit.errors import GankitError
from gankit.files import remove_partial_writes
from gankit.models.base import Model
from gankit.registry import create_model
from gankit.runs.checkpoint import list_checkpoints, load_latest, one_line
from gankit.runs.folder import RunPaths, delete_run, is_run, replaceable, run_config
from gankit.runs.load import import_run_modules, load_run
from gankit.training.runtime import seed_everything


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
