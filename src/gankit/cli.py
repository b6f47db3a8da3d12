"""The ``gankit`` command: each subcommand is a thin function over the library.

User errors (:class:`~gankit.errors.GankitError`) print one line and exit with
code 2; a diverged run exits with 1; Ctrl-C exits with 130 after saving.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="gankit",
    help="Train, evaluate and explore GANs on PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 1

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where run directories live.")]
Imports = Annotated[
    list[str] | None,
    typer.Option(
        "--import",
        help="Import this module first: your own model families (repeatable; docs/byo.md).",
    ),
]
Step = Annotated[
    int | None,
    typer.Option("--step", help="Use the kept checkpoint of this step [default: the newest]."),
]
ShowProgress = Annotated[
    bool, typer.Option(help="Say on stderr what is being done, with progress bars.")
]


# How long a rank other than 0 waits, after a user error, for rank 0 to report it.
OTHER_RANK_GRACE_S = 10.0


def _fail(message: str, code: int) -> None:
    # Under torchrun every rank meets the same user error; rank 0 alone says so. The
    # launcher stops every worker as soon as one exits with an error, so another rank
    # waits before exiting: rank 0 exits first with its line, and the launcher ends
    # the waiting rank quietly. A rank still here after the wait met an error of its
    # own, and says so with its rank.
    import os
    import time

    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:
        if code == 130:  # an interrupt reaches every rank alike: rank 0 says so
            raise typer.Exit(code)
        time.sleep(OTHER_RANK_GRACE_S)
    prefix = "gankit: error: " if rank == 0 else f"gankit: error: rank {rank}: "
    typer.echo(f"{prefix}{message}", err=True)
    raise typer.Exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one line on stderr and an exit code, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import errno

        from gankit.errors import DivergenceError, GankitError

        try:
            return fn(*args, **kwargs)
        except GankitError as err:
            _fail(str(err), EXIT_USER_ERROR)
        except DivergenceError as err:
            _fail(str(err), EXIT_DIVERGED)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            where = f" writing '{err.filename}'" if err.filename else ""
            _fail(f"no space left on the device{where}; free some space and retry", 2)

    return wrapper


@app.command()
@handle_errors
def train(
    config: Annotated[
        str | None,
        typer.Argument(help="A preset name or a YAML config file [default: dcgan-digits]."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a setting, e.g. --set train.steps=500 (repeatable)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run name (its directory).")] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run from its newest checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing run of the same name.")
    ] = False,
    data_dir: Annotated[
        str | None, typer.Option(help="Look here first for downloadable datasets.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    nproc: Annotated[
        int | None,
        typer.Option(help="Train with N processes on this machine (launches torchrun)."),
    ] = None,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Train a model. With no argument, a DCGAN on the embedded digits."""
    from gankit.api import train as run_training

    imports = [*_GLOBAL_IMPORTS, *(import_ or [])]

    if nproc is not None:
        # the same command in each process, from the parsed options (without --nproc)
        command = ["train", *([config] if config else [])]
        command += [f"--set={item}" for item in set_ or []]
        command += [f"--name={name}"] if name is not None else []
        command += ["--resume"] if resume else []
        command += ["--overwrite"] if overwrite else []
        command += [f"--data-dir={data_dir}"] if data_dir is not None else []
        command += [f"--runs-dir={runs_dir}", "--progress" if progress else "--no-progress"]
        command += [f"--import={module}" for module in imports]
        raise typer.Exit(_launch(nproc, config, set_ or [], command))
    result = run_training(
        config,
        set_ or [],
        name=name,
        runs_dir=runs_dir,
        resume=resume,
        overwrite=overwrite,
        data_dir=data_dir,
        progress=None if progress else False,
        imports=imports,
    )
    losses = ", ".join(
        f"{k} {v:.3f}" for k, v in result.last_metrics.items() if k.startswith("loss")
    )
    if result.checkpoint is None and result.samples is None and result.loss_curves is None:
        return  # a rank other than 0 under torchrun: rank 0 reports
    typer.echo(f"run:          {result.run_dir}  ({result.step} steps, {result.seconds:.0f} s)")
    if losses:
        typer.echo(f"last losses:  {losses}")
    if result.samples is not None:
        typer.echo(f"samples:      {result.samples}")
    if result.loss_curves is not None:
        typer.echo(f"loss curves:  {result.loss_curves}")
    typer.echo(f"checkpoint:   {result.checkpoint}")
    if result.time_limited:
        typer.echo(
            f"time limit reached after {result.step - result.start_step} steps this call, "
            f"at step {result.step}; continue with: "
            f"gankit train --resume --name {result.run_dir.name}"
        )
    if result.interrupted:
        typer.echo(
            f"stopped by {result.interrupted} at step {result.step}; continue with: "
            f"gankit train --resume --name {result.run_dir.name}",
            err=True,
        )
        raise typer.Exit(130 if result.interrupted == "SIGINT" else 143)


