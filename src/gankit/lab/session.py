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
from gankit.data.toy import MAX_POINTS_CENTRES
from gankit.errors import GankitError, check_int, choices
from gankit.explore.pictures import save_loss_curves
from gankit.explore.toy import critic_field, plane_bounds, plane_points
from gankit.files import atomic_write_text, make_folder
from gankit.metrics.toy import mode_coverage
from gankit.models.base import StepInterrupted
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
#: Clicked points: at most the ``points`` source's count, each coordinate within
#: [-POINT_LIMIT, POINT_LIMIT] (the planes of the targets span about [-5, 5]; 1e308 made
#: the data, and then the frames, infinite).
MAX_POINTS, POINT_LIMIT = MAX_POINTS_CENTRES, 10.0
#: The bounds of every number a page can set: name -> (low, high), both included. The
#: highs bound the cost of one step: at WGAN-GP (the costliest loss, a double backward)
#: with width 256, depth 4, batch 512 and n_critic 5 one step takes about 0.2 s of one
#: core (docs/lab.md has the measurement), so no page can make a step run for minutes or
#: hold gigabytes; the lab's defaults sit well inside.
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "n_critic": (1, 5),
    "width": (1, 256),
    "depth": (1, 4),
    "batch_size": (1, 512),
    "seed": (0, 2**31 - 1),
}
#: Learning rates: above 0, at most this (Adam at 1 already diverges on these toys).
MAX_LEARNING_RATE = 1.0


@dataclass
class Settings:
    """What a person chooses on the page; :meth:`from_message` checks each value's type
    and bounds, :meth:`config` the rest (through gankit's config)."""

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
        """Settings from a ``configure`` message: unknown keys, wrong types and values out
        of bounds refused, each naming the setting and what would be valid."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(message) - known - {"type"}, key=str)
        if unknown:
            raise GankitError(f"unknown setting {shown(unknown[0])}; valid: {choices(known)}")
        values = {k: v for k, v in message.items() if k in known}
        for name in ("target", "loss"):
            if name in values and not isinstance(values[name], str):
                raise GankitError(f"{name} must be a name (text), got {shown(values[name])}")
        for name in ("lr_g", "lr_d"):
            if name in values:
                rate = values[name]  # compared as given: float() of a huge int overflows
                if not (_is_number(rate) and 0 < rate <= MAX_LEARNING_RATE):
                    raise GankitError(
                        f"{name} must be a finite number > 0 and at most {MAX_LEARNING_RATE:g}, "
                        f"got {shown(values[name])}"
                    )
        for name, (low, high) in INT_BOUNDS.items():
            if name in values:
                check_whole(name, values[name], low, high)
        if "points" in values:
            values["points"] = check_points(values["points"])
        return cls(**values)

    @classmethod
    def costliest(cls) -> Settings:
        """The settings whose step costs most: WGAN-GP (a double backward) at every
        bound's high (what docs/lab.md's measurement and the bounds' test time)."""
        return cls(loss="wgan_gp", **{name: high for name, (_, high) in INT_BOUNDS.items()})

    def config(self) -> dict[str, Any]:
        """The run config of these settings, resolved (and so checked) by gankit's config."""
        if self.target not in TARGETS:
            raise GankitError(f"unknown target {shown(self.target)}; valid: {choices(TARGETS)}")
        if self.loss not in LOSSES:
            raise GankitError(f"unknown loss {shown(self.loss)}; valid: {choices(LOSSES)}")
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


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages: a value from a page
    may be a 4,000-digit number or a megabyte of text."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's digit limit, a deep list
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else f"{text[: limit - 15]}... ({len(text)} chars)"


def check_whole(name: str, value: Any, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) in ``[low, high]``.

    Raises:
        GankitError: naming ``name``, the range and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GankitError(f"{name} must be a whole number in [{low}, {high}], got {shown(value)}")
    return value


