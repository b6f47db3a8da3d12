"""``gankit report``: a run's whole story on one self-contained HTML page.

The page reads the run folder's files (:mod:`gankit.report.folder`), never a
checkpoint, so it also shows a run that is still training: what is there so far.
What every run has is drawn here: the curves of ``metrics.jsonl`` as inline SVG small
multiples, the previews over training behind a step slider, the latest ``gankit eval``
scores next to their real-vs-real floors, the ``gankit explore`` pictures, timings, the
config with the preset it is closest to, and the commands that make the run again.
What only some kinds of model have comes from the run's task (``Task.report`` in
:mod:`gankit.tasks`): toy fields for 2-D samplers, strips for translators, accuracy and
mIoU tables for adaptation runs. ``--compare`` puts several runs on one page.
"""

from __future__ import annotations

import itertools
import math
import shlex
import webbrowser
from pathlib import Path

from gankit.config import dump_yaml
from gankit.data import DATA_FILES, DATASETS, load_data
from gankit.errors import GankitError, warn
from gankit.explore.pictures import curve_figure, writing
from gankit.explore.som import SOM_PICTURE
from gankit.files import atomic_write_text, read_bytes
from gankit.registry import get_spec
from gankit.report.folder import MAX_EMBEDDED_BYTES, PICTURE_SUFFIXES, RunFolder, read_folder
from gankit.report.page import Markup, Page, figure_svg, join, markup, pictures, slider, table
from gankit.report.provenance import closest_preset, commands
from gankit.tasks import ReportSection, Task, get_task

#: The most runs one ``--compare`` page shows.
MAX_COMPARE = 12
#: The most characters of the lock's holder (``process 123 on HOST``) the page shows.
MAX_HOLDER = 200


def setting(folder: RunFolder, section: str, key: str) -> object:
    """``config[section][key]`` as the run's config.yaml has it (any type: the file is
    the sender's), or None where it is missing."""
    values = folder.config.get(section)
    return values.get(key) if isinstance(values, dict) else None


def model_class(folder: RunFolder) -> type | None:
    """The run's model family; None for a model this gankit does not have."""
    try:
        return get_spec(setting(folder, "model", "name")).cls
    except (GankitError, TypeError):
        return None


def task_of(folder: RunFolder) -> Task | None:
    """The task the run's model declares; None for a model this gankit does not have."""
    cls = model_class(folder)
    try:
        return get_task(cls) if cls is not None else None
    except GankitError:
        return None


def views_of(folder: RunFolder) -> list[str]:
    """The ``--what`` names that draw this run: the views its task and family declare,
    less those its data cannot have (see :func:`gankit.tasks.Task.views_for`)."""
    cls, task = model_class(folder), task_of(folder)
    if cls is None or task is None:
        return []
    return list(task.views_for(cls, data_shape(folder) if task.view_needs else None))


def data_shape(folder: RunFolder) -> tuple[int, ...] | None:
    """The shape of one item of the run's data where learning it reads no files: a
    built-in source (drawn from a seed, or shipped with gankit) is loaded; for a source
    read from files, None (the page is not worth a dataset read, or a download)."""
    name = setting(folder, "data", "name")
    if not isinstance(name, str) or name not in DATASETS or name in DATA_FILES:
        return None
    try:
        return tuple(load_data(folder.config["data"]).shape)
    except (ValueError, TypeError):  # a hand-edited data section: no view left out
        return None


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def status(folder: RunFolder) -> Markup:
    total = setting(folder, "train", "steps")
    if folder.training:
        holder = folder.holder or "another process"
        return markup(
            '<span class="status-training">training now</span> ({}): step {} of {} so far',
            holder[:MAX_HOLDER],
            folder.step,
            total,
        )
    if not isinstance(total, int):  # a hand-edited config.yaml: shown, not compared
        return markup("at step {} (config.yaml's train.steps: {})", folder.step, total)
    if folder.step >= total:
        return markup("finished: {} steps", total)
    return markup(
        "stopped at step {} of {} (gankit train --resume continues it)", folder.step, total
    )


def logged(folder: RunFolder) -> list[dict]:
    """The lines of ``metrics.jsonl`` that carry a step (a hand-edited line may not)."""
    return [r for r in folder.rows if isinstance(r.get("step"), int)]


