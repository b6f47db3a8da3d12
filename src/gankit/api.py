"""What the ``gankit`` commands do, as library calls: one function per command.

Each command of :mod:`gankit.cli` parses its options, calls one function here and prints
what it returns; a notebook or a script calls the same functions. The jobs on a run
(train, evaluate_run, explore, fid, export_run) are :mod:`gankit.jobs`'s, offered here;
the rest are thin calls into the module that does the work. Each reads the model's task
(:mod:`gankit.tasks`) to pick what serves it; none asks which family it holds.

Importing this module is cheap: each function imports what it needs when it is called,
so ``gankit presets`` or ``gankit --help`` never loads torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError, float_list, int_list
from gankit.jobs import ImageSet, drawn_by, evaluate_run, explore, export_run, fid, train

if TYPE_CHECKING:
    from gankit.explore.som import SomMap
    from gankit.runs.load import Run
    from gankit.runs.summary import RunSummary
    from gankit.vision.attack import AttackReport


# --------------------------------------------------------------------- launching
def launch_train(
    nproc: int,
    config: str | None = None,
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    runs_dir: str | Path = "runs",
    resume: bool = False,
    overwrite: bool = False,
    data_dir: str | None = None,
    progress: bool = True,
    imports: Sequence[str] = (),
) -> int:
    """``gankit train ... --nproc N``: the same training in ``nproc`` processes of this
    machine, under torch's launcher (torchrun); returns the launcher's exit code.

    Raises:
        GankitError: ``nproc`` below 1 or above the machine's CPU cores (CUDA devices
            for ``train.device=cuda``), or a call from inside a torchrun launch.
    """
    import os

    import torch

    from gankit.config import resolve_config
    from gankit.training.distributed import launch
    from gankit.training.runtime import resolve_device

    if nproc < 1:
        raise GankitError(f"--nproc must be >= 1, got {nproc}")
    # Checked once here: a missing device would otherwise fail once per process.
    device = resolve_device(resolve_config(config, list(overrides))["train"]["device"]).type
    if device == "cuda":
        available, what = torch.cuda.device_count(), "CUDA devices"
    else:
        available, what = os.cpu_count() or 1, "CPU cores"
    if nproc > available:
        raise GankitError(
            f"--nproc {nproc} is more than this machine's {available} {what}; use at most "
            f"{available} (or torchrun --nnodes for several machines)"
        )
    if os.environ.get("WORLD_SIZE"):
        raise GankitError("--nproc inside a torchrun launch; drop --nproc")
    # each process runs the same command, without --nproc
    command = ["train", *([config] if config else [])]
    command += [f"--set={item}" for item in overrides]
    command += [f"--name={name}"] if name is not None else []
    command += ["--resume"] if resume else []
    command += ["--overwrite"] if overwrite else []
    command += [f"--data-dir={data_dir}"] if data_dir is not None else []
    command += [f"--runs-dir={runs_dir}", "--progress" if progress else "--no-progress"]
    command += [f"--import={module}" for module in imports]
    return launch(nproc, command)


# --------------------------------------------------------------------- a run's outputs
@dataclass
class Written:
    """What a command wrote from a run's checkpoint: the loaded run and the paths."""

    run: Run
    paths: list[Path]


#: ``gankit sample --out``: the file formats; a path with no suffix is a folder of PNGs.
SAMPLE_FORMATS = (".png", ".npy", ".pt")


