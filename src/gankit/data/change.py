"""Earlier and later domains with a known amount of change, for the change family.

Each source returns the *earlier* domain (domain A) with the *later* one as
``bundle.domain_b``. Every later item is made from an earlier item of the same split by
a change operator whose magnitude ``m ~ U(0, 1)`` is drawn per item:

``later_i = op(earlier_{π(i)}, m_i)``, with π a seeded permutation.

Neither ``m`` nor π reaches a model: batches hold images and class labels only, and the
two domains are drawn in independent orders, so training is unpaired. Both are kept in
``domain_b.extra`` (``magnitude``, ``source_index``) for tests and checks.

Each operator comes with an independent **read-back**, ``measure(before, after) -> (N,)``,
that measures the change between any two items without knowing ``m``: a model's
outputs are scored with it (``gankit eval``'s Control), and on the operator's own
outputs it recovers ``m`` (tests check it). Sources:

- ``series-change``: 1-D series of ``length`` points, a sine wave with a random phase
  and frequency plus a little noise. Operators ``amplitude`` (``y = (1 + m) x``, read
  back as the ratio of standard deviations minus 1) and ``trend`` (``y = x + m·s·t``
  with t from −1 to 1, read back as the change of the least-squares slope);
- ``digits-change`` (scikit-learn's digits, embedded) and ``fashion-change``
  (Fashion-MNIST, from Debian's ``dataset-fashion-mnist`` files): operators
  ``thicken`` (the ink blended towards its 3x3 dilation, ``ink + m (dilate(ink) −
  ink)``, read back as the relative gain of ink mass) and ``fade`` (contrast times
  ``1 − 0.8 m``, read back as the relative loss of ink mass, divided by 0.8).

Operators with an **individual side** change each item by ``m`` times a factor
``k(x)`` read off the item itself, ``op(x, m) = base(x, m·k(x))``, so that two items
drawn with the same ``m`` change by different amounts, and a model that learns only
the average change cannot reproduce each individual's own. Their read-back divides the
base read-back by ``k(before)``, and so recovers ``m`` exactly:

- ``level_trend`` (series): ``trend`` with a slope that grows with the level at which
  the series starts, ``k(x) = 1 + 0.75·clip(x_0 / 0.4, −1, 1) ∈ [0.25, 1.75]``;
- ``ink_fade`` (images): ``fade`` whose depth grows with the item's own ink mass,
  ``k(x) = clip(0.75 + 10·(mass(x) − 0.3), 0.25, 1.25)``: heavy strokes fade more.

Ink is the image in [0, 1] (``(x + 1) / 2``): white strokes on black, as the data is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.data.base import DataBundle, check_resolution, check_seed, tensor_split
from gankit.data.change_geometry import rotation_between, turn
from gankit.errors import GankitError, check_int, choices

#: How much of the contrast ``fade`` removes at m = 1.
FADE_DEPTH = 0.8
#: The rise of ``trend`` at m = 1, from the series' first point to its last.
TREND_RISE = 0.8
#: Series lengths ``series-change`` accepts, and the noise added to each earlier series.
SERIES_LENGTHS = (8, 256)
SERIES_NOISE = 0.02
#: Keeps ratios of ink mass finite on an image with no ink.
EPS = 1e-6
#: ``level_trend``: the sine's amplitude, which scales the first point to [−1, 1], and
#: how far the slope's factor moves from 1 at either end.
SERIES_AMPLITUDE = 0.4
LEVEL_SPREAD = 0.75
#: ``ink_fade``: ``k = 0.75 + 10·(mass − 0.3)``, clipped: digits' ink mass is 0.31 ± 0.03,
#: so k spreads over most of its bounds (at most 1.25, so that 0.8·k ≤ 1 never fades
#: below no ink).
INK_CENTRE, INK_GAIN = 0.3, 10.0
INK_SIDE = (0.25, 1.25)


# --------------------------------------------------------------------------- read-backs
def ink(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> ink in [0, 1]."""
    return images.add(1.0).div(2.0).clamp(0.0, 1.0)


