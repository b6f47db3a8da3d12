"""cGAN, ACGAN, InfoGAN and VAE: their specific behaviour, and small learning tests.

The learning tests train for a few seconds on toy mixtures or 8x8 digits and check what
the family promises: the label picks the mode (cGAN/ACGAN), the categorical code finds
the modes without labels (InfoGAN), the held-out ELBO rises (VAE).
"""

from __future__ import annotations

import itertools

import pytest
import torch

import gankit
from gankit.data import load_dataset
from gankit.errors import GankitError
from gankit.registry import create_model

RING4 = {"name": "ring", "n_modes": 4, "std": 0.05, "n_train": 4096, "n_test": 512}
MLP = {"hidden_dim": 64, "n_layers": 2, "g_norm": "none", "d_norm": "none"}
#: InfoGAN with one 4-valued code on the 4-mode ring
INFOGAN_RING4 = {
    "name": "infogan",
    "n_categories": 4,
    "n_continuous": 0,
    "noise_dim": 2,
    "q_hidden": 32,
    "lr_g": 1e-3,
    "lr_d": 1e-3,
    **MLP,
}


def toy_run(model: dict, data: dict, steps: int, tmp_path) -> gankit.Run:
    config = {
        "name": f"learn-{model['name']}",
        "model": model,
        "data": data,
        "train": {
            "steps": steps,
            "batch_size": 128,
            "threads": 1,
            "progress": False,
            "ckpt_every": steps,
            "sample_every": steps,
            "log_every": steps,
        },
    }
    result = gankit.train(config, runs_dir=tmp_path)
    return gankit.load_run(result.run_dir)


@pytest.mark.slow  # over 5 s: the default suite keeps under its 10-minute budget
@pytest.mark.parametrize("name", ["cgan", "acgan"])
def test_conditional_samples_land_on_the_requested_mode(name, tmp_path):
    model = {"name": name, "latent_dim": 4, "lr_g": 1e-3, "lr_d": 1e-3, **MLP}
    data = {**RING4, "n_modes": 8}
    # 800 steps put every sample nearest its requested mode for both, but ACGAN's were
    # still spread (87 % within 4 std); by 1200 steps both place 100 % there.
    run = toy_run(model, data, 1200, tmp_path)
    bundle = load_dataset("ring", n_modes=8, std=0.05)
    latent = run.model.sample_latent(800, torch.Generator().manual_seed(0))
    points = run.model.render(latent)
    distances = torch.cdist(points, bundle.modes)
    to_requested = distances.gather(1, latent["y"][:, None]).squeeze(1)
    # On the requested mode: nearer to it than to any other, and within 4 std (0.2) of
    # its centre; neighbouring modes are 0.77 apart. An unconditional G that covered the
    # ring would score 1/8.
    on_requested = (distances.argmin(1) == latent["y"]) & (to_requested < 4 * bundle.mode_std)
    assert on_requested.float().mean() > 0.9


def test_infogan_finds_the_modes_of_a_4_mode_toy_without_labels(tmp_path):
    run = toy_run(INFOGAN_RING4, RING4, 1000, tmp_path)
    bundle = load_dataset("ring", n_modes=4, std=0.05)
    latent = run.model.sample_latent(800, torch.Generator().manual_seed(0))
    nearest = torch.cdist(run.model.render(latent), bundle.modes).argmin(1)
    counts = torch.zeros(4, 4)
    for code, mode in zip(latent["c_cat"].tolist(), nearest.tolist()):
        counts[code, mode] += 1
    # the best one-to-one map of code values to modes (4! = 24 candidates)
    best = max(sum(counts[i, p[i]] for i in range(4)) for p in itertools.permutations(range(4)))
    assert best / 800 > 0.9