def sample(
    run: str | Path,
    n: int = 64,
    out: str | Path | None = None,
    seed: int = 0,
    labels: str | Sequence[int] | None = None,
    overwrite: bool = False,
    step: int | None = None,
    runs_dir: str | Path = "runs",
) -> Written:
    """Draw ``n`` samples from a run's newest checkpoint (or ``step``'s), with the EMA
    generator where one is kept, into ``out``: a ``.png`` grid, a ``.npy`` or ``.pt``
    tensor, or a folder (a path with no suffix) of one PNG per sample, as torch-fidelity
    and clean-fid read. ``out`` defaults to ``RUN/samples/sample_nN_seedS.png``.
    ``labels``: one class label, or one per sample (``"3,3,7"``), for conditional models.

    The generator draws 1,024 samples at a time, and a ``.npy`` file or a folder is
    written as they come, so memory stays bounded for any ``n`` up to 50,000.

    Raises:
        GankitError: a run not found, an unknown format, an ``out`` that exists without
            ``overwrite``, or labels that are not integers.
    """
    from gankit.explore.latent import sample_chunks
    from gankit.explore.pictures import write_sample_file, write_sample_folder
    from gankit.runs.load import load_run

    loaded = load_run(run, runs_dir, step)
    at = "" if step is None else f"_step{step}"
    path = (
        Path(out) if out is not None else loaded.paths.samples / f"sample_n{n}_seed{seed}{at}.png"
    )
    if path.suffix == "":
        chunks = sample_chunks(loaded, n, seed, int_list(labels, "--labels"))
        text = labels if labels is None or isinstance(labels, str) else ",".join(map(str, labels))
        meta = {"run": str(loaded.path), "step": loaded.step, "seed": seed, "labels": text}
        write_sample_folder(path, chunks, meta, overwrite)
        return Written(loaded, [path])
    if path.suffix not in SAMPLE_FORMATS:
        raise GankitError(
            f"--out '{path}' has an unknown format; valid: {', '.join(SAMPLE_FORMATS)}, or a "
            "folder (a path with no suffix)"
        )
    if path.exists() and not overwrite:
        raise GankitError(f"--out '{path}' already exists; pass --overwrite or choose another path")
    chunks = sample_chunks(loaded, n, seed, int_list(labels, "--labels"))
    write_sample_file(path, chunks, n, title=f"{loaded.path.name} step {loaded.step} seed {seed}")
    return Written(loaded, [path])


def translate(
    run: str | Path,
    input_path: str | Path,
    out: str | Path,
    direction: str = "AtoB",
    strips: bool = False,
    overwrite: bool = False,
    amount: float | None = None,
    runs_dir: str | Path = "runs",
) -> Written:
    """Translate an image file, or a folder of images, with a CycleGAN run's generators
    (``direction`` AtoB or BtoA), or change them by ``amount`` in [0, 1] with a change
    run; writes PNGs at the run's resolution into the folder ``out`` (and, with
    ``strips``, input | translated | reconstructed strips). A change run on series reads
    one ``.npy`` or ``.csv`` file of series and writes ``out`` as ``.npy`` or ``.csv``, with
    a labelled plot beside it (``out`` named ``.png``).

    Raises:
        GankitError: a run whose task translates nothing, or bad inputs.
    """
    from gankit.explore.translate import translate_files
    from gankit.runs.load import load_run
    from gankit.tasks import get_task

    loaded = load_run(run, runs_dir)
    # the run's task writes the files; translate_files refuses runs that translate nothing
    files = get_task(loaded.model).translate_files or translate_files
    written = files(loaded, direction, Path(input_path), Path(out), strips, overwrite, amount)
    return Written(loaded, written)


def generate(
    run: str | Path,
    seed_text: str | None = None,
    temperatures: str | Sequence[float] | None = None,
    length: int = 400,
    top_k: int | None = None,
    greedy: bool = False,
    seed: int = 0,
    runs_dir: str | Path = "runs",
) -> Any:
    """Continue ``seed_text`` with a language model: one passage per temperature
    (``"0.5,1.0"`` or a sequence; default 0.2, 0.5, 1.0, 1.2), or one greedy passage.
    With no ``seed_text``, a start drawn from the training text with ``seed``.

    Returns the task's :class:`~gankit.tasks.sequence.Generation`.

    Raises:
        GankitError: a run whose task generates no text, or bad settings.
    """
    from gankit.registry import get_spec, list_models
    from gankit.runs.load import load_run
    from gankit.tasks import get_task

    if greedy and temperatures is not None:
        raise GankitError("--greedy draws no samples; drop --temperature (or --greedy)")
    parsed = float_list(temperatures, "--temperature", "0.5,1.0")
    if parsed is not None and not parsed:
        raise GankitError("--temperature is empty; give numbers > 0 such as 0.5,1.0")
    loaded = load_run(run, runs_dir)
    task = get_task(loaded.model)
    if task.generate is None:
        writers = [name for name in list_models() if get_task(get_spec(name).cls).generate]
        raise GankitError(
            f"run '{loaded.path.name}' is a '{loaded.model.model_name}' run (task {task.name}), "
            f"not a language model; generate needs a sequence model "
            f"({', '.join(writers)})"
        )
    return task.generate(loaded, seed_text, parsed, length, top_k, greedy, seed)


