"""SNGAN's ResNets, R1 and DiffAugment in the GAN family, at tiny sizes on CPU: shapes
from 32 to 128 px, one finite step, where the options act, and an exact resume."""

from __future__ import annotations

import pytest
import torch

import gankit
from conftest import tiny_config
from gankit.config import resolve_config
from gankit.errors import GankitError
from gankit.models.gan import GAN
from gankit.nn import ResBlock
from gankit.registry import create_model
from test_trainer import assert_same_state, final_state

TINY = {"latent_dim": 8, "g_channels": 8, "d_channels": 8}
ALL = "color,translation,cutout"


def sngan(size: int = 32, channels: int = 3, **kwargs) -> GAN:
    model = create_model("sngan", data_shape=(channels, size, size), **{**TINY, **kwargs})
    model.setup_optimizers()
    return model


def blocks(net: torch.nn.Module, resample: str) -> int:
    """How many residual blocks of ``net`` resample (``up``/``down``) or keep the size."""
    found = [m for m in net.modules() if isinstance(m, ResBlock)]
    has = {
        "up": lambda b: any(isinstance(m, torch.nn.Upsample) for m in b.branch),
        "down": lambda b: any(isinstance(m, torch.nn.AvgPool2d) for m in b.branch),
    }
    if resample == "none":
        return sum(not has["up"](b) and not has["down"](b) for b in found)
    return sum(has[resample](b) for b in found)


@pytest.mark.parametrize(("size", "n_up", "n_down"), [(32, 3, 2), (64, 4, 3), (128, 5, 4)])
def test_resnet_shapes_and_depth_by_resolution(size, n_up, n_down):
    model = sngan(size)
    samples = model.sample(2)
    assert samples.shape == (2, 3, size, size)
    assert samples.abs().max() <= 1.0  # tanh output, like the data's [-1, 1]
    assert model.critic(samples).shape == (2, 1)
    # G: 4x4 up to the resolution; D: down to 8x8, then two blocks that keep 8x8.
    assert (blocks(model.G, "up"), blocks(model.D, "down"), blocks(model.D, "none")) == (
        n_up,
        n_down,
        2,
    )


def test_resnet_is_sngans_cifar10_network_at_full_width():
    # Miyato et al. 2018, appendix B: 3 up-blocks of 256 in G, blocks of 128 in D, a
    # spectral norm on every D layer (4.3 million and 1.1 million parameters).
    model = create_model("sngan", data_shape=(3, 32, 32))
    assert sum(p.numel() for p in model.G.parameters()) == 4_276_739
    assert sum(p.numel() for p in model.D.parameters()) == 1_053_825
    weighted = [m for m in model.D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert weighted and all(hasattr(m, "parametrizations") for m in weighted)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.D.modules())


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("sngan", {}),
        ("sngan", {"diffaugment": ALL, "r1_gamma": 1.0}),
        ("dcgan", {"diffaugment": ALL, "r1_gamma": 1.0, "d_norm": "none"}),
        ("wgan_gp", {"diffaugment": "translation", "arch": "resnet"}),
    ],
)
def test_one_finite_step_changes_both_networks(name, kwargs):
    torch.manual_seed(0)
    model = create_model(name, data_shape=(3, 16, 16), **TINY, **kwargs)
    model.setup_optimizers()
    before = {net: [p.detach().clone() for p in net.parameters()] for net in (model.G, model.D)}
    batch = {"x": torch.rand(2 * model.real_batches_per_step, 3, 16, 16) * 2 - 1}
    stats = model.train_step(batch, step=0)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert ("r1" in stats) == ("r1_gamma" in kwargs)
    for net, start in before.items():
        assert any(not torch.equal(p, b) for p, b in zip(net.parameters(), start))


def inputs_to_d(model: GAN, call) -> list[torch.Tensor]:
    """The images D is given while ``call()`` runs."""
    seen: list[torch.Tensor] = []
    handle = model.D.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach()))
    try:
        call()
    finally:
        handle.remove()
    return seen


def test_diffaugment_reaches_d_in_both_losses_and_nowhere_else():
    real, fake = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    plain, augmented = sngan(16), sngan(16, diffaugment="translation,cutout")
    for model, changed in ((plain, False), (augmented, True)):
        d_inputs = inputs_to_d(model, lambda m=model: m.discriminator_step(real, fake))
        generated = model.G(model.sample_z(4))
        g_inputs = inputs_to_d(model, lambda m=model, g=generated: m.generator_step(g))
        assert len(d_inputs) == 2 and len(g_inputs) == 1
        for seen, given in zip(d_inputs + g_inputs, (real, fake, generated.detach())):
            assert torch.equal(seen, given) != changed
    # Pictures and scores judge the images themselves: no augmentation outside training.
    seen = inputs_to_d(augmented, lambda: augmented.critic_scores(real))
    assert torch.equal(seen[0], real)


def test_diffaugment_lets_g_learn_through_the_augmentation():
    model = sngan(16, diffaugment=ALL)
    z = model.sample_z(4)
    fake = model.G(z)
    loss = model.adversarial.g(model.judge(fake))
    (grad,) = torch.autograd.grad(loss, fake)
    assert grad.abs().sum() > 0


