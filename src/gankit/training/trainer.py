"""The trainer owns the clock: iterate, call ``train_step``, log, preview, checkpoint.

It knows nothing of any model family's update rule (``models/base.py``), nor of what a
preview or an evaluation looks like: those arrive as callables chosen by the model's
task (:mod:`gankit.tasks`). What it guarantees:

- counting by global step, with the data order a function of (seed, step);
- the same seed gives the same weights on CPU, and N steps + resume + N steps gives
  the same weights as 2N steps;
- checkpoints are atomic, the newest K are kept, each embeds the resolved config;
- Ctrl-C and SIGTERM stop between two steps and save a checkpoint;
- a non-finite loss stops the run and leaves the last good checkpoint in place;
- a full disk stops the run with one line and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from gankit.config import TrainConfig
from gankit.ema import make_ema, recompute_batch_norm, update_ema
from gankit.errors import DivergenceError, GankitError, note, warn
from gankit.files import (
    LinkError,
    atomic_save,
    atomic_write,
    finite_json,
    make_folder,
    open_regular,
)
from gankit.models.base import Model
from gankit.runs.checkpoint import (
    FORMAT,
    CheckpointError,
    latest_checkpoint,
    one_line,
    save_checkpoint,
)
from gankit.runs.folder import RunPaths
from gankit.runs.rng import rng_state, set_rng_state
from gankit.training import tensorboard
from gankit.training.data import BatchStream, check_batch_size
from gankit.training.distributed import (
    SINGLE,
    DistContext,
    agree,
    all_reduce_mean,
    broadcast_state,
    unwrapped,
    wrap_networks,
)
from gankit.training.runtime import (
    CompiledSteps,
    Precision,
    StopFlag,
    resolve_device,
    seed_everything,
)

#: Stream offset of the fixed-noise generator, so it never coincides with the weights' seed.
FIXED_NOISE_OFFSET = 7919


class Previews(Protocol):
    """The pictures a run draws while it trains; :mod:`gankit.tasks` picks them by task."""

    def inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The fixed inputs of every preview (noise, or held-out images), on the CPU."""

    def draw(
        self,
        step: int,
        inputs: dict[str, torch.Tensor],
        net: nn.Module | None,
        paths: RunPaths,
        title: str,
    ) -> Path:
        """Draw the preview of ``step`` into ``paths.samples``; returns the picture."""


#: ``evaluate(step, net)``: scores at ``step`` with ``net`` (the EMA generator, or None).
EvalHook = Callable[[int, "nn.Module | None"], dict[str, float]]


@dataclass
class TrainResult:
    """What a training call produced.

    Attributes:
        run_dir: the run directory.
        step: steps completed.
        checkpoint: the newest checkpoint.
        samples: the newest preview picture, if the model's task draws previews.
        loss_curves: the loss-curve picture.
        interrupted: the signal's name when Ctrl-C or SIGTERM stopped the run.
        time_limited: whether ``train.time_limit`` stopped the run before ``train.steps``.
        start_step: the step this call started from (0, or a resumed run's step).
        seconds: wall time of this call's training loop.
        last_metrics: the final logged averages.
        model: the trained model, in memory (on this process's device).
    """

    run_dir: Path
    step: int
    checkpoint: Path | None
    samples: Path | None
    loss_curves: Path | None
    interrupted: str | None
    seconds: float
    last_metrics: dict[str, float]
    model: Model | None = None
    time_limited: bool = False
    start_step: int = 0

    def summary(self) -> list[str]:
        """What ``gankit train`` prints of this call, one line each: the run, the last
        losses, the pictures, the checkpoint, and how to go on after a time limit.
        Empty on a rank other than 0 under torchrun, which writes nothing (rank 0
        reports)."""
        if not self.reports:
            return []
        losses = ", ".join(
            f"{k} {v:.3f}" for k, v in self.last_metrics.items() if k.startswith("loss")
        )
        lines = [f"run:          {self.run_dir}  ({self.step} steps, {self.seconds:.0f} s)"]
        lines += [f"last losses:  {losses}"] if losses else []
        lines += [f"samples:      {self.samples}"] if self.samples is not None else []
        lines += [f"loss curves:  {self.loss_curves}"] if self.loss_curves is not None else []
        lines.append(f"checkpoint:   {self.checkpoint}")
        if self.time_limited:
            lines.append(
                f"time limit reached after {self.step - self.start_step} steps this call, "
                f"at step {self.step}; continue with: {self.resume_command}"
            )
        return lines

    @property
    def reports(self) -> bool:
        """Whether this process reports the call: rank 0 (alone, or under torchrun)."""
        return not (self.checkpoint is None and self.samples is None and self.loss_curves is None)

    @property
    def resume_command(self) -> str:
        """The command that continues this run."""
        return f"gankit train --resume --name {self.run_dir.name}"

    def stopped(self) -> tuple[str, int] | None:
        """For a run that a signal stopped: the line that says so, and the exit code
        (130 after Ctrl-C, 143 after SIGTERM, as a shell reports them); else None, and
        None on a rank that does not report (:attr:`reports`)."""
        if not self.interrupted or not self.reports:
            return None
        line = f"stopped by {self.interrupted} at step {self.step}; continue with: "
        return line + self.resume_command, 130 if self.interrupted == "SIGINT" else 143