@pytest.mark.slow  # over 5 s: the default suite keeps under its 10-minute budget
def test_supervised_infogan_ties_code_k_to_class_k(tmp_path):
    """With supervised_fraction=1, Q also names the class of every real point, so the
    categorical code value k draws class k itself, not some permutation of the classes
    (without labels, code 0 lands on whichever mode the game gives it)."""
    run = toy_run({**INFOGAN_RING4, "supervised_fraction": 1.0}, RING4, 1000, tmp_path)
    bundle = load_dataset("ring", n_modes=4, std=0.05)
    latent = run.model.sample_latent(800, torch.Generator().manual_seed(0))
    nearest = torch.cdist(run.model.render(latent), bundle.modes).argmin(1)
    # mode k of the ring is labelled k
    assert (nearest == latent["c_cat"]).float().mean() > 0.9
    # so `gankit sample RUN --labels 2` draws mode 2
    chosen = run.model.render(run.model.with_labels(latent, torch.tensor([2])))
    assert (torch.cdist(chosen, bundle.modes).argmin(1) == 2).float().mean() > 0.9


def test_infogan_takes_labels_only_when_its_code_learned_them():
    supervised = create_model(
        "infogan", data_shape=(2,), num_classes=4, n_categories=4, supervised_fraction=0.5
    )
    latent = supervised.sample_latent(6, torch.Generator().manual_seed(0))
    assert supervised.with_labels(latent, torch.tensor([3]))["c_cat"].tolist() == [3] * 6
    with pytest.raises(GankitError, match=r"label 4 is out of range; this model's labels are 0..3"):
        supervised.with_labels(latent, torch.tensor([4]))
    unsupervised = create_model("infogan", data_shape=(2,), num_classes=4, n_categories=4)
    with pytest.raises(GankitError, match="learned its categorical code without labels"):
        unsupervised.with_labels(latent, torch.tensor([1]))


def test_vae_raises_the_held_out_elbo(tmp_path):
    config = {
        "name": "learn-vae",
        "model": {"name": "vae", "latent_dim": 8, "channels": 16},
        "data": {"name": "digits", "resolution": 8},
        "train": {"steps": 300, "batch_size": 64, "threads": 1, "progress": False},
    }
    test_images = load_dataset("digits", resolution=8).test.tensors[0]
    untrained = create_model("vae", data_shape=(1, 8, 8), latent_dim=8, channels=16)
    before = untrained.data_metrics(test_images)
    run = gankit.load_run(gankit.train(config, runs_dir=tmp_path).run_dir)
    after = run.model.data_metrics(test_images)
    # measured: about -45 nats before and -28 after 300 steps
    assert after["elbo"] > before["elbo"] + 10
    assert after["recon_mse"] < 0.5 * before["recon_mse"]
    assert after["kl"] > 0


def test_vae_terms_match_their_closed_forms():
    from gankit.models.vae import VAE

    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    # ½ Σ (μ² + σ² − log σ² − 1) = ½ ((1 + 1 − 0 − 1) + (0 + e² − 2 − 1))
    expected = 0.5 * (1.0 + (torch.e**2 - 3))
    assert VAE.kl_divergence(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    model = create_model("vae", data_shape=(2,), obs_std=1.0, hidden_dim=8, n_layers=1)
    x, x_hat = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])
    # −log N(x; x̂, I) = ½ ||x − x̂||² + log 2π for D = 2
    nll = model.negative_log_likelihood(x_hat, x).item()
    assert nll == pytest.approx(2.5 + torch.log(torch.tensor(2 * torch.pi)).item(), rel=1e-6)


def test_reparameterization_passes_gradients_and_has_the_right_moments():
    from gankit.models.vae import VAE

    mu = torch.full((20000, 1), 2.0, requires_grad=True)
    logvar = torch.full((20000, 1), 2 * torch.log(torch.tensor(3.0)).item(), requires_grad=True)
    z = VAE.reparameterize(mu, logvar)
    assert z.mean().item() == pytest.approx(2.0, abs=0.1)
    assert z.std().item() == pytest.approx(3.0, abs=0.1)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None


