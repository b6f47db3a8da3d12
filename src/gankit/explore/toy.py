"""Generator against discriminator, in 2-D: where D thinks the data is, and where G is pushed.

A picture has three layers:

- real points (blue) and generated points (red);
- D's output over the plane as a filled contour: the probability "real", σ(D(x)), for
  the cross-entropy losses, else D's raw score (a Wasserstein critic, an LSGAN target
  regression, a hinge margin);
- the generator's gradient field as arrows: ``−∇_x L_G(D(x))``, the direction in which
  G's loss would move a generated sample sitting at x. G can only move its samples
  along these arrows, which is why a D that is flat where G's samples are gives G
  nothing to learn from.

The trainer stores a small snapshot of these layers at every preview of a toy run
(``snapshots/step_*.pt``, about 20 kB each), so ``gankit explore RUN --what toy
--animate`` can replay a run without keeping full checkpoints.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from gankit.errors import GankitError, one_line, warn
from gankit.files import load_tensors
from gankit.losses import bce_d_loss

#: Contour resolution and arrow grid of the snapshots.
FIELD_RESOLUTION = 64
ARROW_RESOLUTION = 17
SNAPSHOT_POINTS = 1000
#: The largest snapshot file read: gankit writes about 20 kB; a bigger file is not one.
MAX_SNAPSHOT_BYTES = 2**22


def plane_bounds(real: torch.Tensor, margin: float = 0.25) -> tuple[float, float, float, float]:
    """A square (x0, x1, y0, y1) around (N, 2) points, with a margin."""
    low, high = real.min(dim=0).values, real.max(dim=0).values
    centre, half = (low + high) / 2, (high - low).max() / 2 * (1 + margin) + 1e-3
    return (
        float(centre[0] - half),
        float(centre[0] + half),
        float(centre[1] - half),
        float(centre[1] + half),
    )


def plane_points(bounds: tuple[float, float, float, float], resolution: int) -> torch.Tensor:
    xs = torch.linspace(bounds[0], bounds[1], resolution)
    ys = torch.linspace(bounds[2], bounds[3], resolution)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1)


def critic_field(model, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool] | None:
    """D's value at (N, 2) points and G's push there: ((N,), (N, 2), is_probability).

    None for families without a discriminator over points (a VAE; a conditional D,
    whose output also depends on the label).
    """
    adversarial = model.adversarial
    if adversarial is None:
        return None
    with torch.enable_grad():
        x = points.to(model.device).detach().requires_grad_(True)
        # in eval mode (no dropout, running statistics): the field D has, not one batch's
        scores = model.critic_scores(x)
        if scores is None:
            return None
        # A relativistic G loss pairs each fake with a real: the push shown is the one
        # at a point whose paired real scores as it does (its own score, detached).
        pair = (scores.detach(),) if adversarial.relativistic else ()
        # sum: each point's push is its own gradient, whatever the batch size
        (grad,) = torch.autograd.grad(adversarial.g(scores, *pair, reduction="sum"), x)
    is_probability = adversarial.d is bce_d_loss
    values = scores.detach().sigmoid() if is_probability else scores.detach()
    return values.cpu(), -grad.cpu(), is_probability


def snapshot(
    model, net, real: torch.Tensor, step: int, bounds=None, seed: int = 0
) -> dict[str, object]:
    """Everything one frame needs: generated points, D's contour and G's arrows."""
    bounds = bounds or plane_bounds(real)
    generator = torch.Generator().manual_seed(seed)
    fake = model.sample(SNAPSHOT_POINTS, generator=generator, net=net).cpu()
    frame: dict[str, object] = {"step": step, "bounds": bounds, "fake": fake.half()}
    field = critic_field(model, plane_points(bounds, FIELD_RESOLUTION))
    if field is not None:
        values, _, is_probability = field
        _, push, _ = critic_field(model, plane_points(bounds, ARROW_RESOLUTION))
        frame.update(
            values=values.reshape(FIELD_RESOLUTION, FIELD_RESOLUTION).half(),
            push=push.reshape(ARROW_RESOLUTION, ARROW_RESOLUTION, 2).half(),
            is_probability=is_probability,
        )
    return frame


def arrow_legend(plt):
    """The legend entry of the arrows: what they show, in the figure itself."""
    return plt.Line2D(
        [], [], color="#444444", marker=r"$\rightarrow$", linestyle="None", markersize=9,
        label="arrows: G's push, −∇ₓ L_G",
    )  # fmt: skip


def draw(frame: dict, real: torch.Tensor, title: str = "", ax=None):
    """Draw one snapshot on a matplotlib axis (a new figure when ``ax`` is None)."""
    from gankit.explore.pictures import pyplot

    plt = pyplot()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=100)
    x0, x1, y0, y1 = frame["bounds"]
    if "values" in frame:
        values = frame["values"].float().numpy()
        levels = 21
        filled = ax.contourf(
            torch.linspace(x0, x1, values.shape[1]).numpy(),
            torch.linspace(y0, y1, values.shape[0]).numpy(),
            values,
            levels=levels,
            cmap="Greens",
            alpha=0.7,
            vmin=0.0 if frame["is_probability"] else None,
            vmax=1.0 if frame["is_probability"] else None,
        )
        label = "D(x) = P(real)" if frame["is_probability"] else "critic D(x)"
        (fig or ax.figure).colorbar(filled, ax=ax, label=label, shrink=0.8)
        push = frame["push"].float()
        length = push.norm(dim=-1).clamp_min(1e-12)
        unit = push / length.max()  # arrows scaled jointly: their lengths compare
        side = push.shape[0]
        ax.quiver(
            torch.linspace(x0, x1, side).numpy(),
            torch.linspace(y0, y1, side).numpy(),
            unit[..., 0].numpy(),
            unit[..., 1].numpy(),
            color="#444444",
            alpha=0.8,
            width=0.004,
        )
    ax.scatter(real[:, 0], real[:, 1], s=3, c="#1f77b4", alpha=0.35, label="real")
    fake = frame["fake"].float()
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="#d62728", alpha=0.6, label="generated")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    handles = ax.get_legend_handles_labels()[0]
    if "push" in frame:  # the arrows say what they are, in the legend
        handles.append(arrow_legend(plt))
    ax.legend(handles=handles, loc="upper right", fontsize=7, markerscale=2)
    ax.set_title(title or f"step {frame['step']}", fontsize=9)
    return fig or ax.figure


def save_frame(path: Path, frame: dict, real: torch.Tensor, title: str = "") -> Path:
    from gankit.explore.pictures import pyplot

    fig = draw(frame, real, title)
    fig.tight_layout()
    fig.savefig(path)
    pyplot().close(fig)
    return path


def frame_png(frame: dict, real: torch.Tensor, title: str = "") -> bytes:
    """One snapshot drawn as PNG bytes (animation frames, ``gankit report``)."""
    import io

    from gankit.explore.pictures import pyplot

    fig = draw(frame, real, title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    pyplot().close(fig)
    return buffer.getvalue()


def save_animation(path: Path, frames: list[dict], real: torch.Tensor, name: str = "") -> Path:
    """A GIF with one snapshot per frame (Pillow writes it; matplotlib draws the frames)."""
    import io

    from PIL import Image

    images = []
    for frame in frames:
        png = frame_png(frame, real, f"{name} step {frame['step']}".strip())
        images.append(Image.open(io.BytesIO(png)).convert("P", palette=Image.ADAPTIVE))
    images[0].save(path, save_all=True, append_images=images[1:], duration=400, loop=0)
    return path


def snapshot_problem(frame: object) -> str | None:
    """What makes ``frame`` (a loaded ``snapshots/step_*.pt``) not one :func:`snapshot`
    writes, or None: ``step``; ``bounds`` (x0, x1, y0, y1); ``fake`` (N, 2); and, with a
    critic, ``values`` (R, R), ``push`` (A, A, 2) and ``is_probability``."""
    if not isinstance(frame, dict):
        return f"it holds a {type(frame).__name__}, not a frame"
    bounds = frame.get("bounds")
    checks = {
        "step": isinstance(frame.get("step"), int),
        "bounds": isinstance(bounds, (tuple, list))
        and len(bounds) == 4
        and all(isinstance(b, (int, float)) and math.isfinite(b) for b in bounds),
        "fake": _tensor_of(frame.get("fake"), 2, 2),
    }
    if "values" in frame or "push" in frame:
        checks["values"] = _tensor_of(frame.get("values"), 2, None)
        checks["push"] = _tensor_of(frame.get("push"), 3, 2)
        checks["is_probability"] = isinstance(frame.get("is_probability"), bool)
    wrong = [key for key, fine in checks.items() if not fine]
    return f"its {', '.join(wrong)} are not a snapshot's" if wrong else None


def _tensor_of(value: object, dim: int, last: int | None) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and value.dim() == dim
        and value.is_floating_point()
        and (last is None or value.shape[-1] == last)
    )


def load_snapshots(paths: list[Path]) -> list[dict]:
    """The frames kept in ``paths`` (``snapshots/step_*.pt``), in order. A file that is
    not a snapshot gankit wrote is skipped with a warning: damaged, larger than
    :data:`MAX_SNAPSHOT_BYTES`, other contents, or objects whose loading would run code
    (``weights_only=True`` refuses those without running them; a run folder is a file
    people mail)."""
    frames = []
    for path in paths:
        where = one_line(str(path))
        try:
            frame = load_tensors(path, MAX_SNAPSHOT_BYTES)
        except Exception as err:  # damaged, too large, a link, or unsafe: never run
            reason = str(err) if isinstance(err, GankitError) else type(err).__name__
            warn(
                f"skipped '{where}': not a snapshot gankit can read ({reason}: it is damaged, "
                "or holds objects that loading would have to run code for)"
            )
            continue
        problem = snapshot_problem(frame)
        if problem is not None:
            warn(f"skipped '{where}': {problem}")
            continue
        frames.append(frame)
    return frames