def _launch(nproc: int, config: str | None, overrides: list[str], command: list[str]) -> int:
    """Run ``gankit COMMAND`` in ``nproc`` processes under torch's launcher (torchrun)."""
    import os

    from gankit.config import resolve_config
    from gankit.errors import GankitError
    from gankit.training.distributed import launch
    from gankit.training.runtime import resolve_device

    if nproc < 1:
        raise GankitError(f"--nproc must be >= 1, got {nproc}")
    import torch

    # Checked once here: a missing device would otherwise fail once per process.
    device = resolve_device(resolve_config(config, overrides)["train"]["device"]).type
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
    return launch(nproc, command)


SAMPLE_FORMATS = (".png", ".npy", ".pt")


@app.command()
@handle_errors
def sample(
    run: Annotated[str, typer.Argument(help="A run directory, or a run name under --runs-dir.")],
    n: Annotated[
        int, typer.Option("--n", help="How many samples: at most 50,000 (1,024 in a .png).")
    ] = 64,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output: a .png picture, a .npy or .pt tensor, or a folder (no suffix): one "
            "PNG per sample, as torch-fidelity and clean-fid read."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the noise, in [0, 2**32 - 1].")] = 0,
    labels: Annotated[
        str | None,
        typer.Option(help="Conditional models: one class label, or one per sample (3,3,7,...)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    step: Step = None,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Draw samples from a run's newest checkpoint, or --step's (the EMA generator, if kept).

    The generator draws 1,024 samples at a time, and a .npy file or a folder of PNGs is
    written as they come, so memory stays bounded for any --n up to 50,000."""
    _use_imports(import_)
    from gankit.errors import GankitError
    from gankit.explore.latent import sample_chunks
    from gankit.explore.pictures import write_sample_file, write_sample_folder
    from gankit.runs.load import load_run

    loaded = load_run(run, runs_dir, step)
    at = "" if step is None else f"_step{step}"
    out = out or loaded.paths.samples / f"sample_n{n}_seed{seed}{at}.png"
    if out.suffix == "":
        chunks = sample_chunks(loaded, n, seed, _int_list(labels, "--labels"))
        meta = {"run": str(loaded.path), "step": loaded.step, "seed": seed, "labels": labels}
        write_sample_folder(out, chunks, meta, overwrite)
        typer.echo(f"{n} samples from {loaded.checkpoint} -> {out}/ (one PNG each)")
        return
    if out.suffix not in SAMPLE_FORMATS:
        raise GankitError(
            f"--out '{out}' has an unknown format; valid: {', '.join(SAMPLE_FORMATS)}, or a "
            "folder (a path with no suffix)"
        )
    if out.exists() and not overwrite:
        raise GankitError(f"--out '{out}' already exists; pass --overwrite or choose another path")
    chunks = sample_chunks(loaded, n, seed, _int_list(labels, "--labels"))
    write_sample_file(out, chunks, n, title=f"{loaded.path.name} step {loaded.step} seed {seed}")
    typer.echo(f"{n} samples from {loaded.checkpoint} -> {out}")


@app.command()
@handle_errors
def presets(
    name: Annotated[
        str | None, typer.Argument(help="Print this preset's YAML, with its comments.")
    ] = None,
) -> None:
    """List the presets, one line each; or print one preset's YAML file."""
    from rich.console import Console
    from rich.table import Table

    from gankit.config import DEFAULT_PRESET, list_presets, preset_text

    if name is not None:
        typer.echo(preset_text(name), nl=False)
        return

    table = Table("preset", "what it trains", box=None, pad_edge=False)
    for name, description in list_presets().items():
        marker = " (default)" if name == DEFAULT_PRESET else ""
        table.add_row(name + marker, description)
    Console(width=max(100, Console().width)).print(table)


@app.command()
@handle_errors
def models() -> None:
    """List the registered models."""
    from gankit.registry import get_spec, list_models

    for name in list_models():
        typer.echo(f"{name:<10} {get_spec(name).description}")


@app.command()
@handle_errors
def datasets(
    data_dir: Annotated[str | None, typer.Option(help="Also look here for dataset files.")] = None,
) -> None:
    """List the data sources: what each is, and whether its files are on this machine."""
    from gankit.data import describe_datasets

    for name, description, files in describe_datasets(data_dir):
        typer.echo(f"{name:<18} {description} [{files}]")


@app.command()
@handle_errors
def info(
    run: Annotated[str, typer.Argument(help="A run directory, or a run name under --runs-dir.")],
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Show a run's config, steps done and latest losses."""
    from gankit.config import dump_yaml
    from gankit.explore.pictures import read_metrics
    from gankit.runs.checkpoint import list_checkpoints
    from gankit.runs.folder import RunPaths, find_run, run_config

    paths = RunPaths(find_run(run, runs_dir))
    config = run_config(paths.root)
    checkpoints = list_checkpoints(paths.checkpoints)
    rows = read_metrics(paths.metrics)
    done = checkpoints[-1][0] if checkpoints else 0
    typer.echo(f"run:         {paths.root}")
    typer.echo(f"model:       {config['model']['name']} on {config['data']['name']}")
    typer.echo(f"steps done:  {done} of {config['train']['steps']} (newest checkpoint)")
    typer.echo(f"checkpoints: {', '.join(p.name for _, p in checkpoints) or 'none'}")
    if rows:
        last = rows[-1]
        nonfinite = last.get("nonfinite") or {}  # logged as null, named here (finite_json)
        values = ", ".join(
            f"{k} {nonfinite.get(k, v)}" if not isinstance(v, (int, float)) else f"{k} {v:.4g}"
            for k, v in last.items()
            if k not in ("step", "time", "nonfinite")
        )
        typer.echo(f"latest log:  step {last['step']}: {values}")
    typer.echo("config:")
    typer.echo("  " + dump_yaml(config).strip().replace("\n", "\n  "))


@app.command("eval")
@handle_errors
def eval_(
    run: Annotated[str, typer.Argument(help="A run directory, or a run name under --runs-dir.")],
    metrics: Annotated[
        str | None,
        typer.Option(help="Comma-separated: modes,w1 (toy) or fd,kid,is,pr,dc (images)."),
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Samples to score (at most 50,000).")] = None,
    features: Annotated[str, typer.Option(help="evaluator or inception.")] = "evaluator",
    split: Annotated[str, typer.Option(help="Reference split: test or train.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the samples and subsets.")] = 0,
    inception_weights: Annotated[
        str | None, typer.Option(help="A copy of the FID InceptionV3 file (default_1.pt).")
    ] = None,
    train_evaluator: Annotated[
        bool, typer.Option(help="Train the dataset's evaluator classifier if it is missing.")
    ] = False,
    data_dir: Annotated[str | None, typer.Option(help="Where to look for the data.")] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Score again a step that eval.json already holds with these settings, "
            "and replace it."
        ),
    ] = False,
    step: Step = None,
    progress: ShowProgress = True,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Score a run's newest checkpoint (or --step's) next to the real-vs-real floor;
    writes eval.json, keeping the earlier evaluations in its history."""
    _use_imports(import_)
    from gankit.api import evaluate_run

    report = evaluate_run(
        run,
        metrics,
        n,
        features,
        split,
        seed,
        inception_weights,
        runs_dir,
        data_dir,
        train_evaluator,
        overwrite=overwrite,
        step=step,
        progress=progress,
    )
    written = Path(report.run) / "eval.json"
    if report.reused:
        typer.echo(
            f"{written} already holds the scores of step {report.step} with these settings "
            f"(scored {report.when}); the same seed gives the same numbers, so they are not "
            "computed again: --overwrite scores again"
        )
    if report.n:
        typer.echo(
            f"run {report.run} at step {report.step}: {report.n} samples vs "
            f"{report.n_reference} of the {split} split (floor: {report.n_floor} real)"
            + (f", {report.features} features" if report.features else "")
        )
    else:  # classifiers and segmenters (DANN, AdaptSeg) draw no samples
        typer.echo(f"run {report.run} at step {report.step}, scored on the {split} split")
    if "evaluator_test_accuracy" in report.extra:
        typer.echo(f"evaluator test accuracy: {report.extra['evaluator_test_accuracy']:.4f}")
    typer.echo(report.table())
    for note in report.extra.get("notes", []):
        typer.echo(f"note: {note}")
    if not report.reused:
        earlier = f" (with {len(report.history)} earlier in its history)" if report.history else ""
        typer.echo(f"evaluated in {report.seconds:.1f} s; written to {written}{earlier}")


@app.command()
@handle_errors
def fid(
    a: Annotated[str, typer.Argument(help="Generated side: folder, .npy, run or data:NAME.")],
    b: Annotated[str, typer.Argument(help="Reference side, e.g. data:fashion-mnist:test.")],
    n: Annotated[
        int | None,
        typer.Option("--n", help="Images per side: the first n (a run draws n; default 10,000)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of a run's samples and of KID's subsets.")] = 0,
    inception_weights: Annotated[
        str | None, typer.Option(help="A copy of the FID InceptionV3 file (default_1.pt).")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="Where to look for the data.")] = None,
    progress: ShowProgress = True,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Inception-FID, KID and precision/recall between two image sets: folders of images
    (what other tools write), .npy arrays, gankit runs, or data:NAME[:train|test]."""
    _use_imports(import_)
    from gankit.api import fid as score_fid

    scores, first, second = score_fid(
        a, b, n, seed, runs_dir, data_dir, inception_weights, progress
    )
    typer.echo(f"A: {first.spec} ({first.kind}, n = {first.n})")
    typer.echo(f"B: {second.spec} ({second.kind}, n = {second.n})")
    typer.echo("InceptionV3 pool3 features (TF FID weights); FID depends on n: compare equal n")
    typer.echo(f"fid        {scores['fid']:.4g}")
    typer.echo(f"kid        {scores['kid']:.4g} ± {scores['kid_std']:.2g}")
    typer.echo(f"precision  {scores['precision']:.4g}")
    typer.echo(f"recall     {scores['recall']:.4g}")


evaluator_app = typer.Typer(help="Evaluator classifiers: the feature extractors of image metrics.")
app.add_typer(evaluator_app, name="evaluator")


@evaluator_app.command("train")
@handle_errors
def evaluator_train(
    dataset: Annotated[
        str, typer.Argument(help="digits, digits-m, fashion-mnist, mnist or cifar10.")
    ],
    resolution: Annotated[
        int | None, typer.Option(help="Image size the evaluator reads (default: native).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the classifier.")] = 0,
    data_dir: Annotated[str | None, typer.Option(help="Where to look for the data.")] = None,
) -> None:
    """Train (once) and cache the evaluator classifier of a dataset."""
    from gankit.metrics.features import evaluator_path, train_evaluator

    evaluator = train_evaluator(dataset, seed=seed, resolution=resolution, data_dir=data_dir)
    path = evaluator_path(dataset, seed=seed, resolution=resolution)
    typer.echo(
        f"{dataset} evaluator: test accuracy {evaluator.test_accuracy:.4f}; cached at {path}"
    )


bench_app = typer.Typer(help="Benchmarks against published numbers (not tests).")
app.add_typer(bench_app, name="bench")


@bench_app.command("toy")
@handle_errors
def bench_toy(
    seeds: Annotated[int, typer.Option(help="Seeds per preset.")] = 5,
    presets_: Annotated[
        str | None, typer.Option("--presets", help="Comma-separated ring/grid presets.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a setting for every run.")
    ] = None,
) -> None:
    """Train the ring/grid presets for S seeds; PacGAN's Table 1 protocol (2500 samples)."""
    from gankit.bench import run_toy, toy_table

    names = [p.strip() for p in presets_.split(",")] if presets_ else None

    def show(row) -> None:
        typer.echo(
            f"{row.preset} seed {row.seed}: {row.modes}/{row.n_modes} modes, "
            f"{100 * row.high_quality:.1f} % high quality, {row.seconds:.0f} s",
            err=True,
        )

    results = run_toy(names, seeds, set_ or [], on_result=show)
    typer.echo(toy_table(results))
    typer.echo("\ncommand: gankit " + " ".join(sys.argv[1:]))


@bench_app.command("images")
@handle_errors
def bench_images(
    steps: Annotated[int, typer.Option(help="The same training budget for every preset.")] = 2000,
    n: Annotated[int, typer.Option(help="Samples scored per preset.")] = 2000,
    seed: Annotated[int, typer.Option(help="Training and evaluation seed.")] = 0,
    presets_: Annotated[
        str | None,
        typer.Option("--presets", help="Comma-separated digits/fashion-mnist presets."),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a setting for every run.")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="Where dataset files are.")] = None,
    keep_runs: Annotated[
        Path | None,
        typer.Option(help="Keep the trained runs in this folder (default: a temporary one)."),
    ] = None,
) -> None:
    """Train the digits and fashion-mnist presets for one budget; FD, KID, IS with floors."""
    from gankit.bench import image_table, run_images

    names = [p.strip() for p in presets_.split(",")] if presets_ else None

    def show(row) -> None:
        typer.echo(
            f"{row.preset}: FD {row.scores['fd']:.3f} (floor {row.floor['fd']:.3f}), "
            f"IS {row.scores['is']:.2f}, trained {row.steps} steps in {row.seconds:.0f} s",
            err=True,
        )

    results = run_images(
        names, steps, n, seed, set_ or [], runs_dir=keep_runs, data_dir=data_dir, on_result=show
    )
    typer.echo(image_table(results))
    typer.echo("\ncommand: gankit " + " ".join(sys.argv[1:]))


@app.command()
@handle_errors
def adapt(
    preset: Annotated[
        str, typer.Argument(help="A DANN or AdaptSeg preset or YAML config.")
    ] = "dann-digits-m",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a setting for both runs.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace existing runs of the same names.")
    ] = False,
    data_dir: Annotated[str | None, typer.Option(help="Where dataset files are.")] = None,
    seeds: Annotated[
        int, typer.Option(help="Train every run with seeds 0..N-1; the table shows mean ± sd.")
    ] = 1,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Domain adaptation: train DANN, pixel-level adaptation or AdaptSeg, and its baselines
    (source-only; for pixel-level, DANN too) with the same steps, and print their scores
    on the source and on the (unlabelled in training) target: accuracy, or mIoU with
    per-class IoU for segmentation."""
    from gankit.bench import adaptation_of, run_adaptation
    from gankit.config import resolve_config

    config = resolve_config(preset, set_ or [])
    adaptation = adaptation_of(config["model"]["name"], preset)

    def show(row) -> None:
        score = adaptation.headline(row.scores)
        typer.echo(f"{row.label}: {score} ({row.run}, {row.seconds:.0f} s)", err=True)

    results = run_adaptation(
        preset, set_ or [], runs_dir, overwrite, data_dir, on_result=show, seeds=seeds
    )
    data = config["data"]
    # segshift carries its target inside (domain_b); DANN's configs name it in data.target
    target = data.get("target") or data["name"]
    typer.echo(adaptation.table(results, data["name"], target))
    typer.echo("\ncommand: gankit " + " ".join(sys.argv[1:]))


def _int_list(text: str | None, option: str) -> list[int] | None:
    from gankit.errors import GankitError

    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GankitError(
            f"{option} must be comma-separated integers such as 3,3,7; got '{text}'"
        ) from None


@app.command()
@handle_errors
def explore(
    run: Annotated[str, typer.Argument(help="A run directory, or a run name under --runs-dir.")],
    what: Annotated[
        str, typer.Option(help="grid, interp, classes, traverse, manifold, toy or segment.")
    ] = "grid",
    n: Annotated[
        int, typer.Option("--n", help="grid: samples; manifold: inputs (at most 1,024).")
    ] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the latents, in [0, 2**32 - 1].")] = 0,
    truncation: Annotated[
        float | None, typer.Option(help="grid: redraw Gaussian latents beyond this |z|.")
    ] = None,
    method: Annotated[str, typer.Option(help="interp: lerp or slerp.")] = "slerp",
    pairs: Annotated[int, typer.Option(help="interp: how many random pairs (at most 64).")] = 6,
    steps: Annotated[
        int,
        typer.Option(help="interp/traverse: columns; classes: samples per class (at most 64)."),
    ] = 10,
    seeds: Annotated[
        str | None, typer.Option(help="interp: two latent seeds to walk between, e.g. 3,8.")
    ] = None,
    view: Annotated[str, typer.Option(help="manifold: plane, recon or auto.")] = "auto",
    animate: Annotated[bool, typer.Option(help="toy: a GIF over the run's snapshots.")] = False,
    compare: Annotated[
        list[str] | None,
        typer.Option(help="segment: another run to show next to RUN (e.g. source-only)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Directory (default RUN/explore, or RUN/explore/step_N with --step)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing pictures.")] = False,
    step: Step = None,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Pictures of what a run learned: sample grids, walks, classes, codes, manifolds."""
    _use_imports(import_)
    from gankit.api import explore as explore_run
    from gankit.errors import GankitError
    from gankit.explore.explore import ExploreOptions
    from gankit.runs.load import load_run

    pair = _int_list(seeds, "--seeds")
    if pair is not None and len(pair) != 2:
        raise GankitError(f"--seeds takes two seeds such as 3,8; got '{seeds}'")
    options = ExploreOptions(
        n=n,
        seed=seed,
        truncation=truncation,
        method=method,
        pairs=pairs,
        steps=steps,
        seeds=tuple(pair) if pair else None,
        view=view,
        animate=animate,
    )
    options.compare = [load_run(other, runs_dir) for other in compare or []]
    loaded = load_run(run, runs_dir, step)
    if out is None and step is not None:  # beside the newest checkpoint's pictures
        out = loaded.paths.explore / f"step_{step:08d}"
    for path in explore_run(loaded, what, options, out, overwrite):
        typer.echo(f"{what}: {path}")


@app.command()
@handle_errors
def translate(
    run: Annotated[str, typer.Argument(help="A CycleGAN run directory, or its name.")],
    direction: Annotated[str, typer.Option(help="AtoB (G_AB) or BtoA (G_BA).")] = "AtoB",
    input_: Annotated[
        Path, typer.Option("--input", help="An image file, or a folder of images.")
    ] = ...,
    out: Annotated[Path, typer.Option(help="Directory for the translated PNGs.")] = ...,
    strips: Annotated[
        bool, typer.Option(help="Also write input | translated | reconstructed strips.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    import_: Imports = None,
    amount: Annotated[
        float | None, typer.Option(help="Change runs: how much to change, in [0, 1].")
    ] = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Translate images with a CycleGAN run's generators, or change them by --amount
    with a change run; PNGs at the run's resolution."""
    _use_imports(import_)
    from gankit.explore.translate import translate_files
    from gankit.runs.load import load_run
    from gankit.tasks import get_task

    loaded = load_run(run, runs_dir)
    # the run's task writes the files; translate_files refuses runs that translate nothing
    files = get_task(loaded.model).translate_files or translate_files
    written = files(loaded, direction, input_, out, strips, overwrite, amount)
    typer.echo(f"{direction}: wrote {len(written)} file(s) from {loaded.checkpoint} into {out}")


checkpoint_app = typer.Typer(help="Checkpoint files: convert those of older gankit versions.")
app.add_typer(checkpoint_app, name="checkpoint")


@checkpoint_app.command("upgrade")
@handle_errors
def checkpoint_upgrade(
    target: Annotated[
        str, typer.Argument(help="A run (directory or name under --runs-dir), or one .pt file.")
    ],
    trust: Annotated[
        bool,
        typer.Option(help="Say that you trust the file: upgrading unpickles it, running its code."),
    ] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Rewrite older checkpoints so they load as plain tensors; keeps each old one as .pt.bak.

    gankit loads checkpoints with torch.load(weights_only=True), which never runs code.
    Checkpoints of gankit before format 2 hold numpy objects that only a full unpickling
    can read, and a full unpickling runs any code a file carries: do it only for files
    you made or trust.
    """
    from gankit.errors import GankitError
    from gankit.runs.load import upgrade_checkpoints

    if not trust:
        raise GankitError(
            f"checkpoint upgrade unpickles '{target}' in full, which runs any code it carries; "
            "pass --trust if you made it or trust where it came from"
        )
    for path, backup in upgrade_checkpoints(target, runs_dir):
        if backup is None:
            typer.echo(f"{path}: already in the current format")
        else:
            typer.echo(f"{path}: upgraded (the old file is {backup})")


@app.command()
@handle_errors
def generate(
    run: Annotated[str, typer.Argument(help="A language-model run directory, or its name.")],
    seed_text: Annotated[
        str | None,
        typer.Option(
            help="The text the passages continue [default: a start drawn from the training "
            "text with --seed]."
        ),
    ] = None,
    temperature: Annotated[
        str | None,
        typer.Option(help="Comma-separated temperatures T > 0 [default: 0.2,0.5,1.0,1.2]."),
    ] = None,
    length: Annotated[int, typer.Option(help="Tokens to generate per passage.")] = 400,
    top_k: Annotated[
        int | None, typer.Option(help="Sample from the K most probable tokens only.")
    ] = None,
    greedy: Annotated[
        bool, typer.Option(help="One passage of the most probable tokens instead.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sampling.")] = 0,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Continue a seed text with a language model: one passage per temperature."""
    _use_imports(import_)
    from gankit.errors import GankitError
    from gankit.explore.text import COURSE_TEMPERATURES, passages, training_seed_text
    from gankit.nn import torch_threads
    from gankit.runs.load import load_run

    if greedy and temperature is not None:
        raise GankitError("--greedy draws no samples; drop --temperature (or --greedy)")
    temperatures = COURSE_TEMPERATURES
    if temperature is not None:
        try:
            temperatures = tuple(float(t) for t in temperature.split(",") if t.strip())
        except ValueError:
            raise GankitError(
                f"--temperature must be comma-separated numbers such as 0.5,1.0; got "
                f"'{temperature}'"
            ) from None
        if not temperatures:
            raise GankitError("--temperature is empty; give numbers > 0 such as 0.5,1.0")
    loaded = load_run(run, runs_dir)
    drawn = None
    if seed_text is None:
        seed_text, drawn = training_seed_text(loaded, seed)
    with torch_threads(1):  # one token at a time: see gankit.tasks.sequence.one_thread
        written = passages(loaded, seed_text, temperatures, length, top_k, greedy, seed)
    typer.echo(f"run {loaded.path} at step {loaded.step}, seed {seed}")
    if drawn is not None:
        typer.echo(
            f"seed text {seed_text!r}: drawn from the training text at token {drawn} by "
            "--seed (give your own with --seed-text)"
        )
    if loaded.model.level == "word" and loaded.model.out_of_vocabulary(seed_text):
        unknown = ", ".join(loaded.model.out_of_vocabulary(seed_text))
        typer.echo(f"note: the model reads these seed words as <unk>: {unknown}", err=True)
    for passage in written:
        typer.echo(f"--- {passage.label} ---")
        typer.echo(passage.text)


@app.command()
@handle_errors
def export(
    run: Annotated[str, typer.Argument(help="A run directory, or a run name under --runs-dir.")],
    format_: Annotated[
        str, typer.Option("--format", help="safetensors, torchscript or onnx.")
    ] = "safetensors",
    out: Annotated[
        Path | None, typer.Option(help="Output file [default: RUN/export/step_N.<suffix>].")
    ] = None,
    step: Step = None,
    direction: Annotated[
        str | None, typer.Option(help="Translators: AtoB or BtoA [default: AtoB].")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Write the network a run makes (generator, translator, classifier) for other
    tools, with a JSON of its config beside it."""
    _use_imports(import_)
    from gankit.api import export_run
    from gankit.export import json_path

    path = export_run(run, format_, out, step, direction, runs_dir, overwrite)
    typer.echo(f"{format_}: {path} (config: {json_path(path)})")


@app.command("runs")
@handle_errors
def runs_(
    folder: Annotated[Path, typer.Argument(help="A folder of runs.")] = Path("runs"),
) -> None:
    """List the runs in a folder: model, data, steps, state, latest losses and score.

    State: training (a process holds the run), diverged, done (every step asked for),
    or stopped (interrupted, killed, or not started)."""
    from rich.console import Console
    from rich.table import Table

    from gankit.runs.summary import summarize_runs

    summaries = summarize_runs(folder)
    if not summaries:
        typer.echo(f"no runs in '{folder}'")
        return
    table = Table(
        "run", "model", "data", "steps", "state", "latest losses", "latest eval",
        box=None, pad_edge=False,
    )  # fmt: skip
    for row in summaries:
        steps = f"{row.steps_done}/{row.steps if row.steps is not None else '?'}"
        losses = ", ".join(f"{k} {v:.3g}" for k, v in row.losses.items()) or "-"
        table.add_row(
            row.path.name, row.model, row.data, steps, row.state, losses, row.headline or "-"
        )
    Console(width=max(160, Console().width)).print(table)


#: ``gankit --import MODULE COMMAND``: modules every command imports first.
_GLOBAL_IMPORTS: list[str] = []


def _use_imports(modules: list[str] | None) -> None:
    """Import the user's modules (``--import``) before the registry is used."""
    from gankit.registry import import_modules

    import_modules([*_GLOBAL_IMPORTS, *(modules or [])])


def _print_version(value: bool) -> None:
    if value:
        from gankit import __version__

        typer.echo(f"gankit {__version__}")
        raise typer.Exit()


@app.callback()
@handle_errors
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    import_: Imports = None,
) -> None:
    """Train, evaluate and explore GANs on PyTorch."""
    _GLOBAL_IMPORTS[:] = import_ or []
    _use_imports(None)


@app.command()
@handle_errors
def report(
    runs: Annotated[
        list[str], typer.Argument(help="A run directory or name; several with --compare.")
    ],
    compare: Annotated[
        bool, typer.Option(help="Put several runs on one page: curves overlaid, one table.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="The HTML file (default: RUN-report.html in the current folder)."),
    ] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing report file.")] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """One self-contained HTML page of a run: curves, previews, scores, pictures, commands."""
    from gankit.errors import GankitError
    from gankit.report import write_report

    if len(runs) > 1 and not compare:
        raise GankitError(f"{len(runs)} runs given; pass --compare to put them on one page")
    if compare and len(runs) < 2:
        raise GankitError("--compare needs at least two runs: gankit report --compare RUN1 RUN2")
    typer.echo(f"report: {write_report(runs, out, overwrite, runs_dir, open_)}")


@app.command()
@handle_errors
def dream(
    image: Annotated[
        str | None,
        typer.Argument(
            help="An image file, or sample:china.jpg / sample:flower.jpg [default: china]."
        ),
    ] = None,
    layers: Annotated[
        str, typer.Option(help="Comma-separated InceptionV3 layers.")
    ] = "mixed_3,mixed_5",
    octaves: Annotated[int, typer.Option(help="Scales, smallest first.")] = 3,
    octave_scale: Annotated[float, typer.Option(help="Ratio between neighbouring scales.")] = 1.4,
    steps: Annotated[int, typer.Option(help="Gradient-ascent steps per octave.")] = 20,
    step_size: Annotated[float, typer.Option(help="Step size (pixels in [-1, 1]).")] = 0.01,
    objective: Annotated[
        str, typer.Option(help="mean_square or l2 of the activations.")
    ] = "mean_square",
    size: Annotated[int, typer.Option(help="Longer side of the picture, in pixels.")] = 256,
    out: Annotated[Path, typer.Option(help="The dream, as a PNG.")] = ...,
    figure: Annotated[
        Path | None, typer.Option(help="Also write input | dream side by side, labelled.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    progress: ShowProgress = True,
) -> None:
    """DeepDream: gradient ascent on an image to make InceptionV3 layers fire harder."""
    from gankit.vision.common import parse_layers
    from gankit.vision.dream import dream_file

    result = dream_file(
        image, out, layers=parse_layers(layers), size=size, figure=figure, overwrite=overwrite,
        octaves=octaves, octave_scale=octave_scale, steps=steps, step_size=step_size,
        objective=objective, progress=progress,
    )  # fmt: skip
    for shape, (first, last) in zip(result.shapes, result.objective_per_octave):
        typer.echo(f"octave {shape[1]}x{shape[0]}: objective {first:.4g} -> {last:.4g}")
    typer.echo(f"wrote {out}" + (f" and {figure}" if figure else ""))


@app.command()
@handle_errors
def lab(
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8765,
    host: Annotated[
        str,
        typer.Option(help="The address to listen on; another than 127.0.0.1 is warned about."),
    ] = "127.0.0.1",
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """A live GAN lab in the browser: toy GANs of gankit, trained as you watch."""
    from gankit.lab import serve

    serve(host, port, runs_dir)


@app.command()
@handle_errors
def style(
    content: Annotated[
        str | None, typer.Argument(help="Content image file, or sample:NAME [default: china].")
    ] = None,
    style_image: Annotated[
        str | None,
        typer.Argument(metavar="STYLE", help="Style image file, or sample:NAME [default: flower]."),
    ] = None,
    content_layer: Annotated[str, typer.Option(help="InceptionV3 layer of L_content.")] = "mixed_5",
    style_layers: Annotated[
        str, typer.Option(help="Comma-separated InceptionV3 layers of L_style.")
    ] = "conv_1,conv_4,mixed,mixed_2,mixed_4",
    content_weight: Annotated[float, typer.Option(help="Weight of L_content.")] = 1.0,
    style_weight: Annotated[float, typer.Option(help="Weight of L_style.")] = 30.0,
    tv_weight: Annotated[float, typer.Option(help="Weight of L_tv (0 turns it off).")] = 0.5,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 150,
    optimizer: Annotated[str, typer.Option(help="adam or lbfgs.")] = "adam",
    lr: Annotated[float, typer.Option(help="Adam's learning rate.")] = 0.1,
    size: Annotated[int, typer.Option(help="Longer side of both pictures, in pixels.")] = 256,
    out: Annotated[Path, typer.Option(help="The result, as a PNG.")] = ...,
    figure: Annotated[
        Path | None, typer.Option(help="Also write content | style | result, labelled.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    progress: ShowProgress = True,
) -> None:
    """Neural style transfer (Gatys et al.): the content of one picture, the style of another."""
    from gankit.vision.common import check_positive, parse_layers
    from gankit.vision.style import style_file

    check_positive("--lr", lr)
    result = style_file(
        content, style_image, out, size=size, figure=figure, overwrite=overwrite,
        content_layer=content_layer, style_layers=parse_layers(style_layers, "--style-layers"),
        content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
        steps=steps, optimizer=optimizer, lr=lr, progress=progress,
    )  # fmt: skip
    start, end = result.start, result.end
    typer.echo(
        f"style loss   {start.style:.4g} -> {end.style:.4g} "
        f"({start.style / max(end.style, 1e-30):.1f}x lower)"
    )
    typer.echo(
        f"content loss {start.content:.4g} -> {end.content:.4g} "
        f"(the style picture's own: {result.style_picture_content:.4g}; "
        f"ratio {end.content / result.style_picture_content:.2f})"
    )
    typer.echo(f"tv loss      {start.tv:.4g} -> {end.tv:.4g}")
    typer.echo(f"wrote {out}" + (f" and {figure}" if figure else ""))


@app.command()
@handle_errors
def inspect(
    network: Annotated[
        str,
        typer.Argument(
            help="inception, evaluator:DATASET (e.g. evaluator:digits), or a classify run."
        ),
    ],
    what: Annotated[str, typer.Option(help="activations, filters or gradcam.")] = "activations",
    layer: Annotated[
        str | None, typer.Option(help="Comma-separated layers [default: a few, or the last conv].")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="An image file (or sample:NAME for the InceptionV3).")
    ] = None,
    index: Annotated[
        int | None, typer.Option(help="First test image of an evaluator's dataset [default: 0].")
    ] = None,
    n: Annotated[int, typer.Option(help="Test images in a Grad-CAM picture.")] = 8,
    resolution: Annotated[
        int | None, typer.Option(help="The evaluator trained at this size [default: native].")
    ] = None,
    size: Annotated[int, typer.Option(help="InceptionV3 picture side, in pixels.")] = 224,
    filters: Annotated[int, typer.Option(help="Filters shown per layer.")] = 16,
    steps: Annotated[int, typer.Option(help="Gradient-ascent steps of filter patterns.")] = 30,
    out: Annotated[Path, typer.Option(help="Folder for the PNGs.")] = ...,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    progress: ShowProgress = True,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Look inside a convnet: activations per layer, filter patterns, Grad-CAM heatmaps."""
    from gankit.vision.common import parse_layers
    from gankit.vision.inspect import inspect_network

    written = inspect_network(
        network, what, out, layers=None if layer is None else parse_layers(layer, "--layer"),
        image=image, index=index, n=n, size=size, filters=filters, steps=steps,
        resolution=resolution, runs_dir=runs_dir, overwrite=overwrite, progress=progress,
    )  # fmt: skip
    for path in written:
        typer.echo(f"wrote {path}")


def main() -> None:
    app(prog_name="gankit")


if __name__ == "__main__":
    sys.exit(main())
