"""One lab session: a toy GAN of gankit's registry, trained by its own ``train_step`` in a
background thread, and the frames a browser draws of it.

The lab holds no second implementation of anything: the model is built from a run
config by :func:`gankit.training.run.build` (the same call as ``gankit train``), batches
come from the trainer's :class:`~gankit.training.data.BatchStream`, every update is the
family's ``train_step``, D's field and G's push are :func:`gankit.explore.toy.critic_field`
and mode coverage is :func:`gankit.metrics.toy.mode_coverage`. What the lab adds is the
clock a person controls: start, pause, step, reset.

A session is saved as a normal run folder (config.yaml, metrics.jsonl, a checkpoint
written by the trainer's own code, the previews and loss curves), so ``gankit sample``,
``eval``, ``explore`` and ``report`` work on it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from gankit.config import check_run_name, dump_yaml, resolve_config
from gankit.errors import GankitError, check_finite, check_int, choices
from gankit.explore.pictures import save_loss_curves
from gankit.explore.toy import critic_field, plane_bounds, plane_points
from gankit.files import atomic_write_text
from gankit.metrics.toy import mode_coverage
from gankit.runs.folder import RunPaths, check_run_dir, fresh_run_dir
from gankit.runs.rng import rng_state
from gankit.tasks import get_task
from gankit.training.data import BatchStream
from gankit.training.run import build
from gankit.training.trainer import Trainer

#: The 2-D targets a person can pick, as data sections of a run config. The ring's modes
#: are wider than PacGAN's (std 0.05, not 0.01) so that they are visible on a canvas.
TARGETS: dict[str, dict[str, Any]] = {
    "ring": {"name": "ring", "std": 0.05},
    "grid": {"name": "grid"},
    "spiral": {"name": "spiral"},
    "moons": {"name": "moons"},
    "points": {"name": "points"},
}
#: Each loss of the page as a model section: a registered family and its settings.
LOSSES: dict[str, dict[str, Any]] = {
    "minimax": {"name": "gan", "loss": "minimax"},
    "non_saturating": {"name": "gan", "loss": "non_saturating"},
    "wgan_gp": {"name": "wgan_gp", "arch": "mlp", "d_norm": "none", "gp_weight": 0.1},
    "least_squares": {"name": "lsgan", "arch": "mlp", "g_norm": "none", "d_norm": "none"},
    "hinge": {"name": "hinge", "arch": "mlp", "g_norm": "none"},
}
#: Points per toy split: enough for a smooth target, quick to draw.
N_TRAIN, N_TEST = 20_000, 2_000
#: Frame geometry: D's heat map, G's arrows, generated and real points sent.
FIELD_RESOLUTION, ARROW_RESOLUTION, N_FAKE, N_REAL = 48, 15, 512, 1000
#: Seconds of training between two frames (several frames a second), and the loss
#: curve's resolution: one averaged point per this many steps.
FRAME_SECONDS, LOG_EVERY = 0.15, 10
#: The most steps one "step" command asks for.
MAX_STEP_COMMAND = 1000


@dataclass
class Settings:
    """What a person chooses on the page; checked by :meth:`config` and the model."""

    target: str = "ring"
    points: list[list[float]] = field(default_factory=list)
    loss: str = "non_saturating"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    n_critic: int = 1
    width: int = 128
    depth: int = 3
    batch_size: int = 256
    seed: int = 0

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Settings:
        """Settings from a ``configure`` message; unknown keys and wrong types refused."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(message) - known - {"type"})
        if unknown:
            raise GankitError(f"unknown setting '{unknown[0]}'; valid: {choices(known)}")
        values = {k: v for k, v in message.items() if k in known}
        for name in ("lr_g", "lr_d"):
            if name in values:
                check_finite(name, _number(name, values[name]), 0.0, above=True)
        for name in ("n_critic", "width", "depth", "batch_size", "seed"):
            if name in values and (
                isinstance(values[name], bool) or not isinstance(values[name], int)
            ):
                raise GankitError(f"{name} must be a whole number, got {values[name]!r}")
        if not isinstance(values.get("points", []), list):
            raise GankitError("points must be a list of [x, y] points")
        return cls(**values)

    def config(self) -> dict[str, Any]:
        """The run config of these settings, resolved (and so checked) by gankit's config."""
        if self.target not in TARGETS:
            raise GankitError(f"unknown target '{self.target}'; valid: {choices(TARGETS)}")
        if self.loss not in LOSSES:
            raise GankitError(f"unknown loss '{self.loss}'; valid: {choices(LOSSES)}")
        check_int("batch_size", self.batch_size, 1, 4096)
        check_int("width", self.width, 1, 1024)
        check_int("depth", self.depth, 1, 8)
        data = {**TARGETS[self.target], "n_train": N_TRAIN, "n_test": N_TEST, "seed": self.seed}
        if self.target == "points":
            if not self.points:
                raise GankitError("target 'points' needs points: click on the canvas to add some")
            data["centres"] = self.points
        model = {
            **LOSSES[self.loss],
            "latent_dim": 2,
            "hidden_dim": self.width,
            "n_layers": self.depth,
            "lr_g": self.lr_g,
            "lr_d": self.lr_d,
            "n_critic": self.n_critic,
        }
        train = {"batch_size": self.batch_size, "seed": self.seed, "progress": False}
        name = f"lab-{self.target}-{self.loss}"
        return resolve_config({"name": name, "model": model, "data": data, "train": train})


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GankitError(f"{name} must be a number, got {value!r}")
    return float(value)


