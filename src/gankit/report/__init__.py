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
import webbrowser
from pathlib import Path

from gankit.config import dump_yaml
from gankit.errors import GankitError
from gankit.explore.pictures import curve_figure, writing
from gankit.files import atomic_write_text, read_bytes
from gankit.registry import get_spec
from gankit.report.folder import MAX_EMBEDDED_BYTES, PICTURE_SUFFIXES, RunFolder, read_folder
from gankit.report.page import Page, escape, figure_svg, pictures, slider, table
from gankit.report.provenance import closest_preset, commands
from gankit.tasks import Task, get_task

#: The most runs one ``--compare`` page shows.
MAX_COMPARE = 12


def task_of(folder: RunFolder) -> Task | None:
    """The task the run's model declares; None for a model this gankit does not have."""
    try:
        return get_task(get_spec(folder.config["model"]["name"]).cls)
    except GankitError:
        return None


def number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def status(folder: RunFolder) -> str:
    total = folder.config["train"]["steps"]
    if folder.training:
        now = '<span class="status-training">training now</span>'
        return f"{now}: step {folder.step} of {total} so far"
    if folder.step >= total:
        return f"finished: {total} steps"
    return f"stopped at step {folder.step} of {total} (gankit train --resume continues it)"


def curves(folders: list[RunFolder], title: str) -> str:
    runs = {f.name: f.rows for f in folders if f.rows}
    return figure_svg(curve_figure(runs, title)) if runs else ""


def eval_rows(evaluation: dict) -> list[list[str]]:
    """metric | generated (or value) | real floor."""
    floor = evaluation.get("floor") or {}
    rows = [["metric", "this run", "real-vs-real floor" if floor else ""]]
    for key, value in evaluation["scores"].items():
        rows.append([key, number(value), number(floor[key]) if key in floor else ""])
    return rows if floor else [r[:2] for r in rows]


def timings(folder: RunFolder) -> list[list[str]]:
    rows = [["what", "value"]]
    logged = [r for r in folder.rows if isinstance(r.get("time"), (int, float))]
    if logged:
        rows.append(
            [
                "training time logged at the last line (this call of gankit train)",
                f"{logged[-1]['time']:.1f} s",
            ]
        )
        rates = [
            (b["step"] - a["step"]) / (b["time"] - a["time"])
            for a, b in itertools.pairwise(logged)
            if b["time"] > a["time"] and b["step"] > a["step"]
        ]
        if rates:
            rows.append(
                [
                    "steps per second (median between log lines)",
                    f"{sorted(rates)[len(rates) // 2]:.3g}",
                ]
            )
    eval_time = sum(r.get("eval_seconds", 0.0) for r in folder.rows)
    if eval_time:
        rows.append(["time spent in evaluations during training", f"{eval_time:.1f} s"])
    if folder.evaluation is not None:
        rows.append(["gankit eval (eval.json)", f"{folder.evaluation.get('seconds', 0):.1f} s"])
    if folder.checkpoints:
        rows.append(["checkpoints", ", ".join(p.name for _, p in folder.checkpoints)])
    return rows if len(rows) > 1 else []


def run_page(folder: RunFolder) -> Page:
    """The page of one run."""
    config, task = folder.config, task_of(folder)
    kind = f" ({escape(task.name)}: {escape(task.summary)})" if task else ""
    page = Page(
        f"gankit report: {folder.name}",
        f"model <b>{escape(config['model']['name'])}</b>{kind} on data "
        f"<b>{escape(config['data']['name'])}</b> · {status(folder)} · folder "
        f"<code>{escape(folder.path)}</code>",
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
    for section in task.report(folder) if task and task.report else []:
        body = (
            slider(section.frames)
            if len(section.frames) > 1
            else pictures((label, content, mime) for label, content, mime in section.frames)
            if section.frames
            else ""
        )
        page.add(
            section.title, body + (table(section.table) if section.table else ""), section.caption
        )
    evaluation_section(page, folder)
    explore_section(page, folder, task)
    page.add("Timings", table(timings(folder)))
    config_section(page, folder)
    page.add(
        "Commands",
        "<pre>"
        + "\n".join(f"# {escape(what)}\n{escape(cmd)}" for what, cmd in commands(folder))
        + "</pre>",
    )
    return page


def evaluation_section(page: Page, folder: RunFolder) -> None:
    evaluation = folder.evaluation
    if evaluation is None:
        page.add(
            "Evaluation",
            "",
            f"No eval.json yet: gankit eval {folder.name} scores the newest checkpoint.",
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
    notes = evaluation.get("extra", {}).get("notes") or []
    extra = "".join(f"<p class='caption'>{escape(n)}</p>" for n in notes)
    page.add("Evaluation", table(eval_rows(evaluation)) + extra, caption)


def explore_section(page: Page, folder: RunFolder, task: Task | None) -> None:
    drawn = [
        (p.name, read_bytes(p, MAX_EMBEDDED_BYTES), PICTURE_SUFFIXES[p.suffix])
        for p in folder.pictures
    ]
    views = list(task.views_for(get_spec(folder.config["model"]["name"]).cls)) if task else []
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
    body = f"<p>{escape(origin)}</p><pre>{escape(dump_yaml(folder.config))}</pre>"
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
        floors = (f.evaluation or {}).get("floor") or {}
        cells = [
            number(scores[k]) + (f" (floor {number(floors[k])})" if k in floors else "")
            if k in scores
            else ""
            for k in keys
        ]
        eval_step = f.evaluation.get("step") if f.evaluation else "no eval.json"
        rows.append(
            [f.name, f.config["model"]["name"], f.config["data"]["name"], f.step, eval_step, *cells]
        )
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
