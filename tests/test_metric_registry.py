"""The metric registry: a metric is one function and one line, and scoring, ``--metrics``
and the score directions read it."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys

import pytest
import torch

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit.errors import GankitError
from gankit.metrics.evaluate import Scorer, parse_metrics, score_direction
from gankit.metrics.registry import (
    HIGHER,
    LOWER,
    MetricInput,
    default_metrics,
    metrics_for,
    metrics_help,
    register_metric,
    registered,
    unregister_metric,
)

BUILT_IN = ("modes", "w1", "fd", "kid", "is", "pr", "dc")


def spread_gap(inputs: MetricInput) -> dict[str, float]:
    """|std of the scored points - std of the reference points|: a test's own metric."""
    return {"spread_gap": float((inputs.samples.std() - inputs.reference.std()).abs())}


def feature_norm(inputs: MetricInput) -> dict[str, float]:
    """The mean feature norm of the scored images: a metric that reads features."""
    return {"feature_norm": float(inputs.features["features"].norm(dim=1).mean())}


@pytest.fixture
def spread():
    """``spread``: a toy metric registered here, in the test file, and removed after."""
    register_metric(
        "spread", spread_gap, kind="toy", scores={"spread_gap": LOWER}, default=False,
        description="how far the spread of the points is from the reference's",
    )  # fmt: skip
    yield registered()["spread"]
    unregister_metric("spread")


def test_a_metric_registered_in_a_test_file_is_scored_by_gankit_eval(tmp_path, spread):
    gankit.train(tiny_config(), runs_dir=tmp_path)
    result = cli("eval", "tiny-gan", "--runs-dir", tmp_path, "--n", 200, "--metrics", "spread,w1")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line}
    assert rows["spread_gap"][0] == "↓" and float(rows["spread_gap"][1]) >= 0
    report = json.loads((tmp_path / "tiny-gan" / "eval.json").read_text())
    # registration order, not the order asked: w1 is a built-in, spread came later
    assert list(report["scores"]) == ["w1", "spread_gap"]
    assert list(report["floor"]) == ["w1", "spread_gap"]
    assert report["extra"]["metrics"] == ["spread", "w1"]
    # not a default: a plain eval runs the built-ins only
    assert parse_metrics(None, "toy") == default_metrics("toy") == ("modes", "w1")
    assert "modes,w1,som_toy,spread (toy)" in metrics_help()


def test_an_image_metric_reads_the_scorers_features(evaluator_cache, spread):
    register_metric(
        "norm", feature_norm, kind="image", needs={"features"},
        scores={"feature_norm": None}, description="mean feature norm",
    )  # fmt: skip
    try:
        scorer = Scorer(gankit.load_dataset("digits"), "norm", n=40, train_evaluator=True)
        real = scorer.reference_features["features"]
        assert scorer.floor() != {"feature_norm": float(real.norm(dim=1).mean())}
        samples = scorer.reference.clone()
        expected = pytest.approx(float(real.norm(dim=1).mean()), rel=1e-6)
        assert scorer.score(samples) == {"feature_norm": expected}
        with pytest.raises(GankitError, match="metric 'spread' does not apply to image data"):
            Scorer(gankit.load_dataset("digits"), "spread", n=40)
    finally:
        unregister_metric("norm")


def test_image_scores_are_written_in_registration_order(evaluator_cache):
    scorer = Scorer(gankit.load_dataset("digits"), "dc,pr,is,kid,fd", n=50)
    scores = scorer.score(scorer.reference + 0.1 * torch.randn_like(scorer.reference))
    assert list(scores) == [
        "fd", "kid", "kid_std", "is", "is_std", "precision", "recall", "density", "coverage",
    ]  # fmt: skip


def test_the_built_ins_keep_their_order_defaults_and_help():
    assert tuple(registered())[: len(BUILT_IN)] == BUILT_IN
    assert default_metrics("toy") == ("modes", "w1")
    assert default_metrics("image") == ("fd", "kid", "is", "pr", "dc")
    assert default_metrics("series") == ()
    assert metrics_help() == (
        "Comma-separated: modes,w1,som_toy (toy) or fd,kid,is,pr,dc,som,fd_inf (images)."
    )
    assert {m.name for m in metrics_for("sample")} >= set(BUILT_IN)


