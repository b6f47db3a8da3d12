"""The task ``translate``: models that map images of domain A to domain B and back
(CycleGAN). They read ``directions``, ``translate``, ``round_trip`` and ``input_shape``.

- previews: held-out images of both domains, translated and reconstructed;
- scores during training and ``gankit eval``: cycle error, FD to the other domain and
  the class kept (:func:`gankit.metrics.translate.translation_scores`);
- ``gankit translate`` writes translated files.
"""

from __future__ import annotations

import torch

from gankit.errors import GankitError, choices
from gankit.explore.previews import TranslationPreviews
from gankit.explore.translate import translate_files
from gankit.export import Call, Exportable
from gankit.metrics.translate import evaluate_translation, translation_scores
from gankit.runs.load import Run
from gankit.tasks import Task, register_task


def _previews(model, bundle, seed: int) -> TranslationPreviews:
    return TranslationPreviews(model, bundle)


def translation_during_training(model, bundle, cfg):
    """Every ``eval_every`` steps: :func:`translation_scores` on ``eval_n`` held-out images
    (the evaluators are trained if missing, under ``fork_rng``)."""

    def evaluate(step: int, net) -> dict[str, float]:
        with torch.random.fork_rng(devices=[]):
            scores, _, _ = translation_scores(model, bundle, cfg.eval_n, cfg.seed, True, net=net)
        return scores

    return evaluate


def export_translator(run: Run, direction: str | None = None) -> Exportable:
    """The network of one direction (``AtoB`` by default; G_AB is the EMA generator when
    the run kept one): (N, C, H, W) images of one domain in [-1, 1] -> the other's."""
    model = run.model
    direction = direction or model.directions[0]
    if direction not in model.directions:
        raise GankitError(
            f"--direction must be one of {choices(model.directions)}, got '{direction}'"
        )
    net = model.translator(direction, run.sampler_net)
    images = torch.zeros(2, *model.input_shape(direction))
    return Exportable(
        Call(lambda inputs, net: net(inputs["images"]), net, ("images",)),
        {"images": images},
        "translated",
        net.state_dict(),
        f"translator('{direction}')",
        f"images of one domain in [-1, 1] translated {direction}",
        {"direction": direction},
    )


TRANSLATE = register_task(
    Task(
        name="translate",
        model_methods=("translate", "round_trip", "translator", "input_shape"),
        summary="translates images between two domains",
        evaluate=evaluate_translation,
        previews=_previews,
        scores=translation_during_training,
        export=export_translator,
        preview_caption="Held-out images, the same at every step. Rows, top to bottom: "
        "A inputs, translated to B, translated back to A; then B inputs, translated to A, "
        "translated back to B.",
        translate_files=translate_files,
    )
)
