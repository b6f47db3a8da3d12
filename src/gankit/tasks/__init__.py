"""Tasks: what the shared code does for each kind of model, in one dict keyed by name.

A model family declares what it is with one class attribute, ``task`` (see
:mod:`gankit.models.base`). Everything that differs between kinds of model outside the
family's own file is an entry of :class:`Task`, looked up by that name:

- the pictures drawn while training (``previews``) and the numbers logged every
  ``train.eval_every`` steps (``scores``);
- what ``gankit eval`` measures (``evaluate``);
- which ``gankit explore`` pictures exist (``views``) and which apply to every model of
  the task (``default_views``; a family adds the others it can draw in ``Model.views``);
- how ``gankit adapt`` tabulates a run against its baseline (``adaptation``);
- what ``gankit report`` shows of a run beyond what every run has (``report``);
- what ``gankit translate``, ``gankit export`` and ``gankit generate`` do with a run
  (``translate_files``, ``export``, ``generate``).

This is Hugging Face's ``pipeline(task=...)`` shape: one dict from task name to the code
that serves it. A new kind of model is a new :class:`Task` given to :func:`register_task`
(from any module, a test included), not a new ``if`` in the trainer, eval and explore.

Built in: ``sample`` (GANs, the VAE), ``translate`` (CycleGAN), ``classify`` (DANN),
``segment`` (AdaptSeg) and ``sequence`` (the LSTM/GRU language models).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gankit.errors import GankitError, choices
from gankit.registry import require_methods

#: ``previews(model, bundle, seed) -> Previews | None`` (see ``gankit.training.trainer``).
PreviewsFactory = Callable[[Any, Any, int], Any]
#: ``scores(model, bundle, train_config) -> evaluate(step, net) -> dict``.
ScoresFactory = Callable[[Any, Any, Any], Callable]


@dataclass(frozen=True)
class Adaptation:
    """How ``gankit adapt`` reports a task's runs against their baselines.

    Attributes:
        headline: ``headline(scores) -> str``: the one number to print per run.
        table: ``table(rows, source, target) -> str``: the markdown table of all runs.
    """

    headline: Callable[[dict[str, float]], str]
    table: Callable[[list, str, str], str]


@dataclass
class ReportSection:
    """One section of ``gankit report``'s page that only some tasks have.

    Attributes:
        title: the section's heading.
        caption: one paragraph saying what the reader sees (rows, columns, arrows).
        frames: pictures or texts over training, as (label, content, mime type):
            ``image/png`` bytes or ``text/plain`` strings. Several frames get a slider.
        table: rows of cells, the first row the header.
    """

    title: str
    caption: str = ""
    frames: list[tuple[str, bytes | str, str]] = field(default_factory=list)
    table: list[list[str]] | None = None


#: ``report(folder) -> sections``: ``folder`` is a run folder read without loading a
#: checkpoint (``gankit.report.folder.RunFolder``: ``path``, ``config``, ``rows``,
#: ``previews``, ``evaluation``), so a run that is still training can be shown.
ReportHook = Callable[[Any], list[ReportSection]]


@dataclass(frozen=True)
class Task:
    """What serves one task.

    Attributes:
        name: the name that model families declare as ``task``.
        summary: one line: what models of this task do.
        evaluate: ``evaluate(run, bundle, options) -> EvalReport``, behind ``gankit eval``.
        previews: builds the pictures drawn during training; None: the task draws none.
        scores: builds the numbers logged every ``train.eval_every`` steps; None: none.
        views: every ``gankit explore`` picture of the task, by ``--what`` name:
            ``view(run, options) -> [Picture]`` (see ``gankit.explore.explore``).
        view_needs: the views that draw only some data, by name: ``needs(data_shape)
            -> bool``, true where the view can draw a run on items of that shape (images
            ``(C, H, W)``, points ``(2,)``); a view not named draws any.
        default_views: the views that apply to every model of the task.
        adaptation: how ``gankit adapt`` reports the task; None: the task is not adapted.
        export: ``export(run, direction) -> gankit.export.Exportable``: the network
            ``gankit export`` writes; None: the task exports none.
        report: the sections of ``gankit report`` that only this task has (toy fields,
            translation strips, accuracy tables), after the previews; None: none.
        preview_caption: what the previews drawn during training show, in one line
            (``gankit report`` puts it under their slider).
        translate_files: behind ``gankit translate``: ``translate_files(run, direction,
            input, out, strips, overwrite, amount) -> [Path]``; None: the task's models
            translate no files.
        generate: behind ``gankit generate``: ``generate(run, seed_text, temperatures,
            length, top_k, greedy, seed) -> Generation`` (see ``gankit.tasks.sequence``);
            None: the task's models write no text.
        model_methods: the methods that the task's code calls on its models, which
            every family of the task must define (its own or a parent family's; the
            placeholders of ``Model`` do not count). :func:`register_model
            <gankit.registry.register_model>` refuses a family that lacks one.
    """

    name: str
    summary: str
    evaluate: Callable
    previews: PreviewsFactory | None = None
    scores: ScoresFactory | None = None
    views: Mapping[str, Callable] = field(default_factory=dict)
    view_needs: Mapping[str, Callable[[tuple[int, ...]], bool]] = field(default_factory=dict)
    default_views: tuple[str, ...] = ()
    adaptation: Adaptation | None = None
    export: Callable | None = None
    report: ReportHook | None = None
    preview_caption: str = ""
    translate_files: Callable | None = None
    generate: Callable | None = None
    model_methods: tuple[str, ...] = ()

    def views_for(self, model, data_shape: tuple[int, ...] | None = None) -> dict[str, Callable]:
        """The views that apply to ``model``: the task's defaults, then the family's own,
        less those that cannot draw its data (``view_needs``). ``data_shape`` is the
        shape of one data item; a built model's own is used when it is None; when
        neither is known, no view is left out for its data."""
        shape = data_shape if data_shape is not None else getattr(model, "data_shape", None)
        names = [*self.default_views, *(v for v in model.views if v not in self.default_views)]
        return {
            name: self.views[name]
            for name in names
            if name in self.views
            and (shape is None or name not in self.view_needs or self.view_needs[name](shape))
        }


TASKS: dict[str, Task] = {}

#: Modules whose import registers the built-in tasks.
TASK_MODULES = (
    "gankit.tasks.sample",
    "gankit.tasks.translate",
    "gankit.tasks.adapt",
    "gankit.tasks.sequence",
    "gankit.tasks.change",
)


def register_task(task: Task) -> Task:
    """Add ``task`` under its name; registering a name twice is an error.

    Raises:
        GankitError: a family registered earlier for this task lacks one of its
            ``model_methods`` (named with the task and the methods).
    """
    if task.name in TASKS:
        raise ValueError(f"task '{task.name}' is already registered")
    unknown = (set(task.default_views) | set(task.view_needs)) - set(task.views)
    if unknown:
        raise ValueError(f"task '{task.name}': default views {sorted(unknown)} are not views")
    require_methods(task.name, task.model_methods)
    TASKS[task.name] = task
    return task


def _load_tasks() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)


def list_tasks() -> list[str]:
    _load_tasks()
    return sorted(TASKS)


def get_task(model) -> Task:
    """The task that ``model`` (an instance or a family class) declares.

    Raises:
        GankitError: no registered task has that name.
    """
    _load_tasks()
    name = model.task
    if name not in TASKS:
        family = model if isinstance(model, type) else type(model)
        raise GankitError(
            f"{family.__name__} declares task '{name}', which no registered task serves; "
            f"valid: {choices(TASKS)} (register one with gankit.tasks.register_task)"
        )
    return TASKS[name]


def all_views() -> set[str]:
    """Every ``--what`` name that some task can draw."""
    _load_tasks()
    return {name for task in TASKS.values() for name in task.views}


__all__ = [
    "TASKS",
    "Adaptation",
    "ReportSection",
    "Task",
    "all_views",
    "get_task",
    "list_tasks",
    "register_task",
]
