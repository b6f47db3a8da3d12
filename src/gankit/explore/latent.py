"""Walks through latent space: grids, truncation, interpolation, classes, InfoGAN code
traversals and the VAE manifold. Each function takes a loaded run and returns pictures
(Pillow images, or lists of frames for a GIF); :mod:`gankit.explore` writes them.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from PIL import Image

from gankit.conventions import MAX_SEED
from gankit.errors import GankitError, check_int
from gankit.explore.pictures import image_grid
from gankit.runs.load import Run

#: The most samples one ``gankit sample`` draws: FID's usual 50,000. At 64 px RGB they
#: are 2.5 GB of float32, written to ``.npy`` a chunk at a time.
MAX_SAMPLES = 50_000
#: The most samples a picture of rows and columns shows: 64 x 64 (walks, classes,
#: traversals).
MAX_BLOCK = 4096
#: Samples rendered per forward pass when drawing many: the generator's working memory
#: is that of this many samples, whatever ``--n`` is (about 1 GB for a 64 px DCGAN).
RENDER_CHUNK = 1024


def _scale(images: torch.Tensor) -> int:
    return max(1, 96 // images.shape[-1])


def images_only(run: Run, what: str) -> None:
    """Refuse a picture of images for a run on 2-D points."""
    if len(run.model.data_shape) != 3:
        raise GankitError(
            f"--what {what} draws images; run '{run.path.name}' models 2-D points: "
            "use --what toy (or grid, which draws a scatter)"
        )


def truncate(z: torch.Tensor, threshold: float, generator: torch.Generator) -> torch.Tensor:
    """The truncation trick (Brock et al. 2019): redraw every entry of a N(0, I) latent
    whose magnitude exceeds ``threshold``, trading variety for typical samples."""
    if threshold <= 0:
        raise GankitError(f"--truncation must be > 0, got {threshold}")
    z = z.clone()
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = z.abs() > threshold
    return z


def sample_chunks(
    run, n: int, seed: int = 0, labels: list[int] | None = None
) -> Iterator[torch.Tensor]:
    """``run.sample(n, seed, labels)`` rendered ``RENDER_CHUNK`` samples at a time.

    The latent of all ``n`` samples is drawn first, exactly as ``run.sample`` draws it,
    so the samples are the same; only the generator's passes are split.

    Raises:
        GankitError: ``n`` outside ``[1, MAX_SAMPLES]``, a seed outside ``[0, MAX_SEED]``,
            or labels the model cannot take.
    """
    check_int("--n", n, 1, MAX_SAMPLES)
    check_int("--seed", seed, 0, MAX_SEED)
    model = run.model
    latent = model.sample_latent(n, torch.Generator().manual_seed(seed))
    if labels is not None:
        latent = model.with_labels(latent, torch.tensor(labels))
    parts = (
        {key: value[start : start + RENDER_CHUNK] for key, value in latent.items()}
        for start in range(0, n, RENDER_CHUNK)
    )
    return (model.render(part, net=run.sampler_net) for part in parts)


def check_block(rows: int, columns: int, what: str, option: str = "--steps") -> None:
    """Refuse a picture of more than ``MAX_BLOCK`` samples (rows x columns)."""
    if rows * columns > MAX_BLOCK:
        raise GankitError(
            f"--what {what} would draw {rows} x {columns} = {rows * columns} samples, more than "
            f"the {MAX_BLOCK} a picture shows; use {option} {max(1, MAX_BLOCK // rows)} or less"
        )


def grid(run: Run, n: int = 64, seed: int = 0, truncation: float | None = None) -> torch.Tensor:
    """``n`` samples; with ``truncation``, from a truncated Gaussian latent."""
    model, generator = run.model, torch.Generator().manual_seed(seed)
    latent = model.sample_latent(n, generator)
    if truncation is not None:
        if not model.gaussian_latents:
            raise GankitError(
                f"--truncation needs a Gaussian latent; model '{model.model_name}' draws none"
            )
        for key in model.gaussian_latents:
            latent[key] = truncate(latent[key], truncation, generator)
    return model.render(latent, net=run.sampler_net)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight line: ``(1 − t) a + t b``; t (T,) -> (T, *a.shape)."""
    t = t.reshape(-1, *([1] * a.dim()))
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Great circle (White 2016): ``sin((1−t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b``, with Ω the
    angle between a and b. Keeps the norm typical of a high-dimensional Gaussian, where
    the straight line passes through the improbable region near the origin."""
    cos = torch.dot(a.flatten(), b.flatten()) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    if omega.abs() < 1e-4:
        return lerp(a, b, t)
    t = t.reshape(-1, *([1] * a.dim()))
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolate(
    run: Run,
    pairs: int = 6,
    steps: int = 10,
    method: str = "slerp",
    seeds: tuple[int, int] | None = None,
) -> torch.Tensor:
    """(pairs, steps, ...) samples walking from one latent to another.

    The endpoints are random (seeded by the pair's index), or the first latents drawn
    with the two ``seeds``. Continuous inputs are interpolated; discrete ones (labels,
    InfoGAN's c_cat) stay those of the start.
    """
    if method not in ("lerp", "slerp"):
        raise GankitError(f"--method must be lerp or slerp, got '{method}'")
    if steps < 2 or pairs < 1:
        raise GankitError(f"--steps must be >= 2 and --pairs >= 1, got {steps} and {pairs}")
    model = run.model
    walk = slerp if method == "slerp" else lerp
    t = torch.linspace(0, 1, steps)
    rows = []
    for pair in range(pairs if seeds is None else 1):
        seed_a, seed_b = seeds if seeds is not None else (2 * pair, 2 * pair + 1)
        start = model.sample_latent(1, torch.Generator().manual_seed(seed_a))
        end = model.sample_latent(1, torch.Generator().manual_seed(seed_b))
        latent = {}
        for key, a in start.items():
            if a.is_floating_point():
                latent[key] = walk(a[0], end[key][0], t)
            else:
                latent[key] = a.expand(steps, *a.shape[1:]).clone()
        rows.append(model.render(latent, net=run.sampler_net))
    return torch.stack(rows)


def interpolation_pictures(samples: torch.Tensor) -> tuple[Image.Image, list[Image.Image]]:
    """A strip (one row per pair) and GIF frames (all pairs side by side, there and back)."""
    pairs, steps = samples.shape[:2]
    scale = _scale(samples[0])
    strip = image_grid(samples.flatten(0, 1), nrow=steps, scale=scale)
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    frames = [image_grid(samples[:, i], nrow=pairs, scale=scale * 2) for i in order]
    return strip, frames


def classes(run: Run, per_class: int = 10, seed: int = 0) -> torch.Tensor:
    """(K, per_class, ...): one row per class; column j shares its noise across rows, so
    a column shows one style in every class."""
    model = run.model
    k = model.num_classes
    check_block(k, per_class, "classes")
    latent = model.sample_latent(per_class, torch.Generator().manual_seed(seed))
    rows = []
    for label in range(k):
        rows.append(
            model.render(model.with_labels(latent, torch.tensor([label])), net=run.sampler_net)
        )
    return torch.stack(rows)


def traverse(run: Run, steps: int = 9, seed: int = 0, span: float = 2.0) -> list[torch.Tensor]:
    """InfoGAN: per continuous code j, a (K, steps, ...) block: row = categorical value,
    column = c_con[j] swept over [−span, span], the other codes at 0 and z fixed.

    Without continuous codes: one block, row = categorical value, columns = noise draws.
    """
    model = run.model
    k, m = model.n_categories, model.n_continuous
    check_block(max(1, m) * k, steps, "traverse")
    generator = torch.Generator().manual_seed(seed)
    blocks = []
    if m == 0:
        z = torch.randn(steps, model.noise_dim, generator=generator)
        for_code = [None]
    else:
        z = torch.randn(1, model.noise_dim, generator=generator).expand(steps, -1)
        for_code = list(range(m))
    sweep = torch.linspace(-span, span, steps)
    for code in for_code:
        rows = []
        for value in range(k):
            c_con = torch.zeros(steps, m)
            if code is not None:
                c_con[:, code] = sweep
            latent = {"z": z, "c_cat": torch.full((steps,), value), "c_con": c_con}
            rows.append(model.render(latent, net=run.sampler_net))
        blocks.append(torch.stack(rows))
    return blocks


def manifold_plane(run: Run, n: int = 15) -> torch.Tensor:
    """VAE with a 2-D latent: (n, n, ...) decoded at the Gaussian quantiles of a grid over
    (0.05, 0.95)², as in Kingma & Welling's figure 4."""
    model = run.model
    if model.latent_dim != 2:
        raise GankitError(
            f"the manifold plane needs latent_dim 2, this VAE has {model.latent_dim}; use "
            "--view recon for reconstructions, or train with --set model.latent_dim=2"
        )
    values = plane_values(n)
    ys, xs = torch.meshgrid(values.flip(0), values, indexing="ij")
    z = torch.stack([xs.flatten(), ys.flatten()], dim=1)
    decoded = model.render({"z": z}, net=run.sampler_net)
    return decoded.reshape(n, n, *decoded.shape[1:])


def plane_values(n: int) -> torch.Tensor:
    """The (n,) latent values of the manifold plane's columns (and, reversed, rows)."""
    return torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))


def reconstructions(run: Run, images: torch.Tensor) -> torch.Tensor:
    """(2, N, ...): held-out inputs above their reconstructions from the posterior mean."""
    return torch.stack([images, run.model.reconstruct(images).cpu()])


def block_picture(
    block: torch.Tensor,
    title: str = "",
    row_labels: list[str] | None = None,
    column_labels: list[str] | None = None,
) -> Image.Image:
    """(rows, cols, C, H, W) -> one grid picture, rows kept, labelled in the picture."""
    return image_grid(
        block.flatten(0, 1), nrow=block.shape[1], scale=_scale(block[0]), title=title,
        row_labels=row_labels, column_labels=column_labels,
    )  # fmt: skip
