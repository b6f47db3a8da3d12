"""``gankit explore`` and ``gankit sample --labels``: every picture kind, and bad input.

Tiny runs of a few steps: these check what is drawn and what is refused, not quality
(the learning tests in test_latent_models.py do that).
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gankit
from conftest import tiny_config
from gankit.api import explore
from gankit.cli import app
from gankit.errors import GankitError
from gankit.explore.explore import ExploreOptions
from gankit.explore.latent import lerp, slerp, truncate

runner = CliRunner()


def invoke(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def tiny_run(tmp_path, name: str, model: str, data: str = "digits", **model_args) -> gankit.Run:
    config = tiny_config(model, data, steps=4, ckpt_every=2, sample_every=2)
    config["model"].update(model_args)
    result = gankit.train(config, runs_dir=tmp_path / "runs", name=name)
    return gankit.load_run(result.run_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    return {
        "dcgan": tiny_run(root, "dcgan", "dcgan"),
        "cgan": tiny_run(root, "cgan", "cgan"),
        "infogan": tiny_run(root, "infogan", "infogan", n_categories=3, n_continuous=2),
        "vae2": tiny_run(root, "vae2", "vae", latent_dim=2),
        "vae4": tiny_run(root, "vae4", "vae"),
        "gan-ring": tiny_run(root, "gan-ring", "gan", "ring"),
    }


def size(path) -> tuple[int, int]:
    with Image.open(path) as picture:
        return picture.size


def test_grid_and_truncation(runs, tmp_path):
    (plain,) = explore(runs["dcgan"], "grid", ExploreOptions(n=16), tmp_path)
    (truncated,) = explore(runs["dcgan"], "grid", ExploreOptions(n=16, truncation=0.5), tmp_path)
    assert plain.name == "grid_seed0.png" and truncated.name == "grid_seed0_trunc0.5.png"
    z = truncate(torch.randn(1000, 8), 0.5, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.5


def test_interpolation_strip_and_gif(runs, tmp_path):
    options = ExploreOptions(pairs=3, steps=5, method="lerp")
    strip, gif = explore(runs["dcgan"], "interp", options, tmp_path)
    with Image.open(gif) as animation:
        assert animation.n_frames == 5 + 3  # there and back
    width, height = size(strip)
    assert width > height  # 5 columns, 3 rows


def test_lerp_and_slerp_endpoints_and_norm():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    t = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(lerp(a, b, t)[[0, 2]], torch.stack([a, b]))
    path = slerp(a, b, t)
    assert torch.allclose(path[[0, 2]], torch.stack([a, b]), atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.ones(3), atol=1e-6)  # on the circle
    assert lerp(a, b, t)[1].norm() < 0.75  # the straight line cuts inside


def test_classes_one_row_per_class_and_labels_on_sample(runs, tmp_path):
    (path,) = explore(runs["cgan"], "classes", ExploreOptions(steps=4), tmp_path)
    width, height = size(path)
    assert height > 2 * width  # 10 rows of 4
    samples = runs["cgan"].sample(4, labels=[7])
    assert samples.shape == (4, 1, 8, 8)
    with pytest.raises(GankitError, match="label 12 is out of range; this model's labels are 0..9"):
        runs["cgan"].sample(2, labels=[12])
    with pytest.raises(GankitError, match="is unconditional and takes no labels"):
        runs["dcgan"].sample(2, labels=[1])


def test_traverse_one_picture_per_continuous_code(runs, tmp_path):
    paths = explore(runs["infogan"], "traverse", ExploreOptions(steps=5), tmp_path)
    assert [p.name for p in paths] == ["traverse_c0_seed0.png", "traverse_c1_seed0.png"]
    with pytest.raises(
        GankitError,
        match="traverse does not apply .* valid for it: classes, grid, "
        "interp; models that draw traverse: infogan$",
    ):
        explore(runs["cgan"], "traverse", ExploreOptions(), tmp_path)
    with pytest.raises(
        GankitError,
        match="classes does not apply .*valid for it: grid, interp, "
        "traverse; models that draw classes: acgan, cgan, r3gan_cond$",
    ):
        explore(runs["infogan"], "classes", ExploreOptions(), tmp_path)


def test_manifold_plane_and_reconstructions(runs, tmp_path):
    paths = explore(runs["vae2"], "manifold", ExploreOptions(n=32, steps=6), tmp_path / "a")
    assert [p.name for p in paths] == ["manifold_plane.png", "reconstructions_seed0.png"]
    (recon,) = explore(runs["vae4"], "manifold", ExploreOptions(n=32), tmp_path / "b")
    assert recon.name == "reconstructions_seed0.png"
    with pytest.raises(GankitError, match="needs latent_dim 2, this VAE has 4; use --view recon"):
        explore(runs["vae4"], "manifold", ExploreOptions(view="plane"), tmp_path)
    # the autoencoders of gankit.models.aae draw it too
    drawn_by = "aae, aae_labels, aae_mixture, aae_plain, vae"
    with pytest.raises(GankitError, match=f"manifold does not apply .* draw manifold: {drawn_by}$"):
        explore(runs["dcgan"], "manifold", ExploreOptions(), tmp_path)


def test_toy_field_and_animation_from_snapshots(runs, tmp_path):
    run = runs["gan-ring"]
    snapshots = sorted(run.paths.snapshots.glob("step_*.pt"))
    assert [p.name for p in snapshots] == ["step_00000002.pt", "step_00000004.pt"]
    frame = torch.load(snapshots[-1], weights_only=True)
    assert frame["values"].shape == (64, 64) and frame["push"].shape == (17, 17, 2)
    assert frame["values"].min() >= 0 and frame["values"].max() <= 1  # P(real) for BCE
    (still,) = explore(run, "toy", ExploreOptions(), tmp_path)
    (gif,) = explore(run, "toy", ExploreOptions(animate=True), tmp_path)
    with Image.open(gif) as animation:
        assert animation.n_frames == 2
    assert still.name == "toy_step4.png"
    with pytest.raises(GankitError, match="toy does not apply .* valid for it: grid, interp;"):
        explore(runs["dcgan"], "toy", ExploreOptions(), tmp_path)


def test_the_generator_field_points_uphill_on_d():
    """For the non-saturating loss, −∇_x L_G = ∇_x log σ(D(x)): G is pushed towards where
    D says "real". With D(x) = x₀ the push is along +x₀ everywhere."""
    from gankit.explore.toy import critic_field
    from gankit.registry import create_model

    model = create_model("gan", data_shape=(2,), hidden_dim=4, n_layers=1)
    model.critic_scores = lambda x: x[:, 0]
    values, push, is_probability = critic_field(model, torch.tensor([[0.0, 0.0], [2.0, 1.0]]))
    assert is_probability and values[0] == pytest.approx(0.5)
    # d/dx0 of log σ(x0) = 1 − σ(x0)
    assert push[:, 0].tolist() == pytest.approx([0.5, 1 - torch.sigmoid(torch.tensor(2.0)).item()])
    assert push[:, 1].abs().max() == 0


def test_cli_explore_writes_and_refuses_to_overwrite(runs, tmp_path):
    run = runs["dcgan"]
    args = ["explore", run.path, "--what", "grid", "--n", "4", "--out", tmp_path]
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 2 and "already exists; pass --overwrite" in again.output
    bad = invoke("explore", run.path, "--what", "dream", "--out", tmp_path)
    assert bad.exit_code == 2 and "unknown --what 'dream'; valid for run" in bad.output
    seeds = invoke("explore", run.path, "--what", "interp", "--seeds", "1", "--out", tmp_path)
    assert seeds.exit_code == 2 and "--seeds takes two seeds" in seeds.output


def test_cli_sample_labels(runs, tmp_path):
    out = tmp_path / "sevens.pt"
    result = invoke("sample", runs["cgan"].path, "--n", "3", "--labels", "7", "--out", out)
    assert result.exit_code == 0, result.output
    assert torch.load(out).shape == (3, 1, 8, 8)
    bad = invoke("sample", runs["cgan"].path, "--labels", "seven", "--out", tmp_path / "x.pt")
    assert bad.exit_code == 2 and "--labels must be comma-separated integers" in bad.output
