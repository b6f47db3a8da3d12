"""Earlier and later digits changed by one of several operators: which change, and how much.

``digits-change-mixed`` is ``digits-change`` (:mod:`gankit.data.change`) with a second
hidden quantity. Every later item is made from an earlier item of the same split by one
operator of a list (default ``thicken`` and ``fade``), chosen per item:

``later_i = op_{j_i}(earlier_{π(i)}, m_i)``, with ``j_i`` uniform over the operators,
``m_i ~ U(0, 1)`` and π a seeded permutation.

Neither j, m nor π reaches a model: batches hold images and class labels only, and the
two domains are drawn in independent orders. All three are kept in ``domain_b.extra``
(``operator_index``, ``magnitude``, ``source_index``, each by split; ``operators``, the
names in the order of the index) for scoring only: ``gankit eval``'s individual scores
and ``operator_accuracy`` (:mod:`gankit.metrics.change_codes`).

No single read-back measures two kinds of change on one scale, so the data's operator
(``extra["change"]``, which Control reads) measures the size of the change whatever
its kind: the mean absolute change per value, ``mean |after − before|``, which grows
with m under every operator. Applying it is refused: which operator changes an item is
the hidden part of each pair.
"""

from __future__ import annotations

import torch

from gankit.data.base import DataBundle, check_resolution, check_seed, tensor_split
from gankit.data.change import IMAGE_OPERATORS, ChangeOperator
from gankit.errors import GankitError, choices

#: The operators mixed when ``operators`` is not given.
DEFAULT_OPERATORS = "thicken,fade"


def change_size(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Mean absolute change per value of (N, ...) items: (N,)."""
    return (after - before).abs().flatten(1).mean(dim=1)


def _refuse_apply(items: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    raise GankitError(
        "data (digits-change-mixed): each item is changed by its own hidden operator; "
        "there is no one operator to apply (use the held-out pairs in domain_b.extra)"
    )


def parse_operators(operators: str, where: str) -> list[ChangeOperator]:
    """``"thicken,fade"`` -> the named image operators: at least two, all different."""
    names = [name.strip() for name in str(operators).split(",")]
    for name in names:
        if name not in IMAGE_OPERATORS:
            raise GankitError(
                f"{where}: unknown operator '{name}' in operators '{operators}'; valid: "
                f"{choices(IMAGE_OPERATORS)}"
            )
    if len(names) < 2 or len(set(names)) != len(names):
        raise GankitError(
            f"{where}: operators '{operators}' must name at least two different operators, "
            f"comma-separated, from {choices(IMAGE_OPERATORS)}"
        )
    return [IMAGE_OPERATORS[name] for name in names]


def mixed_changed(split, operators: list[ChangeOperator], generator: torch.Generator):
    """(later split, j, m, π): each later item ``op_{j_i}(earlier[π(i)], m_i)``, labels kept."""
    x, y = split.tensors
    source_index = torch.randperm(len(x), generator=generator)
    m = torch.rand(len(x), generator=generator)
    index = torch.randint(len(operators), (len(x),), generator=generator)
    later = x[source_index].clone()
    for j, operator in enumerate(operators):
        chosen = index == j
        later[chosen] = operator.apply(x[source_index][chosen], m[chosen])
    return tensor_split(later.clamp(-1.0, 1.0), y[source_index]), index, m, source_index


def digits_change_mixed(
    *, operators: str = DEFAULT_OPERATORS, resolution: int = 8, seed: int = 0
) -> DataBundle:
    """scikit-learn's digits before and after one of several changes, chosen per item:
    (1, R, R) images in [-1, 1].

    Args:
        operators: comma-separated, at least two of ``thicken``, ``fade``, ``ink_fade``,
            ``rotate`` (default ``thicken,fade``), each chosen for a later item with
            equal chance.
        resolution: side R (8 native; the evaluator classifier reads 8).
        seed: draws the operators, the magnitudes and the pairing.
    """
    from gankit.data.digits import digits

    where = "data (digits-change-mixed)"
    chosen = parse_operators(operators, where)
    check_resolution(resolution, where)
    check_seed(seed, where)
    earlier = digits(resolution=resolution)
    parent = torch.Generator().manual_seed(seed)
    train_gen, test_gen = (torch.Generator().manual_seed(int(s)) for s in torch.randint(
        2**62, (2,), generator=parent))  # fmt: skip
    train, j_train, m_train, pi_train = mixed_changed(earlier.train, chosen, train_gen)
    test, j_test, m_test, pi_test = mixed_changed(earlier.test, chosen, test_gen)
    names = tuple(op.name for op in chosen)
    name = "digits-change-mixed"
    later = DataBundle(
        name=f"{name} (later)", kind=earlier.kind, train=train, test=test, shape=earlier.shape,
        num_classes=earlier.num_classes, class_names=earlier.class_names,
        info=f"{earlier.info}; later: one of {', '.join(names)} per item, m ~ U(0, 1), "
        f"seed {seed}",
        extra={"magnitude": {"train": m_train, "test": m_test},
               "source_index": {"train": pi_train, "test": pi_test},
               "operator_index": {"train": j_train, "test": j_test},
               "operators": names},
    )  # fmt: skip
    size = ChangeOperator(
        "mixed", _refuse_apply, change_size,
        f"one of {', '.join(names)}; read back as the mean absolute change",
    )  # fmt: skip
    earlier.name = name
    earlier.info = f"{earlier.info}; earlier domain of {name}"
    earlier.domain_b = later
    earlier.extra = {**earlier.extra, "change": size, "evaluator": "digits"}
    return earlier
