"""The ``gankit`` command: each subcommand parses its options, calls one function of
:mod:`gankit.api` and prints what it returns.

User errors (:class:`~gankit.errors.GankitError`) print one line and exit with
code 2; a diverged run exits with 1; Ctrl-C exits with 130 after saving.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import typer

from gankit import api
from gankit.cli_options import (
    GLOBAL_IMPORTS,
    DataDir,
    Imports,
    InceptionWeights,
    Overwrite,
    Run,
    RunsDir,
    Seed,
    Settings,
    ShowProgress,
    Step,
    arg,
    handle_errors,
    opt,
    use_imports,
)

app = typer.Typer(
    name="gankit",
    help="Train, evaluate and explore GANs on PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def command(name: str | None = None, group: typer.Typer = app) -> Callable:
    """Register a command of ``group``, its library errors turned into one line."""

    def register(fn: Callable) -> Callable:
        return group.command(name)(handle_errors(fn))

    return register


def _echo(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


def _command_line() -> None:
    typer.echo("\ncommand: gankit " + " ".join(sys.argv[1:]))


@command()
def train(
    config: str | None = arg(None, "A preset name or a YAML config file [default: dcgan-digits]."),
    set_: list[str] | None = opt(
        None, "Override a setting, e.g. --set train.steps=500 (repeatable).", "--set"
    ),
    name: str | None = opt(None, "Run name (its directory)."),
    resume: bool = opt(False, "Continue the run from its newest checkpoint."),
    overwrite: bool = opt(False, "Replace an existing run of the same name."),
    data_dir: str | None = opt(None, "Look here first for downloadable datasets."),
    progress: bool = opt(True, "Show a progress bar."),
    nproc: int | None = opt(None, "Train with N processes on this machine (launches torchrun)."),
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Train a model. With no argument, a DCGAN on the embedded digits."""
    options = dict(name=name, runs_dir=runs_dir, resume=resume, overwrite=overwrite,
                   data_dir=data_dir, imports=[*GLOBAL_IMPORTS, *(import_ or [])])  # fmt: skip
    if nproc is not None:
        raise typer.Exit(api.launch_train(nproc, config, set_ or [], progress=progress, **options))
    result = api.train(config, set_ or [], progress=None if progress else False, **options)
    _echo(result.summary())
    stopped = result.stopped()
    if stopped is not None:
        typer.echo(stopped[0], err=True)
        raise typer.Exit(stopped[1])


