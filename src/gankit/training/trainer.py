"""The trainer owns the clock: iterate, call ``train_step``, log, preview, checkpoint.

It knows nothing of any model family's update rule (see ``models/base.py``). What it
guarantees:

- counting by global step, with the data order a function of (seed, step);
- the same seed gives the same weights on CPU, and N steps + resume + N steps gives
  the same weights as 2N steps;
- checkpoints are atomic, the newest K are kept, each embeds the resolved config;
- Ctrl-C and SIGTERM stop between two steps and save a checkpoint;
- a non-finite loss stops the run and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.config import (
    Overrides,
    TrainConfig,
    dump_yaml,
    load_yaml,
    parse_overrides,
    resolve_config,
)
from gankit.data import TOY_DATASETS, DataBundle, load_data
from gankit.errors import DivergenceError, GankitError
from gankit.explore.pictures import save_loss_curves, save_samples
from gankit.models.base import GenerativeModel
from gankit.registry import create_model
from gankit.training.checkpoint import (
    atomic_save,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from gankit.training.data import BatchStream
from gankit.training.distributed import (
    SINGLE,
    DistContext,
    all_reduce_mean,
    any_rank,
    barrier,
    init_from_environment,
    shutdown,
    unwrapped,
    wrap_networks,
)
from gankit.training.ema import make_ema, recompute_batch_norm, update_ema
from gankit.training.run import RunPaths

#: Stream offset of the fixed-noise generator, so it never coincides with the weights' seed.
FIXED_NOISE_OFFSET = 7919


@dataclass
class TrainResult:
    """What a training call produced.

    Attributes:
        run_dir: the run directory.
        step: steps completed.
        checkpoint: the newest checkpoint.
        samples: the newest sample picture, if the model makes samples.
        loss_curves: the loss-curve picture.
        interrupted: the signal's name when Ctrl-C or SIGTERM stopped the run.
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
    model: GenerativeModel | None = None


