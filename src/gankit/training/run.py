"""The run directory, and loading a finished (or running) run back.

Layout of ``runs/<name>/``::

    config.yaml        the resolved config (every setting explicit)
    metrics.jsonl      one JSON line per log interval
    checkpoints/       step_XXXXXXXX.pt, the newest K
    samples/           step_XXXXXXXX.png, drawn from the fixed noise
    fixed_noise.pt     the latent used for every preview, so grids compare across resumes
    loss_curves.png    drawn when training stops
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gankit.config import load_yaml, resolve_config
from gankit.data import DataBundle, load_data
from gankit.errors import GankitError
from gankit.models.base import Model
from gankit.registry import create_model
from gankit.training.checkpoint import latest_checkpoint, load_checkpoint
from gankit.training.ema import make_ema
from gankit.training.runtime import seed_everything


@dataclass
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def snapshots(self) -> Path:
        """Toy runs: small frames of G against D for ``explore --what toy --animate``."""
        return self.root / "snapshots"

    @property
    def explore(self) -> Path:
        return self.root / "explore"

    @property
    def fixed_noise(self) -> Path:
        return self.root / "fixed_noise.pt"

    @property
    def loss_curves(self) -> Path:
        return self.root / "loss_curves.png"


def find_run(run: str | Path, runs_dir: str | Path = "runs") -> Path:
    """A run directory given as a path or as a name under ``runs_dir``."""
    for candidate in (Path(run), Path(runs_dir) / str(run)):
        if (candidate / "config.yaml").is_file():
            return candidate
    runs_root = Path(runs_dir)
    known = (
        sorted(p.name for p in runs_root.iterdir() if (p / "config.yaml").is_file())
        if runs_root.is_dir()
        else []
    )
    listing = ", ".join(known) if known else "none"
    raise GankitError(f"run '{run}' not found (no config.yaml); runs in '{runs_root}': {listing}")


# --------------------------------------------------------------------------- a run's life
def check_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse an existing run unless ``overwrite`` was asked for (checked on every rank
    before any collective, so all ranks fail together)."""
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise GankitError(
            f"run directory '{run_dir}' already exists; pass --resume to continue it, "
            "--overwrite to replace it, or --name to start another"
        )


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Create the run directory, replacing an existing run only when ``overwrite``."""
    check_run_dir(run_dir, overwrite)
    if run_dir.exists() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def resume_config(run_dir: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The saved config of the run at ``run_dir`` with ``train.*`` overrides applied."""
    saved = load_yaml(RunPaths(run_dir).config.read_text(), f"'{run_dir}/config.yaml'")
    for key in overrides:
        if not key.startswith("train."):
            raise GankitError(
                f"--resume keeps the run's model and data; only train.* settings may change, "
                f"not '{key}'"
            )
    return resolve_config(saved, overrides)


def resume_state(run_dir: Path, steps: int) -> dict[str, Any]:
    """The newest checkpoint of the run at ``run_dir``, checked against the steps asked for.

    Raises:
        GankitError: ``run_dir`` is not a run, has no checkpoint, or already has
            ``steps`` steps.
    """
    found = latest_checkpoint(RunPaths(run_dir).checkpoints)
    if found is None:
        raise GankitError(f"cannot resume: run '{run_dir}' has no checkpoint yet")
    if found[0] >= steps:
        raise GankitError(
            f"run '{run_dir}' already has {found[0]} of {steps} steps; "
            f"raise train.steps to continue (e.g. --set train.steps={2 * found[0]})"
        )
    return load_checkpoint(found[1])


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


def load_run(run: str | Path, runs_dir: str | Path = "runs") -> Run:
    """Load a run's newest checkpoint: ``load_run("runs/dcgan-digits").sample(16)``."""
    path = find_run(run, runs_dir)
    found = latest_checkpoint(RunPaths(path).checkpoints)
    if found is None:
        raise GankitError(f"run '{path}' has no checkpoint yet (nothing in {path}/checkpoints)")
    step, ckpt_path = found
    state = load_checkpoint(ckpt_path)
    model, ema_net = build_from_checkpoint(state)
    model.eval()
    sampler = ema_net or model.generator
    return Run(path, state["config"], step, ckpt_path, model, sampler)
