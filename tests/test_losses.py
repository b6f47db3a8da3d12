"""Adversarial losses against values computed by hand.

With d_real = [0, 2] and d_fake = [0, -1] (softplus(x) = log(1 + e^x)):
softplus(0) = ln 2 = 0.693147, softplus(-2) = 0.126928, softplus(-1) = 0.313262,
softplus(1) = 1.313262, softplus(2) = 2.126928.
"""

import math

import pytest
import torch

from gankit import losses
from gankit.losses import ADVERSARIAL_LOSSES

D_REAL = torch.tensor([0.0, 2.0])
D_FAKE = torch.tensor([0.0, -1.0])
LN2 = math.log(2.0)


def test_bce_discriminator_loss():
    # real: (ln2 + softplus(-2)) / 2; fake: (ln2 + softplus(-1)) / 2
    expected = (LN2 + 0.126928) / 2 + (LN2 + 0.313262) / 2
    assert losses.bce_d_loss(D_REAL, D_FAKE).item() == pytest.approx(expected, abs=1e-5)


def test_bce_one_sided_label_smoothing():
    # target 0.9 on logit 2: 0.9 * softplus(-2) + 0.1 * softplus(2)
    value = losses.bce_d_loss(torch.tensor([2.0]), torch.tensor([-50.0]), real_target=0.9)
    assert value.item() == pytest.approx(0.9 * 0.126928 + 0.1 * 2.126928, abs=1e-5)


def test_minimax_generator_loss():
    # E[log(1 - sigma(d))] = -(softplus(0) + softplus(-1)) / 2
    value = losses.minimax_g_loss(D_FAKE).item()
    assert value == pytest.approx(-(LN2 + 0.313262) / 2, abs=1e-5)


def test_non_saturating_generator_loss():
    # -E[log sigma(d)] = (softplus(0) + softplus(1)) / 2
    value = losses.non_saturating_g_loss(D_FAKE).item()
    assert value == pytest.approx((LN2 + 1.313262) / 2, abs=1e-5)


def test_minimax_saturates_where_non_saturating_does_not():
    # A confidently rejected fake (logit -10): minimax's gradient vanishes, NS's does not.
    d = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(losses.minimax_g_loss(d), d)
    (g_ns,) = torch.autograd.grad(losses.non_saturating_g_loss(d), d)
    assert abs(g_mm.item()) < 1e-4
    assert abs(g_ns.item()) > 0.99


def test_wasserstein_losses():
    assert losses.wasserstein_d_loss(D_REAL, D_FAKE).item() == pytest.approx(-0.5 - 1.0)
    assert losses.wasserstein_g_loss(D_FAKE).item() == pytest.approx(0.5)


def test_least_squares_losses():
    # D: 0.5 * mean((r - 1)^2) + 0.5 * mean(f^2) = 0.5 * 1 + 0.5 * 0.5
    assert losses.least_squares_d_loss(D_REAL, D_FAKE).item() == pytest.approx(0.75)
    # G: 0.5 * mean((f - 1)^2) = 0.5 * (1 + 4) / 2
    assert losses.least_squares_g_loss(D_FAKE).item() == pytest.approx(1.25)


def test_hinge_losses():
    # D: mean(relu(1 - r)) + mean(relu(1 + f)) = 0.5 + 0.5
    assert losses.hinge_d_loss(D_REAL, D_FAKE).item() == pytest.approx(1.0)
    assert losses.hinge_g_loss(D_FAKE).item() == pytest.approx(0.5)


def test_reductions():
    per_sample = losses.hinge_d_loss(D_REAL, D_FAKE, reduction="none")
    assert per_sample.tolist() == [2.0, 0.0]
    assert losses.hinge_d_loss(D_REAL, D_FAKE, reduction="sum").item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="reduction"):
        losses.hinge_d_loss(D_REAL, D_FAKE, reduction="max")


def test_gradient_penalty_of_a_linear_critic():
    # f(x) = 3 x1 + 4 x2 has gradient norm 5 everywhere: penalty (5 - 1)^2 = 16.
    weight = torch.tensor([3.0, 4.0])
    penalty = losses.gradient_penalty(lambda x: x @ weight, torch.randn(8, 2), torch.randn(8, 2))
    assert penalty.item() == pytest.approx(16.0, rel=1e-5)


def test_gradient_penalty_is_zero_for_a_unit_norm_critic_and_differentiable():
    weight = torch.tensor([0.6, 0.8], requires_grad=True)
    penalty = losses.gradient_penalty(lambda x: x @ weight, torch.randn(8, 2), torch.randn(8, 2))
    assert penalty.item() == pytest.approx(0.0, abs=1e-10)
    big = torch.tensor([6.0, 8.0], requires_grad=True)
    penalty = losses.gradient_penalty(lambda x: x @ big, torch.randn(4, 2), torch.randn(4, 2))
    (grad,) = torch.autograd.grad(penalty, big)  # create_graph: the penalty trains D
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 9 * [0.6, 0.8]
    assert grad.tolist() == pytest.approx([10.8, 14.4], rel=1e-5)