def curves(folders: list[RunFolder], title: str) -> Markup:
    runs = {f.name: logged(f) for f in folders if logged(f)}
    return figure_svg(curve_figure(runs, title)) if runs else Markup()


def floors(evaluation: dict | None) -> dict:
    """The real-vs-real floors of ``eval.json``, by score; none where it has none."""
    floor = (evaluation or {}).get("floor")
    return floor if isinstance(floor, dict) else {}


def eval_rows(evaluation: dict) -> list[list[str]]:
    """metric | generated (or value) | real floor."""
    floor = floors(evaluation)
    rows = [["metric", "this run", "real-vs-real floor" if floor else ""]]
    for key, value in evaluation["scores"].items():
        rows.append([key, number(value), number(floor[key]) if key in floor else ""])
    return rows if floor else [r[:2] for r in rows]


def timings(folder: RunFolder) -> list[list[str]]:
    rows = [["what", "value"]]
    timed = [r for r in logged(folder) if isinstance(r.get("time"), (int, float))]
    if timed:
        rows.append(
            [
                "training time logged at the last line (this call of gankit train)",
                f"{timed[-1]['time']:.1f} s",
            ]
        )
        rates = [
            (b["step"] - a["step"]) / (b["time"] - a["time"])
            for a, b in itertools.pairwise(timed)
            if b["time"] > a["time"] and b["step"] > a["step"]
        ]
        if rates:
            rows.append(
                [
                    "steps per second (median between log lines)",
                    f"{sorted(rates)[len(rates) // 2]:.3g}",
                ]
            )
    eval_time = sum(r["eval_seconds"] for r in folder.rows if is_number(r.get("eval_seconds")))
    if eval_time:
        rows.append(["time spent in evaluations during training", f"{eval_time:.1f} s"])
    if folder.evaluation is not None:
        seconds = folder.evaluation.get("seconds", 0)
        shown = f"{seconds:.1f}" if is_number(seconds) else seconds
        rows.append(["gankit eval (eval.json)", f"{shown} s"])
    if folder.checkpoints:
        rows.append(["checkpoints", ", ".join(p.name for _, p in folder.checkpoints)])
    return rows if len(rows) > 1 else []


def run_page(folder: RunFolder) -> Page:
    """The page of one run."""
    task = task_of(folder)
    page = Page(
        f"gankit report: {folder.name}",
        markup(
            "model <b>{}</b>{} on data <b>{}</b> · {} · folder <code>{}</code>",
            setting(folder, "model", "name"),
            f" ({task.name}: {task.summary})" if task else "",
            setting(folder, "data", "name"),
            status(folder),
            folder.path,
        ),
    )
    page.add(
        "Training curves",
        curves([folder], f"{folder.name}: training curves"),
        "Every number of metrics.jsonl against the step. The losses share a panel; every "
        "other number has its own axis. eval_* are the scores computed every "
        "train.eval_every steps. "
        if folder.rows
        else "Nothing logged yet.",
    )
    if folder.previews:
        frames = [(f"{folder.name} step {p.step}", p.content(), p.mime) for p in folder.previews]
        caption = (
            task.preview_caption if task else ""
        ) + " Drag the slider to step through training."
        page.add("Previews over training", slider(frames), caption.strip())
    for section in task_sections(folder, task):
        body = (
            slider(section.frames)
            if len(section.frames) > 1
            else pictures((label, content, mime) for label, content, mime in section.frames)
            if section.frames
            else Markup()
        )
        page.add(
            section.title, body + (table(section.table) if section.table else ""), section.caption
        )
    evaluation_section(page, folder)
    som_section(page, folder)
    explore_section(page, folder)
    page.add("Timings", table(timings(folder)))
    config_section(page, folder)
    lines = (f"# {what}\n{cmd}" for what, cmd in commands(folder, views_of(folder)))
    page.add("Commands", markup("<pre>{}</pre>", "\n".join(lines)))
    return page