# --------------------------------------------------------------------- a run folder
def info(run: str | Path, runs_dir: str | Path = "runs") -> str:
    """A run's config, steps done, checkpoints and latest logged numbers, as text;
    reads the folder without loading a checkpoint."""
    from gankit.runs.summary import describe_run

    return describe_run(run, runs_dir)


def list_runs(folder: str | Path = "runs") -> list[RunSummary]:
    """The runs in ``folder``, one summary each: model, data, steps, state, latest
    losses and score (see :func:`gankit.runs.summary.summarize_runs`)."""
    from gankit.runs.summary import summarize_runs

    return summarize_runs(folder)


def upgrade_checkpoints(
    target: str | Path, runs_dir: str | Path = "runs", trust: bool = False
) -> list[tuple[Path, Path | None]]:
    """Rewrite a run's checkpoints (or one ``.pt`` file) of gankit before format 2 so
    that they load as plain tensors; each old file is kept as ``.pt.bak``. Returns
    (path, backup) pairs, backup None where the file was already current.

    Upgrading unpickles each old file in full, which runs any code it carries: ``trust``
    says that the caller made the file or trusts where it came from.

    Raises:
        GankitError: without ``trust``; a target that is no run or checkpoint.
    """
    from gankit.runs.load import upgrade_checkpoints as upgrade

    if not trust:
        raise GankitError(
            f"checkpoint upgrade unpickles '{target}' in full, which runs any code it carries; "
            "pass --trust if you made it or trust where it came from"
        )
    return upgrade(target, runs_dir)


def report(
    runs: Sequence[str | Path],
    compare: bool = False,
    out: str | Path | None = None,
    open_browser: bool = False,
    overwrite: bool = False,
    runs_dir: str | Path = "runs",
) -> Path:
    """Write one self-contained HTML page of a run (curves, previews, scores, pictures,
    commands), or with ``compare`` one page of several runs; returns its path.

    Raises:
        GankitError: several runs without ``compare``, ``compare`` with one run, a run
            not found, or an ``out`` that exists without ``overwrite``.
    """
    from gankit.report import write_report

    if len(runs) > 1 and not compare:
        raise GankitError(f"{len(runs)} runs given; pass --compare to put them on one page")
    if compare and len(runs) < 2:
        raise GankitError("--compare needs at least two runs: gankit report --compare RUN1 RUN2")
    return write_report(list(runs), out, overwrite, runs_dir, open_browser)


# --------------------------------------------------------------------- what gankit knows
def list_presets() -> dict[str, str]:
    """The presets, name -> what it trains (one line)."""
    from gankit.config import list_presets as presets

    return presets()


def preset_text(name: str) -> str:
    """One preset's YAML file, with its comments."""
    from gankit.config import preset_text as text

    return text(name)


def describe_models() -> dict[str, str]:
    """The registered models, name -> one line."""
    from gankit.registry import get_spec, list_models

    return {name: get_spec(name).description for name in list_models()}


def metrics_help(task: str = "sample") -> str:
    """The registered metrics of ``task`` by kind of data, as ``gankit eval --metrics``
    lists them (``gankit.metrics.registry``; a metric registered by ``--import`` too)."""
    from gankit.metrics.registry import metrics_help as listed

    return listed(task)


def describe_datasets(data_dir: str | None = None) -> list[tuple[str, str, str]]:
    """The data sources: (name, what it is, whether its files are on this machine)."""
    from gankit.data import describe_datasets as describe

    return describe(data_dir)


def train_evaluator(
    dataset: str,
    resolution: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    arch: str = "cnn",
) -> tuple[Any, Path]:
    """Train (once) and cache the evaluator classifier of ``dataset``, the feature
    extractor of the image metrics; returns the evaluator and where it is cached.
    ``arch="stn"`` puts a spatial transformer in front of the CNN (docs/stn.md)."""
    from gankit.metrics.features import evaluator_path
    from gankit.metrics.features import train_evaluator as train_one

    evaluator = train_one(dataset, arch=arch, seed=seed, resolution=resolution, data_dir=data_dir)
    return evaluator, evaluator_path(dataset, arch, seed=seed, resolution=resolution)