def test_r1_penalty_of_a_quadratic_critic():
    # D(x) = x1^2 + 3 x2 has gradient (2 x1, 3): at (1, 0) its squared norm is
    # 4 + 9 = 13, at (-2, 5) it is 16 + 9 = 25; the penalty is their mean, 19.
    real = torch.tensor([[1.0, 0.0], [-2.0, 5.0]])
    penalty = losses.r1_penalty(lambda x: x[:, 0] ** 2 + 3 * x[:, 1], real)
    assert penalty.item() == pytest.approx(19.0, rel=1e-6)


def test_r1_penalty_trains_the_critic_and_leaves_the_data_alone():
    weight = torch.tensor([3.0, 4.0], requires_grad=True)
    real = torch.randn(4, 2, requires_grad=True)
    penalty = losses.r1_penalty(lambda x: x @ weight, real)
    assert penalty.item() == pytest.approx(25.0, rel=1e-6)  # ||w||^2 at every x
    grad, data_grad = torch.autograd.grad(penalty, (weight, real), allow_unused=True)
    assert grad.tolist() == pytest.approx([6.0, 8.0], rel=1e-6)  # d/dw ||w||^2 = 2 w
    assert data_grad is None  # the penalty differentiates a detached copy of the data


def test_every_named_loss_is_registered_with_both_halves():
    assert set(ADVERSARIAL_LOSSES) == {
        "minimax",
        "non_saturating",
        "wasserstein",
        "least_squares",
        "hinge",
        "rpgan",
    }
    for pair in ADVERSARIAL_LOSSES.values():
        assert pair.d(D_REAL, D_FAKE).dim() == 0
        g_args = (D_FAKE, D_REAL) if pair.relativistic else (D_FAKE,)
        assert pair.g(*g_args).dim() == 0


def test_rpgan_discriminator_loss():
    # pairs (0, 0) and (2, -1): softplus(0 - 0) = ln 2, softplus(-1 - 2) = softplus(-3)
    # = ln(1 + e^-3) = 0.048587; the mean of the two.
    value = losses.rpgan_d_loss(D_REAL, D_FAKE).item()
    assert value == pytest.approx((LN2 + 0.048587) / 2, abs=1e-5)


def test_rpgan_generator_loss():
    # softplus(0 - 0) = ln 2, softplus(2 - (-1)) = softplus(3) = 3.048587
    value = losses.rpgan_g_loss(D_FAKE, D_REAL).item()
    assert value == pytest.approx((LN2 + 3.048587) / 2, abs=1e-5)


def test_rpgan_reads_only_the_gap_of_each_pair():
    # Shifting every score by the same amount moves no relativistic loss: D is asked to
    # rank each real above its fake, not to reach a target value.
    shifted = losses.rpgan_d_loss(D_REAL + 5.0, D_FAKE + 5.0)
    assert shifted.item() == pytest.approx(losses.rpgan_d_loss(D_REAL, D_FAKE).item())
    # ... while the unpaired loss moves.
    assert losses.bce_d_loss(D_REAL + 5.0, D_FAKE + 5.0).item() != pytest.approx(
        losses.bce_d_loss(D_REAL, D_FAKE).item()
    )


@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((2, 1), (3, 1)), ((2,), (2, 1))])
def test_rpgan_refuses_scores_that_do_not_pair(shapes):
    real, fake = torch.zeros(shapes[0]), torch.zeros(shapes[1])
    with pytest.raises(ValueError, match="one score per sample"):
        losses.rpgan_d_loss(real, fake)
    with pytest.raises(ValueError, match="one score per sample"):
        losses.rpgan_g_loss(fake, real)


def test_r2_penalty_is_the_slope_at_the_generated_samples():
    # the same quadratic critic as R1's test, at fakes (0, 1) and (3, 0):
    # |(0, 3)|^2 = 9 and |(6, 3)|^2 = 45, mean 27.
    fake = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    penalty = losses.r2_penalty(lambda x: x[:, 0] ** 2 + 3 * x[:, 1], fake)
    assert penalty.item() == pytest.approx(27.0, rel=1e-6)


def test_lazy_r2_weights_its_penalty_by_interval_times_half_gamma():
    fake = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    critic = lambda x: x[:, 0] ** 2 + 3 * x[:, 1]  # noqa: E731
    term, logged = losses.lazy_r2(critic, fake, gamma=0.5, interval=4, d_step=8)
    assert logged == pytest.approx(27.0) and term.item() == pytest.approx(4 * 0.25 * 27.0)
    assert losses.lazy_r2(critic, fake, gamma=0.5, interval=4, d_step=9) is None
    assert losses.lazy_r2(critic, fake, gamma=0.0, interval=1, d_step=0) is None


@pytest.mark.parametrize(
    ("progress", "expected"), [(0.0, 0.05), (0.5, 0.0275), (1.0, 0.005), (2.0, 0.005)]
)
def test_cosine_schedule_runs_from_start_to_end(progress, expected):
    # R3GAN's CIFAR-10 gamma: 0.05 -> 0.005; half way, the mean of the two.
    assert losses.cosine_schedule(0.05, 0.005, progress) == pytest.approx(expected)
