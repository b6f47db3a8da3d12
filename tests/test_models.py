"""Every registered model: shapes, a finite train step that changes every network,
a save/load round trip, and the same output under the same seed."""

from __future__ import annotations

import hashlib
import re

import pytest
import torch

import gankit.losses
from conftest import tiny_kwargs
from gankit.errors import GankitError
from gankit.registry import create_model, get_spec, list_models, register_model

IMAGE = (1, 8, 8)
#: Language models (task "sequence") read windows of token ids, here of 12 tokens.
TOKENS = (12,)


def build(name: str, shape=IMAGE):
    shape = TOKENS if get_spec(name).cls.task == "sequence" else shape
    model = create_model(name, data_shape=shape, num_classes=10, **tiny_kwargs(name))
    model.setup_optimizers()
    return model


def batch_for(model, shape=IMAGE, batch_size=8):
    n = batch_size * model.real_batches_per_step
    if model.task == "sequence":  # token ids and the tokens that follow them
        tokens = torch.randint(0, 10, (n, TOKENS[0] + 1))
        return {"x": tokens[:, :-1], "y": tokens[:, 1:]}
    # segmentation families label every pixel: (n, H, W) label maps
    label_shape = (n, *shape[1:]) if model.task == "segment" else (n,)
    batch = {"x": torch.rand(n, *shape) * 2 - 1, "y": torch.randint(0, 10, label_shape)}
    if model.task != "sample":  # a second domain: shifted, and labelled only for evaluation
        batch.update(x_b=torch.rand(n, *shape) * 2 - 0.5, y_b=torch.randint(0, 10, label_shape))
    return batch


#: Families that draw samples from noise; the others classify (DANN), segment (AdaptSeg)
#: or translate images (CycleGAN), all trained adversarially.
GENERATIVE = [name for name in list_models() if get_spec(name).cls.task == "sample"]


def outputs(model, latent_seed: int = 1):
    """What the model computes: samples, translations, or class predictions."""
    if model.task == "translate":
        return model.translate(torch.linspace(-1, 1, 4 * 64).reshape(4, *IMAGE))
    if model.task == "change":
        return model.change(torch.linspace(-1, 1, 4 * 64).reshape(4, *IMAGE), 0.5)
    if model.task == "sample":
        return model.render(model.sample_latent(4, torch.Generator().manual_seed(latent_seed)))
    if model.task == "sequence":
        prompt = torch.arange(8).reshape(2, 4)
        generator = torch.Generator().manual_seed(latent_seed)
        return model.sample_tokens(prompt, 6, generator=generator).tokens
    return model.predict(torch.linspace(-1, 1, 4 * 64).reshape(4, *IMAGE))


@pytest.mark.parametrize("name", GENERATIVE)
def test_sample_shapes(name):
    model = build(name)
    assert model.sample(5).shape == (5, *IMAGE)
    latent = model.sample_latent(3)
    assert model.generate(latent).shape == (3, *IMAGE)


@pytest.mark.parametrize("name", list_models())
def test_train_step_is_finite_and_changes_every_network(name):
    model = build(name)
    before = {
        opt_name: [p.detach().clone() for g in opt.param_groups for p in g["params"]]
        for opt_name, opt in model.optimizers.items()
    }
    # two steps: a family in phases (pixel-level adaptation, built here with one
    # translator step) trains each part in its own
    for step in (0, 1):
        stats = model.train_step(batch_for(model), step=step)
        assert stats and all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    for opt_name, opt in model.optimizers.items():
        after = [p for g in opt.param_groups for p in g["params"]]
        changed = any(not torch.equal(a, b) for a, b in zip(after, before[opt_name]))
        assert changed, f"{name}: optimizer '{opt_name}' did not change its parameters"


@pytest.mark.parametrize("name", list_models())
def test_save_load_round_trip(name, tmp_path):
    model = build(name)
    model.train_step(batch_for(model), step=0)
    torch.save({"hparams": model.hparams, "state": model.state_dict()}, tmp_path / "m.pt")
    saved = torch.load(tmp_path / "m.pt", weights_only=False)
    clone = create_model(name, **saved["hparams"])
    clone.load_state_dict(saved["state"])
    assert torch.equal(outputs(model), outputs(clone))


