"""The task ``sample``: models that draw samples from noise (the GAN family, the VAE).

- previews: the fixed noise's samples, as a grid or a scatter (and toy snapshots);
- scores during training and ``gankit eval``: the data's metrics on samples, next to
  the real-vs-real floor, then the family's own (``Model.family_scores``);
- views: grid, interp and toy for every sampler; classes, traverse and manifold for
  the families that declare them.
"""

from __future__ import annotations

import torch

from gankit.data import load_data
from gankit.explore import explore, toy
from gankit.explore.previews import SamplePreviews
from gankit.export import Call, Exportable
from gankit.metrics.evaluate import Scorer
from gankit.metrics.sample import drawn_rows, evaluate_samples
from gankit.ranks import RankShare
from gankit.runs.load import Run
from gankit.tasks import ReportSection, Task, register_task
from gankit.training.trainer import FIXED_NOISE_OFFSET


def sample_scores(model, bundle, cfg):
    """Every ``eval_every`` steps: the data's metrics on ``eval_n`` samples.

    The scorer (and the evaluator classifier it may train) is built up front under
    ``fork_rng``: building it must not consume the run's random numbers, or a run with
    evaluation would train differently from one without. The samples come from a fixed
    generator, so evaluations compare across steps.

    Under several ranks every rank builds the scorer and evaluates: each draws and
    embeds its block of the samples, and rank 0 gets the scores (the others ``{}``).
    """
    with torch.random.fork_rng(devices=[]):
        scorer = Scorer(
            bundle, cfg.eval_metrics, cfg.eval_n, seed=cfg.seed, train_evaluator=True,
            ranks=RankShare.current(),
        )  # fmt: skip

    def evaluate(step: int, net) -> dict[str, float]:
        generator = torch.Generator().manual_seed(cfg.seed + FIXED_NOISE_OFFSET + 1)
        with torch.random.fork_rng(devices=[]):
            return scorer.score_drawn(drawn_rows(model, scorer.n, generator, net))

    return evaluate


def export_sampler(run: Run, direction: str | None = None) -> Exportable:
    """The network behind ``gankit sample``: the latent's tensors (``sample_latent``) ->
    samples, through the EMA generator when the run kept one."""
    model = run.model
    latent = model.sample_latent(2, torch.Generator().manual_seed(0))
    module = Call(lambda inputs, net: model.generate(inputs, net=net), run.sampler_net, latent)
    return Exportable(
        module,
        latent,
        "samples",
        run.sampler_net.state_dict(),
        model.generator_name,
        f"samples (images in [-1, 1], or points) from the latent {', '.join(latent)}, as "
        "gankit sample draws them",
        {"latent": "draw as Model.sample_latent does (see hparams: latent_dim, latent_dist)"},
    )


def sample_report(folder) -> list[ReportSection]:
    """``gankit report``: on 2-D points, the frames of G against D kept while training."""
    snapshots = toy.load_snapshots(folder.snapshots)
    if not snapshots:
        return []
    real = load_data(folder.config["data"]).train.tensors[0][:2000]
    frames = []
    for frame in snapshots:
        title = f"{folder.name} step {frame['step']}"
        frames.append((title, toy.frame_png(frame, real, title), "image/png"))
    return [
        ReportSection(
            "G against D on the plane",
            "Real points (blue), the generator's points (red), D's output over the plane "
            "(green: the probability 'real' for the cross-entropy losses, else D's raw score) "
            "and G's gradient field as arrows: −∇ₓ L_G, where G's loss pushes a generated "
            "point at x. Arrows share one scale per frame.",
            frames,
        )
    ]


SAMPLE = register_task(
    Task(
        name="sample",
        model_methods=("sample_latent", "generate"),
        summary="draws samples from noise",
        evaluate=evaluate_samples,
        previews=SamplePreviews,
        scores=sample_scores,
        export=export_sampler,
        views={
            "grid": explore.grid,
            "interp": explore.interp,
            "toy": explore.toy_field,
            "classes": explore.classes,
            "traverse": explore.traverse,
            "manifold": explore.manifold,
            "codes": explore.codes,
        },
        view_needs={
            "interp": explore.on_images,
            "classes": explore.on_images,
            "traverse": explore.on_images,
            "manifold": explore.on_images,
            "toy": explore.on_points,
        },
        default_views=("grid", "interp", "toy"),
        report=sample_report,
        preview_caption="The samples of the run's fixed noise: the same latents at every "
        "step, so the pictures compare across steps (points: generated in red over the real "
        "points in blue).",
    )
)