@command()
def sample(
    run: Run,
    n: int = opt(64, "How many samples: at most 50,000 (1,024 in a .png).", "--n"),
    out: Path | None = opt(
        None,
        "Output: a .png picture, a .npy or .pt tensor, or a folder "
        "(no suffix): one PNG per sample, as torch-fidelity and clean-fid read.",
    ),
    seed: Seed = 0,
    labels: str | None = opt(
        None, "Conditional models: one class label, or one per sample (3,3,7,...)."
    ),
    overwrite: bool = opt(False, "Replace an existing output file."),
    step: Step = None,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Draw samples from a run's newest checkpoint, or --step's (the EMA generator, if kept).

    The generator draws 1,024 samples at a time, and a .npy file or a folder of PNGs is
    written as they come, so memory stays bounded for any --n up to 50,000."""
    made = api.sample(run, n, out, seed, labels, overwrite, step, runs_dir)
    path = made.paths[0]
    folder = f"{path}/ (one PNG each)" if path.suffix == "" else str(path)
    typer.echo(f"{n} samples from {made.run.checkpoint} -> {folder}")


@command()
def presets(name: str | None = arg(None, "Print this preset's YAML, with its comments.")) -> None:
    """List the presets, one line each; or print one preset's YAML file."""
    if name is not None:
        typer.echo(api.preset_text(name), nl=False)
        return
    from gankit.config import DEFAULT_PRESET

    rows = [(n + (" (default)" if n == DEFAULT_PRESET else ""), d)
            for n, d in api.list_presets().items()]  # fmt: skip
    _table(["preset", "what it trains"], rows, 100)


def _table(header: list[str], rows: list[tuple[str, ...]], width: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    Console(width=max(width, Console().width)).print(table)


@command()
def models() -> None:
    """List the registered models."""
    for name, description in api.describe_models().items():
        typer.echo(f"{name:<10} {description}")


@command()
def datasets(data_dir: str | None = opt(None, "Also look here for dataset files.")) -> None:
    """List the data sources: what each is, and whether its files are on this machine."""
    for name, description, files in api.describe_datasets(data_dir):
        typer.echo(f"{name:<18} {description} [{files}]")


@command()
def info(run: Run, runs_dir: RunsDir = Path("runs")) -> None:
    """Show a run's config, steps done and latest losses."""
    typer.echo(api.info(run, runs_dir))


@command("eval")
def eval_(
    run: Run,
    metrics: str | None = opt(None, api.metrics_help()),  # the registered metrics
    n: int | None = opt(None, "Samples to score (at most 50,000).", "--n", "--n-samples"),
    features: str = opt("evaluator", "evaluator or inception."),
    split: str = opt("test", "Reference split: test or train."),
    seed: int = opt(0, "Seed of the samples and subsets."),
    inception_weights: InceptionWeights = None,
    train_evaluator: bool = opt(
        False, "Train the dataset's evaluator classifier if it is missing."
    ),
    data_dir: DataDir = None,
    overwrite: bool = opt(
        False,
        "Score again a step that eval.json already holds with these settings, and replace it.",
    ),
    step: Step = None,
    progress: ShowProgress = True,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Score a run's newest checkpoint (or --step's) next to the real-vs-real floor;
    writes eval.json, keeping the earlier evaluations in its history."""
    report = api.evaluate_run(
        run, metrics, n, features, split, seed, inception_weights, runs_dir, data_dir,
        train_evaluator, overwrite=overwrite, step=step, progress=progress,
    )  # fmt: skip
    _echo(report.summary())


@command()
def fid(
    a: str = arg(..., "Generated side: folder, .npy, run or data:NAME."),
    b: str = arg(..., "Reference side, e.g. data:fashion-mnist:test."),
    n: int | None = opt(
        None, "Images per side: the first n (a run draws n; default 10,000).", "--n"
    ),
    seed: int = opt(0, "Seed of a run's samples and of KID's subsets."),
    inception_weights: InceptionWeights = None,
    data_dir: DataDir = None,
    progress: ShowProgress = True,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
    fid_infinity: bool = opt(False, "Also FID∞: FID on 5 subsets of A, extrapolated to 1/n → 0."),
) -> None:
    """Inception-FID, KID and precision/recall between two image sets: folders of images
    (what other tools write), .npy arrays, gankit runs, or data:NAME[:train|test]."""
    scores, first, second = api.fid(
        a, b, n, seed, runs_dir, data_dir, inception_weights, progress, fid_infinity
    )
    typer.echo(f"A: {first.spec} ({first.kind}, n = {first.n})")
    typer.echo(f"B: {second.spec} ({second.kind}, n = {second.n})")
    typer.echo("InceptionV3 pool3 features (TF FID weights); FID depends on n: compare equal n")
    typer.echo(f"fid        {scores['fid']:.4g}")
    typer.echo(f"kid        {scores['kid']:.4g} ± {scores['kid_std']:.2g}")
    typer.echo(f"precision  {scores['precision']:.4g}")
    typer.echo(f"recall     {scores['recall']:.4g}")
    if fid_infinity:
        slope = f"{scores['fid_inf_slope']:.4g}"
        typer.echo(f"fid_inf    {scores['fid_inf']:.4g} (FID(n) = FID∞ + k/n, k = {slope})")


evaluator_app = typer.Typer(help="Evaluator classifiers: the feature extractors of image metrics.")
app.add_typer(evaluator_app, name="evaluator")


@command("train", group=evaluator_app)
def evaluator_train(
    dataset: str = arg(..., "digits, digits-m, fashion-mnist, mnist or cifar10."),
    resolution: int | None = opt(None, "Image size the evaluator reads (default: native)."),
    seed: int = opt(0, "Seed of the classifier."),
    data_dir: DataDir = None,
    arch: str = opt("cnn", "cnn, or stn: the CNN behind a spatial transformer."),
) -> None:
    """Train (once) and cache the evaluator classifier of a dataset."""
    evaluator, path = api.train_evaluator(dataset, resolution, seed, data_dir, arch)
    typer.echo(
        f"{dataset} evaluator: test accuracy {evaluator.test_accuracy:.4f}; cached at {path}"
    )


bench_app = typer.Typer(help="Benchmarks against published numbers (not tests).")
app.add_typer(bench_app, name="bench")


def _to_stderr(line: str) -> None:
    typer.echo(line, err=True)


@command("toy", group=bench_app)
def bench_toy(
    seeds: int = opt(5, "Seeds per preset."),
    presets_: str | None = opt(None, "Comma-separated ring/grid presets.", "--presets"),
    set_: Settings = None,
) -> None:
    """Train the ring/grid presets for S seeds; PacGAN's Table 1 protocol (2500 samples)."""
    typer.echo(api.bench_toy(presets_, seeds, set_ or [], on_line=_to_stderr))
    _command_line()


@command("images", group=bench_app)
def bench_images(
    steps: int = opt(2000, "The same training budget for every preset."),
    n: int = opt(2000, "Samples scored per preset."),
    seed: int = opt(0, "Training and evaluation seed."),
    presets_: str | None = opt(None, "Comma-separated digits/fashion-mnist presets.", "--presets"),
    set_: Settings = None,
    data_dir: str | None = opt(None, "Where dataset files are."),
    keep_runs: Path | None = opt(
        None, "Keep the trained runs in this folder (default: a temporary one)."
    ),
) -> None:
    """Train the digits and fashion-mnist presets for one budget; FD, KID, IS with floors."""
    table = api.bench_images(
        presets_, steps, n, seed, set_ or [], data_dir, keep_runs, on_line=_to_stderr
    )
    typer.echo(table)
    _command_line()


study_app = typer.Typer(help="Studies: searches over presets' settings, on Optuna (docs/study.md).")
app.add_typer(study_app, name="study")


@command("run", group=study_app)
def study_run(
    name: str = arg(..., "The study's name; its runs are NAME-tNNNN-sK."),
    preset: str | None = opt(None, "Comma-separated presets to search [default: the study's]."),
    search: list[str] | None = opt(
        None, "KEY=LOW..HIGH, KEY=log:LOW..HIGH or KEY=A,B,C (repeatable).", "--search"
    ),
    seeds: int = opt(1, "Seeds per setting; a trial scores their mean."),
    trials: int | None = opt(None, "Trials in all [default: 20; grid: every combination]."),
    metric: str | None = opt(None, "The score to search on [default: gankit eval's headline]."),
    sampler: str = opt("random", "random or grid."),
    seed: int = opt(0, "Seed of the sampler."),
    set_: Settings = None,
    eval_n: int | None = opt(None, "Samples each trial's eval scores."),
    train_evaluator: bool = opt(False, "Train the data's evaluator classifier if missing."),
    storage: str | None = opt(None, "An Optuna storage URL [default: RUNS/NAME.study.db]."),
    workers: int = opt(1, "Processes running trials side by side on this machine."),
    data_dir: DataDir = None,
    runs_dir: RunsDir = Path("runs"),
    space: Path | None = opt(None, "A YAML file of the search space (docs/study.md).", "--space"),
) -> None:
    """Run, join or resume a study: the same command resumes a killed one."""
    result = api.study(
        name, preset, search or [], seeds=seeds, trials=trials, metric=metric,
        sampler=sampler, seed=seed, overrides=set_ or [], eval_n=eval_n,
        train_evaluator=train_evaluator, storage=storage, workers=workers,
        runs_dir=runs_dir, data_dir=data_dir, on_line=_to_stderr, space=space,
    )  # fmt: skip
    _echo(result.summary())


@command("report", group=study_app)
def study_report(
    name: str = arg(..., "The study's name."),
    storage: str | None = opt(None, "An Optuna storage URL [default: RUNS/NAME.study.db]."),
    out: Path | None = opt(None, "The HTML file [default: NAME-study.html]; a .png beside it."),
    overwrite: bool = opt(False, "Replace existing files."),
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """A study's page: the score per preset, the best so far against trials, the best
    settings."""
    for path in api.study_report(name, storage, out, overwrite, runs_dir):
        typer.echo(f"wrote {path}")


@command()
def adapt(
    preset: str = arg("dann-digits-m", "A DANN or AdaptSeg preset or YAML config."),
    set_: list[str] | None = opt(None, "Override a setting for both runs.", "--set"),
    overwrite: bool = opt(False, "Replace existing runs of the same names."),
    data_dir: str | None = opt(None, "Where dataset files are."),
    seeds: int = opt(1, "Train every run with seeds 0..N-1; the table shows mean ± sd."),
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Domain adaptation: train DANN, pixel-level adaptation or AdaptSeg, and its baselines
    (source-only; for pixel-level, DANN too) with the same steps, and print their scores
    on the source and on the (unlabelled in training) target: accuracy, or mIoU with
    per-class IoU for segmentation."""
    typer.echo(
        api.adapt(preset, set_ or [], runs_dir, overwrite, data_dir, seeds, on_line=_to_stderr)
    )
    _command_line()


@command()
def explore(
    run: Run,
    what: str = opt("grid", "grid, interp, classes, traverse, manifold, codes, toy or segment."),
    n: int = opt(64, "grid: samples; manifold: inputs (at most 1,024).", "--n"),
    seed: int = opt(0, "Seed of the latents, in [0, 2**32 - 1]."),
    truncation: float | None = opt(None, "grid: redraw Gaussian latents beyond this |z|."),
    method: str = opt("slerp", "interp: lerp or slerp."),
    pairs: int = opt(6, "interp: how many random pairs (at most 64)."),
    steps: int = opt(10, "interp/traverse: columns; classes: samples per class (at most 64)."),
    seeds: str | None = opt(None, "interp: two latent seeds to walk between, e.g. 3,8."),
    view: str = opt("auto", "manifold: plane, recon or auto."),
    animate: bool = opt(False, "toy: a GIF over the run's snapshots."),
    compare: list[str] | None = opt(
        None, "segment: another run to show next to RUN (e.g. source-only)."
    ),
    out: Path | None = opt(
        None, "Directory (default RUN/explore, or RUN/explore/step_N with --step)."
    ),
    overwrite: bool = opt(False, "Replace existing pictures."),
    step: Step = None,
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Pictures of what a run learned: sample grids, walks, classes, codes, manifolds."""
    from gankit.errors import GankitError, int_list
    from gankit.explore.explore import ExploreOptions

    pair = int_list(seeds, "--seeds")
    if pair is not None and len(pair) != 2:
        raise GankitError(f"--seeds takes two seeds such as 3,8; got '{seeds}'")
    options = ExploreOptions(
        n=n, seed=seed, truncation=truncation, method=method, pairs=pairs, steps=steps,
        seeds=tuple(pair) if pair else None, view=view, animate=animate,
    )  # fmt: skip
    written = api.explore(
        run, what, options, out, overwrite, step=step, compare=compare or [], runs_dir=runs_dir
    )
    for path in written:
        typer.echo(f"{what}: {path}")


@command()
def translate(
    run: str = arg(..., "A CycleGAN run directory, or its name."),
    direction: str = opt("AtoB", "AtoB (G_AB) or BtoA (G_BA)."),
    input_: Path = opt(..., "An image file or folder (series: a .npy, .csv).", "--input"),
    out: Path = opt(..., "Directory for the translated PNGs (series: a .npy or .csv file)."),
    strips: bool = opt(False, "Also write input | translated | reconstructed strips."),
    overwrite: Overwrite = False,
    import_: Imports = None,
    amount: float | None = opt(None, "Change runs: how much to change, in [0, 1]."),
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Translate images with a CycleGAN run's generators, or change them by --amount
    with a change run; PNGs at the run's resolution."""
    made = api.translate(run, input_, out, direction, strips, overwrite, amount, runs_dir)
    typer.echo(
        f"{direction}: wrote {len(made.paths)} file(s) from {made.run.checkpoint} into {out}"
    )


checkpoint_app = typer.Typer(help="Checkpoint files: convert those of older gankit versions.")
app.add_typer(checkpoint_app, name="checkpoint")


@command("upgrade", group=checkpoint_app)
def checkpoint_upgrade(
    target: str = arg(..., "A run (directory or name under --runs-dir), or one .pt file."),
    trust: bool = opt(
        False, "Say that you trust the file: upgrading unpickles it, running its code."
    ),
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Rewrite older checkpoints so they load as plain tensors; keeps each old one as .pt.bak.

    gankit loads checkpoints with torch.load(weights_only=True), which never runs code.
    Checkpoints of gankit before format 2 hold numpy objects that only a full unpickling
    can read, and a full unpickling runs any code a file carries: do it only for files
    you made or trust.
    """
    for path, backup in api.upgrade_checkpoints(target, runs_dir, trust):
        done = (
            "already in the current format"
            if backup is None
            else f"upgraded (the old file is {backup})"
        )
        typer.echo(f"{path}: {done}")


@command()
def generate(
    run: str = arg(..., "A language-model run directory, or its name."),
    seed_text: str | None = opt(
        None,
        "The text the passages continue [default: a start drawn "
        "from the training text with --seed].",
    ),
    temperature: str | None = opt(
        None, "Comma-separated temperatures T > 0 [default: 0.2,0.5,1.0,1.2]."
    ),
    length: int = opt(400, "Tokens to generate per passage."),
    top_k: int | None = opt(None, "Sample from the K most probable tokens only."),
    greedy: bool = opt(False, "One passage of the most probable tokens instead."),
    seed: int = opt(0, "Seed of the sampling."),
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Continue a seed text with a language model: one passage per temperature."""
    made = api.generate(run, seed_text, temperature, length, top_k, greedy, seed, runs_dir)
    typer.echo(f"run {made.run.path} at step {made.run.step}, seed {seed}")
    if made.drawn_at is not None:
        typer.echo(
            f"seed text {made.seed_text!r}: drawn from the training text at token "
            f"{made.drawn_at} by --seed (give your own with --seed-text)"
        )
    for note in made.notes:
        typer.echo(f"note: {note}", err=True)
    for passage in made.passages:
        typer.echo(f"--- {passage.label} ---")
        typer.echo(passage.text)


@command()
def export(
    run: Run,
    format_: str = opt("safetensors", "safetensors, torchscript or onnx.", "--format"),
    out: Path | None = opt(None, "Output file [default: RUN/export/step_N.<suffix>]."),
    step: Step = None,
    direction: str | None = opt(None, "Translators: AtoB or BtoA [default: AtoB]."),
    overwrite: bool = opt(False, "Replace existing files."),
    import_: Imports = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Write the network a run makes (generator, translator, classifier) for other
    tools, with a JSON of its config beside it."""
    path = api.export_run(run, format_, out, step, direction, runs_dir, overwrite)
    typer.echo(f"{format_}: {path} (config: {path}.json)")


@command("runs")
def runs_(folder: Path = arg(Path("runs"), "A folder of runs.")) -> None:
    """List the runs in a folder: model, data, steps, state, latest losses and score.

    State: training (a process holds the run), diverged, done (every step asked for),
    or stopped (interrupted, killed, or not started)."""
    summaries = api.list_runs(folder)
    if not summaries:
        typer.echo(f"no runs in '{folder}'")
        return
    _table(summaries[0].COLUMNS, [row.cells() for row in summaries], 160)


def _print_version(value: bool) -> None:
    if value:
        from gankit.version import __version__

        typer.echo(f"gankit {__version__}")
        raise typer.Exit()


@app.callback()
@handle_errors
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
    import_: Imports = None,
) -> None:
    """Train, evaluate and explore GANs on PyTorch."""
    GLOBAL_IMPORTS[:] = import_ or []
    use_imports(None)


@command()
def report(
    runs: list[str] = arg(..., "A run directory or name; several with --compare."),
    compare: bool = opt(False, "Put several runs on one page: curves overlaid, one table."),
    out: Path | None = opt(None, "The HTML file (default: RUN-report.html in the current folder)."),
    open_: bool = opt(False, "Open the page in a browser.", "--open"),
    overwrite: bool = opt(False, "Replace an existing report file."),
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """One self-contained HTML page of a run: curves, previews, scores, pictures, commands."""
    typer.echo(f"report: {api.report(runs, compare, out, open_, overwrite, runs_dir)}")


@command()
def dream(
    image: str | None = arg(
        None, "An image file, or sample:china.jpg / sample:flower.jpg [default: china]."
    ),
    layers: str = opt("mixed_3,mixed_5", "Comma-separated InceptionV3 layers."),
    octaves: int = opt(3, "Scales, smallest first."),
    octave_scale: float = opt(1.4, "Ratio between neighbouring scales."),
    steps: int = opt(20, "Gradient-ascent steps per octave."),
    step_size: float = opt(0.01, "Step size (pixels in [-1, 1])."),
    objective: str = opt("mean_square", "mean_square or l2 of the activations."),
    size: int = opt(256, "Longer side of the picture, in pixels."),
    out: Path = opt(..., "The dream, as a PNG."),
    figure: Path | None = opt(None, "Also write input | dream side by side, labelled."),
    overwrite: Overwrite = False,
    progress: ShowProgress = True,
) -> None:
    """DeepDream: gradient ascent on an image to make InceptionV3 layers fire harder."""
    result = api.dream(
        image, out, layers=layers, size=size, figure=figure, overwrite=overwrite,
        octaves=octaves, octave_scale=octave_scale, steps=steps, step_size=step_size,
        objective=objective, progress=progress,
    )  # fmt: skip
    _echo(result.summary())
    typer.echo(f"wrote {out}" + (f" and {figure}" if figure else ""))


@command()
def lab(
    port: int = opt(8765, "The port to listen on."),
    host: str = opt(
        "127.0.0.1", "The address to listen on; another than 127.0.0.1 is warned about."
    ),
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """A live GAN lab in the browser: toy GANs of gankit, trained as you watch."""
    api.lab(host, port, runs_dir)


@command()
def style(
    content: str | None = arg(None, "Content image file, or sample:NAME [default: china]."),
    style_image: str | None = typer.Argument(
        None, metavar="STYLE", help="Style image file, or sample:NAME [default: flower]."
    ),
    content_layer: str = opt("mixed_5", "InceptionV3 layer of L_content."),
    style_layers: str = opt(
        "conv_1,conv_4,mixed,mixed_2,mixed_4", "Comma-separated InceptionV3 layers of L_style."
    ),
    content_weight: float = opt(1.0, "Weight of L_content."),
    style_weight: float = opt(30.0, "Weight of L_style."),
    tv_weight: float = opt(0.5, "Weight of L_tv (0 turns it off)."),
    steps: int = opt(150, "Optimiser steps."),
    optimizer: str = opt("adam", "adam or lbfgs."),
    lr: float = opt(0.1, "Adam's learning rate."),
    size: int = opt(256, "Longer side of both pictures, in pixels."),
    out: Path = opt(..., "The result, as a PNG."),
    figure: Path | None = opt(None, "Also write content | style | result, labelled."),
    overwrite: Overwrite = False,
    progress: ShowProgress = True,
) -> None:
    """Neural style transfer (Gatys et al.): the content of one picture, the style of another."""
    result = api.style(
        content, style_image, out, size=size, figure=figure, overwrite=overwrite,
        content_layer=content_layer, style_layers=style_layers, content_weight=content_weight,
        style_weight=style_weight, tv_weight=tv_weight, steps=steps, optimizer=optimizer,
        lr=lr, progress=progress,
    )  # fmt: skip
    _echo(result.summary())
    typer.echo(f"wrote {out}" + (f" and {figure}" if figure else ""))


@command()
def inspect(
    network: str = arg(
        ..., "inception, evaluator:DATASET (e.g. evaluator:digits), or a classify run."
    ),
    what: str = opt("activations", "activations, filters or gradcam."),
    layer: str | None = opt(None, "Comma-separated layers [default: a few, or the last conv]."),
    image: str | None = opt(None, "An image file (or sample:NAME for the InceptionV3)."),
    index: int | None = opt(None, "First test image of an evaluator's dataset [default: 0]."),
    n: int = opt(8, "Test images in a Grad-CAM picture."),
    resolution: int | None = opt(None, "The evaluator trained at this size [default: native]."),
    size: int = opt(224, "InceptionV3 picture side, in pixels."),
    filters: int = opt(16, "Filters shown per layer."),
    steps: int = opt(30, "Gradient-ascent steps of filter patterns."),
    out: Path = opt(..., "Folder for the PNGs."),
    overwrite: Overwrite = False,
    progress: ShowProgress = True,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Look inside a convnet: activations per layer, filter patterns, Grad-CAM heatmaps."""
    written = api.inspect(
        network, what, out, layers=layer, image=image, index=index, n=n, size=size,
        filters=filters, steps=steps, resolution=resolution, runs_dir=runs_dir,
        overwrite=overwrite, progress=progress,
    )  # fmt: skip
    for path in written:
        typer.echo(f"wrote {path}")


@command()
def attack(
    targets: list[str] = arg(..., "Classifiers: classify-task runs and/or evaluator:DATASET."),
    attack_: str = opt("fgsm,pgd", "Comma-separated attacks: fgsm, pgd.", "--attack"),
    norm: str = opt("linf", "The ball of the perturbation: linf or l2."),
    eps: str | None = opt(None, "Comma-separated radii [default: the norm's grid]."),
    steps: int = opt(20, "PGD steps (step size 2.5 eps / steps)."),
    n: int = opt(1000, "Held-out examples attacked (a seeded subset when there are more)."),
    examples: int = opt(6, "Images in the original / perturbation / adversarial picture."),
    show_eps: float | None = opt(None, "The eps of that picture [default: 0.1 linf, 1.0 l2]."),
    train_eps: float | None = opt(None, "Also train a PGD copy of each evaluator at this eps."),
    resolution: int | None = opt(None, "The evaluator trained at this size [default: native]."),
    domain: str = opt("source", "A run's domain to attack: source or target."),
    seed: Seed = 0,
    out: Path | None = opt(None, "Folder for the figure, table and pictures."),
    overwrite: Overwrite = False,
    progress: ShowProgress = True,
    runs_dir: RunsDir = Path("runs"),
    data_dir: DataDir = None,
    restarts: int = opt(1, "PGD's random starts; the worst case per example is kept."),
) -> None:
    """Attack classifiers with FGSM and PGD: robust accuracy over eps, and examples."""
    report = api.attack(
        targets, out, attacks=attack_, norm=norm, eps=eps, steps=steps, n=n, examples=examples,
        show_eps=show_eps, train_eps=train_eps, resolution=resolution, domain=domain,
        seed=seed, runs_dir=runs_dir, data_dir=data_dir, overwrite=overwrite, progress=progress,
        restarts=restarts,
    )  # fmt: skip
    _echo(report.summary())


@command()
def som(
    run: Run,
    grid: str = opt("10x10", "The SOM's grid, ROWSxCOLUMNS (at least 2x2)."),
    n: int = opt(1000, "Real items and samples mapped, each."),
    iterations: int = opt(20000, "Training steps, one input each."),
    seed: Seed = 0,
    out: Path | None = opt(None, "The PNG: U-matrix, hit maps, missed units."),
    overwrite: Overwrite = False,
    step: Step = None,
    runs_dir: RunsDir = Path("runs"),
    data_dir: DataDir = None,
    save: bool = opt(False, "Also keep the picture in RUN/explore/, for gankit report."),
) -> None:
    """Map a run's samples onto a self-organising map of its real data: SOM coverage."""
    result = api.som(
        run, out, grid=grid, n=n, iterations=iterations, seed=seed, overwrite=overwrite,
        step=step, runs_dir=runs_dir, data_dir=data_dir, save=save,
    )  # fmt: skip
    _echo(result.summary())


def main() -> None:
    app(prog_name="gankit")


if __name__ == "__main__":
    sys.exit(main())