@pytest.mark.parametrize("name", list_models())
def test_same_seed_same_weights_and_samples(name):
    results = []
    for _ in range(2):
        torch.manual_seed(123)
        model = build(name)
        model.train_step(batch_for(model), step=0)
        results.append((model.state_dict(), outputs(model, latent_seed=0)))
    (state_a, sample_a), (state_b, sample_b) = results
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert torch.equal(sample_a, sample_b)


@pytest.mark.parametrize(
    ("name", "kwargs", "r1_steps"),
    [
        ("dcgan", {}, [0, 3, 6]),
        ("cgan", {}, [0, 3, 6]),
        # two D updates per step, counted over the run: R1 on updates 0, 3, 6, 9 and 12
        ("dcgan", {"n_critic": 2}, [0, 1, 3, 4, 6]),
    ],
)
def test_lazy_r1_runs_on_the_same_d_updates_in_every_family(name, kwargs, r1_steps, monkeypatch):
    """One rule for GAN and cGAN: R1 on the D updates (counted from 0 over the run) that
    are multiples of ``r1_interval``."""
    calls = []
    penalty = gankit.losses.r1_penalty
    monkeypatch.setattr(gankit.losses, "r1_penalty", lambda *a: calls.append(a) or penalty(*a))
    r1 = {"r1_gamma": 1.0, "r1_interval": 3, "d_norm": "none", **kwargs}
    torch.manual_seed(0)
    model = create_model(name, data_shape=IMAGE, num_classes=10, **tiny_kwargs(name), **r1)
    model.setup_optimizers()
    applied = []
    for step in range(7):
        before = len(calls)
        model.train_step(batch_for(model), step=step)
        applied += [step] * (len(calls) - before)
    assert applied == r1_steps


def weights_fingerprint(model) -> tuple[str, float]:
    """(a hash of the state's names and shapes, a number read from every tensor's first
    16 values weighted by position): a network built in another order, or with another
    layout, changes one of them; float rounding across CPUs does not."""
    state = model.state_dict()
    layout = repr([(key, tuple(value.shape)) for key, value in state.items()])
    weighted = 0.0
    for i, value in enumerate(state.values()):
        head = value.double().flatten()[:16]
        weighted += (i + 1) * float(head @ torch.arange(1.0, len(head) + 1, dtype=torch.float64))
    return hashlib.sha256(layout.encode()).hexdigest()[:16], weighted


#: GAN's networks under seed 0, recorded from the code before GAN built them through
#: nn.generator_net and nn.critic_net: the same layout (checkpoints load) and weights.
GAN_WEIGHTS = [
    ("gan", (2,), {}, "6ac7215193480c2f", -204.44985530897975),
    (
        "gan",
        (1, 8, 8),
        {"pack": 2, "tanh_output": True, "d_dropout": 0.1},
        "9eee4d59646ee700",
        -75.32724588050041,
    ),
    (
        "gan",
        (2,),
        {"g_norm": "batch", "d_norm": "layer", "leaky_slope": 0.0, "n_layers": 2},
        "1e308a1bddb5e592",
        10261.838809937239,
    ),
    ("dcgan", (1, 8, 8), {}, "461816332202d23e", 1207.2402444579056),
    (
        "dcgan",
        (3, 16, 16),
        {"pack": 2, "strided": False, "kernel_size": 3, "d_dropout": 0.2},
        "0082b148aa0d23b4",
        10510.379032547222,
    ),
    (
        "dcgan",
        (1, 28, 28),
        {"tanh_output": False, "g_norm": "instance", "d_norm": "layer"},
        "5e210ef4776557c9",
        3416.938850337712,
    ),
    ("hinge", (1, 8, 8), {}, "579bdeb383c30369", 1265.2074138143216),
    (
        "sngan",
        (3, 32, 32),
        {"g_channels": 8, "d_channels": 8, "latent_dim": 8},
        "ad2782fd14edf02b",
        15440.784512478393,
    ),
    (
        "sngan",
        (3, 16, 16),
        {"g_channels": 8, "d_channels": 8, "pack": 2, "spectral_norm": False},
        "8d8c928715986a90",
        7729.817537529918,
    ),
]