def test_infogan_info_loss_and_codes():
    model = create_model(
        "infogan", data_shape=(2,), n_categories=3, n_continuous=2, noise_dim=2, hidden_dim=8
    )
    codes = model.sample_codes(6, torch.Generator().manual_seed(0), cycle=True)
    assert codes["c_cat"].tolist() == [0, 1, 2, 0, 1, 2]
    assert codes["c_con"].abs().max() <= 1
    assert model.latent_input(codes).shape == (6, 2 + 3 + 2)
    q = {"cat": torch.zeros(6, 3), "con": codes["c_con"].clone()}
    loss, stats = model.info_loss(q, codes["c_cat"], codes["c_con"])
    # uniform logits: CE = ln 3; exact means: MSE = 0; the MI bound ln K − CE = 0
    assert loss.item() == pytest.approx(torch.log(torch.tensor(3.0)).item(), rel=1e-6)
    assert stats["mi_cat"] == pytest.approx(0.0, abs=1e-6)


def test_infogan_supervision_schedule():
    model = create_model(
        "infogan", data_shape=(2,), num_classes=4, n_categories=4, supervised_fraction=0.25
    )
    supervised = [s for s in range(16) if model._supervised_step(s)]
    assert supervised == [3, 7, 11, 15]


def test_projection_discriminator_uses_the_label():
    model = create_model("cgan", data_shape=(1, 8, 8), num_classes=10, g_channels=8, d_channels=8)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        model.D.projection.weight.normal_()
        a, _ = model.discriminate(x, torch.tensor([0, 0, 0, 0]))
        b, _ = model.discriminate(x, torch.tensor([1, 1, 1, 1]))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("aux_on_fake", [True, False])
def test_acgan_class_head_learns_from_fakes_only_when_asked(aux_on_fake):
    import copy

    import torch.nn.functional as F

    torch.manual_seed(0)
    model = create_model(
        "acgan",
        data_shape=(1, 8, 8),
        num_classes=10,
        aux_on_fake=aux_on_fake,
        latent_dim=4,
        g_channels=8,
        d_channels=8,
    )
    model.setup_optimizers()
    x, y = torch.rand(8, 1, 8, 8) * 2 - 1, torch.arange(8)
    with torch.no_grad():  # the same D, the same real batch: the real half of L_C
        real_term = F.cross_entropy(copy.deepcopy(model).discriminate(x, y)[1], y).item()
    aux_d = model.train_step({"x": x, "y": y}, step=0)["aux_d"]
    if aux_on_fake:
        assert aux_d > real_term + 1.0  # plus the cross-entropy on 8 fakes of 10 classes
    else:
        assert aux_d == pytest.approx(real_term, rel=1e-5)


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_cgan_conditioning_shapes(conditioning):
    for shape in [(1, 8, 8), (2,)]:
        model = create_model(
            "cgan",
            data_shape=shape,
            num_classes=3,
            d_conditioning=conditioning,
            latent_dim=4,
            g_channels=8,
            d_channels=8,
            hidden_dim=8,
        )
        source, classes = model.discriminate(model.sample(6), torch.arange(6) % 3)
        assert source.shape == (6, 1) and classes is None


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("cgan", {"num_classes": None}, "needs labelled data with at least 2 classes"),
        ("cgan", {"num_classes": 10, "d_conditioning": "none"}, "needs aux_weight > 0"),
        ("infogan", {"supervised_fraction": 0.5, "num_classes": 5}, "must equal the data's"),
        ("infogan", {"n_categories": 1}, r"n_categories must be an integer in \[2, "),
        ("vae", {"recon": "bce", "data_shape": (2,)}, "recon 'bce' needs images"),
    ],
)
def test_bad_arguments_of_the_latent_families(name, kwargs, message):
    kwargs = {"data_shape": (1, 8, 8), **kwargs}
    with pytest.raises(GankitError, match=message):
        create_model(name, **kwargs)