def available_devices() -> list[str]:
    """The ``train.device`` values this machine can run, e.g. ``["cpu"]``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append(f"cuda ({torch.cuda.device_count()} devices)")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(name: str) -> torch.device:
    """``train.device`` as a torch device; ``auto`` picks CUDA, then MPS, then CPU.

    Raises:
        GankitError: the device was asked for but this machine or torch build lacks
            it; the message lists the devices that are available.
    """
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        what = "CUDA" if name == "cuda" else "MPS"
        raise GankitError(
            f"train.device '{name}' was requested but {what} is not available here; "
            f"available devices: {', '.join(available_devices())}"
        )
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def build(
    config: dict[str, Any], data_dir: str | None = None
) -> tuple[GenerativeModel, DataBundle]:
    """Load the data and build the model of a resolved config, seeded by the run seed."""
    bundle = load_data(config["data"], data_dir)
    seed_everything(config["train"]["seed"])
    model_args = {k: v for k, v in config["model"].items() if k != "name"}
    model = create_model(
        config["model"]["name"],
        data_shape=bundle.shape,
        num_classes=bundle.num_classes,
        data_shape_b=bundle.domain_b.shape if bundle.domain_b is not None else None,
        **model_args,
    )
    return model, bundle


class _StopFlag:
    """Turns the first Ctrl-C / SIGTERM into a request to stop after the current step.

    Stopping between steps means the checkpoint we save is consistent (an interrupt
    inside ``optimizer.step`` would leave half-updated weights). A second Ctrl-C
    interrupts at once.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """Runs one model on one dataset for ``config["train"]["steps"]`` steps."""

    def __init__(
        self,
        config: dict[str, Any],
        run_dir: Path,
        model: GenerativeModel,
        bundle: DataBundle,
        resume_state: dict[str, Any] | None = None,
        dist_ctx: DistContext = SINGLE,
        device: torch.device | None = None,
    ) -> None:
        self.config = config
        self.train_cfg = TrainConfig(**config["train"])
        #: set by _compile_networks: snapshot the state before the first compiled step
        self._compile_snapshot = False
        self.paths = RunPaths(Path(run_dir))
        self.bundle = bundle
        self.dist = dist_ctx
        self.device = device or resolve_device(self.train_cfg.device)
        self.model = model.to(self.device)
        self.model.max_steps = self.train_cfg.steps
        self.model.check_batch_size(self.train_cfg.batch_size)
        self.model.setup_optimizers()
        self._ema_stats_step: int | None = None
        self._toy_bounds: tuple[float, float, float, float] | None = None
        if self.model.uses_domain_b and bundle.domain_b is None:
            raise GankitError(
                f"model '{self.model.model_name}' trains on two domains; data '{bundle.name}' "
                "has one: set data.target (e.g. data.target=digits-m) or use a two-domain "
                "source (unpaired:PATH, segshift)"
            )
        if not self.model.generative and self.train_cfg.ema_decay is not None:
            raise GankitError(
                f"train.ema_decay averages a generator; model '{self.model.model_name}' has "
                "none: leave ema_decay unset"
            )
        self.ema = (
            make_ema(self.model.generator, self.train_cfg.ema_decay)
            if self.train_cfg.ema_decay is not None
            else None
        )
        self.start_step = 0
        self.last_checkpoint: Path | None = None
        if resume_state is not None:
            self._restore(resume_state)
        if self.dist.rank > 0:
            # Each rank draws its own noise; rank 0 keeps the single-process stream.
            seed_everything(self.train_cfg.seed + 1_000_003 * self.dist.rank + self.start_step)
        # DDP wraps the networks in place, after the optimizers and the EMA have taken
        # the plain ones; ``self.networks`` keeps those for rank 0's side work.
        self._precision_setup()
        self.networks = wrap_networks(
            self.model, self.dist, self.device, self.train_cfg.sync_batchnorm
        )
        if self.train_cfg.compile:
            self._compile_networks()
        self.scorer = self._scorer() if self.dist.is_main else None
        # Checked here, before the run directory exists; the writer opens in fit().
        self._summary_writer_cls = self._tensorboard() if self.train_cfg.tensorboard else None
        self.writer = None

    # ------------------------------------------------------------------ state
    def sampler_net(self, step: int) -> torch.nn.Module | None:
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
            "format": 1,
            "config": self.config,
            "model_name": self.model.model_name,
            "hparams": self.model.hparams,
            "step": step,
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.model.optimizers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng_state(),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for name, opt in self.model.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        set_rng_state(state["rng"])
        self.start_step = state["step"]

    def _scorer(self):
        """The evaluator for ``eval_every``, built (and its classifier trained) up front.

        Under ``fork_rng``: building or training an evaluator must not consume the run's
        random numbers, or a run with evaluation would train differently from one without.
        """
        cfg = self.train_cfg
        if cfg.eval_every is None:
            return None
        if self.model.translates:
            return "translation"  # evaluate() scores cycle error, FD and class accuracy
        if not self.model.generative:
            return "adaptation"  # evaluate() scores the model's own metrics per domain
        from gankit.metrics.evaluate import Scorer

        with torch.random.fork_rng(devices=[]):
            return Scorer(
                self.bundle, cfg.eval_metrics, cfg.eval_n, seed=cfg.seed, train_evaluator=True
            )

    def evaluate(self, step: int) -> dict[str, float]:
        """Score samples from fixed noise (the EMA generator when kept) at ``step``."""
        started = time.perf_counter()
        if self.model.translates:
            from gankit.metrics.evaluate import translation_scores

            with torch.random.fork_rng(devices=[]):
                scores, _, _ = translation_scores(
                    self.model, self.bundle, self.train_cfg.eval_n, self.train_cfg.seed, True
                )
            return {f"eval_{k}": v for k, v in scores.items()}
        if not self.model.generative:
            from gankit.metrics.evaluate import adaptation_scores

            scores = adaptation_scores(self.model, self.bundle)
            return {f"eval_{k}": v for k, v in scores.items()}
        net = self.sampler_net(step)
        generator = torch.Generator().manual_seed(self.train_cfg.seed + FIXED_NOISE_OFFSET + 1)
        with torch.random.fork_rng(devices=[]):
            samples = self.model.sample(self.scorer.n, generator=generator, net=net)
            scores = self.scorer.score(samples)
        out = {f"eval_{k}": v for k, v in scores.items()}
        out["eval_seconds"] = round(time.perf_counter() - started, 3)
        return out

    @staticmethod
    def _tensorboard() -> type:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GankitError(
                "train.tensorboard needs the tensorboard package: pip install 'gankit[tensorboard]'"
            ) from None
        return SummaryWriter

    def checkpoint(self, step: int) -> Path:
        self.last_checkpoint = save_checkpoint(
            self.paths.checkpoints, step, self.state_dict(step), self.train_cfg.keep_checkpoints
        )
        return self.last_checkpoint

    # ------------------------------------------------------------------ previews
    def fixed_latent(self) -> dict[str, torch.Tensor]:
        """The run's fixed noise: made once from the seed, saved, and reloaded on resume."""
        path = self.paths.fixed_noise
        if path.exists():
            return torch.load(path, map_location="cpu", weights_only=True)
        generator = torch.Generator().manual_seed(self.train_cfg.seed + FIXED_NOISE_OFFSET)
        latent = self.model.preview_latent(self.train_cfg.n_fixed, generator, self.bundle)
        torch.save(latent, path)
        return latent

    def preview(self, step: int, latent: dict[str, torch.Tensor]) -> Path:
        net = self.sampler_net(step)
        samples = self.model.preview_images(latent, net=net).cpu()
        real = None
        if self.bundle.kind == "toy":
            real = self.bundle.train.tensors[0][:2000]
            self._toy_snapshot(step, net, real)
        path = self.paths.samples / f"step_{step:08d}.png"
        title = f"{self.config['name']} step {step}"
        return save_samples(path, samples, real=real, title=title)

    def _toy_snapshot(self, step: int, net, real: torch.Tensor) -> None:
        """A ~20 kB frame of G against D, for ``gankit explore --what toy --animate``."""
        from gankit.explore.toy import plane_bounds, snapshot

        if self._toy_bounds is None:
            self._toy_bounds = plane_bounds(self.bundle.train.tensors[0][:20000])
        frame = snapshot(self.model, net, real, step, self._toy_bounds, seed=self.train_cfg.seed)
        self.paths.snapshots.mkdir(exist_ok=True)
        atomic_save(frame, self.paths.snapshots / f"step_{step:08d}.pt")

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainResult:
        cfg = self.train_cfg
        main = self.dist.is_main
        if main:
            self.paths.samples.mkdir(parents=True, exist_ok=True)
            if self._summary_writer_cls is not None:
                self.writer = self._summary_writer_cls(str(self.paths.root / "tensorboard"))
            self._truncate_metrics(self.start_step)
        generative = self.model.generative
        latent = self.fixed_latent() if main and generative else None
        streams = {"": self._stream(self.bundle.train, cfg.seed)}
        if self.model.uses_domain_b:
            # the second domain in its own order: an unpaired batch, as the methods assume
            streams["_b"] = self._stream(self.bundle.domain_b.train, cfg.seed + 1)
        gen_name = self.model.generator_name
        sums: dict[str, float] = {}
        count = 0
        last_metrics: dict[str, float] = {}
        sample_path = None
        step = self.start_step
        stopping = False
        started = time.perf_counter()
        bar = self._progress_bar() if main else None
        self.model.train()
        metrics_file = open(self.paths.metrics, "a") if main else contextlib.nullcontext()  # noqa: SIM115
        with _StopFlag() as stop, metrics_file:
            while step < cfg.steps and not stopping:
                batch = {}
                for suffix, stream in streams.items():
                    batch.update({k + suffix: v for k, v in stream.get(step).items()})
                if cfg.channels_last and batch["x"].dim() == 4:
                    batch = {
                        k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                        for k, v in batch.items()
                    }
                stats = self._train_step(batch, step)
                bad = {k: v for k, v in stats.items() if not math.isfinite(v)}
                # Every rank must stop at the same step, or the others would wait forever
                # in their next collective.
                any_bad, stopping = any_rank([bool(bad), stop.signal_name is not None], self.dist)
                if any_bad:
                    raise self._diverged(step + 1, bad or {"(another rank)": math.nan})
                if self.ema is not None:
                    update_ema(self.ema, self.networks.get(gen_name) or self.model.generator)
                step += 1
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
                if step % cfg.log_every == 0 or step == cfg.steps:
                    last_metrics = all_reduce_mean(
                        {k: v / count for k, v in sums.items()}, self.dist
                    )
                    sums, count = {}, 0
                    if main:
                        self._log(metrics_file, step, last_metrics, time.perf_counter() - started)
                    if bar is not None:
                        bar.set_postfix(
                            {k: f"{v:.3g}" for k, v in last_metrics.items() if k.startswith("loss")}
                        )
                if bar is not None:
                    bar.update(1)
                if not main:
                    continue
                # Rank 0's side work runs on the plain networks: no collectives, and
                # checkpoints without DDP's prefixes.
                with unwrapped(self.model, self.networks):
                    if generative and (step % cfg.sample_every == 0 or step == cfg.steps):
                        sample_path = self.preview(step, latent)
                    if self.scorer is not None and (
                        step % cfg.eval_every == 0 or step == cfg.steps
                    ):
                        self._log(
                            metrics_file, step, self.evaluate(step), time.perf_counter() - started
                        )
                    if step % cfg.ckpt_every == 0 or step == cfg.steps:
                        self.checkpoint(step)
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - started
        if stopping:
            if count:
                last_metrics = {k: v / count for k, v in sums.items()}
            if main:
                with unwrapped(self.model, self.networks):
                    self.checkpoint(step)
                    if generative:
                        sample_path = self.preview(step, latent)
        if self.writer is not None:
            self.writer.close()
        curves = save_loss_curves(self.paths.metrics, self.paths.loss_curves) if main else None
        for name, net in self.networks.items():  # hand back the plain networks
            setattr(self.model, name, net)
        return TrainResult(
            self.paths.root,
            step,
            self.last_checkpoint,
            sample_path,
            curves,
            (stop.signal_name or "a signal on another rank") if stopping else None,
            seconds,
            last_metrics,
            self.model,
        )

    # ------------------------------------------------------------------ speed
    def _precision_setup(self) -> None:
        """Autocast dtype, gradient scaler and memory layout, checked against the device."""
        cfg, device = self.train_cfg, self.device
        if cfg.precision == "fp16" and device.type != "cuda":
            raise GankitError(
                f"train.precision fp16 needs CUDA (its gradient scaler is CUDA's); on "
                f"{device.type} use bf16 or fp32"
            )
        if cfg.sync_batchnorm and self.dist.enabled and device.type != "cuda":
            raise GankitError("train.sync_batchnorm needs CUDA devices; leave it off on cpu")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        if cfg.precision == "fp16":
            self.model.grad_scaler = torch.amp.GradScaler("cuda")
        if cfg.channels_last and len(self.model.data_shape) == 3:
            self.model.to(memory_format=torch.channels_last)

    def _compile_networks(self) -> None:
        """``torch.compile`` each network; the plain ones stay in ``self.networks``."""
        self._compile_snapshot = True
        for name, child in list(self.model.named_children()):
            if not any(p.requires_grad for p in child.parameters()):
                continue
            self.networks.setdefault(name, child)
            setattr(self.model, name, torch.compile(child))

    def _uncompile(self) -> None:
        """Drop the compilation, keep DDP where there is one."""
        for name in self.networks:
            wrapped = getattr(self.model, name)
            setattr(self.model, name, getattr(wrapped, "_orig_mod", wrapped))

    def _train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One ``train_step`` under autocast; the first compiled step falls back to eager
        if compiling fails (weights, optimizers and random state rolled back first)."""
        autocast = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        snapshot = None
        if self._compile_snapshot:
            with unwrapped(self.model, self.networks):
                weights = {k: v.clone() for k, v in self.model.state_dict().items()}
            snapshot = (
                weights,
                [copy.deepcopy(o.state_dict()) for o in self.model.optimizers.values()],
                rng_state(),
            )
            self._compile_snapshot = False
        try:
            with autocast:
                stats = self.model.train_step(batch, step)
        except Exception as err:
            if snapshot is None or not type(err).__module__.startswith("torch._"):
                raise
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            sys.stderr.write(
                f"gankit: torch.compile failed ({reason[:200]}); training without it\n"
            )
            self._uncompile()
            with unwrapped(self.model, self.networks):
                self.model.load_state_dict(snapshot[0])
            for optimizer, state in zip(self.model.optimizers.values(), snapshot[1]):
                optimizer.load_state_dict(state)
            set_rng_state(snapshot[2])
            with autocast:
                stats = self.model.train_step(batch, step)
        if self.model.grad_scaler is not None:
            self.model.grad_scaler.update()
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

    def _log(self, handle, step: int, metrics: dict[str, float], elapsed: float) -> None:
        handle.write(json.dumps({"step": step, "time": round(elapsed, 3), **metrics}) + "\n")
        handle.flush()
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, step)

    def _truncate_metrics(self, step: int) -> None:
        """On resume, drop lines logged after the checkpoint we resume from."""
        path = self.paths.metrics
        if not path.exists():
            return
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        kept = [ln for ln in lines if json.loads(ln)["step"] <= step]
        if len(kept) != len(lines):
            path.write_text("".join(ln + "\n" for ln in kept))

    def _diverged(self, step: int, bad: dict[str, float]) -> DivergenceError:
        found = latest_checkpoint(self.paths.checkpoints)
        where = (
            f"the last good checkpoint is {found[1]} (step {found[0]})"
            if found
            else "no checkpoint was written before it"
        )
        values = ", ".join(f"{k} = {v}" for k, v in bad.items())
        return DivergenceError(
            f"training diverged at step {step} ({values}); {where}. "
            "Try lower learning rates (model.lr_g, model.lr_d) or a different loss."
        )


# --------------------------------------------------------------------------- API
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


def _resume_config(run_dir: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    saved = load_yaml(RunPaths(run_dir).config.read_text(), f"'{run_dir}/config.yaml'")
    for key in overrides:
        if not key.startswith("train."):
            raise GankitError(
                f"--resume keeps the run's model and data; only train.* settings may change, "
                f"not '{key}'"
            )
    return resolve_config(saved, overrides)


def train(
    config: str | Path | dict | None = None,
    overrides: Overrides = None,
    *,
    name: str | None = None,
    runs_dir: str | Path = "runs",
    resume: bool = False,
    overwrite: bool = False,
    data_dir: str | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train a model from a preset name, a YAML path or a dict, into ``runs_dir/<name>``.

    Args:
        config: a preset name (default ``dcgan-digits``), a YAML file or a config dict.
        overrides: ``["train.steps=100", ...]`` or ``{"train.steps": 100}``.
        name: the run's name (its directory); defaults to the config's ``name``.
        runs_dir: where run directories live.
        resume: continue the run ``name`` from its newest checkpoint; only ``train.*``
            overrides are allowed (e.g. more steps).
        overwrite: delete an existing run of the same name first.
        data_dir: where to look first for downloadable datasets.
        progress: force the progress bar on or off (default: the config's).

    Returns:
        A :class:`TrainResult` with the run directory and what was written.

    Raises:
        GankitError: bad config, unknown names, an existing run without
            ``overwrite``/``resume``, or missing data.
        DivergenceError: a loss became NaN or infinite.
    """
    if resume and overwrite:
        raise GankitError("--resume and --overwrite contradict each other; pass one of them")
    overrides = parse_overrides(overrides)
    if progress is not None:
        overrides["train.progress"] = progress
    resume_state = None
    if resume:
        source_name = name or (config if isinstance(config, str) else None)
        if source_name is None:
            raise GankitError("--resume needs the run's name: gankit train --resume --name NAME")
        run_dir = Path(runs_dir) / source_name
        if not RunPaths(run_dir).config.is_file():
            raise GankitError(f"cannot resume: '{run_dir}' is not a run (no config.yaml)")
        resolved = _resume_config(run_dir, overrides)
        found = latest_checkpoint(RunPaths(run_dir).checkpoints)
        if found is None:
            raise GankitError(f"cannot resume: run '{run_dir}' has no checkpoint yet")
        resume_state = load_checkpoint(found[1])
        if found[0] >= resolved["train"]["steps"]:
            raise GankitError(
                f"run '{run_dir}' already has {found[0]} of {resolved['train']['steps']} steps; "
                f"raise train.steps to continue (e.g. --set train.steps={2 * found[0]})"
            )
    else:
        resolved = resolve_config(config, overrides)
        if name is not None:
            resolved = resolve_config({**resolved, "name": name})
        run_dir = Path(runs_dir) / resolved["name"]

    device = resolve_device(resolved["train"]["device"])
    if not resume:
        check_run_dir(run_dir, overwrite)
    ctx = init_from_environment(device.type)
    caller_threads = torch.get_num_threads()
    try:
        if device.type == "cuda" and ctx.enabled:
            device = torch.device("cuda", ctx.local_rank)
            torch.cuda.set_device(device)
        threads = resolved["train"]["threads"]
        if threads is None and device.type == "cpu":
            threads = default_threads(resolved["data"]["name"], ctx.local_world_size)
        if threads is not None:
            torch.set_num_threads(threads)
        model, bundle = build(resolved, data_dir)
        trainer = Trainer(resolved, run_dir, model, bundle, resume_state, ctx, device)
        # Everything that can fail on user input has run: only now touch the disk.
        if ctx.is_main:
            if not resume:
                prepare_run_dir(run_dir, overwrite)
            RunPaths(run_dir).config.write_text(dump_yaml(resolved))
        barrier(ctx)
        return trainer.fit()
    finally:
        # a library call leaves the caller's thread count as it found it
        torch.set_num_threads(caller_threads)
        shutdown(ctx)


def default_threads(data_name: str, local_world_size: int = 1) -> int:
    """CPU threads for a run whose ``train.threads`` is unset.

    - Toy 2-D data: 1. Its MLPs do too little per operation to pay for OpenMP's
      fork and join, and when anything else keeps a core busy, two threads wait on
      each other at every operation: on a shared 2-core machine a gan-ring loop ran
      at 2.9 steps/s on 2 threads and at 95 on 1 (``docs/performance.md``).
    - Otherwise the cores divided by the processes on this machine: N ranks with all
      the cores each would spin against each other.
    """
    if data_name in TOY_DATASETS:
        return 1
    return max(1, (os.cpu_count() or 1) // local_world_size)


__all__ = ["TrainResult", "Trainer", "build", "default_threads", "train"]