@pytest.mark.parametrize(("name", "shape", "kwargs", "layout", "weighted"), GAN_WEIGHTS)
def test_gan_builds_the_weights_it_always_built(name, shape, kwargs, layout, weighted):
    torch.manual_seed(0)
    model = create_model(name, data_shape=shape, **kwargs)
    assert weights_fingerprint(model) == (layout, pytest.approx(weighted, rel=1e-6))


#: Families built for images only: no point-data variant to test.
IMAGES_ONLY = {
    "dcgan", "sngan", "r3gan", "adaptseg", "adaptseg_single", "pixel_da", "pixel_dann", "pixel_gan",
    "r3gan_cond",
}  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in list_models()
        if n not in IMAGES_ONLY and get_spec(n).cls.task not in ("translate", "sequence", "change")
    ],
)
def test_points_models_work_on_2d_data(name):
    model = build(name, shape=(2,))
    model.train_step(batch_for(model, shape=(2,)), step=0)
    if model.task == "sample":
        assert model.sample(7).shape == (7, 2)
    else:
        assert model.predict(torch.randn(7, 2)).shape == (7,)


@pytest.mark.parametrize("resolution", [8, 16, 28, 32, 64])
def test_dcgan_sizes_by_resolution(resolution):
    model = create_model(
        "dcgan", data_shape=(3, resolution, resolution), g_channels=4, d_channels=4, latent_dim=4
    )
    images = model.sample(2)
    assert images.shape == (2, 3, resolution, resolution)
    assert images.abs().max() <= 1.0  # tanh output
    assert model.D(images).shape == (2, 1)


@pytest.mark.parametrize("kernel_size", [3, 4, 5])
@pytest.mark.parametrize("strided", [True, False])
def test_dcgan_kernel_and_pooling_options_keep_shapes(kernel_size, strided):
    model = create_model(
        "dcgan",
        data_shape=(1, 16, 16),
        g_channels=4,
        d_channels=4,
        latent_dim=4,
        kernel_size=kernel_size,
        strided=strided,
    )
    assert model.sample(2).shape == (2, 1, 16, 16)
    has_pool = any(isinstance(m, torch.nn.AvgPool2d) for m in model.D.modules())
    assert has_pool == (not strided)


def test_tricks_reach_the_networks():
    model = create_model(
        "dcgan",
        data_shape=IMAGE,
        d_dropout=0.3,
        leaky_slope=0.1,
        latent_dist="uniform",
        **tiny_kwargs("dcgan"),
    )
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in model.D.modules())
    assert any(
        isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.1 for m in model.D.modules()
    )
    z = model.sample_z(1000)
    assert z.min() >= -1 and z.max() <= 1 and z.std() < 0.7  # U(-1, 1) has std 0.577


def test_spectral_norm_bounds_every_critic_layer():
    model = build("hinge")
    model.train_step(batch_for(model), step=0)
    for module in model.D.modules():
        if hasattr(module, "parametrizations"):
            weight = module.weight.flatten(1)
            assert torch.linalg.matrix_norm(weight, ord=2) < 1.2


def test_weight_clipping_clamps_the_critic():
    model = build("wgan")
    for p in model.D.parameters():
        p.data.fill_(1.0)
    model.train_step(batch_for(model), step=0)
    assert max(p.abs().max().item() for p in model.D.parameters()) <= 0.01 + 1e-9


def test_label_noise_flips_targets():
    model = build("dcgan")
    model.label_noise = 0.25
    targets = model._d_targets(torch.zeros(20000), real=True)
    assert targets.mean().item() == pytest.approx(0.75, abs=0.02)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("wgan_gp", {"d_norm": "batch"}, "gp_weight > 0 with d_norm 'batch'"),
        ("hinge", {"label_smoothing": 0.1}, "need a loss with targets"),
        ("dcgan", {"n_critic": 0}, r"n_critic must be an integer in \[1, 100\], got 0"),
        ("dcgan", {"nope": 1}, "unknown key 'nope'"),
        ("dcgan", {"lr_g": "fast"}, "'lr_g' must be float"),
        ("dcgan", {"loss": "kl"}, "'loss' must be 'minimax'"),
    ],
)
def test_bad_model_arguments(name, kwargs, message):
    with pytest.raises(GankitError, match=message):
        create_model(name, data_shape=IMAGE, **kwargs)


