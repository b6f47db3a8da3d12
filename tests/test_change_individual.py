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


# --------------------------------------------------------------------------- every score
def test_every_printed_score_tells_an_untrained_model_from_a_trained_one(
    evaluator_cache, monkeypatch
):
    """An untrained residual G against the operator itself (a perfect model), on every
    score gankit eval prints for a change run except ``class_kept``, which an unchanged
    item keeps best. ``control_per_input`` was about 1 for both and is retired."""
    import gankit.metrics.change as change
    from gankit.metrics.evaluate import score_direction
    from gankit.registry import create_model

    # class_kept is not compared, so its judge (seconds to fit) is not fitted
    monkeypatch.setattr(change, "class_judge", lambda bundle, seed=0: None)

    for name, options, shape in (
        ("series-change", {"n_train": 64, "n_test": 100}, (32,)),
        ("digits-change", {"operator": "fade"}, (1, 8, 8)),
    ):
        bundle = load_dataset(name, **options)
        untrained = create_model("change", data_shape=shape, width=16, n_layers=2)
        trained = OperatorChange(bundle.extra["change"])
        before, _, _ = change.change_scores(untrained, bundle, 50, train_evaluator=True)
        after, _, _ = change.change_scores(trained, bundle, 50, train_evaluator=True)
        printed = set(after) - {"class_kept", "class_kept_before", "class_kept_evaluator"}
        assert {"control", "individual_error", "calibration_error", "identity", "fd"} <= printed
        assert printed - {"fd_before"} <= set(before)
        for key in printed - {"fd_before"}:  # fd_before reads only the data
            better, worse = after[key], before[key]
            if score_direction(key) == "lower":
                better, worse = -better, -worse
            # clearly: a tenth of the scale for scores in [0, 1]; FD at least halved
            margin = abs(after[key]) if key == "fd" else 0.1
            if key == "identity":
                margin = 0.01  # per value; the operator's is 0
            assert better > worse + margin, (name, key, before[key], after[key])
