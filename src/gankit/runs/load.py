"""Loading a run back: its newest intact checkpoint (or that of ``--step``) rebuilt into
a model, with its EMA generator; and rewriting a run's older checkpoints (``upgrade``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gankit.ema import make_ema
from gankit.errors import GankitError
from gankit.models.base import Model
from gankit.registry import create_model, list_models
from gankit.runs.checkpoint import (
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    load_latest,
    one_line,
    upgrade_checkpoint,
)
from gankit.runs.folder import RunPaths, find_run
from gankit.runs.lock import run_lock


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
