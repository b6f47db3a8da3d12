"""The tasks ``classify`` and ``segment``: models that predict labels for a target
domain while learning from a labelled source (DANN, AdaptSeg). They read ``predict``.

- no previews: they draw nothing;
- scores during training and ``gankit eval``: the task's measure on the source's and
  the target's held-out splits (accuracy; pixel accuracy, mIoU and per-class IoU);
- ``gankit adapt`` trains the family against its ``baseline_overrides`` and tabulates
  both runs;
- views: ``segment`` pictures for segmenters; ``transform`` for classifiers with a
  spatial transformer.
"""

from __future__ import annotations

import statistics
from functools import partial

import torch

from gankit.explore import explore, transform
from gankit.export import Call, Exportable
from gankit.metrics.adapt import accuracy, domain_scores, evaluate_domains, segmentation
from gankit.runs.load import Run
from gankit.tasks import Adaptation, ReportSection, Task, register_task


def _scores(score):
    def build(model, bundle, cfg):
        return lambda step, net: domain_scores(model, bundle, score)

    return build


def export_predictor(run: Run, direction: str | None = None) -> Exportable:
    """The network behind ``predict``: (N, ...) inputs of the run's data -> (N, K, ...)
    class logits (``predict`` takes their argmax over K)."""
    net = run.model.predictor()
    inputs = {"x": torch.zeros(2, *run.model.data_shape)}
    return Exportable(
        Call(lambda batch, net: net(batch["x"]), net, ("x",)),
        inputs,
        "logits",
        net.state_dict(),
        "predictor()",
        f"class logits of (N, {', '.join(map(str, run.model.data_shape))}) inputs; the "
        "predicted class is their argmax over dimension 1",
    )


def _label(row) -> str:
    """The method column: the registered name, and the baseline's label where it is one."""
    label = row.label or row.model
    return f"`{row.model}`" + (f" ({label})" if label != row.model else "")


def _grouped(results: list) -> list[list]:
    """Rows of one method (over seeds) together, in the order they first ran."""
    groups: dict[str, list] = {}
    for row in results:
        groups.setdefault(_label(row), []).append(row)
    return list(groups.values())


def _percent(rows: list, key: str) -> str:
    """``87.3 %`` for one run; ``87.3 ± 1.2 %`` (mean ± standard deviation) over seeds."""
    values = [100 * row.scores[key] for row in rows]
    if len(values) == 1:
        return f"{values[0]:.1f} %"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f} %"


def _budget(rows: list) -> str:
    seconds = statistics.fmean(row.seconds for row in rows)
    seeds = f" | {len(rows)}" if len(rows) > 1 else ""
    return f"| {rows[0].steps} | {seconds:.0f} s{seeds} |"


def accuracy_table(results: list, source: str, target: str) -> str:
    """Accuracy on both domains, one row per method (mean ± sd over seeds)."""
    seeds = " seeds |" if len(_grouped(results)[0]) > 1 else ""
    lines = [
        f"| model | {source} (source) accuracy | {target} (target) accuracy | steps | "
        f"time per run |{seeds}",
        "|---|---|---|---|---|" + ("---|" if seeds else ""),
    ]
    for rows in _grouped(results):
        lines.append(
            f"| {_label(rows[0])} | {_percent(rows, 'source_accuracy')} "
            f"| {_percent(rows, 'target_accuracy')} {_budget(rows)}"
        )
    return "\n".join(lines)


def segmentation_table(results: list, source: str, target: str) -> str:
    """mIoU on both domains and the target's IoU per class, one row per method."""
    per_class_keys = [key for key in results[0].scores if key.startswith("target_iou_")]
    seeds = " seeds |" if len(_grouped(results)[0]) > 1 else ""
    lines = [
        f"| model | {source} (source) mIoU | {target} (target) mIoU | target pixel accuracy "
        + "".join(f"| {key.removeprefix('target_iou_')} IoU " for key in per_class_keys)
        + f"| steps | time per run |{seeds}",
        "|---|---|---|---|" + "---|" * len(per_class_keys) + "---|---|" + ("---|" if seeds else ""),
    ]
    for rows in _grouped(results):
        per_class = "".join(f"| {_percent(rows, key)[:-2]} " for key in per_class_keys)
        lines.append(
            f"| {_label(rows[0])} | {_percent(rows, 'source_miou')[:-2]} "
            f"| {_percent(rows, 'target_miou')[:-2]} "
            f"| {_percent(rows, 'target_accuracy')} {per_class}{_budget(rows)}"
        )
    return "\n".join(lines)


DOMAINS = ("source", "target")


def domain_report(folder) -> list[ReportSection]:
    """``gankit report``: each measure on both domains, from ``eval.json``, else from the
    last evaluation logged during training."""
    if folder.evaluation is not None:
        scores, origin = (
            folder.evaluation["scores"],
            f"gankit eval at step {folder.evaluation['step']}",
        )
    else:
        logged = [r for r in folder.rows if any(k.startswith("eval_") for k in r)]
        if not logged:
            return []
        scores = {k.removeprefix("eval_"): v for k, v in logged[-1].items()}
        origin = f"the evaluation logged during training at step {logged[-1]['step']}"
    measures = list(
        dict.fromkeys(k.split("_", 1)[1] for k in scores if k.split("_", 1)[0] in DOMAINS)
    )
    rows = [["domain", *measures]]
    for domain in DOMAINS:
        values = [scores.get(f"{domain}_{m}") for m in measures]
        rows.append([domain, *("" if v is None else f"{100 * v:.1f} %" for v in values)])
    return [
        ReportSection(
            "Scores by domain",
            f"From {origin}. Source: the labelled domain the model learns from; target: the "
            "domain it is adapted to, whose labels it never sees in training.",
            table=rows,
        )
    ]


CLASSIFY = register_task(
    Task(
        name="classify",
        model_methods=("predict", "predictor", "class_logits"),
        summary="classifies a target domain, trained on a labelled source",
        evaluate=partial(evaluate_domains, score=accuracy),
        scores=_scores(accuracy),
        export=export_predictor,
        adaptation=Adaptation(
            headline=lambda s: f"target accuracy {100 * s['target_accuracy']:.1f} %",
            table=accuracy_table,
        ),
        report=domain_report,
        views={"transform": transform.transform},
        view_needs={"transform": explore.on_images},
    )
)

SEGMENT = register_task(
    Task(
        name="segment",
        model_methods=("predict", "predictor"),
        summary="segments a target domain, trained on a labelled source",
        evaluate=partial(evaluate_domains, score=segmentation),
        scores=_scores(segmentation),
        export=export_predictor,
        views={"segment": explore.segment},
        default_views=("segment",),
        adaptation=Adaptation(
            headline=lambda s: f"target mIoU {100 * s['target_miou']:.1f}",
            table=segmentation_table,
        ),
        report=domain_report,
    )
)