def task_sections(folder: RunFolder, task: Task | None) -> list[ReportSection]:
    """The sections only the run's task has; none, with a warning, where they cannot be
    drawn (the run's data is not on this machine), so the rest of the page still is."""
    if task is None or task.report is None:
        return []
    try:
        return task.report(folder)
    except GankitError as err:
        warn(f"the page leaves out what only {task.name} runs have: {err}")
        return []


def evaluation_section(page: Page, folder: RunFolder) -> None:
    evaluation = folder.evaluation
    if evaluation is None:
        page.add(
            "Evaluation",
            "",
            f"No eval.json yet: {shlex.join(['gankit', 'eval', folder.name])} scores the "
            "newest checkpoint.",
        )
        return
    step = evaluation.get("step")
    caption = (
        f"gankit eval at step {step}: {evaluation.get('n')} samples against "
        f"{evaluation.get('n_reference')} of the {evaluation.get('split')} split. The floor is "
        "the same score between two sets of real data: how close a perfect model would come."
        if evaluation.get("floor")
        else f"gankit eval at step {step}, on the {evaluation.get('split')} split."
    )
    if isinstance(step, int) and step < folder.step:
        caption += (
            f" The run has reached step {folder.step} since: run gankit eval again to update."
        )
    extra = (evaluation.get("extra") or {}) if isinstance(evaluation.get("extra"), dict) else {}
    notes = extra.get("notes") or []
    notes = notes if isinstance(notes, list) else [notes]
    extra = join(markup('<p class="caption">{}</p>', n) for n in notes)
    page.add("Evaluation", table(eval_rows(evaluation)) + extra, caption)


def _embedded(paths: list[Path]) -> list[tuple[str, bytes, str]]:
    """(name, bytes, mime) of each picture, each read within the embedding bound."""
    return [(p.name, read_bytes(p, MAX_EMBEDDED_BYTES), PICTURE_SUFFIXES[p.suffix]) for p in paths]


def som_section(page: Page, folder: RunFolder) -> None:
    """The SOM pictures ``gankit som RUN --save`` kept in explore/, with the SOM coverage
    of the latest ``gankit eval`` where it has one; nothing where the run has neither."""
    drawn = _embedded([p for p in folder.pictures if SOM_PICTURE.fullmatch(p.name)])
    scores = (folder.evaluation or {}).get("scores")
    scores = scores if isinstance(scores, dict) else {}
    floor = floors(folder.evaluation)
    rows = [["score", "this run", "real-vs-real floor"]]
    if "som_coverage" in scores:
        rows.append(["som_coverage", number(scores["som_coverage"]),
                     number(floor.get("som_coverage", ""))])  # fmt: skip
    if not drawn and len(rows) == 1:
        return
    page.add(
        "Self-organising map",
        (pictures(drawn) if drawn else Markup()) + (table(rows) if len(rows) > 1 else Markup()),
        "A SOM fitted to held-out real data (the evaluator's features for images, the "
        "points themselves in 2-D), with the run's samples mapped onto it: the U-matrix, "
        "the hit maps of real items and of samples side by side, the units real data "
        "occupies that no sample reaches, and the quantisation error over training. The SOM "
        "coverage is the share of real-occupied units that samples reach (docs/som.md). "
        + ("Drawn by gankit som RUN --save. " if drawn else "")
        + ("" if len(rows) > 1 else "gankit eval --metrics som scores the coverage."),
    )


def explore_section(page: Page, folder: RunFolder) -> None:
    # the SOM pictures have their own section
    drawn = _embedded([p for p in folder.pictures if not SOM_PICTURE.fullmatch(p.name)])
    views = views_of(folder)
    caption = (
        f"The pictures gankit explore drew into {folder.paths.explore}. "
        if drawn
        else "No gankit explore pictures yet. "
    )
    if views:
        caption += (
            "Pictures that apply to this run: " + ", ".join(f"--what {v}" for v in views) + "."
        )
    page.add("Pictures (gankit explore)", pictures(drawn) if drawn else "", caption)


def config_section(page: Page, folder: RunFolder) -> None:
    found = closest_preset(folder.config)
    if found is None:
        origin = (
            "No preset reaches this config by --set overrides alone; it was made from a "
            "config file or a dict."
        )
    elif found[1]:
        origin = f"Closest preset: {found[0]}, with these overrides: " + ", ".join(found[1]) + "."
    else:
        origin = f"The preset {found[0]} exactly, with no override."
    body = markup("<p>{}</p><pre>{}</pre>", origin, dump_yaml(folder.config))
    page.add(
        "Config",
        body,
        "The resolved config the run was trained with (config.yaml: every default explicit).",
    )


