"""The jobs gankit does with a run: train it, score it, draw it, compare image sets,
export its network.

:mod:`gankit.api` offers these beside the rest of the commands; :mod:`gankit.bench`
builds its tables from them. Each reads the model's task (:mod:`gankit.tasks`) to pick
what serves it; none of them asks which family it holds. Importing this module is
cheap: each function imports what it needs when it is called.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gankit.errors import GankitError, check_int, choices

if TYPE_CHECKING:
    import torch

    from gankit.config import Overrides
    from gankit.explore.explore import ExploreOptions
    from gankit.metrics.evaluate import EvalReport
    from gankit.runs.load import Run
    from gankit.training.trainer import TrainResult


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
    imports: list[str] | tuple[str, ...] = (),
) -> TrainResult:
    """Train a model from a preset name, a YAML path or a dict, into ``runs_dir/<name>``.

    Args:
        config: a preset name (default ``dcgan-digits``), a YAML file or a config dict.
        overrides: ``["train.steps=100", ...]`` or ``{"train.steps": 100}``.
        name: the run's name (its directory); defaults to the config's ``name``.
        runs_dir: where run directories live.
        resume: continue the run ``name`` from its newest intact checkpoint; only
            ``train.*`` overrides are allowed (e.g. more steps).
        overwrite: replace an existing run of the same name. Only a folder that is a
            gankit run is replaced, once every input check has passed; the old run is
            kept as ``<name>~old`` until the new one saves its first checkpoint, and
            put back if it fails before that.
        data_dir: where to look first for downloadable datasets.
        progress: force the progress bar on or off (default: the config's).
        imports: the user's modules that register models (``--import``), imported
            first and recorded in the run's config (see docs/byo.md).

    Returns:
        A :class:`TrainResult` with the run directory and what was written.

    Raises:
        GankitError: bad config, unknown names, a run name that is not a folder name,
            an existing run without ``overwrite``/``resume``, a run another process is
            training, missing data, or a full disk.
        DivergenceError: a loss became NaN or infinite.
    """
    from gankit.config import check_run_name, parse_overrides, resolve_config
    from gankit.registry import import_modules
    from gankit.runs.folder import check_run_dir, check_runs_dir, is_run
    from gankit.runs.lock import run_lock
    from gankit.training.distributed import launch_rank
    from gankit.training.run import resume_config, resume_state

    if resume and overwrite:
        raise GankitError("--resume and --overwrite contradict each other; pass one of them")
    import_modules(imports)
    overrides = parse_overrides(overrides)
    if progress is not None:
        overrides["train.progress"] = progress
    runs_root = check_runs_dir(runs_dir)
    # Under torchrun only rank 0 writes the run, so only rank 0 holds its lock.
    writer = launch_rank() == 0
    with contextlib.ExitStack() as held:
        state = None
        if resume:
            source_name = name or (config if isinstance(config, str) else None)
            if source_name is None:
                raise GankitError(
                    "--resume needs the run's name: gankit train --resume --name NAME"
                )
            run_dir = runs_root / check_run_name(source_name)
            if not is_run(run_dir):
                raise GankitError(f"cannot resume: '{run_dir}' is not a run (no config.yaml)")
            if writer:  # before reading it: nobody else is writing it
                held.enter_context(run_lock(run_dir))
            resolved = resume_config(run_dir, overrides)
            state = resume_state(run_dir, resolved["train"]["steps"], writer)
        else:
            resolved = resolve_config(config, overrides, imports)
            if name is not None:
                resolved = resolve_config({**resolved, "name": name})
            run_dir = runs_root / resolved["name"]
            check_run_dir(run_dir, overwrite)
            if writer and overwrite and is_run(run_dir):  # refused now if it is training
                held.enter_context(run_lock(run_dir))
        return _train(resolved, run_dir, state, overwrite, data_dir, held)


def _train(
    resolved: dict,
    run_dir: Path,
    state: dict | None,
    overwrite: bool,
    data_dir: str | None,
    held: contextlib.ExitStack,
) -> TrainResult:
    """Build and train a checked config into ``run_dir`` (rank 0 holds what ``held`` does)."""
    import torch

    from gankit.config import dump_yaml
    from gankit.explore.pictures import save_loss_curves
    from gankit.files import atomic_write_text
    from gankit.nn import torch_threads
    from gankit.runs.folder import RunPaths, fresh_run_dir
    from gankit.tasks import get_task
    from gankit.training.distributed import barrier, init_from_environment, shutdown
    from gankit.training.run import build, load_pretrained, with_pretrained
    from gankit.training.runtime import default_threads, resolve_device
    from gankit.training.trainer import Trainer

    device = resolve_device(resolved["train"]["device"])
    ctx = init_from_environment(device.type)
    threads = resolved["train"]["threads"]
    try:
        with torch_threads(threads):  # None: the caller's count, until the data's kind is known
            if device.type == "cuda" and ctx.enabled:
                device = torch.device("cuda", ctx.local_rank)
                torch.cuda.set_device(device)
            weights: dict = {}
            if state is None:  # a resume's checkpoint already holds these parts
                resolved, weights = with_pretrained(resolved)
            model, bundle = build(resolved, data_dir)
            if threads is None and device.type == "cpu":
                torch.set_num_threads(default_threads(bundle.kind, ctx.local_world_size))
            load_pretrained(model, weights)
            task = get_task(model)
            trainer = Trainer(
                resolved, run_dir, model, bundle, state, ctx, device, task.previews, task.scores
            )
            # Everything that can fail on user input has run: only now touch the disk.
            if ctx.is_main:
                if state is None:
                    replaced = held.enter_context(fresh_run_dir(run_dir, overwrite))
                    trainer.on_checkpoint = replaced.commit if replaced is not None else None
                atomic_write_text(RunPaths(run_dir).config, dump_yaml(resolved))
            barrier(ctx)
            result = trainer.fit()
            if ctx.is_main:
                paths = RunPaths(run_dir)
                result.loss_curves = save_loss_curves(paths.metrics, paths.loss_curves)
            # The ranks leave together: a rank that exited while rank 0 was still saving
            # sometimes aborted in its teardown ('terminate called without an active
            # exception' on stderr after a signal; 5 of 16 stops under load, 0 of 16 with
            # this barrier). Were rank 0 to fail first, the launcher stops the others.
            barrier(ctx)
            return result
    finally:
        shutdown(ctx)


def evaluate_run(
    run: str | Path,
    metrics: str | list[str] | None = None,
    n: int | None = None,
    features: str = "evaluator",
    split: str = "test",
    seed: int = 0,
    inception_weights: str | None = None,
    runs_dir: str | Path = "runs",
    data_dir: str | None = None,
    train_evaluator: bool = False,
    write: bool = True,
    overwrite: bool = True,
    step: int | None = None,
    progress: bool = False,
) -> EvalReport:
    """Score a run's newest checkpoint as its task scores it; writes ``eval.json``.

    Samplers: the data's metrics next to the real-vs-real floor, and the family's own.
    Translators: cycle error, FD to the other domain, the class kept. Classifiers and
    segmenters: accuracy or mIoU on both domains. ``step`` scores that kept checkpoint
    instead of the newest; ``progress`` says on stderr what is being done.

    ``eval.json`` holds the latest evaluation at its top level and the earlier ones in
    its ``history``. The same step scored with the same settings (metrics, n, features,
    split, seed) gives the same numbers: with ``overwrite=False`` it is not scored
    again, and the report returned is the one kept (``report.reused``); with
    ``overwrite`` it is scored again and replaces the latest. An ``eval.json`` that
    cannot be read is refused without ``overwrite`` and replaced with it.
    """
    from gankit.data import load_data
    from gankit.metrics.evaluate import EvalOptions, EvalReport, same_evaluation, with_history
    from gankit.metrics.progress import Progress
    from gankit.runs.load import load_run
    from gankit.runs.summary import read_eval
    from gankit.tasks import get_task
    from gankit.training.distributed import init_from_environment, launch_rank, shutdown

    progress = progress and launch_rank() == 0  # under torchrun, rank 0 says it once
    loaded = load_run(run, runs_dir, step)
    out = loaded.paths.eval
    options = EvalOptions(
        metrics, n, features, split, seed, inception_weights, data_dir, train_evaluator,
        progress,
    )  # fmt: skip
    saved = None
    if write:
        try:
            saved = read_eval(out)
        except GankitError:
            if not overwrite:
                raise
    same = saved is not None and same_evaluation(saved, loaded.step, options.asked())
    if same and not overwrite:
        kept = EvalReport.from_json(saved)
        kept.reused = True
        return kept
    Progress(progress).say(f"scoring run '{loaded.path.name}' at step {loaded.step}...")
    bundle = load_data(loaded.config["data"], data_dir)
    # under torchrun the ranks share the work (the sample task splits it); rank 0 writes
    ctx = init_from_environment("cpu")
    try:
        report = get_task(loaded.model).evaluate(loaded, bundle, options)
    finally:
        shutdown(ctx)
    report.extra["asked"] = options.asked()
    report.follower = not ctx.is_main  # tasks that do not split the work computed it all
    if write and ctx.is_main:
        with_history(report, saved, replace=same).write(out)
    return report


def explore(
    run: Run | str | Path,
    what: str = "grid",
    options: ExploreOptions | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    *,
    step: int | None = None,
    compare: Sequence[str | Path] = (),
    runs_dir: str | Path = "runs",
) -> list[Path]:
    """Write the pictures of ``what`` for a run; returns their paths.

    ``run`` is a loaded :class:`~gankit.runs.load.Run`, or a run folder or name under
    ``runs_dir`` (then ``step`` picks a kept checkpoint, and the pictures go to
    ``RUN/explore/step_N`` unless ``out_dir`` says where). ``compare`` names other runs
    to draw beside it (``segment``).

    Raises:
        GankitError: ``what`` is no picture gankit draws, or not one that applies to
            this run's task and family (the message lists those that do).
    """
    from gankit.explore.explore import ExploreOptions, write_pictures
    from gankit.runs.load import Run, load_run
    from gankit.tasks import all_views, get_task

    options = options or ExploreOptions()
    if compare:
        options.compare = [load_run(other, runs_dir) for other in compare]
    if not isinstance(run, Run):
        run = load_run(run, runs_dir, step)
        if out_dir is None and step is not None:  # beside the newest checkpoint's pictures
            out_dir = run.paths.explore / f"step_{step:08d}"
    task = get_task(run.model)
    views = task.views_for(run.model)
    if what not in views:
        known = all_views()
        if what not in known:
            raise GankitError(
                f"unknown --what '{what}'; valid for run '{run.path.name}': "
                f"{choices(views) or 'none'}"
            )
        raise GankitError(
            f"--what {what} does not apply to run '{run.path.name}', a '{run.model.model_name}' "
            f"(task {task.name}); valid for it: {choices(views) or 'none'}; models that draw "
            f"{what}: {choices(drawn_by(what))}"
        )
    pictures = views[what](run, options)
    out = Path(out_dir) if out_dir is not None else run.paths.explore
    return write_pictures(pictures, out, overwrite)


#: The most images ``gankit fid`` reads from one side; a run draws 10,000 by default.
FID_MAX_N = 50_000
FID_RUN_N = 10_000
#: Images embedded per pass: bounds memory for folders and arrays of any size.
FID_CHUNK = 500


@dataclass
class ImageSet:
    """One side of ``gankit fid``: what it is, how many images, and their features."""

    spec: str
    kind: str
    n: int
    features: torch.Tensor


def fid(
    a: str,
    b: str,
    n: int | None = None,
    seed: int = 0,
    runs_dir: str | Path = "runs",
    data_dir: str | None = None,
    inception: str | None = None,
    progress: bool = False,
    infinity: bool = False,
) -> tuple[dict[str, float], ImageSet, ImageSet]:
    """Inception-FID, KID and precision/recall between two image sets.

    Each of ``a`` and ``b`` is a folder of images (PNG, JPEG, ...: the folders other
    tools write), a ``.npy`` array, a gankit run (``n`` samples, 10,000 by default,
    drawn with ``seed``), or ``data:NAME[:SPLIT]`` (the first ``n`` images of a
    dataset's split, ``test`` by default). Features are the TensorFlow FID
    InceptionV3's pool3; a dataset's are cached. ``progress`` says on stderr what is
    being done, with a bar per side. ``infinity`` adds ``fid_inf`` (FID∞, Chong &
    Forsyth 2020: FID on five subsets of A, extrapolated to 1/n → 0) and its slope
    ``fid_inf_slope`` (k in FID(n) = FID∞ + k/n).

    Raises:
        GankitError: a source that is none of these, or holds no usable images.
    """
    from gankit.conventions import MAX_SEED
    from gankit.metrics.features import inception_features
    from gankit.metrics.progress import Progress
    from gankit.metrics.registry import MetricInput, registered

    if n is not None:
        check_int("--n", n, 2, FID_MAX_N)
    check_int("--seed", seed, 0, MAX_SEED)
    shown = Progress(progress)
    shown.say("loading the InceptionV3 (FID) network...")
    extractor = inception_features(inception)
    sides = [
        _image_set(spec, n, seed, runs_dir, data_dir, extractor, shown, side)
        for spec, side in ((a, "A"), (b, "B"))
    ]
    inputs = MetricInput(
        features={"features": sides[0].features},
        reference_features={"features": sides[1].features},
        seed=seed,
    )
    scores: dict[str, float] = {}
    for name in ("fd", "kid", "pr") + (("fd_inf",) if infinity else ()):
        scores.update(registered()[name].function(inputs))
    # in InceptionV3's features, the Fréchet distance is the FID (and FD∞ the FID∞)
    inception_names = {"fd": "fid", "fd_inf": "fid_inf", "fd_inf_slope": "fid_inf_slope"}
    scores = {inception_names.get(key, key): value for key, value in scores.items()}
    return scores, sides[0], sides[1]


def _image_set(spec, n, seed, runs_dir, data_dir, extractor, progress, side) -> ImageSet:
    import torch

    from gankit.data import load_dataset, runtime_options
    from gankit.explore.latent import sample_chunks
    from gankit.images import array_images, image_files, read_images
    from gankit.metrics.features import cached_features
    from gankit.runs.folder import is_run
    from gankit.runs.load import load_run

    def embed(chunks, count: int, what: str) -> torch.Tensor:
        progress.say(f"{side}: InceptionV3 features of {count:,} {what} ({spec})...")
        parts = []
        with progress.bar(count, f"{side}: features") as bar:
            for chunk in chunks:
                parts.append(extractor.features(chunk))
                bar.update(len(chunk))
        return torch.cat(parts) if parts else torch.empty(0, 2048)

    path = Path(spec).expanduser()
    if spec.startswith("data:"):
        name, _, split = spec[len("data:") :].rpartition(":")
        if split not in ("train", "test"):
            name, split = spec[len("data:") :], "test"
        bundle = load_dataset(name, **runtime_options(name, data_dir))
        if bundle.kind != "image":
            raise GankitError(f"'{spec}' is {bundle.kind} data; FID needs images")
        part = bundle.train if split == "train" else bundle.test
        if part is None:
            raise GankitError(f"dataset '{name}' has no {split} split; use data:{name}:train")
        count = min(n or len(part), len(part), FID_MAX_N)
        images = torch.stack([part[i][0] for i in range(count)])
        progress.say(f"{side}: InceptionV3 features of {count:,} {name} {split} images...")
        return ImageSet(spec, f"first {count} of {name}'s {split} split", count,
                        cached_features(extractor, images, progress))  # fmt: skip
    if path.is_dir() and not is_run(path):
        files = image_files(path)[: n or FID_MAX_N]
        if len(files) < 2:
            raise GankitError(
                f"folder '{spec}' holds {len(files)} image file(s); FID needs at least 2"
            )
        chunks = (read_images(files[i : i + FID_CHUNK]) for i in range(0, len(files), FID_CHUNK))
        return ImageSet(spec, "image folder", len(files), embed(chunks, len(files), "images"))
    if path.suffix == ".npy" and path.is_file():
        import numpy as np

        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as err:
            reason = type(err).__name__
            raise GankitError(f"cannot read '{spec}' as a .npy array: {reason}") from None
        count = min(n or len(array), len(array), FID_MAX_N)
        chunks = (
            array_images(np.asarray(array[i : min(i + FID_CHUNK, count)]), spec)
            for i in range(0, count, FID_CHUNK)
        )
        return ImageSet(spec, ".npy array", count, embed(chunks, count, "images"))
    if path.exists() and not path.is_dir():
        raise GankitError(
            f"'{spec}' is a file that gankit fid does not read; give a folder of images, a .npy "
            "array, a run, or data:NAME[:SPLIT]"
        )
    if not path.exists() and not (Path(runs_dir) / spec).is_dir():
        raise GankitError(
            f"'{spec}' is no folder, .npy file, run (here or under '{runs_dir}') or data:NAME; "
            "give one of those"
        )
    loaded = load_run(spec, runs_dir)
    count = n or FID_RUN_N
    chunks = sample_chunks(loaded, count, seed)
    what = f"samples drawn from step {loaded.step}"
    return ImageSet(spec, f"run at step {loaded.step}", count, embed(chunks, count, what))


#: How to use each exported file, for its JSON.
EXPORT_USE = {
    "safetensors": "model = gankit.create_model(model_name, **hparams); "
    "getattr(model, network) (or model.translator(direction)).load_state_dict("
    "safetensors.torch.load_file(PATH)); then model.render(latent) or the network itself",
    "torchscript": "net = torch.jit.load(PATH); output = net(*inputs)",
    "onnx": "onnxruntime.InferenceSession(PATH).run(None, {input name: array}), or "
    "onnx.reference.ReferenceEvaluator(PATH)",
}


def export_run(
    run: str | Path,
    fmt: str,
    out: str | Path | None = None,
    step: int | None = None,
    direction: str | None = None,
    runs_dir: str | Path = "runs",
    overwrite: bool = False,
) -> Path:
    """Write the network a run's task makes (a sampler's generator, a translator, a
    classifier's or segmenter's predictor) as
    ``fmt`` (safetensors, torchscript or onnx), with ``<file>.json`` beside it naming the
    model, its settings, inputs and outputs. ``out`` defaults to
    ``RUN/export/step_N.<suffix>``.

    Raises:
        GankitError: an unknown format, a task that exports no network, a file that
            exists without ``overwrite``, or a missing package (``gankit[export]``).
    """
    from gankit.export import FORMATS, check_format, json_path, write
    from gankit.runs.load import load_run
    from gankit.tasks import TASKS, get_task
    from gankit.version import __version__

    check_format(fmt)
    loaded = load_run(run, runs_dir, step)
    task = get_task(loaded.model)
    if task.export is None:
        raise GankitError(
            f"run '{loaded.path.name}' ({loaded.model.model_name}, task {task.name}) has no "
            f"network gankit exports; tasks that export one: "
            f"{choices(t.name for t in TASKS.values() if t.export is not None)}"
        )
    path = (
        Path(out)
        if out is not None
        else loaded.paths.export / f"step_{loaded.step:08d}{FORMATS[fmt]}"
    )
    for existing in (path, json_path(path)):
        if existing.exists() and not overwrite:
            raise GankitError(f"'{existing}' already exists; pass --overwrite or choose --out")
    exportable = task.export(loaded, direction)
    meta = {
        "gankit": __version__,
        "run": str(loaded.path),
        "step": loaded.step,
        "checkpoint": str(loaded.checkpoint),
        "task": task.name,
        "model_name": loaded.model.model_name,
        "hparams": loaded.model.hparams,
        "imports": loaded.config.get("imports", []),
        "use": EXPORT_USE[fmt],
    }
    return write(exportable, fmt, path, meta)


def drawn_by(what: str) -> list[str]:
    """The registered models whose task and family give them the view ``what``."""
    from gankit.registry import get_spec, list_models
    from gankit.tasks import get_task

    names = []
    for name in list_models():
        cls = get_spec(name).cls
        task = get_task(cls)
        if what in task.default_views or (what in task.views and what in cls.views):
            names.append(name)
    return names