@pytest.mark.parametrize("name", ["dcgan", "cgan", "infogan"])
@pytest.mark.parametrize("slope", [-0.1, 1.0])
def test_a_leaky_slope_outside_0_1_is_one_line_in_every_family_that_takes_one(name, slope):
    with pytest.raises(GankitError, match=r"model: leaky_slope must be in \[0, 1\), got"):
        create_model(name, data_shape=IMAGE, num_classes=10, leaky_slope=slope)


def test_conv_on_points_is_refused():
    with pytest.raises(GankitError, match="needs \\(C, H, W\\) images"):
        create_model("dcgan", data_shape=(2,))


def test_registering_a_name_twice_is_an_error():
    from gankit.models.gan import GAN

    with pytest.raises(ValueError, match="already registered"):
        register_model("dcgan", GAN, "again")


def test_unknown_model_lists_the_valid_ones():
    valid = ", ".join(sorted(list_models()))
    with pytest.raises(GankitError, match=re.escape(f"unknown model 'stylegan9'; valid: {valid}")):
        create_model("stylegan9", data_shape=IMAGE)


@pytest.mark.parametrize(("name", "shape"), [("gan", (2,)), ("dcgan", IMAGE), ("wgan_gp", IMAGE)])
def test_pacgan_packing_scores_groups(name, shape):
    model = create_model(name, data_shape=shape, pack=4, **tiny_kwargs(name))
    model.setup_optimizers()
    assert model.critic(torch.randn(8, *shape)).shape == (2, 1)
    stats = model.train_step(batch_for(model, shape=shape, batch_size=8), step=0)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    with pytest.raises(GankitError, match="multiple of model.pack 4"):
        model.check_batch_size(10)


def test_minibatch_std_reads_the_spread_of_each_group():
    from gankit.nn import MinibatchStd

    x = torch.zeros(6, 3, 2, 2)
    x[3:] = 2.0  # groups of 2 are samples (i, i + 3): one 0 and one 2, spread 1
    out = MinibatchStd(group_size=4)(x)  # 4 does not divide 6: groups of gcd(6, 4) = 2
    assert out.shape == (6, 4, 2, 2) and torch.equal(out[:, :3], x)
    assert torch.allclose(out[:, 3], torch.ones(6, 2, 2), atol=1e-3)
    same = MinibatchStd(group_size=3)(torch.ones(6, 3, 2, 2))[:, 3]
    assert same.abs().max() < 1e-3  # identical samples: no spread
    alone = MinibatchStd()(torch.randn(1, 3, 2, 2))[:, 3]  # a lone sample's map is 0
    assert alone.abs().max() < 1e-3


def test_infogan_with_a_minibatch_std_map_trains():
    plain = create_model("infogan", data_shape=IMAGE, **tiny_kwargs("infogan"))
    model = create_model("infogan", data_shape=IMAGE, minibatch_std=4, **tiny_kwargs("infogan"))
    model.setup_optimizers()
    # one more map at D's last size (4 x 4 at 8 px)
    assert model.D.trunk.out_features == plain.D.trunk.out_features + 16
    stats = model.train_step(batch_for(model, shape=IMAGE, batch_size=8), step=0)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    with pytest.raises(GankitError, match="minibatch_std needs images"):
        create_model("infogan", data_shape=(2,), minibatch_std=4)


def test_linear_learning_rate_decay():
    from gankit.models.base import linear_decay

    assert [linear_decay(p, 0.5) for p in (0, 0.5, 0.75, 1.0)] == [1.0, 1.0, 0.5, 0.0]
    model = build("gan", shape=(2,))
    model.lr_schedule, model.max_steps = "linear", 10
    model.train_step(batch_for(model, shape=(2,)), step=9)
    assert model.optimizers["G"].param_groups[0]["lr"] == pytest.approx(model.lr_g * 0.2)
    # Under a time limit the clock counts when it is further along than the steps.
    model.time_used = 0.8
    model.train_step(batch_for(model, shape=(2,)), step=2)
    assert model.optimizers["D"].param_groups[0]["lr"] == pytest.approx(model.lr_d * 0.4)
    model.time_used = 0.1
    model.train_step(batch_for(model, shape=(2,)), step=8)
    assert model.optimizers["D"].param_groups[0]["lr"] == pytest.approx(model.lr_d * 0.4)