# --------------------------------------------------------------------- benchmarks
def bench_toy(
    presets: str | None = None,
    seeds: int = 5,
    overrides: Sequence[str] = (),
    on_line: Callable[[str], None] | None = None,
) -> str:
    """Train the ring/grid presets (comma-separated; default gan-ring, gan-grid) for
    ``seeds`` seeds each, PacGAN's Table 1 protocol (2,500 samples); returns the markdown
    table. ``on_line`` hears one line per finished run."""
    from gankit.bench import run_toy, toy_table

    def show(row) -> None:
        if on_line is not None:
            on_line(
                f"{row.preset} seed {row.seed}: {row.modes}/{row.n_modes} modes, "
                f"{100 * row.high_quality:.1f} % high quality, {row.seconds:.0f} s"
            )

    return toy_table(run_toy(_names(presets), seeds, list(overrides), on_result=show))


def bench_images(
    presets: str | None = None,
    steps: int = 2000,
    n: int = 2000,
    seed: int = 0,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
    keep_runs: str | Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> str:
    """Train the digits and fashion-mnist presets (comma-separated; default all) for one
    budget of ``steps`` and score ``n`` samples each: FD, KID and IS next to their
    floors; returns the markdown table. ``on_line`` hears one line per preset."""
    from gankit.bench import image_table, run_images

    def show(row) -> None:
        if on_line is not None:
            on_line(
                f"{row.preset}: FD {row.scores['fd']:.3f} (floor {row.floor['fd']:.3f}), "
                f"IS {row.scores['is']:.2f}, trained {row.steps} steps in {row.seconds:.0f} s"
            )

    rows = run_images(
        _names(presets), steps, n, seed, list(overrides), runs_dir=keep_runs, data_dir=data_dir,
        on_result=show,
    )  # fmt: skip
    return image_table(rows)


def adapt(
    preset: str = "dann-digits-m",
    overrides: Sequence[str] = (),
    runs_dir: str | Path = "runs",
    overwrite: bool = False,
    data_dir: str | None = None,
    seeds: int = 1,
    on_line: Callable[[str], None] | None = None,
) -> str:
    """Domain adaptation: train a DANN, pixel-level or AdaptSeg preset and its baselines
    with the same steps (``seeds`` seeds each), score them on the source and on the
    target (unlabelled in training), and return the table. ``on_line`` hears one line
    per trained run."""
    from gankit.bench import adaptation_of, run_adaptation
    from gankit.config import resolve_config

    config = resolve_config(preset, list(overrides))
    adaptation = adaptation_of(config["model"]["name"], preset)

    def show(row) -> None:
        if on_line is not None:
            score = adaptation.headline(row.scores)
            on_line(f"{row.label}: {score} ({row.run}, {row.seconds:.0f} s)")

    rows = run_adaptation(
        preset, list(overrides), runs_dir, overwrite, data_dir, on_result=show, seeds=seeds
    )
    data = config["data"]
    # segshift carries its target inside (domain_b); DANN's configs name it in data.target
    return adaptation.table(rows, data["name"], data.get("target") or data["name"])


def study(
    name: str,
    presets: str | Sequence[str] | None = None,
    search: Sequence[str] = (),
    *,
    seeds: int = 1,
    trials: int | None = None,
    metric: str | None = None,
    sampler: str = "random",
    seed: int = 0,
    overrides: Sequence[str] = (),
    eval_n: int | None = None,
    train_evaluator: bool = False,
    storage: str | None = None,
    workers: int = 1,
    runs_dir: str | Path = "runs",
    data_dir: str | None = None,
    on_line: Callable[[str], None] | None = None,
    space: str | Path | None = None,
) -> Any:
    """Run, join or resume the study ``name`` (see :mod:`gankit.study`): ``presets``
    (comma-separated) searched over ``search`` (``["model.lr=1e-4..1e-3", ...]``), each
    setting trained with ``seeds`` seeds and scored by ``gankit eval``'s headline (or
    ``metric``), ``trials`` settings in all, on Optuna's ``storage`` (default: a SQLite
    file beside the runs) with ``workers`` processes. With no ``presets`` it joins the
    study as saved in the storage. ``space``: a YAML file of more dimensions
    (:func:`~gankit.study.read_space`). Returns a :class:`~gankit.study.StudyResult`.

    Raises:
        GankitError: an unknown key, an empty range, a value that fails its key's
            checks, a storage that cannot be opened, or too many workers; nothing
            starts then.
    """
    from gankit.study import StudySpec, read_space, run_study

    search = [*search, *(read_space(space) if space is not None else [])]
    listed = _names(presets) if isinstance(presets, str) else list(presets or [])
    spec = None
    if listed or search:
        spec = StudySpec(
            listed or [], list(search), seeds, trials, metric, overrides=list(overrides),
            sampler=sampler, seed=seed, eval_n=eval_n, train_evaluator=train_evaluator,
        )  # fmt: skip
    return run_study(
        name, spec, runs_dir=runs_dir, storage=storage, workers=workers, data_dir=data_dir,
        on_line=on_line,
    )  # fmt: skip


def study_report(
    name: str,
    storage: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    runs_dir: str | Path = "runs",
) -> list[Path]:
    """Write a study's page (score per preset as a box plot, best so far against
    trials, the best settings) and its figure; returns their paths."""
    from gankit.study import write_study_report

    return write_study_report(name, storage, runs_dir, out, overwrite)


def _names(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",")] if text else None


