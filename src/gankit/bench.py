"""Benchmarks behind ``gankit bench``: gankit's presets against published numbers.

These are measurements, not tests: each prints a markdown table and the command that
made it, for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gankit.errors import GankitError, choices

#: PacGAN (Lin et al., NeurIPS 2018), Table 1: mean ± standard error over 10 trials,
#: 2500 samples, ~400k steps. (modes, high-quality %) for ring (of 8) and grid (of 25).
PACGAN_TABLE1 = {
    "GAN": ((6.3, 0.5), (98.2, 0.2), (17.3, 0.8), (94.8, 0.7)),
    "ALI": ((6.6, 0.3), (97.6, 0.4), (24.1, 0.4), (95.7, 0.6)),
    "PacGAN2": ((7.9, 0.1), (95.6, 2.0), (23.8, 0.7), (91.3, 0.8)),
    "PacGAN3": ((7.8, 0.1), (97.7, 0.3), (24.6, 0.4), (94.2, 0.4)),
    "PacGAN4": ((7.8, 0.1), (95.9, 1.4), (24.8, 0.2), (93.6, 0.6)),
}

TOY_MIXTURES = ("ring", "grid")
#: What ``gankit bench toy`` runs unless told otherwise (each run < 3 min on 2 cores).
DEFAULT_TOY_PRESETS = ("gan-ring", "gan-grid")
N_SAMPLES = 2500


@dataclass
class ToyResult:
    preset: str
    mixture: str
    seed: int
    modes: int
    n_modes: int
    high_quality: float
    reverse_kl: float
    seconds: float
    steps: int


def presets_on(datasets: tuple[str, ...]) -> dict[str, str]:
    """Presets of samplers (task ``sample``) whose data is one of ``datasets`` -> that
    dataset. Translators, classifiers and segmenters are left out."""
    from gankit.config import list_presets, load_preset
    from gankit.registry import get_spec

    out = {}
    for name in list_presets():
        preset = load_preset(name)
        data = preset.get("data", {})
        if data.get("name") in datasets and get_spec(preset["model"]["name"]).cls.task == "sample":
            out[name] = data["name"]
    return out


def toy_presets() -> dict[str, str]:
    """Presets trained on ring or grid -> their mixture."""
    return presets_on(TOY_MIXTURES)


def run_toy(
    presets: list[str] | None = None,
    seeds: int = 5,
    overrides: list[str] | None = None,
    runs_dir: str | Path | None = None,
    on_result: Callable[[ToyResult], None] | None = None,
) -> list[ToyResult]:
    """Train each toy preset for ``seeds`` seeds and score 2500 samples per run."""
    from gankit.data import load_dataset
    from gankit.jobs import train
    from gankit.metrics.toy import mode_coverage
    from gankit.runs.load import load_run

    available = toy_presets()
    presets = presets or list(DEFAULT_TOY_PRESETS)
    for name in presets:
        if name not in available:
            raise GankitError(f"'{name}' is not a ring/grid preset; valid: {choices(available)}")
    if seeds < 1:
        raise GankitError(f"--seeds must be >= 1, got {seeds}")
    results = []
    with tempfile.TemporaryDirectory(prefix="gankit-bench-") as tmp:
        root = Path(runs_dir) if runs_dir is not None else Path(tmp)
        for name in presets:
            bundle = load_dataset(available[name])
            for seed in range(seeds):
                started = time.perf_counter()
                result = train(
                    name,
                    [f"train.seed={seed}", *(overrides or [])],
                    name=f"{name}-seed{seed}",
                    runs_dir=root,
                    progress=False,
                )
                seconds = time.perf_counter() - started
                if result.interrupted:
                    # Ctrl-C / SIGTERM stopped the run: stop the benchmark, not just this run.
                    raise KeyboardInterrupt(result.interrupted)
                run = load_run(result.run_dir)
                cover = mode_coverage(
                    run.sample(N_SAMPLES, seed=seed), bundle.modes, bundle.mode_std
                )
                row = ToyResult(
                    name,
                    available[name],
                    seed,
                    cover.modes_captured,
                    cover.n_modes,
                    cover.high_quality,
                    cover.reverse_kl,
                    seconds,
                    result.step,
                )
                results.append(row)
                if on_result is not None:
                    on_result(row)
    return results


def _mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, se


def toy_table(results: list[ToyResult]) -> str:
    """Markdown: PacGAN's rows, then one row per gankit preset (mean ± standard error)."""
    header = (
        "| method | ring modes (of 8) | ring high-quality | grid modes (of 25) "
        "| grid high-quality | steps | time per run |\n|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for method, (rm, rq, gm, gq) in PACGAN_TABLE1.items():
        lines.append(
            f"| {method} (PacGAN, published) | {rm[0]} ± {rm[1]} | {rq[0]} ± {rq[1]} % "
            f"| {gm[0]} ± {gm[1]} | {gq[0]} ± {gq[1]} % | ~400k | — |"
        )
    by_preset: dict[str, list[ToyResult]] = {}
    for row in results:
        by_preset.setdefault(row.preset, []).append(row)
    for preset, rows in by_preset.items():
        modes = _mean_se([r.modes for r in rows])
        quality = _mean_se([100 * r.high_quality for r in rows])
        seconds = statistics.fmean(r.seconds for r in rows)
        cells = [f"{modes[0]:.1f} ± {modes[1]:.1f}", f"{quality[0]:.1f} ± {quality[1]:.1f} %"]
        empty = ["—", "—"]
        ring, grid = (cells, empty) if rows[0].mixture == "ring" else (empty, cells)
        lines.append(
            f"| gankit `{preset}` ({len(rows)} seeds) | {' | '.join(ring)} | {' | '.join(grid)} "
            f"| {rows[0].steps} | {seconds:.0f} s |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------- image presets
IMAGE_DATASETS = ("digits", "fashion-mnist")
#: Metrics of ``gankit bench images``, in the dataset's evaluator features.
IMAGE_METRICS = "fd,kid,is"


@dataclass
class ImageResult:
    preset: str
    dataset: str
    resolution: int
    steps: int
    seconds: float
    scores: dict[str, float]
    floor: dict[str, float]
    evaluator_accuracy: float | None
    eval_seconds: float


def image_presets() -> dict[str, str]:
    """Presets trained on digits or fashion-mnist -> their dataset."""
    return presets_on(IMAGE_DATASETS)


def run_images(
    presets: list[str] | None = None,
    steps: int = 2000,
    n: int = 2000,
    seed: int = 0,
    overrides: list[str] | None = None,
    runs_dir: str | Path | None = None,
    data_dir: str | None = None,
    on_result: Callable[[ImageResult], None] | None = None,
) -> list[ImageResult]:
    """Train each image preset for the same budget of ``steps`` and score it.

    FD, KID and IS are measured in the features of the dataset's evaluator classifier
    (trained and cached on first use) on ``n`` samples against the test split, next to
    the real-vs-real floor of the same evaluator.
    """
    from gankit.jobs import evaluate_run, train

    available = image_presets()
    presets = presets or list(available)
    for name in presets:
        if name not in available:
            raise GankitError(f"'{name}' is not an image preset; valid: {choices(available)}")
    if steps < 1:
        raise GankitError(f"--steps must be >= 1, got {steps}")
    results = []
    with tempfile.TemporaryDirectory(prefix="gankit-bench-") as tmp:
        root = Path(runs_dir) if runs_dir is not None else Path(tmp)
        for name in presets:
            started = time.perf_counter()
            result = train(
                name,
                [f"train.steps={steps}", f"train.seed={seed}", *(overrides or [])],
                name=f"{name}-{steps}steps-seed{seed}",
                runs_dir=root,
                progress=False,
                data_dir=data_dir,
            )
            seconds = time.perf_counter() - started
            if result.interrupted:
                raise KeyboardInterrupt(result.interrupted)
            report = evaluate_run(
                result.run_dir,
                metrics=IMAGE_METRICS,
                n=n,
                seed=seed,
                runs_dir=root,
                data_dir=data_dir,
                train_evaluator=True,
            )
            row = ImageResult(
                name,
                available[name],
                report.extra["resolution"],
                result.step,
                seconds,
                report.scores,
                report.floor,
                report.extra.get("evaluator_test_accuracy"),
                report.seconds,
            )
            results.append(row)
            if on_result is not None:
                on_result(row)
    return results


def image_table(results: list[ImageResult]) -> str:
    """Markdown: one row per preset, and a real-vs-real floor row per evaluator."""
    lines = [
        "| preset | data | steps | train time | FD ↓ | KID ↓ | IS ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    floors: dict[tuple[str, int], ImageResult] = {}
    for row in results:
        kid = f"{row.scores['kid']:.4f} ± {row.scores['kid_std']:.4f}"
        lines.append(
            f"| `{row.preset}` | {row.dataset} {row.resolution}px | {row.steps} "
            f"| {row.seconds:.0f} s | {row.scores['fd']:.3f} | {kid} | {row.scores['is']:.2f} |"
        )
        floors.setdefault((row.dataset, row.resolution), row)
    for (dataset, resolution), row in floors.items():
        accuracy = (
            f", evaluator test accuracy {100 * row.evaluator_accuracy:.1f} %"
            if row.evaluator_accuracy is not None
            else ""
        )
        kid = f"{row.floor['kid']:.4f} ± {row.floor['kid_std']:.4f}"
        lines.append(
            f"| real train vs test (floor{accuracy}) | {dataset} {resolution}px | — | — "
            f"| {row.floor['fd']:.3f} | {kid} | {row.floor['is']:.2f} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------- domain adaptation
@dataclass
class AdaptResult:
    run: str
    model: str
    steps: int
    seconds: float
    scores: dict[str, float]
    #: the row's method: the preset's own model name, or a baseline's label
    label: str = ""
    seed: int = 0


def adaptation_of(model_name: str, preset: str):
    """The :class:`~gankit.tasks.Adaptation` of a model's task, for ``gankit adapt``.

    Raises:
        GankitError: the model's task is not adapted, or the family has no baseline.
    """
    from gankit.registry import get_spec
    from gankit.tasks import get_task

    cls = get_spec(model_name).cls
    adaptation = get_task(cls).adaptation
    if adaptation is None or cls.baseline_overrides is None:
        raise GankitError(
            f"gankit adapt trains a DANN, pixel-level or AdaptSeg preset against its "
            f"baselines; '{preset}' trains a '{model_name}' (try dann-digits-m, "
            "pixel-digits-m or adaptseg-segshift)"
        )
    return adaptation


def run_adaptation(
    preset: str = "dann-digits-m",
    overrides: list[str] | None = None,
    runs_dir: str | Path = "runs",
    overwrite: bool = False,
    data_dir: str | None = None,
    on_result: Callable[[AdaptResult], None] | None = None,
    seeds: int = 1,
) -> list[AdaptResult]:
    """Train an adaptation preset and its baselines with the same data and steps.

    The baselines are the family's :meth:`~gankit.models.Model.baselines`. For DANN,
    ``source_only``: the same feature extractor and classifier, no domain classifier,
    never shown the target. For AdaptSeg, both adversarial weights 0. For pixel-level
    adaptation, DANN's network as source-only and as DANN, never shown a translation.
    ``seeds`` > 1 repeats every run with ``train.seed`` 0 … seeds−1.
    """
    from gankit.config import resolve_config
    from gankit.jobs import evaluate_run, train
    from gankit.registry import get_spec

    if seeds < 1:
        raise GankitError(f"--seeds must be >= 1, got {seeds}")
    config = resolve_config(preset, overrides or [])
    model_name = config["model"]["name"]
    adaptation_of(model_name, preset)
    cls = get_spec(model_name).cls
    # a preset that already is the baseline (source-only-digits-m) has nothing to compare
    if all(config["model"].get(key) == value for key, value in cls.baseline_overrides.items()):
        raise GankitError(
            f"gankit adapt trains a DANN or AdaptSeg preset against its source-only baseline; "
            f"'{preset}' trains a '{model_name}' that is already that baseline "
            "(try dann-digits-m or adaptseg-segshift)"
        )
    runs = {model_name: config}
    for label, model in cls.baselines(config["model"]).items():
        runs[label] = {**config, "name": f"{config['name']}-{label}", "model": model}
    results = []
    for seed in range(seeds):
        for label, run_config in runs.items():
            if seeds > 1:
                run_config = {
                    **run_config,
                    "name": f"{run_config['name']}-seed{seed}",
                    "train": {**run_config["train"], "seed": seed},
                }
            started = time.perf_counter()
            trained = train(run_config, runs_dir=runs_dir, overwrite=overwrite, data_dir=data_dir)
            if trained.interrupted:
                raise KeyboardInterrupt(trained.interrupted)
            report = evaluate_run(trained.run_dir, runs_dir=runs_dir, data_dir=data_dir)
            row = AdaptResult(
                str(trained.run_dir),
                run_config["model"]["name"],
                trained.step,
                time.perf_counter() - started,
                report.scores,
                label,
                run_config["train"]["seed"],
            )
            results.append(row)
            if on_result is not None:
                on_result(row)
    return results