def ink_mass(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N,) mean ink."""
    return ink(images).flatten(1).mean(dim=1)


def ink_gain(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Relative change of ink mass, ``mass(after) / mass(before) − 1``: (N,)."""
    return ink_mass(after) / ink_mass(before).clamp_min(EPS) - 1.0


def contrast_loss(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Relative loss of ink mass in units of the full fade: ``(1 − after/before) / 0.8``."""
    return -ink_gain(before, after) / FADE_DEPTH


def series_slope(series: torch.Tensor) -> torch.Tensor:
    """(N, L) -> (N,) least-squares slope against t from −1 to 1 (rise per unit t)."""
    t = torch.linspace(-1.0, 1.0, series.shape[-1])
    centred = series - series.mean(dim=-1, keepdim=True)
    return (centred * t).sum(dim=-1) / t.pow(2).sum()


def amplitude_gain(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Relative change of the standard deviation of (N, L) series: ``sd(after)/sd(before) − 1``."""
    return after.std(dim=-1) / before.std(dim=-1).clamp_min(EPS) - 1.0


def slope_gain(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Change of the least-squares slope, in units of the full trend ``TREND_RISE / 2``."""
    return (series_slope(after) - series_slope(before)) / (TREND_RISE / 2)


# --------------------------------------------------------------------------- operators
def thicken(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Strokes thickened by ``m`` (N,): ink blended towards its 3x3 dilation."""
    strokes = ink(images)
    dilated = F.max_pool2d(strokes, 3, stride=1, padding=1)
    thick = strokes + m.view(-1, 1, 1, 1) * (dilated - strokes)
    return thick.mul(2.0).sub(1.0)


def fade(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Contrast faded by ``m`` (N,): ink times ``1 − 0.8 m``."""
    return (ink(images) * (1.0 - FADE_DEPTH * m.view(-1, 1, 1, 1))).mul(2.0).sub(1.0)


def amplify(series: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(N, L) series scaled by ``1 + m``."""
    return series * (1.0 + m.view(-1, 1))


def add_trend(series: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(N, L) series plus a line rising by ``m · TREND_RISE`` from first to last point."""
    t = torch.linspace(-1.0, 1.0, series.shape[-1])
    return series + m.view(-1, 1) * (TREND_RISE / 2) * t


def starting_level(series: torch.Tensor) -> torch.Tensor:
    """``level_trend``'s individual side of (N, L) series: ``1 + 0.75·clip(x_0 / 0.4, −1, 1)``,
    (N,) in [0.25, 1.75]."""
    level = (series[:, 0] / SERIES_AMPLITUDE).clamp(-1.0, 1.0)
    return 1.0 + LEVEL_SPREAD * level


def ink_side(images: torch.Tensor) -> torch.Tensor:
    """``ink_fade``'s individual side of (N, C, H, W) images:
    ``clip(0.75 + 10·(mass − 0.3), 0.25, 1.25)``, (N,)."""
    return (0.75 + INK_GAIN * (ink_mass(images) - INK_CENTRE)).clamp(*INK_SIDE)


@dataclass(frozen=True)
class ChangeOperator:
    """A change and its read-back.

    Attributes:
        name: the operator's name, as ``data.operator``.
        apply: ``apply(items, m) -> items``: items (N, ...) changed by magnitudes m (N,).
        measure: ``measure(before, after) -> (N,)``: the change read back, about ``m``
            on the operator's own outputs (for ``thicken``, proportional to it).
        summary: one line for reports.
        side: for an operator with an individual side, ``side(items) -> (N,)``, the
            factor k(x) by which each item's own change is scaled; None where every
            item changes alike.
        base: the operator of the same kind without the side, ``base(x, m·k(x))``.
    """

    name: str
    apply: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    measure: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    summary: str
    side: Callable[[torch.Tensor], torch.Tensor] | None = None
    base: ChangeOperator | None = None


def individual(
    base: ChangeOperator, name: str, side: Callable[[torch.Tensor], torch.Tensor], summary: str
) -> ChangeOperator:
    """``base`` with an individual side: ``op(x, m) = base(x, m·k(x))``, read back as
    ``base.measure(before, after) / k(before)``."""

    def apply(items: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return base.apply(items, m * side(items))

    def measure(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        return base.measure(before, after) / side(before)

    return ChangeOperator(name, apply, measure, summary, side=side, base=base)


IMAGE_OPERATORS = {
    "thicken": ChangeOperator(
        "thicken", thicken, ink_gain, "strokes thickened; read back as the gain of ink mass"
    ),
    "fade": ChangeOperator(
        "fade", fade, contrast_loss, "contrast faded; read back as the loss of ink mass"
    ),
    "rotate": ChangeOperator("rotate", turn, rotation_between, "turned by m·45°; read back by fit"),
}
SERIES_OPERATORS = {
    "amplitude": ChangeOperator(
        "amplitude", amplify, amplitude_gain, "amplitude grown; read back as the sd ratio"
    ),
    "trend": ChangeOperator(
        "trend", add_trend, slope_gain, "a rising trend added; read back as the fitted slope"
    ),
}
# the operators with an individual side, each built on one above
INDIVIDUAL_OPERATORS = (
    (IMAGE_OPERATORS, "fade", "ink_fade", ink_side,
     "contrast faded more where there is more ink; read back as the loss of ink mass over "
     "the item's own depth"),
    (SERIES_OPERATORS, "trend", "level_trend", starting_level,
     "a rising trend, steeper where the series starts higher; read back as the fitted slope "
     "over the item's own steepness"),
)  # fmt: skip
for _operators, _base, _name, _side, _summary in INDIVIDUAL_OPERATORS:
    _operators[_name] = individual(_operators[_base], _name, _side, _summary)


def _operator(operators: dict[str, ChangeOperator], name: str, where: str) -> ChangeOperator:
    if name not in operators:
        raise GankitError(f"{where}: unknown operator '{name}'; valid: {choices(operators)}")
    return operators[name]


# --------------------------------------------------------------------------- building
def _changed(split, operator: ChangeOperator, generator: torch.Generator):
    """(later split, m, π): each later item ``op(earlier[π(i)], m_i)``, labels kept."""
    x, y = split.tensors
    source_index = torch.randperm(len(x), generator=generator)
    m = torch.rand(len(x), generator=generator)
    later = operator.apply(x[source_index], m).clamp(-1.0, 1.0)
    return tensor_split(later, y[source_index]), m, source_index


def change_pair(earlier: DataBundle, operator: ChangeOperator, name: str, seed: int) -> DataBundle:
    """``earlier`` as domain A, with its changed copy as ``domain_b`` (see module docs)."""
    parent = torch.Generator().manual_seed(seed)
    train_gen, test_gen = (torch.Generator().manual_seed(int(s)) for s in torch.randint(
        2**62, (2,), generator=parent))  # fmt: skip
    train, m_train, pi_train = _changed(earlier.train, operator, train_gen)
    test, m_test, pi_test = _changed(earlier.test, operator, test_gen)
    provenance = f"{earlier.info}; later: {operator.summary}, m ~ U(0, 1), seed {seed}"
    later = DataBundle(
        name=f"{name} (later)", kind=earlier.kind, train=train, test=test, shape=earlier.shape,
        num_classes=earlier.num_classes, class_names=earlier.class_names, info=provenance,
        extra={"magnitude": {"train": m_train, "test": m_test},
               "source_index": {"train": pi_train, "test": pi_test}},
    )  # fmt: skip
    earlier.name = name
    earlier.info = f"{earlier.info}; earlier domain of {name}"
    earlier.domain_b = later
    earlier.extra = {**earlier.extra, "change": operator, "evaluator": earlier.extra.get("base")}
    return earlier


def sine_series(n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """(n, length) ``0.4 sin(2π f t + φ)`` with f ~ U(1, 3) cycles, φ ~ U(0, 2π), plus
    N(0, 0.02²) noise."""
    t = torch.linspace(0.0, 1.0, length)
    f = 1.0 + 2.0 * torch.rand(n, 1, generator=generator)
    phase = 2 * torch.pi * torch.rand(n, 1, generator=generator)
    noise = SERIES_NOISE * torch.randn(n, length, generator=generator)
    return 0.4 * torch.sin(2 * torch.pi * f * t + phase) + noise


def series_change(
    *,
    operator: str = "amplitude",
    length: int = 32,
    n_train: int = 2000,
    n_test: int = 500,
    seed: int = 0,
) -> DataBundle:
    """1-D series before and after a change: (length,) items, unlabelled.

    Args:
        operator: ``amplitude``, ``trend`` or ``level_trend`` (see the module docs).
        length: points per series, 8 to 256.
        n_train, n_test: series per split, 10 to 100,000.
        seed: draws the series, the magnitudes and the pairing.
    """
    where = "data (series-change)"
    op = _operator(SERIES_OPERATORS, operator, where)
    check_int(f"{where}: length", length, *SERIES_LENGTHS)
    check_int(f"{where}: n_train", n_train, 10, 100_000)
    check_int(f"{where}: n_test", n_test, 10, 100_000)
    check_seed(seed, where)
    generator = torch.Generator().manual_seed(seed)
    earlier = DataBundle(
        name="series-change", kind="series",
        train=tensor_split(sine_series(n_train, length, generator)),
        test=tensor_split(sine_series(n_test, length, generator)),
        shape=(length,), info=f"sine series of {length} points, seed {seed}",
    )  # fmt: skip
    return change_pair(earlier, op, "series-change", seed)


def digits_change(*, operator: str = "thicken", resolution: int = 8, seed: int = 0) -> DataBundle:
    """scikit-learn's digits before and after a change: (1, R, R) images in [-1, 1].

    Args:
        operator: ``thicken``, ``fade`` or ``ink_fade`` (see the module docs).
        resolution: side R (8 native; the evaluator classifier reads 8).
        seed: draws the magnitudes and the pairing.
    """
    from gankit.data.digits import digits

    where = "data (digits-change)"
    op = _operator(IMAGE_OPERATORS, operator, where)
    check_resolution(resolution, where)
    check_seed(seed, where)
    earlier = digits(resolution=resolution)
    earlier.extra = {**earlier.extra, "base": "digits"}
    return change_pair(earlier, op, "digits-change", seed)


def fashion_change(
    *,
    operator: str = "fade",
    data_dir: str | None = None,
    resolution: int = 28,
    download: bool = True,
    limit: int | None = None,
    seed: int = 0,
) -> DataBundle:
    """Fashion-MNIST before and after a change: (1, R, R) images in [-1, 1], 10 classes.

    Args:
        operator: ``fade`` (default) or ``thicken`` (see the module docs). On garments
            ``thicken``'s read-back follows m only loosely (Spearman 0.84 on the data:
            a dilation adds more ink to some shapes than to others), so Control cannot
            reach 0.9 with it; ``fade``'s is exact.
        data_dir, download, limit: as for ``fashion-mnist``.
        resolution: side R, 28 native.
        seed: draws the magnitudes and the pairing.
    """
    from gankit.data.idx import fashion_mnist

    where = "data (fashion-change)"
    op = _operator(IMAGE_OPERATORS, operator, where)
    check_resolution(resolution, where)
    check_seed(seed, where)
    earlier = fashion_mnist(data_dir=data_dir, resolution=resolution, download=download,
                            limit=limit)  # fmt: skip
    earlier.extra = {**earlier.extra, "base": "fashion-mnist"}
    return change_pair(earlier, op, "fashion-change", seed)
