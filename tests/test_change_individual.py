"""The change family judged per individual: individual error and calibration."""

from __future__ import annotations

import pytest
import torch

from gankit.data import load_dataset
from gankit.metrics.change import CALIBRATION_STEPS, individual_scores


class Identity:
    """Leaves every item as it was, whatever the code."""

    def change(self, x, amount, net=None):
        return x.clone()


class Oracle:
    """Makes each item's change with the data's own operator: what a perfect model does."""

    def __init__(self, operator) -> None:
        self.operator = operator

    def change(self, x, amount, net=None):
        m = torch.as_tensor(amount, dtype=x.dtype).expand(len(x))
        return self.operator.apply(x, m).clamp(-1.0, 1.0)


class Average:
    """Applies everyone the mean change: the right amount, not the individual's own."""

    def __init__(self, operator, items) -> None:
        self.operator, self.items = operator, items

    def change(self, x, amount, net=None):
        m = torch.as_tensor(amount, dtype=x.dtype).expand(len(x))
        # the change the operator makes on the average item, added to each item
        mean = self.items.mean(dim=0, keepdim=True).expand_as(x)
        return (x + self.operator.apply(mean, m) - mean).clamp(-1.0, 1.0)


@pytest.fixture(scope="module", params=["thicken", "fade"])
def pairs(request):
    bundle = load_dataset("digits-change", operator=request.param)
    later = bundle.domain_b
    earlier = bundle.held_out.tensors[0][later.extra["source_index"]["test"]]
    return (
        bundle.extra["change"],
        earlier,
        later.held_out.tensors[0],
        later.extra["magnitude"]["test"],
    )


def test_the_identity_scores_exactly_one_and_calibrates_nothing(pairs):
    _, earlier, later, m = pairs
    scores = individual_scores(Identity(), earlier, later, m)
    assert scores["individual_error"] == pytest.approx(1.0, abs=1e-6)
    assert scores["calibration_rank"] == 0.0  # every code gives the same output
    assert scores["calibration_error"] == pytest.approx(float(m.mean()), abs=1e-6)


def test_a_model_that_makes_each_individual_s_change_scores_zero(pairs):
    operator, earlier, later, m = pairs
    scores = individual_scores(Oracle(operator), earlier, later, m)
    assert scores["individual_error"] < 1e-6
    # the nearest code on the grid: at most half a grid step from m, where op is one-to-one
    assert scores["calibration_error"] <= 0.5 / CALIBRATION_STEPS + 0.02
    assert scores["calibration_rank"] > 0.97


def test_the_average_change_scores_between_the_two(pairs):
    operator, earlier, later, m = pairs
    average = individual_scores(Average(operator, earlier), earlier, later, m)
    oracle = individual_scores(Oracle(operator), earlier, later, m)
    assert oracle["individual_error"] < average["individual_error"] < 1.0, average