def check_points(points: Any) -> list[list[float]]:
    """Clicked points: a list of at most :data:`MAX_POINTS` ``[x, y]`` pairs of numbers
    within ``[-POINT_LIMIT, POINT_LIMIT]``.

    Raises:
        GankitError: saying which point is at fault and what would be valid.
    """
    valid = (
        f"a list of at most {MAX_POINTS} [x, y] points with x and y in "
        f"[-{POINT_LIMIT:g}, {POINT_LIMIT:g}]"
    )
    if not isinstance(points, list) or len(points) > MAX_POINTS:
        raise GankitError(f"points must be {valid}, got {shown(points)}")
    for point in points:
        if (
            not isinstance(point, list)
            or len(point) != 2
            or not all(_is_number(x) and abs(x) <= POINT_LIMIT for x in point)
        ):
            raise GankitError(f"points must be {valid}, got the point {shown(point)}")
    return [[float(x), float(y)] for x, y in points]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Session:
    """A model, its data and a training thread; frames go to ``emit``.

    Thread safety: the training thread holds ``lock`` while it steps or draws; a save
    takes the same lock, so it never sees half a step. No command waits for a step to
    end: pause, stop and save set ``halt``, which the model reads between its D updates
    (:attr:`gankit.models.base.Model.interrupt`), so a step in progress is left within
    one D update. A step left so is not counted (its D updates so far are kept).
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
        self.halt = threading.Event()
        self.pending = 0
        self.pending_lock = threading.Lock()  # never held across a step
        self.frame_wanted = False
        self.closed = False
        self.wake = threading.Event()
        # a plain function, not a bound method: copying the model copies no session
        self.model.interrupt = lambda: self.closed or self.halt.is_set()
        self.thread = threading.Thread(target=self._run, name="gankit-lab", daemon=True)
        self.on_exit: Callable[[], None] | None = None

    # ------------------------------------------------------------------ commands
    def open(self, on_exit: Callable[[], None] | None = None) -> None:
        """Start the training thread (paused: it sends one frame, then waits);
        ``on_exit`` is called by the thread as it ends, whatever ends it."""
        self.on_exit = on_exit
        try:
            self.thread.start()
        except RuntimeError:  # no thread to start: nothing will call on_exit but here
            if on_exit is not None:
                on_exit()
            raise

    def start(self) -> None:
        self.halt.clear()
        self.running.set()
        self.wake.set()

    def pause(self) -> None:
        """Stop training within one D update; the page gets a frame that shows it paused."""
        self.running.clear()
        with self.pending_lock:
            self.pending = 0
        self.halt.set()
        self.frame_wanted = True
        self.wake.set()

    def advance(self, steps: int) -> None:
        """Train ``steps`` more steps, then pause (the page's "step" button)."""
        check_int("steps", steps, 1, MAX_STEP_COMMAND)
        self.running.clear()
        with self.pending_lock:
            self.pending += steps
        self.halt.clear()
        self.wake.set()

    def stop(self) -> None:
        """Tell the training thread to end within one D update; returns at once, so it is
        safe where waiting is not (a socket's task being cancelled)."""
        self.closed = True
        self.running.clear()
        self.halt.set()
        self.wake.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the training thread and wait (at most ``timeout`` s) for it to end."""
        self.stop()
        if self.thread.is_alive():
            self.thread.join(timeout=timeout)

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self.on_exit is not None:
                self.on_exit()

    def _next_step(self) -> bool:
        """Whether to train one more step now (taking one of the pending steps)."""
        if self.running.is_set():
            return True
        with self.pending_lock:
            if not self.pending:
                return False
            self.pending -= 1
            return True

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
                        if not self._next_step():
                            break
                        self._train_step()
                    frame = self.frame()
            except StepInterrupted:
                continue  # paused or stopped: the idle branch draws the paused frame
            except (GankitError, RuntimeError) as err:  # RuntimeError: torch's, from a step
                self.running.clear()
                with self.pending_lock:
                    self.pending = 0
                self.emit({"type": "error", "message": str(err).splitlines()[0]})
                continue
            self.emit(frame)

    def time_steps(self, n: int) -> list[float]:
        """Train ``n`` steps on the calling thread (the session's thread not started),
        returning the CPU seconds of each: of this thread alone, so other processes on
        the machine do not count (with torch on one thread, as the lab runs it)."""
        seconds = []
        for _ in range(n):
            started = time.thread_time()
            self._train_step()
            seconds.append(time.thread_time() - started)
        return seconds

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

        Saving pauses the session. The run's config asks for the steps done, so the run is
        finished; its checkpoint
        is written by the trainer's own code (:meth:`Trainer.checkpoint`), its previews by
        the task's (a scatter, and a snapshot of G against D).

        Raises:
            GankitError: a bad name, an existing run, or no step trained yet.
        """
        run_dir = Path(runs_dir) / check_run_name(name)
        check_run_dir(run_dir, overwrite=False)
        self.pause()  # a step in progress ends within one D update: the lock comes soon
        with self.lock:
            if self.step == 0:
                raise GankitError("nothing to save yet: train at least one step")
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
                make_folder(paths.samples)
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