class Session:
    """A model, its data and a training thread; frames go to ``emit``.

    Thread safety: the training thread holds ``lock`` while it steps or draws; commands
    from the server take the same lock, so a save or a reset never sees half a step.
    """

    def __init__(self, settings: Settings, emit: Callable[[dict], None]) -> None:
        self.settings = settings
        self.config = settings.config()
        self.emit = emit
        self.model, self.bundle = build(self.config)
        task = get_task(self.model)
        if task.name != "sample" or self.model.adversarial is None:
            raise GankitError(
                f"the lab trains adversarial samplers; '{self.model.model_name}' is not one"
            )
        self.model.setup_optimizers()
        self.model.train()
        train = self.config["train"]
        self.stream = BatchStream(
            self.bundle.train, train["batch_size"], self.model.real_batches_per_step,
            train["seed"], torch.device("cpu"),
        )  # fmt: skip
        real = self.bundle.train.tensors[0]
        self.real = real[:N_REAL]
        self.bounds = plane_bounds(real)
        self.noise = self.model.sample_latent(
            N_FAKE, torch.Generator().manual_seed(train["seed"] + 1)
        )
        self.step = 0
        self.history: list[dict[str, float]] = []  # one averaged line per LOG_EVERY steps
        self._sums: dict[str, float] = {}
        self._count = 0
        self.started = time.perf_counter()
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.pending = 0
        self.frame_wanted = False
        self.closed = False
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="gankit-lab", daemon=True)

    # ------------------------------------------------------------------ commands
    def open(self) -> None:
        """Start the training thread (paused: it sends one frame, then waits)."""
        self.thread.start()

    def start(self) -> None:
        self.running.set()
        self.wake.set()

    def pause(self) -> None:
        """Stop after the current step; the page gets a frame that shows it paused."""
        self.running.clear()
        self.frame_wanted = True
        self.wake.set()

    def advance(self, steps: int) -> None:
        """Train ``steps`` more steps, then pause (the page's "step" button)."""
        check_int("steps", steps, 1, MAX_STEP_COMMAND)
        self.running.clear()
        with self.lock:
            self.pending += steps
        self.wake.set()

    def stop(self) -> None:
        """Tell the training thread to end after its current step; returns at once, so
        it is safe where waiting is not (a task being cancelled)."""
        self.closed = True
        self.running.clear()
        self.wake.set()

    def close(self) -> None:
        """Stop the training thread and wait for it to end."""
        self.stop()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        self.emit(self.frame())
        while not self.closed:
            if not self.running.is_set() and not self.pending:
                if self.frame_wanted:
                    self.frame_wanted = False
                    with self.lock:
                        frame = self.frame()
                    self.emit(frame)
                self.wake.wait(0.2)
                self.wake.clear()
                continue
            try:
                with self.lock:
                    deadline = time.perf_counter() + FRAME_SECONDS
                    while time.perf_counter() < deadline and not self.closed:
                        if not self.running.is_set():
                            if not self.pending:
                                break
                            self.pending -= 1
                        self._train_step()
                    frame = self.frame()
            except (GankitError, RuntimeError) as err:  # RuntimeError: torch's, from a step
                self.running.clear()
                self.pending = 0
                self.emit({"type": "error", "message": str(err).splitlines()[0]})
                continue
            self.emit(frame)

    def _train_step(self) -> None:
        stats = self.model.train_step(self.stream.get(self.step), self.step)
        bad = {k: v for k, v in stats.items() if not math.isfinite(v)}
        if bad:
            raise GankitError(
                f"training diverged at step {self.step + 1} ({', '.join(bad)} not finite): "
                "reset, and lower the learning rates"
            )
        self.step += 1
        for key, value in stats.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
        self._count += 1
        if self.step % LOG_EVERY == 0:
            line = {"step": self.step, "time": round(time.perf_counter() - self.started, 3)}
            line.update({k: v / self._count for k, v in self._sums.items()})
            self.history.append(line)
            self._sums, self._count = {}, 0

    # ------------------------------------------------------------------ frames
    def setup(self) -> dict[str, Any]:
        """What the page draws once: the settings, the real points and the plane."""
        return {
            "type": "setup",
            "settings": asdict(self.settings),
            "config": self.config,
            "bounds": self.bounds,
            "real": _points(self.real),
            "n_modes": len(self.bundle.modes) if self.bundle.modes is not None else None,
        }

    def frame(self) -> dict[str, Any]:
        """The state now: G's samples, D's field, G's push, coverage and new loss points."""
        fake = self.model.render(self.noise).cpu()
        frame: dict[str, Any] = {
            "type": "frame",
            "step": self.step,
            "running": self.running.is_set(),
            "fake": _points(fake),
            "losses": self.history[-200:],
        }
        plane = plane_points(self.bounds, FIELD_RESOLUTION)
        field = critic_field(self.model, plane)
        if field is not None:
            values, _, is_probability = field
            _, push, _ = critic_field(self.model, plane_points(self.bounds, ARROW_RESOLUTION))
            frame["field"] = {
                "resolution": FIELD_RESOLUTION,
                "values": [round(v, 4) for v in values.tolist()],
                "is_probability": is_probability,
            }
            frame["arrows"] = {"resolution": ARROW_RESOLUTION, "push": _points(push)}
        if self.bundle.modes is not None:
            coverage = mode_coverage(fake, self.bundle.modes, self.bundle.mode_std)
            frame["coverage"] = {
                "modes": coverage.modes_captured,
                "n_modes": coverage.n_modes,
                "high_quality": coverage.high_quality,
            }
        return frame

    # ------------------------------------------------------------------ saving
    def save(self, runs_dir: str | Path, name: str) -> Path:
        """Write the session as the run ``runs_dir/name``, at its current step.

        The run's config asks for the steps done, so the run is finished; its checkpoint
        is written by the trainer's own code (:meth:`Trainer.checkpoint`), its previews by
        the task's (a scatter, and a snapshot of G against D).

        Raises:
            GankitError: a bad name, an existing run, or no step trained yet.
        """
        run_dir = Path(runs_dir) / check_run_name(name)
        check_run_dir(run_dir, overwrite=False)
        with self.lock:
            if self.step == 0:
                raise GankitError("nothing to save yet: train at least one step")
            self.running.clear()
            config = resolve_config({**self.config, "name": name}, {"train.steps": self.step})
            state = {
                "step": self.step,
                "model": self.model.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.model.optimizers.items()},
                "rng": rng_state(),
            }
            task = get_task(self.model)
            with fresh_run_dir(run_dir, overwrite=False):
                paths = RunPaths(run_dir)
                atomic_write_text(paths.config, dump_yaml(config))
                lines = "".join(_json_line(line) for line in self.history)
                atomic_write_text(paths.metrics, lines)
                trainer = Trainer(
                    config, run_dir, self.model, self.bundle, state, previews=task.previews
                )
                paths.samples.mkdir(exist_ok=True)
                inputs = trainer.fixed_inputs()
                trainer.previews.draw(self.step, inputs, None, paths, f"{name} step {self.step}")
                trainer.checkpoint(self.step)
                save_loss_curves(paths.metrics, paths.loss_curves)
            self.model.train()
        return run_dir


def _json_line(line: dict) -> str:
    return json.dumps(line) + "\n"


def _points(tensor: torch.Tensor) -> list[list[float]]:
    return [[round(x, 4), round(y, 4)] for x, y in tensor.reshape(-1, 2).tolist()]
