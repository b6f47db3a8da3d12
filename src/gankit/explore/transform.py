"""``gankit explore RUN --what transform``: what a spatial transformer does to its inputs.

For a classifier whose network starts with a spatial transformer (``stn: true``, see
docs/stn.md), held-out inputs ``x`` are drawn above their transformed versions
``T_θ(x)(x)``, the images the classifier reads; each column is labelled with the
rotation in its θ, ``atan2(θ₁₀ − θ₀₁, θ₀₀ + θ₁₁)`` in degrees (positive: the transformer
turns the image counter-clockwise as displayed, undoing a clockwise turn).
"""

from __future__ import annotations

import torch

from gankit.data import load_data
from gankit.data.base import take
from gankit.errors import GankitError
from gankit.explore.explore import ExploreOptions, Picture
from gankit.explore.latent import block_picture
from gankit.nn import eval_mode
from gankit.runs.load import Run
from gankit.stn import rotation_degrees

#: The most inputs drawn: one column each, so that the labels stay readable.
MAX_COLUMNS = 16


def transformed_inputs(
    run: Run, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` (at most :data:`MAX_COLUMNS`) seeded held-out source inputs of a run whose
    model has a spatial transformer.

    Returns:
        the inputs (n, C, H, W), their transformed versions (n, C, H, W) and the
        rotation in each θ (n,) in degrees.

    Raises:
        GankitError: the run's network has no spatial transformer.
    """
    transformer = run.model.spatial_transformer()
    if transformer is None:
        raise GankitError(
            f"--what transform needs a run whose network has a spatial transformer; "
            f"'{run.path.name}' has none (train one with --set model.stn=true)"
        )
    x, _ = take(load_data(run.config["data"]).held_out, min(n, MAX_COLUMNS), seed)
    x = x.to(run.model.device)
    with torch.no_grad(), eval_mode(transformer):
        theta = transformer.transform(x)
        moved = transformer(x)
    return x.cpu(), moved.cpu(), rotation_degrees(theta).cpu()


def transform(run: Run, o: ExploreOptions) -> list[Picture]:
    """Held-out inputs above what the spatial transformer makes of them, each column
    labelled with the rotation in its θ."""
    x, moved, degrees = transformed_inputs(run, o.n, o.seed)
    picture = block_picture(
        torch.stack([x, moved]),
        # "theta" spelled out: the picture's font has no Greek letters
        f"{run.path.name} step {run.step}: held-out inputs x, and the spatial transformer's "
        "T(x) as the classifier reads it; the rotation in theta above each column",
        ["input x", "transformed T(x)"],
        [f"{value:+.0f}°" for value in degrees.tolist()],
    )
    return [Picture(f"transform_seed{o.seed}.png", picture.save)]