class _Averages:
    """Running sums of the logged numbers between two log lines."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def pop(self) -> dict[str, float]:
        means = {k: v / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


class Trainer:
    """Runs one model on one dataset for ``config["train"]["steps"]`` steps.

    Args:
        config: the resolved run config.
        run_dir: the run directory (created by the caller).
        model: the model, built from the config.
        bundle: its data.
        resume_state: a checkpoint to continue from.
        dist_ctx: this process's place under torchrun.
        device: where to train (default: ``train.device``).
        previews: ``previews(model, bundle, seed)`` builds the pictures drawn every
            ``sample_every`` steps (:class:`Previews`); None: none.
        scores: ``scores(model, bundle, train_config)`` builds the ``evaluate(step,
            net)`` whose numbers are logged every ``eval_every`` steps; None: none.
        Both come from the model's task (:mod:`gankit.tasks`) and are built once the
        model is on its device: previews on rank 0 only, scores on every rank (each
        helps evaluate: the task splits the work, rank 0 logs the numbers).
        on_checkpoint: called with the path of each checkpoint once it is on disk
            (``--overwrite`` deletes the run it replaced after the first).
    """

    def __init__(
        self,
        config: dict[str, Any],
        run_dir: Path,
        model: Model,
        bundle: Any,
        resume_state: dict[str, Any] | None = None,
        dist_ctx: DistContext = SINGLE,
        device: torch.device | None = None,
        previews: Callable[[Model, Any, int], Previews] | None = None,
        scores: Callable[[Model, Any, TrainConfig], EvalHook] | None = None,
        on_checkpoint: Callable[[Path], None] | None = None,
    ) -> None:
        self.config = config
        self.train_cfg = cfg = TrainConfig(**config["train"])
        self.paths = RunPaths(Path(run_dir))
        self.dist = dist_ctx
        self.device = device or resolve_device(cfg.device)
        check_sample_shape(model)  # before the run folder is touched
        self.model = model.to(self.device)
        self.model.max_steps = cfg.steps
        self.model.check_batch_size(cfg.batch_size)
        self.model.setup_optimizers()
        self.datasets = self.model.training_data(bundle)
        for dataset in self.datasets.values():  # here, before the run folder is touched
            check_batch_size(len(dataset), cfg.batch_size, self.dist.world_size)
        if cfg.ema_decay is not None and self.model.generator is None:
            raise GankitError(
                f"train.ema_decay averages a generator; model '{self.model.model_name}' has "
                "none: leave ema_decay unset"
            )
        self.ema = make_ema(self.model.generator, cfg.ema_decay) if cfg.ema_decay else None
        self._ema_stats_step: int | None = None
        self.start_step = 0
        self.last_checkpoint: Path | None = None
        self.on_checkpoint = on_checkpoint
        if resume_state is not None:
            self._restore(resume_state)
        if self.dist.rank > 0:
            # Each rank draws its own noise; rank 0 keeps the single-process stream.
            seed_everything(cfg.seed + 1_000_003 * self.dist.rank + self.start_step)
        if cfg.sync_batchnorm and self.dist.enabled and self.device.type != "cuda":
            raise GankitError("train.sync_batchnorm needs CUDA devices; leave it off on cpu")
        self.precision = Precision(self.model, cfg.precision, cfg.channels_last, self.device)
        # DDP wraps the networks in place, after the optimizers and the EMA have taken
        # the plain ones; ``self.networks`` keeps those for rank 0's side work.
        self.networks = wrap_networks(self.model, self.dist, self.device, cfg.sync_batchnorm)
        self.compiled = CompiledSteps(self.model, self.networks, unwrapped) if cfg.compile else None
        # Rank 0 alone draws and writes; every rank evaluates (rank 0 logs the numbers).
        main = self.dist.is_main
        self.previews = previews(self.model, bundle, cfg.seed) if previews and main else None
        wanted = scores is not None and cfg.eval_every is not None
        self.evaluate = scores(self.model, bundle, cfg) if wanted else None
        # Checked here, before the run directory exists; the writer opens in fit().
        self._summary_writer_cls = _tensorboard() if cfg.tensorboard else None
        self.writer = None

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult:
        """Train from ``start_step`` to ``train.steps``, or until a signal stops the run.

        Each step draws the step's batch (a function of seed and step), runs the
        model's ``train_step`` under the run's precision, stops every rank together on
        a non-finite loss or a signal, updates the EMA, and logs the averages every
        ``log_every`` steps. Rank 0 then does the side work that is due: a preview, an
        evaluation, a checkpoint. A stopped run saves a checkpoint of the last whole step.
        """
        with self._disk_full_is_one_line():
            return self._fit()

    def _fit(self) -> TrainResult:
        cfg, main = self.train_cfg, self.dist.is_main
        inputs = self._open_run() if main else None
        streams = {
            suffix: self._stream(dataset, cfg.seed + position)
            for position, (suffix, dataset) in enumerate(self.datasets.items())
        }
        averages, last_metrics, sample_path = _Averages(), {}, None
        step, stopping, signalled, out_of_time = self.start_step, False, False, False
        started = time.perf_counter()
        limit = cfg.time_limit_seconds
        bar = self._progress_bar() if main else None
        time_before = self.model.time_used  # 0, or where a resumed run's schedules were
        if limit is not None and main:
            note(
                f"train.time_limit {cfg.time_limit}: schedules laid out over train.steps "
                "(learning-rate decays, loss ramps) follow the clock too, and end when the "
                "limit does if that comes first"
                + (f"; resumed at {time_before:.0%} of the limit" if time_before else "")
            )
        self.model.train()
        with StopFlag() as stop, self._metrics_log() as log:
            while step < cfg.steps and not stopping:
                stats = self._first_step_is_one_line(streams, step)
                bad = {k: v for k, v in stats.items() if not math.isfinite(v)}
                # Every rank stops at the same step, or the others would wait forever
                # in their next collective.
                (any_bad, signalled), clock = agree(
                    [bool(bad), stop.signal_name is not None],
                    time.perf_counter() - started,
                    self.dist,
                )
                out_of_time = limit is not None and clock >= limit
                if limit is not None:  # schedules follow the clock too (Model.progress)
                    self.model.time_used = min(1.0, time_before + clock / limit)
                stopping = signalled or out_of_time
                if any_bad:
                    # the run's last line says so (gankit runs); a resume drops it
                    elapsed = time.perf_counter() - started
                    log(step + 1, {"diverged": sorted(bad) or ["(another rank)"]}, elapsed)
                    raise self._diverged(step + 1, bad or {"(another rank)": math.nan})
                self._update_ema()
                step += 1
                averages.add(stats)
                if step % cfg.log_every == 0 or step == cfg.steps or out_of_time:
                    last_metrics = all_reduce_mean(averages.pop(), self.dist)
                    log(step, last_metrics, time.perf_counter() - started)
                    self._show(bar, last_metrics)
                if stopping and averages.count:
                    last_metrics = averages.pop()
                if bar is not None:
                    bar.update(1)
                elapsed = time.perf_counter() - started
                sample_path = self._side_work(step, stopping, inputs, log, elapsed) or sample_path
        if bar is not None:
            bar.close()
        if self.writer is not None:
            tensorboard.log_hparams(self.writer, self.config, last_metrics, step)
            self.writer.close()
        for name, net in self.networks.items():  # hand back the plain networks
            setattr(self.model, name, net)
        interrupted = (stop.signal_name or "a signal on another rank") if signalled else None
        return TrainResult(
            self.paths.root, step, self.last_checkpoint, sample_path, None, interrupted,
            time.perf_counter() - started, last_metrics, self.model,
            time_limited=out_of_time and step < cfg.steps, start_step=self.start_step,
        )  # fmt: skip

    def _first_step_is_one_line(self, streams, step: int) -> dict[str, float]:
        """The step's numbers; a new run's first step that fails inside torch (networks
        whose shapes do not fit each other, most often the user's own) is one line that
        names the model, not torch's traceback."""
        if step > 0:
            return self._train_step(self._batch(streams, step), step)
        try:
            return self._train_step(self._batch(streams, step), step)
        except RuntimeError as err:
            raise GankitError(
                f"model '{self.model.model_name}' failed its first training step "
                f"({one_line(err)}); if its networks are your own, check that each one's "
                "output has the shape the next one takes (docs/byo.md)"
            ) from None

    def _side_work(self, step: int, stopping: bool, inputs, log, elapsed: float) -> Path | None:
        """The work after a step, on the plain networks (checkpoints without DDP's
        prefixes): rank 0's preview and checkpoint, and the evaluation every rank shares,
        when due. A run that stops draws and saves its last whole step."""
        cfg = self.train_cfg

        def due(every: int | None) -> bool:
            return every is not None and (step % every == 0 or step == cfg.steps)

        sample_path = None
        with unwrapped(self.model, self.networks):
            if self.previews is not None and (stopping or due(cfg.sample_every)):
                title = f"{self.config['name']} step {step}"
                net = self.sampler_net(step)
                sample_path = self.previews.draw(step, inputs, net, self.paths, title)
                if self.writer is not None:
                    tensorboard.log_preview(self.writer, sample_path, step)
            if self.evaluate is not None and due(cfg.eval_every):
                log(step, self._evaluate(step), elapsed)
            if self.dist.is_main and (stopping or due(cfg.ckpt_every)):
                self.checkpoint(step)
        return sample_path

    def _evaluate(self, step: int) -> dict[str, float]:
        """The task's scores at ``step``, as ``eval_*`` numbers with their time."""
        started = time.perf_counter()
        net = self.sampler_net(step)
        # every rank samples from rank 0's weights and batch-norm statistics
        broadcast_state(net if net is not None else self.model.generator, self.dist)
        scores = self.evaluate(step, net)
        out = {f"eval_{k}": v for k, v in scores.items()}
        out["eval_seconds"] = round(time.perf_counter() - started, 3)
        return out

    # ------------------------------------------------------------------ one step
    def _batch(self, streams: dict[str, BatchStream], step: int) -> dict[str, torch.Tensor]:
        """The step's batch: ``x``, ``y`` from the first dataset, ``x_b``, ``y_b`` from a
        second one, in the run's memory layout."""
        batch = {k + suffix: v for suffix, s in streams.items() for k, v in s.get(step).items()}
        return self.precision.layout(batch)

    def _update_ema(self) -> None:
        if self.ema is not None:
            plain = self.networks.get(self.model.generator_name) or self.model.generator
            update_ema(self.ema, plain)

    @staticmethod
    def _show(bar, metrics: dict[str, float]) -> None:
        if bar is not None:
            bar.set_postfix({k: f"{v:.3g}" for k, v in metrics.items() if k.startswith("loss")})

    def _train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """``model.train_step`` under autocast, through the compile fallback when on."""

        def run() -> dict[str, float]:
            with self.precision.autocast():
                return self.model.train_step(batch, step)

        stats = self.compiled.run(run) if self.compiled is not None else run()
        self.precision.after_step()
        return stats

    def _stream(self, dataset, seed: int) -> BatchStream:
        return BatchStream(
            dataset,
            self.train_cfg.batch_size,
            self.model.real_batches_per_step,
            seed,
            self.device,
            start_step=self.start_step,
            num_workers=self.train_cfg.num_workers,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )

    # ------------------------------------------------------------------ state
    def sampler_net(self, step: int) -> nn.Module | None:
        """The EMA generator with batch-norm statistics fresh for ``step``, or None
        without EMA (the model's own generator is then used)."""
        if self.ema is None:
            return None
        if self._ema_stats_step != step:
            recompute_batch_norm(self.ema.module, self.model, seed=self.train_cfg.seed)
            self._ema_stats_step = step
        return self.ema.module

    def state_dict(self, step: int) -> dict[str, Any]:
        self.sampler_net(step)  # the saved EMA carries statistics that match its weights
        return {
            "format": FORMAT,
            "config": self.config,
            "model_name": self.model.model_name,
            "hparams": self.model.hparams,
            "step": step,
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.model.optimizers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng_state(),
            # the share of train.time_limit the schedules had reached: a resume goes on
            # from there instead of starting the decay again
            "time_used": self.model.time_used,
            # processes that trained it: a resume with another count says what changes
            "world_size": self.dist.world_size,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            for name, opt in self.model.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            set_rng_state(state["rng"])
            self.start_step = int(state["step"])
            self.model.time_used = float(state.get("time_used", 0.0))
            self._note_world_size(state.get("world_size"))
        except (KeyError, RuntimeError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"the checkpoint of step {state.get('step')} in '{self.paths.checkpoints}' "
                f"does not fit the model it names ({one_line(err)})"
            ) from None

    def _note_world_size(self, saved: object) -> None:
        """Say on resume that the process count changed, and what that changes: the
        global batch (``train.batch_size`` is per process) and each rank's data slice."""
        now = self.dist.world_size
        if not isinstance(saved, int) or saved == now or not self.dist.is_main:
            return
        batch = self.train_cfg.batch_size
        note(
            f"resuming step {self.start_step} with {now} process(es); the run was trained "
            f"with {saved}: the global batch changes from {saved} x {batch} = {saved * batch} "
            f"to {now} x {batch} = {now * batch} (train.batch_size is per process)"
        )

    def checkpoint(self, step: int) -> Path:
        self.last_checkpoint = save_checkpoint(
            self.paths.checkpoints, step, self.state_dict(step), self.train_cfg.keep_checkpoints
        )
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.last_checkpoint)
        return self.last_checkpoint

    @contextlib.contextmanager
    def _disk_full_is_one_line(self):
        """A full disk (a checkpoint, a preview, a log line) stops the run with one line
        naming the last good checkpoint; the write that failed left no partial file."""
        try:
            yield
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            found = latest_checkpoint(self.paths.checkpoints)
            kept = (
                f"the last good checkpoint is {found[1]} (step {found[0]})"
                if found
                else "no checkpoint was written yet"
            )
            what = f" writing '{err.filename}'" if err.filename else ""
            raise GankitError(
                f"no space left on the device{what} ({self.paths.root}); {kept}. Free some "
                f"space, then: gankit train --resume --name {self.paths.root.name}"
            ) from None

    # ------------------------------------------------------------------ the run's files
    def _open_run(self) -> dict[str, torch.Tensor] | None:
        """Rank 0, before the first step: folders, TensorDataset writer, the metrics log
        cut back to the step resumed from, and the fixed inputs of the previews."""
        make_folder(self.paths.samples)
        if self._summary_writer_cls is not None:
            self.writer = self._summary_writer_cls(str(make_folder(self.paths.tensorboard)))
        self._truncate_metrics(self.start_step)
        return self.fixed_inputs() if self.previews is not None else None

    def fixed_inputs(self) -> dict[str, torch.Tensor]:
        """The previews' inputs: made once from the seed, saved, and reloaded on resume,
        so that every preview of a run shows the same noise (or the same images).

        A damaged file is made again from the seed, which gives the same inputs."""
        path = self.paths.fixed_noise
        if path.exists():
            try:
                with open_regular(path) as handle:
                    return torch.load(handle, map_location="cpu", weights_only=True)
            except LinkError:
                raise
            except Exception as err:
                reason = f"{type(err).__name__}: {err}".splitlines()[0][:120]
                warn(f"'{path}' cannot be read ({reason}); making it again from the seed")
        generator = torch.Generator().manual_seed(self.train_cfg.seed + FIXED_NOISE_OFFSET)
        inputs = self.previews.inputs(self.train_cfg.n_fixed, generator)
        atomic_save(inputs, path)
        return inputs

    @contextlib.contextmanager
    def _metrics_log(self):
        """``log(step, numbers, elapsed)``: a line of ``metrics.jsonl`` (and TensorBoard)
        on rank 0; nothing elsewhere."""
        if not self.dist.is_main:
            yield lambda *args: None
            return
        with open_regular(self.paths.metrics, "a", create=True) as handle:

            def log(step: int, metrics: dict[str, float], elapsed: float) -> None:
                handle.write(
                    finite_json({"step": step, "time": round(elapsed, 3), **metrics}) + "\n"
                )
                handle.flush()
                if self.writer is not None:
                    for key, value in metrics.items():
                        if isinstance(value, (int, float)) and math.isfinite(value):
                            self.writer.add_scalar(key, value, step)

            yield log

    def _truncate_metrics(self, step: int) -> None:
        """On resume, drop lines logged after the checkpoint we resume from, and any
        line a killed process cut short. Streamed line by line: a log of any length is
        rewritten in bounded memory (and only when a line goes)."""
        path = self.paths.metrics
        if not path.exists():
            return

        def kept() -> Iterator[tuple[str, bool]]:
            """(line to keep, whether it is the file's line as it was), in order."""
            with open_regular(path, "rb") as source:
                for line in source:
                    try:
                        row = json.loads(line.decode("utf-8", errors="replace"))
                    except ValueError:
                        row = None
                    if (
                        isinstance(row, dict)
                        and isinstance(row.get("step"), int)
                        and row["step"] <= step
                    ):
                        text = finite_json(row) + "\n"
                        yield text, text.encode("utf-8") == line
                    else:
                        yield "", False

        def write(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf-8") as out:
                out.writelines(text for text, _ in kept())

        if not all(same for _, same in kept()):
            atomic_write(path, write)

    def _progress_bar(self):
        if not self.train_cfg.progress:
            return None
        import sys

        from tqdm.auto import tqdm

        # In a log file (CI, nohup) every redraw is a new chunk of text: redraw rarely.
        interactive = sys.stderr.isatty()
        return tqdm(
            mininterval=0.2 if interactive else 30.0,
            total=self.train_cfg.steps,
            initial=self.start_step,
            desc=self.config["name"],
            unit="step",
            dynamic_ncols=True,
        )

    def _diverged(self, step: int, bad: dict[str, float]) -> DivergenceError:
        found = latest_checkpoint(self.paths.checkpoints)
        where = (
            f"the last good checkpoint is {found[1]} (step {found[0]})"
            if found
            else "no checkpoint was written before it"
        )
        values = ", ".join(f"{k} = {v}" for k, v in bad.items())
        # the model's own learning-rate options, read from its settings: lr_g and lr_d
        # for the GAN family, lr for a VAE, translator_lr and lr for PixelDA, ...
        rates = [
            key
            for key, value in self.model.hparams.items()
            if (key == "lr" or key.startswith("lr_") or key.endswith("_lr"))
            and isinstance(value, float)  # not lr_schedule, which names a schedule
        ]
        named = ", ".join(f"model.{k}" for k in rates)
        return DivergenceError(
            f"training diverged at step {step} ({values}); {where}. "
            + (f"Try lower learning rates ({named})" if rates else "Try a lower learning rate")
            + " or a different loss."
        )


def check_sample_shape(model: Model) -> None:
    """A model that draws samples from noise must draw them in its data's shape: two
    are drawn (in eval mode, without gradients, the random state put back), so that a
    generator of the user's own with the wrong output is one line here, before the run
    folder is made, and not torch's traceback at the first step.

    Raises:
        GankitError: the generator fails, or its samples have another shape.
    """
    if model.generator is None:
        return
    try:
        latent = model.sample_latent(2, torch.Generator().manual_seed(0))
    except GankitError:  # it draws no samples from noise (translators, classifiers)
        return
    with torch.random.fork_rng(devices=[]):
        try:
            samples = model.render(latent)
        except RuntimeError as err:
            raise GankitError(
                f"model '{model.model_name}': its generator cannot draw a sample "
                f"({one_line(err)}); it must map the latent to the data's shape "
                f"{tuple(model.data_shape)} (docs/byo.md)"
            ) from None
    if tuple(samples.shape[1:]) != tuple(model.data_shape):
        raise GankitError(
            f"model '{model.model_name}': its generator draws samples of shape "
            f"{tuple(samples.shape[1:])}, and the data's are {tuple(model.data_shape)}; make "
            "its last layer give the data's shape (docs/byo.md)"
        )


def _tensorboard() -> type:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GankitError(
            "train.tensorboard needs the tensorboard package: pip install 'gankit[tensorboard]'"
        ) from None
    return SummaryWriter


__all__ = ["FIXED_NOISE_OFFSET", "EvalHook", "Previews", "TrainResult", "Trainer"]