def test_r1_adds_half_gamma_times_the_penalty_and_lazy_r1_skips_steps():
    real, fake = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    results = {}
    for gamma, interval, d_step in [(0.0, 1, 0), (4.0, 1, 0), (4.0, 3, 3), (4.0, 3, 4)]:
        torch.manual_seed(0)
        model = sngan(16, r1_gamma=gamma, r1_interval=interval)
        results[gamma, interval, d_step] = model.discriminator_step(real, fake, d_step=d_step)
    base = results[0.0, 1, 0]["loss_d"]
    every = results[4.0, 1, 0]
    assert every["r1"] > 0
    assert every["loss_d"] - base == pytest.approx(4.0 / 2 * every["r1"], rel=1e-4)
    lazy = results[4.0, 3, 3]  # d_step 3 is a multiple of 3: R1 with weight 3 * γ/2
    assert lazy["loss_d"] - base == pytest.approx(3 * 4.0 / 2 * lazy["r1"], rel=1e-4)
    skipped = results[4.0, 3, 4]  # not a multiple of 3: no R1, and nothing to log yet
    assert "r1" not in skipped and skipped["loss_d"] == base


def test_lazy_r1_logs_its_latest_value_on_every_step():
    real, fake = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    model = sngan(16, r1_gamma=4.0, r1_interval=3)
    logged = [model.discriminator_step(real, fake, d_step=i)["r1"] for i in range(4)]
    assert logged[0] == logged[1] == logged[2] != logged[3]  # R1 at d_steps 0 and 3


def test_r1_under_bfloat16_autocast_is_finite_and_float32():
    model = sngan(16, r1_gamma=10.0, diffaugment=ALL)
    real, fake = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stats = model.discriminator_step(real, fake)
    assert stats["r1"] > 0 and all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert all(p.dtype == torch.float32 for p in model.D.parameters())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"diffaugment": "color,flip"}, "diffaugment: unknown DiffAugment policy 'flip'"),
        ({"r1_gamma": -1.0}, "r1_gamma"),
        ({"r1_interval": 0}, r"r1_interval must be an integer in \[1, 64\]"),
        ({"g_channels": 513}, r"g_channels must be an integer in \[1, 512\]"),
        ({"d_dropout": 0.3}, "the resnet critic has no dropout"),
    ],
)
def test_bad_options_are_refused_in_one_line(kwargs, message):
    with pytest.raises(GankitError, match=message) as error:
        sngan(16, **kwargs)
    assert "\n" not in str(error.value)


def test_options_that_need_images_or_per_sample_critics_are_refused():
    with pytest.raises(GankitError, match="arch 'resnet' needs \\(C, H, W\\) images"):
        create_model("sngan", data_shape=(2,))
    with pytest.raises(GankitError, match="diffaugment needs \\(C, H, W\\) images"):
        create_model("gan", data_shape=(2,), diffaugment="color")
    with pytest.raises(GankitError, match="r1_gamma > 0 with d_norm 'batch'"):
        create_model("dcgan", data_shape=(1, 8, 8), r1_gamma=1.0)


def test_cifar10_preset_is_the_sngan_recipe():
    config = resolve_config("sngan-cifar10")
    model, train = config["model"], config["train"]
    assert config["data"]["name"] == "cifar10"
    assert (model["name"], model["arch"], model["loss"], model["spectral_norm"]) == (
        "sngan",
        "resnet",
        "hinge",
        True,
    )
    assert (model["g_channels"], model["d_channels"], model["latent_dim"]) == (256, 128, 128)
    assert (model["n_critic"], model["lr_g"], model["lr_d"]) == (5, 2e-4, 2e-4)
    assert tuple(model["betas"]) == (0.0, 0.9)
    assert (train["batch_size"], train["steps"]) == (64, 50_000)


@pytest.mark.slow  # three short runs: 40-60 s on 2 shared CPU cores
def test_resume_is_bit_identical_with_diffaugment_and_r1(tmp_path):
    """Resume restores the random state that DiffAugment draws from and R1's lazy clock."""
    # A constant rate: a linear decay is laid out over the steps the run asks for, and
    # the first half asks for 2.
    model = {"diffaugment": ALL, "r1_gamma": 1.0, "r1_interval": 2, "n_critic": 2}
    model["lr_schedule"] = "constant"

    def config(steps: int) -> dict:
        cfg = tiny_config("sngan", "digits", steps=steps, ckpt_every=2, sample_every=4)
        cfg["model"].update(model)
        return cfg

    gankit.train(config(4), name="straight", runs_dir=tmp_path)
    gankit.train(config(2), name="resumed", runs_dir=tmp_path)
    torch.manual_seed(999)  # resume must restore the RNG itself
    result = gankit.train(None, ["train.steps=4"], name="resumed", runs_dir=tmp_path, resume=True)
    assert result.step == 4
    _, straight = final_state(tmp_path / "straight")
    _, resumed = final_state(tmp_path / "resumed")
    assert_same_state(straight, resumed)


@pytest.mark.parametrize("name", ["cgan", "acgan"])
def test_conditional_gans_take_r1_and_diffaugment(name):
    torch.manual_seed(0)
    options = {"r1_gamma": 1.0, "diffaugment": "translation,cutout", "d_norm": "none"}
    model = create_model(name, data_shape=(3, 16, 16), num_classes=3, **TINY, **options)
    model.setup_optimizers()
    batch = {"x": torch.rand(4, 3, 16, 16) * 2 - 1, "y": torch.tensor([0, 1, 2, 0])}
    seen = inputs_to_d(model, lambda: model.train_step(batch, step=0))
    stats = model.train_step(batch, step=1)
    assert stats["r1"] > 0 and all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    # D judged augmented reals, augmented fakes, the R1 pass, then G's augmented fakes.
    assert len(seen) == 4 and not torch.equal(seen[0], batch["x"])
    with pytest.raises(GankitError, match="r1_gamma > 0 with d_norm 'batch'"):
        create_model(name, data_shape=(3, 16, 16), num_classes=3, r1_gamma=1.0)