#: What score_direction answered before the registry, by pattern, first match deciding.
OLD_DIRECTIONS = (
    ("*_std", None), ("*_before", None), ("unigram_*", None), ("uniform_*", None),
    ("word_share_*", None), ("entropy_*", None), ("kl", None), ("fd", LOWER),
    ("fd_*", LOWER), ("kid", LOWER), ("is", HIGHER), ("precision", HIGHER),
    ("recall", HIGHER), ("density", HIGHER), ("coverage", HIGHER), ("modes", HIGHER),
    ("high_quality", HIGHER), ("reverse_kl", LOWER), ("w1", LOWER), ("cycle_l1_*", LOWER),
    ("acc_*", HIGHER), ("*accuracy", HIGHER), ("*miou", HIGHER), ("*iou_*", HIGHER),
    ("control*", HIGHER), ("identity", LOWER), ("class_kept*", HIGHER),
    ("code_error", LOWER), ("cond_acc", HIGHER), ("elbo", HIGHER), ("nll", LOWER),
    ("recon_mse", LOWER), ("bits_per_*", LOWER), ("perplexity", LOWER),
)  # fmt: skip


def old_direction(name: str) -> str | None:
    return next((way for pat, way in OLD_DIRECTIONS if fnmatch.fnmatchcase(name, pat)), None)


def test_every_score_keeps_its_better_way():
    built_in_scores = [score for name in BUILT_IN for score, _ in registered()[name].scores]
    assert built_in_scores == [
        "modes", "high_quality", "reverse_kl", "w1", "fd", "kid", "kid_std", "is", "is_std",
        "precision", "recall", "density", "coverage",
    ]  # fmt: skip
    for name in BUILT_IN:
        for score, way in registered()[name].scores:
            assert way == old_direction(score) == score_direction(score), score
    others = [
        "fd_ab", "fd_ab_before", "fd_before", "cycle_l1_a", "acc_ab", "acc_ab_before",
        "source_accuracy", "target_miou", "iou_sky", "control", "control_per_input",
        "identity", "class_kept", "class_kept_evaluator", "code_error", "cond_acc", "elbo",
        "nll", "recon_mse", "bits_per_char", "perplexity", "kl", "unigram_bits_per_char",
        "uniform_bits_per_char", "word_share_t0.5", "entropy_t1", "x", "std",
    ]  # fmt: skip
    assert {n: score_direction(n) for n in others} == {n: old_direction(n) for n in others}


def test_a_registered_direction_never_overrides_a_spread(spread):
    register_metric(
        "wobble", lambda inputs: {}, kind="toy", scores={"wobble": HIGHER, "wobble_std": LOWER},
        description="a metric that declares a spread as a goal",
    )  # fmt: skip
    try:
        assert score_direction("wobble") == HIGHER and score_direction("wobble_std") is None
    finally:
        unregister_metric("wobble")


def test_a_duplicate_name_is_refused_unless_replaced(spread):
    with pytest.raises(GankitError, match="metric 'spread' is already registered"):
        register_metric("spread", spread_gap, kind="toy", scores={"x": LOWER}, description="d")
    register_metric(
        "spread", spread_gap, kind="toy", scores={"spread_gap": HIGHER}, description="d",
        replace=True,
    )  # fmt: skip
    assert registered()["spread"].directions == {"spread_gap": HIGHER}
    assert tuple(registered())[: len(BUILT_IN)] == BUILT_IN  # replacing keeps the order


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"needs": {"labels"}}, "needs 'labels', which the scorer does not provide; valid needs: "
         "features, modes, probs"),
        ({"scores": {"x": "up"}}, "score 'x' is better 'up'; valid: 'lower', 'higher' or None"),
        ({"scores": {}}, "declares no scores"),
        ({"scores": {"x,y": LOWER}}, "score name 'x,y' must be lower-case"),
        ({"kind": "Image"}, "kind 'Image' must be lower-case"),
        ({"description": ""}, "needs a one-line description"),
        ({"description": "two\nlines"}, "the description must be one line"),
        ({"name": "fd,kid"}, "name 'fd,kid' must be lower-case"),
    ],
)  # fmt: skip
def test_bad_fields_are_refused(fields, message):
    given = {"name": "bad", "kind": "toy", "scores": {"bad": LOWER}, "description": "d"}
    given |= fields
    with pytest.raises(GankitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        register_metric(given.pop("name"), spread_gap, **given)
    assert "bad" not in registered() and "fd,kid" not in registered()
    with pytest.raises(GankitError, match="no metric 'bad' is registered"):
        unregister_metric("bad")


def test_a_metric_that_needs_modes_names_the_ones_that_do_not(tmp_path):
    gankit.train(tiny_config(data="moons"), runs_dir=tmp_path)
    result = cli("eval", "tiny-gan", "--runs-dir", tmp_path, "--n", 50, "--metrics", "w1,modes")
    one_line_error(
        result, "metric 'modes' needs a mixture with known modes (ring, grid); 'moons' has "
        "none: use w1",
    )  # fmt: skip


def test_the_registry_loads_without_torch():
    code = (
        "import sys, gankit.metrics.registry as r; r.metrics_help(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
