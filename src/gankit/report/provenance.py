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
import shlex
from typing import Any

import yaml

from gankit.config import list_presets, resolve_config


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


def commands(folder, views: list[str]) -> list[tuple[str, str]]:
    """(what it does, the command) for the run in ``folder`` (a :class:`RunFolder`) that
    draws ``views`` (``--what`` names).

    Every argument goes through ``shlex.quote`` (``shlex.join``): a run is a folder
    people mail, and its name, path and config are the sender's text, so a command
    pasted into a shell gets exactly these arguments and runs nothing else.
    """
    name = folder.name
    runs_dir = folder.path.parent
    where = [] if runs_dir.name == "runs" else ["--runs-dir", str(runs_dir)]
    out = []
    found = closest_preset(folder.config)
    if found is not None:
        preset, overrides = found
        sets = [arg for o in overrides for arg in ("--set", o)]
        out.append(
            (
                f"train it again from the preset {preset}",
                ["gankit", "train", preset, "--name", name, *where, *sets],
            )
        )
    config_path = str(folder.paths.config)
    out.append(
        (
            "train it again from its own config",
            ["gankit", "train", config_path, "--name", f"{name}-again", *where],
        )
    )
    out.append(("score its newest checkpoint (writes eval.json)", ["gankit", "eval", name, *where]))
    for view in views:
        out.append(
            (
                f"draw its {view} pictures into explore/",
                ["gankit", "explore", name, "--what", view, *where],
            )
        )
    out.append(("this page", ["gankit", "report", name, *where]))
    return [(what, shlex.join(argv)) for what, argv in out]