def compare_page(folders: list[RunFolder]) -> Page:
    """Several runs: curves overlaid, one metric table, the newest previews side by side."""
    names = [f.name for f in folders]
    page = Page(f"gankit report: {', '.join(names)}", f"{len(folders)} runs compared")
    page.add(
        "Training curves",
        curves(folders, "training curves"),
        "One colour per run, the same on every panel; one panel per logged number.",
    )
    keys = list(dict.fromkeys(k for f in folders if f.evaluation for k in f.evaluation["scores"]))
    header = ["run", "model", "data", "step", "eval step", *keys]
    rows = [header]
    for f in folders:
        scores = f.evaluation["scores"] if f.evaluation else {}
        floor = floors(f.evaluation)
        cells = [
            number(scores[k]) + (f" (floor {number(floor[k])})" if k in floor else "")
            if k in scores
            else ""
            for k in keys
        ]
        eval_step = f.evaluation.get("step") if f.evaluation else "no eval.json"
        model, data = setting(f, "model", "name"), setting(f, "data", "name")
        rows.append([f.name, model, data, f.step, eval_step, *cells])
    page.add(
        "Metrics",
        table(rows),
        "The scores of each run's eval.json, each next to its real-vs-real floor.",
    )
    newest = [
        (f"{f.name} step {f.previews[-1].step}", f.previews[-1].content(), f.previews[-1].mime)
        for f in folders
        if f.previews and f.previews[-1].mime != "text/plain"
    ]
    page.add(
        "Newest previews", pictures(newest) if newest else "", "The newest preview of each run."
    )
    page.add(
        "Config differences",
        table(config_differences(folders)),
        "The settings in which the runs differ.",
    )
    return page


def config_differences(folders: list[RunFolder]) -> list[list[str]]:
    flat = [
        {
            f"{s}.{k}": v
            for s in ("model", "data", "train")
            for k, v in (f.config.get(s) or {}).items()
        }
        for f in folders
    ]
    keys = sorted({k for d in flat for k in d if len({repr(e.get(k)) for e in flat}) > 1})
    if not keys:
        return []
    return [["setting", *(f.name for f in folders)]] + [
        [k, *(number(d[k]) if k in d else "" for d in flat)] for k in keys
    ]


def default_out(folders: list[RunFolder]) -> Path:
    """``NAME-report.html`` in the current folder; ``compare-A-B-report.html`` for several."""
    if len(folders) == 1:
        return Path(f"{folders[0].name}-report.html")
    joined = "-".join(f.name for f in folders)
    return Path(f"compare-{joined[:120]}-report.html")


def write_report(
    runs: list[str | Path],
    out: str | Path | None = None,
    overwrite: bool = False,
    runs_dir: str | Path = "runs",
    open_browser: bool = False,
) -> Path:
    """Write the report of one run, or (several runs) the comparison page; returns its path.

    Raises:
        GankitError: no run, too many runs, a run not found, or ``out`` exists and
            ``overwrite`` is False.
    """
    if not runs:
        raise GankitError(
            "gankit report needs a run: gankit report RUN (or --compare RUN1 RUN2 ...)"
        )
    if len(runs) > MAX_COMPARE:
        raise GankitError(f"--compare shows at most {MAX_COMPARE} runs, got {len(runs)}")
    folders = [read_folder(run, runs_dir) for run in runs]
    path = Path(out) if out is not None else default_out(folders)
    if path.suffix.lower() not in (".html", ".htm"):
        raise GankitError(f"--out '{path}' must end in .html: the report is one HTML file")
    if path.exists() and not overwrite:
        raise GankitError(f"'{path}' already exists; pass --overwrite or choose another --out")
    page = run_page(folders[0]) if len(folders) == 1 else compare_page(folders)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, page.html())
    if open_browser:
        webbrowser.open(path.resolve().as_uri())
    return path


__all__ = ["compare_page", "run_page", "write_report"]
