"""Where a run came from, and the commands that make it again.

A run folder keeps its resolved config (every default explicit), not the command that
made it. The report finds the preset closest to that config, the one whose resolved
config differs in the fewest settings, and writes the differences as ``--set``
overrides: a command that makes the same config again. When no preset comes within
a set of overrides (a data option a preset has and the run has not), the command
given is ``gankit train`` on the run's own ``config.yaml``, which always does.
"""

from __future__ import annotations

import functools
from typing import Any

import yaml

from gankit.config import list_presets, resolve_config
from gankit.errors import GankitError
from gankit.registry import get_spec
from gankit.tasks import get_task


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{section}.{key}": value
        for section in ("model", "data", "train")
        for key, value in (config.get(section) or {}).items()
    }


@functools.cache
def _resolved_presets() -> dict[str, dict[str, Any]]:
    return {name: _flat(resolve_config(name)) for name in list_presets()}


def _value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def closest_preset(config: dict[str, Any]) -> tuple[str, list[str]] | None:
    """The preset whose resolved config the run's equals after the fewest ``--set``
    overrides, and those overrides (``"train.steps=600"``); None when no preset of the
    run's model and data reaches it by overrides alone."""
    run = _flat(config)
    best = None
    for name, preset in _resolved_presets().items():
        if preset.get("model.name") != run.get("model.name"):
            continue
        if preset.get("data.name") != run.get("data.name") or set(preset) - set(run):
            continue  # a setting the run lacks cannot be taken away by --set
        overrides = [f"{k}={_value(v)}" for k, v in run.items() if preset.get(k, object()) != v]
        if best is None or len(overrides) < len(best[1]):
            best = (name, overrides)
    return best


def _shell(text: str) -> str:
    return f"'{text}'" if any(c in text for c in " []{}(),*?$'\"") else text


def commands(folder) -> list[tuple[str, str]]:
    """(what it does, the command) for the run in ``folder`` (a :class:`RunFolder`)."""
    name = folder.name
    runs_dir = folder.path.parent
    where = "" if runs_dir.name == "runs" else f" --runs-dir {_shell(str(runs_dir))}"
    out = []
    found = closest_preset(folder.config)
    if found is not None:
        preset, overrides = found
        sets = "".join(f" --set {_shell(o)}" for o in overrides)
        out.append(
            (
                f"train it again from the preset {preset}",
                f"gankit train {preset} --name {name}{where}{sets}",
            )
        )
    config_path = _shell(str(folder.paths.config))
    out.append(
        (
            "train it again from its own config",
            f"gankit train {config_path} --name {name}-again{where}",
        )
    )
    out.append(("score its newest checkpoint (writes eval.json)", f"gankit eval {name}{where}"))
    try:
        cls = get_spec(folder.config["model"]["name"]).cls
        views = list(get_task(cls).views_for(cls))
    except GankitError:  # a model this gankit does not have: no pictures to suggest
        views = []
    for view in views:
        out.append(
            (
                f"draw its {view} pictures into explore/",
                f"gankit explore {name} --what {view}{where}",
            )
        )
    out.append(("this page", f"gankit report {name}{where}"))
    return out
