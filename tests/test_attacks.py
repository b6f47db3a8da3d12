"""Adversarial examples (gankit.attacks, gankit attack): FGSM's step against a
hand-computed one, FGSM raising the loss of every example, PGD inside its ball exactly,
adversarial training buying robustness, and bad input failing in one line."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit import api
from gankit.attacks import fgsm, madry_examples, pgd, project
from gankit.data import load_dataset
from gankit.errors import GankitError
from gankit.metrics.features import EvaluatorCNN, evaluator_path, fit_classifier
from gankit.nn import torch_threads


def linear(x: torch.Tensor) -> torch.Tensor:
    """Logits W x with W = I: two classes read off the two coordinates."""
    return x


@pytest.mark.parametrize(
    "norm, expected",
    [("linf", [-0.1, 0.1]), ("l2", [-0.1 / math.sqrt(2), 0.1 / math.sqrt(2)])],
)
def test_fgsm_takes_the_hand_computed_step(norm, expected):
    # At x = (0, 0), y = 0: p = (1/2, 1/2), ∇_x CE = W^T (p - e_0) = (-1/2, 1/2), so
    # L∞: ε sign(g) = (-ε, ε); L2: ε g / ||g|| = ε (-1, 1) / √2.
    x, y = torch.zeros(1, 2), torch.tensor([0])
    adversarial = fgsm(linear, x, y, 0.1, norm, bounds=None)
    assert adversarial[0].tolist() == pytest.approx(expected, abs=1e-7)


@pytest.fixture(scope="module")
def digits8():
    """The digits test split at 8 px and a classifier briefly trained on the train split."""
    bundle = load_dataset("digits", resolution=8)
    x, y = bundle.train.tensors
    net = fit_classifier(x, y, 10, epochs=8)
    return net, *bundle.test.tensors


def _losses(net, x, y) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(net(x), y, reduction="none")


@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("l2", 0.3)])
def test_fgsm_raises_the_loss_of_every_example(digits8, norm, eps):
    net, x, y = digits8
    adversarial = fgsm(net, x, y, eps, norm)
    before, after = _losses(net, x, y), _losses(net, adversarial, y)
    assert bool((after > before).all()), int((after <= before).sum())


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("linf", 1 / 3), ("l2", 0.7), ("l2", 3.0)])
def test_pgd_stays_inside_the_eps_ball_exactly(norm, eps):
    torch.manual_seed(0)
    net = EvaluatorCNN(1, 10).eval()
    # values on the bounds too: clipping there must not push δ out of the ball
    x = torch.rand(64, 1, 8, 8) * 2 - 1
    x[:, :, :2] = -1.0
    x[:, :, -1] = 1.0
    y = torch.randint(0, 10, (64,))
    adversarial = pgd(net, x, y, eps, norm, steps=5, generator=torch.Generator().manual_seed(1))
    delta = adversarial - x
    assert adversarial.min() >= -1 and adversarial.max() <= 1
    if norm == "linf":
        assert bool((delta.abs() <= eps).all())
        assert bool(((adversarial >= x - eps) & (adversarial <= x + eps)).all())
        assert delta.abs().max() > 0.9 * eps  # it does move to the border
    else:
        sizes = torch.linalg.vector_norm(delta.flatten(1), dim=1)
        assert bool((sizes <= eps).all()), float(sizes.max() - eps)
        assert sizes.max() > 0.9 * eps


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 0.7)])
def test_pgd_restarts_keep_every_example_the_first_start_fools(digits8, norm, eps):
    """Restarts (Madry et al.'s evaluation) can only strengthen PGD: the first start is
    the single run's, and an example fooled once stays fooled; δ stays in the ball."""
    net, x, y = digits8
    x, y = x[:200], y[:200]
    with torch_threads(1):  # a small network: threads only wait for each other here
        once = pgd(net, x, y, eps, norm, steps=5, generator=torch.Generator().manual_seed(1))
        more = pgd(net, x, y, eps, norm, steps=5, generator=torch.Generator().manual_seed(1),
                   restarts=4)  # fmt: skip
    with torch.no_grad():
        wrong_once, wrong_more = net(once).argmax(1) != y, net(more).argmax(1) != y
    assert bool((wrong_more | ~wrong_once).all())
    assert int(wrong_more.sum()) > int(wrong_once.sum())
    delta = (more - x).flatten(1)
    sizes = delta.abs().amax(dim=1) if norm == "linf" else torch.linalg.vector_norm(delta, dim=1)
    assert bool((sizes <= eps).all()) and more.min() >= -1 and more.max() <= 1


def test_projection_pulls_rounding_back_inside():
    # In float32, fl(x + ε) − x exceeds ε for x = 0.75244653 (and about half of [-1, 1]):
    # clipping to x + ε alone would leave δ outside the ball.
    x = torch.tensor([[0.75244653, 0.43301511, -0.3, 0.0]])
    eps = 0.1
    assert (x[0, 0] + eps) - x[0, 0] > eps
    projected = project(x + 2 * eps, x, eps, "linf", None)
    assert bool(((projected - x).abs() <= eps).all())
    many = torch.rand(4096, 8) * 2 - 1
    projected = project(many + 0.3 * torch.randn(4096, 8), many, 0.3, "l2", (-1.0, 1.0))
    assert bool((torch.linalg.vector_norm(projected - many, dim=1) <= 0.3).all())


def _pgd_accuracy(net, x, y, eps) -> float:
    adversarial = pgd(net, x, y, eps, "linf", steps=10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return float((net(adversarial).argmax(1) == y).float().mean())


def test_adversarial_training_raises_robust_accuracy(digits8):
    """8 px digits, 8 epochs each; measured: PGD-10 at ε = 0.2 leaves the plain network
    0.42 and the PGD-trained one 0.77 (an untrained one would be near 0.1)."""
    plain, x_test, y_test = digits8
    bundle = load_dataset("digits", resolution=8)
    x, y = bundle.train.tensors
    robust = fit_classifier(
        x, y, 10, epochs=8,
        adversary=lambda net, xb, yb: madry_examples(net, net, xb, yb, 0.2, "linf", 3),
    )  # fmt: skip
    plain_robust = _pgd_accuracy(plain, x_test, y_test, 0.2)
    trained_robust = _pgd_accuracy(robust, x_test, y_test, 0.2)
    assert trained_robust > plain_robust + 0.25, (plain_robust, trained_robust)


def test_attack_writes_the_curve_table_and_examples(evaluator_cache, tmp_path):
    result = cli(
        "attack", "evaluator:digits", "--eps", "0.1,0.3", "--steps", "3", "--n", "50",
        "--examples", "2", "--out", tmp_path / "out", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| evaluator:digits | pgd |" in result.stdout
    for name in ("robust-accuracy.png", "robust-accuracy.md", "examples-evaluator-digits.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    report = api.attack(["evaluator:digits"], eps="0.1,0.3", steps=3, n=50)
    pgd_scores = report.accuracy["evaluator:digits"]
    assert pgd_scores["pgd@0.3"] < pgd_scores["pgd@0.1"] <= pgd_scores["clean"]


def test_attack_on_a_dann_run_with_adversarial_training(tmp_path):
    config = tiny_config("source_only", "moons", steps=4)
    config["data"] |= {"target": "moons", "target_options": {"n_train": 64, "n_test": 32}}
    config["model"] |= {"adversarial_eps": 0.1, "adversarial_steps": 2}
    run = gankit.train(config, runs_dir=tmp_path).run_dir
    report = api.attack([str(run)], eps="0.1", steps=2, runs_dir=tmp_path)
    assert set(report.accuracy[str(run)]) == {"clean", "fgsm@0.1", "pgd@0.1"}
    with pytest.raises(GankitError, match="--train-eps trains a copy of an evaluator"):
        api.attack([str(run)], eps="0.1", train_eps=0.1, runs_dir=tmp_path)


def test_train_eps_trains_a_copy_and_leaves_the_cached_evaluator_alone(evaluator_cache):
    cached = evaluator_path("digits")
    before, listed = cached.read_bytes(), sorted(cached.parent.iterdir())
    report = api.attack(
        ["evaluator:digits"], attacks="pgd", eps="0.1", steps=2, n=50, train_eps=0.1,
        train_steps=1,
    )  # fmt: skip
    assert list(report.accuracy) == ["evaluator:digits", "evaluator:digits + PGD training ε=0.1"]
    assert cached.read_bytes() == before
    assert sorted(cached.parent.iterdir()) == listed  # nothing cached beside it


@pytest.mark.parametrize(
    "args, words",
    [
        (["--eps", "0"], ["eps must be a finite number > 0", "got 0.0"]),
        (["--eps", "-0.1,0.2"], ["eps must be a finite number > 0"]),
        (["--eps", "nan"], ["eps must be a finite number > 0"]),
        (["--norm", "l3"], ["unknown norm 'l3'", "valid: l2, linf"]),
        (["--attack", "cw"], ["unknown attack 'cw'", "valid: fgsm, pgd"]),
        (["--steps", "0"], ["steps must be an integer in [1, 1000]"]),
        (["--restarts", "0"], ["restarts must be an integer in [1, 100]"]),
    ],
)
def test_bad_attack_settings_fail_in_one_line(evaluator_cache, args, words):
    one_line_error(cli("attack", "evaluator:digits", *args), *words)


def test_a_run_without_a_classifier_fails_in_one_line(tmp_path):
    run = gankit.train(tiny_config("gan", steps=2), runs_dir=tmp_path).run_dir
    result = cli("attack", run, "--runs-dir", tmp_path)
    one_line_error(result, f"run '{run}' has task sample", "no classifier to attack")


def test_an_unknown_classifier_fails_in_one_line(tmp_path):
    result = cli("attack", "no-such-run", "--runs-dir", tmp_path)
    one_line_error(result, "unknown classifier 'no-such-run'", "evaluator:DATASET")
