"""The change family judged per individual: individual error and calibration."""

from __future__ import annotations

import pytest

from gankit.data import load_dataset
from gankit.metrics.change import (
    CALIBRATION_STEPS,
    AverageChange,
    IdentityChange,
    OperatorChange,
    individual_scores,
)


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
    scores = individual_scores(IdentityChange(), earlier, later, m)
    assert scores["individual_error"] == pytest.approx(1.0, abs=1e-6)
    assert scores["calibration_rank"] == 0.0  # every code gives the same output
    assert scores["calibration_error"] == pytest.approx(float(m.mean()), abs=1e-6)


def test_a_model_that_makes_each_individual_s_change_scores_zero(pairs):
    operator, earlier, later, m = pairs
    scores = individual_scores(OperatorChange(operator), earlier, later, m)
    assert scores["individual_error"] < 1e-6
    # the nearest code on the grid: at most half a grid step from m, where op is one-to-one
    assert scores["calibration_error"] <= 0.5 / CALIBRATION_STEPS + 0.02
    assert scores["calibration_rank"] > 0.97


def test_the_average_change_scores_between_the_two(pairs):
    operator, earlier, later, m = pairs
    average = individual_scores(AverageChange(operator, earlier), earlier, later, m)
    oracle = individual_scores(OperatorChange(operator), earlier, later, m)
    assert oracle["individual_error"] < average["individual_error"] < 1.0, average