# --------------------------------------------------------------------- vision and the lab
def dream(image: str | None, out: str | Path, **settings: Any) -> Any:
    """DeepDream on ``image`` (a file, or ``sample:china.jpg``; None: china), written to
    ``out``; ``settings`` are :func:`gankit.vision.dream.dream_file`'s (``layers`` as
    ``"mixed_3,mixed_5"`` or a list)."""
    from gankit.vision.dream import dream_file

    return dream_file(image, Path(out), **settings)


def style(content: str | None, style_image: str | None, out: str | Path, **settings: Any) -> Any:
    """Neural style transfer of ``style_image`` onto ``content``, written to ``out``;
    ``settings`` are :func:`gankit.vision.style.style_file`'s."""
    from gankit.vision.style import style_file

    return style_file(content, style_image, Path(out), **settings)


def inspect(network: str, what: str, out: str | Path, **settings: Any) -> list[Path]:
    """Pictures of a convnet's inside (activations, filters or Grad-CAM) in the folder
    ``out``; ``settings`` are :func:`gankit.vision.inspect.inspect_network`'s."""
    from gankit.vision.inspect import inspect_network

    return inspect_network(network, what, Path(out), **settings)


def attack(targets: list[str], out: str | Path | None = None, **settings: Any) -> AttackReport:
    """Robust accuracy of classifiers under FGSM and PGD (L∞ or L2) over an ε grid, as a
    table, a figure and example pictures in the folder ``out``; ``settings`` are
    :func:`gankit.vision.attack.attack_classifiers`'s."""
    from gankit.vision.attack import attack_classifiers

    return attack_classifiers(targets, None if out is None else Path(out), **settings)


def som(
    run: str | Path,
    out: str | Path | None = None,
    *,
    grid: str | tuple[int, int] = "10x10",
    runs_dir: str | Path = "runs",
    step: int | None = None,
    data_dir: str | None = None,
    **settings: Any,
) -> SomMap:
    """A self-organising map of a run's real data with its samples on it: U-matrix, hit
    maps, the real-occupied units never reached, and the SOM coverage (``out``: the
    PNG; ``save=True`` also keeps it in the run's ``explore/``, which ``gankit report``
    shows); ``grid`` is ``ROWSxCOLUMNS``; ``settings`` are
    :func:`gankit.explore.som.som_map`'s."""
    from gankit.data import load_data
    from gankit.explore.som import som_map
    from gankit.metrics.som import check_grid, parse_grid
    from gankit.runs.load import load_run

    grid = parse_grid(grid) if isinstance(grid, str) else check_grid(tuple(grid))
    loaded = load_run(run, runs_dir, step)
    bundle = load_data(loaded.config["data"], data_dir)
    out = None if out is None else Path(out)
    return som_map(loaded, bundle, out, grid=grid, data_dir=data_dir, **settings)


def lab(host: str = "127.0.0.1", port: int = 8765, runs_dir: str | Path = "runs") -> None:
    """Serve the live GAN lab until Ctrl-C (see :func:`gankit.lab.serve`)."""
    from gankit.lab import serve

    serve(host, port, runs_dir)


__all__ = [
    "SAMPLE_FORMATS",
    "ImageSet",
    "Written",
    "adapt",
    "attack",
    "bench_images",
    "bench_toy",
    "describe_datasets",
    "describe_models",
    "drawn_by",
    "dream",
    "evaluate_run",
    "explore",
    "export_run",
    "fid",
    "generate",
    "info",
    "inspect",
    "lab",
    "launch_train",
    "list_presets",
    "list_runs",
    "metrics_help",
    "preset_text",
    "report",
    "sample",
    "som",
    "study",
    "study_report",
    "style",
    "train",
    "train_evaluator",
    "translate",
    "upgrade_checkpoints",
]
