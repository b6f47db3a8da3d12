"""R3GAN in the GAN family: its backbone (sizes, fix-up start, bilinear resampling),
RpGAN with R1 and R2 in the training step, the schedules of γ and of DiffAugment's
probability, the bag-of-tricks switches, and the bad input each refuses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import TINY_R3, cli, one_line_error
from gankit import create_model
from gankit.errors import GankitError
from gankit.nn import NORM_TYPES, BilinearResample, R3Block, R3Discriminator, R3Generator

SMALL_DCGAN = {"data_shape": (1, 8, 8), "g_channels": 4, "d_channels": 4}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_at_the_papers_cifar10_width():
    # R3GAN's CIFAR-10 configuration: 4 stages (4 -> 32 px) of 768 channels, 2 blocks
    # each, bottlenecks 1536 wide in 96 groups of 16, z of 64 dimensions. Per block:
    # 768*1536 + 1536 (1x1 in) + 1536*16*9 + 1536 (grouped 3x3) + 1536*768 (1x1 out).
    block = 768 * 1536 + 1536 + 1536 * 16 * 9 + 1536 + 1536 * 768
    assert n_params(R3Block(768, 16, 8)) == block
    generator = R3Generator(64, (3, 32, 32), 768, 2, 16)
    discriminator = R3Discriminator((3, 32, 32), 768, 2, 16)
    # G: z -> 768 (no bias), a 768x4x4 basis, 8 blocks, a 1x1 conv to RGB with bias.
    assert n_params(generator) == 64 * 768 + 768 * 16 + 8 * block + 768 * 3 + 3 == 20_732_163
    # D: a 1x1 conv from RGB with bias, 8 blocks, a depthwise 4x4 basis, a 768 -> 1 head.
    assert n_params(discriminator) == 3 * 768 + 768 + 8 * block + 768 * 16 + 768 == 20_684_544


def test_r3gan_networks_have_no_normalisation_and_grouped_bottlenecks():
    model = create_model("r3gan", data_shape=(1, 28, 28), **TINY_R3)
    assert not any(isinstance(m, NORM_TYPES) for m in model.modules())
    grouped = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert grouped and all(m.groups == 16 // 4 for m in grouped)  # 2 * 8 wide, groups of 4
    # 28 px: stages at 7, 14 and 28 px, one block each, in G and in D.
    assert sum(isinstance(m, R3Block) for m in model.G.modules()) == 3
    assert model.G(model.sample_z(2)).shape == (2, 1, 28, 28)
    assert model.D(torch.zeros(2, 1, 28, 28)).shape == (2, 1)


def test_a_fresh_r3_block_is_the_identity():
    # Fix-up: the branch's last conv starts at zero, so the sum of blocks starts as the
    # identity and the network's scale does not depend on its depth.
    block = R3Block(8, 4, n_blocks=6)
    x = torch.randn(3, 8, 5, 5)
    assert torch.equal(block(x), x)
    assert block.branch[-1].weight.abs().sum() == 0 and block.branch[0].weight.std() > 0


def test_bilinear_resampling_keeps_a_constant_image_constant_away_from_the_border():
    x = torch.ones(1, 2, 8, 8)
    up, down = BilinearResample("up")(x), BilinearResample("down")(x)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    assert torch.allclose(up[..., 1:-1, 1:-1], torch.ones(1, 2, 14, 14))
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1, 2, 2, 2))
    # 2x upsampling by the [1, 3, 3, 1] filter is bilinear interpolation: a ramp stays a ramp.
    ramp = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 6, 6)
    row = BilinearResample("up")(ramp)[0, 0, 5, 2:-2]
    assert torch.allclose(row[1:] - row[:-1], torch.full((7,), 0.5))


@pytest.mark.parametrize("size", [30, 12, 2])
def test_r3gan_refuses_a_resolution_it_cannot_build(size):
    with pytest.raises(GankitError, match=r"arch 'r3gan' builds square images of 4 \* 2\^k"):
        create_model("r3gan", data_shape=(1, size, size), **TINY_R3)


def test_r3gan_refuses_non_square_images_and_points():
    with pytest.raises(GankitError, match="builds square images .* the data is 8x16"):
        create_model("r3gan", data_shape=(1, 8, 16), **TINY_R3)
    with pytest.raises(GankitError, match=r"arch 'r3gan' needs \(C, H, W\) images, data is \(2,\)"):
        create_model("r3gan", data_shape=(2,), **TINY_R3)


def test_r3gan_on_data_it_cannot_build_is_a_one_line_error(tmp_path):
    config = tmp_path / "r3gan-ring.yaml"
    config.write_text("name: r3gan-ring\nmodel: {name: r3gan}\ndata: {name: ring}\n")
    result = cli("train", config, "--runs-dir", tmp_path)
    one_line_error(result, "arch 'r3gan' needs (C, H, W) images", "(2,)")


def test_r3gan_refuses_norms_dropout_and_group_widths_that_do_not_divide():
    with pytest.raises(GankitError, match="no normalisation layers"):
        create_model("r3gan", data_shape=(1, 8, 8), d_norm="layer", **TINY_R3)
    with pytest.raises(GankitError, match="r3gan critic has no dropout"):
        create_model("r3gan", data_shape=(1, 8, 8), d_dropout=0.1, **TINY_R3)
    with pytest.raises(GankitError, match=r"2 \* g_channels \(16\) to be a multiple of"):
        create_model("r3gan", data_shape=(1, 8, 8), **{**TINY_R3, "group_width": 3})


def test_rpgan_generator_step_pairs_its_fakes_with_real_scores(monkeypatch):
    model = create_model("r3gan", data_shape=(1, 8, 8), **TINY_R3)
    model.setup_optimizers()
    seen = []
    rpgan_g = model.adversarial.g
    monkeypatch.setattr(
        model, "adversarial", type(model.adversarial)(
            model.adversarial.d, lambda f, r: seen.append(r.shape) or rpgan_g(f, r), False, True
        )
    )  # fmt: skip
    stats = model.train_step({"x": torch.randn(6, 1, 8, 8)}, step=0)
    assert seen == [(6, 1)]
    assert {"r1", "r2", "loss_d", "loss_g"} <= set(stats)


def test_r2_adds_half_gamma_times_the_penalty_at_the_fakes():
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    losses = {}
    for r2_gamma in (0.0, 2.0):
        torch.manual_seed(0)
        model = create_model(
            "r3gan", data_shape=(1, 8, 8), r1_gamma=0.0, r2_gamma=r2_gamma, **TINY_R3
        )
        model.setup_optimizers()
        losses[r2_gamma] = model.discriminator_step(real, fake)
    assert "r2" not in losses[0.0]
    r2 = losses[2.0]["r2"]
    assert losses[2.0]["loss_d"] == pytest.approx(losses[0.0]["loss_d"] + 2.0 / 2 * r2, rel=1e-5)


def test_gamma_and_augmentation_probability_follow_their_cosine_schedules():
    model = create_model(
        "r3gan", data_shape=(1, 8, 8), diffaugment="translation", aug_p=0.6,
        aug_schedule="cosine", gamma_end_scale=0.1, **TINY_R3,
    )  # fmt: skip
    model.setup_optimizers()
    model.max_steps = 10
    batch = {"x": torch.randn(4, 1, 8, 8)}
    model.train_step(batch, step=0)
    assert model.gamma_scale == pytest.approx(1.0) and model.aug_p_now == pytest.approx(0.0)
    model.train_step(batch, step=5)
    assert model.gamma_scale == pytest.approx(0.55) and model.aug_p_now == pytest.approx(0.3)
    model.train_step(batch, step=10)
    assert model.gamma_scale == pytest.approx(0.1) and model.aug_p_now == pytest.approx(0.6)


def test_augmentation_probability_zero_shows_d_the_images_unchanged():
    model = create_model("r3gan", data_shape=(1, 8, 8), diffaugment="cutout", aug_p=0.0, **TINY_R3)
    x = torch.randn(5, 1, 8, 8)
    assert torch.equal(model.judge(x), model.critic(x))
    model.aug_p_now = 1.0
    assert not torch.equal(model.judge(x), model.critic(x))


def test_label_jitter_moves_each_target_towards_the_other_class():
    model = create_model("dcgan", label_jitter=0.3, **SMALL_DCGAN)
    scores = torch.zeros(1000, 1)
    real, fake = model._d_targets(scores, True), model._d_targets(scores, False)
    assert real.min() > 0.7 and real.max() <= 1.0 and real.std() > 0.05
    assert fake.min() >= 0.0 and fake.max() < 0.3 and fake.std() > 0.05


def test_leaky_relu_in_g_is_a_switch():
    plain = create_model("dcgan", **SMALL_DCGAN)
    leaky = create_model("dcgan", g_leaky_slope=0.2, **SMALL_DCGAN)
    assert not any(isinstance(m, nn.LeakyReLU) for m in plain.G.modules())
    slopes = {m.negative_slope for m in leaky.G.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("model.r2_gamma=-1", ("r2_gamma", "finite number >= 0")),
        ("model.r1_gamma=-0.5", ("r1_gamma",)),
        ("model.label_jitter=0.6", ("label_jitter", "[0, 0.5)")),
        ("model.aug_p=0.5", ("aug_p", "they need diffaugment policies")),
        ("model.gamma_end_scale=-0.1", ("gamma_end_scale", "[0, 1]")),
    ],
)
def test_bad_r3gan_options_are_one_line_errors(setting, words, tmp_path):
    result = cli("train", "gan-ring", "--set", setting, "--runs-dir", tmp_path)
    one_line_error(result, *words)


def test_rpgan_is_refused_for_a_critic_without_one_score_per_sample(tmp_path):
    # InfoGAN's D shares its trunk with the Q head and its step has no real batch in
    # G's update: its loss names do not include rpgan, and the edge says which do.
    result = cli("train", "infogan-digits", "--set", "model.loss=rpgan", "--runs-dir", tmp_path)
    one_line_error(result, "infogan", "'loss' must be", "'non_saturating'", "rpgan")


def test_the_cifar10_preset_builds_the_papers_network():
    from gankit.config import resolve_config

    config = resolve_config("r3gan-cifar10", {})["model"]
    kwargs = {k: v for k, v in config.items() if k != "name"}
    model = create_model(config["name"], data_shape=(3, 32, 32), **kwargs)
    assert (n_params(model.G), n_params(model.D)) == (20_732_163, 20_684_544)
    assert model.adversarial.relativistic and model.r1_gamma == model.r2_gamma == 0.05


def test_the_toy_pictures_draw_g_s_push_under_a_relativistic_loss():
    from gankit.explore.toy import critic_field

    model = create_model("gan", data_shape=(2,), loss="rpgan", hidden_dim=8, n_layers=1)
    values, push, _ = critic_field(model, torch.randn(5, 2))
    assert values.shape == (5,) and push.shape == (5, 2) and torch.isfinite(push).all()


def test_fused_adam_is_a_switch_that_keeps_the_default_optimizer_as_it_was():
    plain = create_model("gan", data_shape=(2,), hidden_dim=8, n_layers=1)
    fused = create_model("gan", data_shape=(2,), hidden_dim=8, n_layers=1, fused_adam=True)
    plain.load_state_dict(fused.state_dict())
    plain.setup_optimizers(), fused.setup_optimizers()
    assert [g["fused"] for g in plain.optimizers["G"].param_groups] == [None]
    assert [g["fused"] for g in fused.optimizers["D"].param_groups] == [True]
    batch = {"x": torch.randn(16, 2)}
    for model in (plain, fused):
        torch.manual_seed(1)
        model.max_steps = 10
        model.train_step(batch, 0)
    # the same update up to rounding: the fused kernel orders its arithmetic differently
    for a, b in zip(plain.parameters(), fused.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
