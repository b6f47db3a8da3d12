"""The semi-supervised GAN: the labelled subset, unlabelled items without labels, the
(K+1)-way loss, eval and export as a classifier, bad input, and a learning test."""

from __future__ import annotations

import pytest
import torch

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit.api import evaluate_run
from gankit.conventions import NO_LABEL
from gankit.data import load_dataset
from gankit.errors import GankitError
from gankit.models.ssgan import labelled_subset
from gankit.nn import torch_threads
from gankit.registry import create_model

TINY = {"channels": 4, "latent_dim": 8}


def build(name: str = "ssgan", **kwargs):
    model = create_model(name, data_shape=(1, 8, 8), num_classes=10, **{**TINY, **kwargs})
    model.setup_optimizers()
    return model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", resolution=8)


def test_labelled_subset_takes_n_of_each_class_and_follows_the_seed(digits):
    labels = digits.train.tensors[1]
    chosen = labelled_subset(labels, 10, 3, seed=0)
    assert torch.equal(torch.bincount(labels[chosen], minlength=10), torch.full((10,), 3))
    assert torch.equal(chosen, labelled_subset(labels, 10, 3, seed=0))
    assert not torch.equal(chosen, labelled_subset(labels, 10, 3, seed=1))
    # more labels extend the subset of the same seed: 3 per class are among 5 per class
    assert set(chosen.tolist()) <= set(labelled_subset(labels, 10, 5, seed=0).tolist())


def test_unlabelled_items_carry_no_label_into_training(digits):
    model = build(labels_per_class=2, label_seed=4)
    streams = model.training_data(digits)
    x_l, y_l = streams[""].tensors
    x_u, y_u = streams["_b"].tensors
    assert len(x_l) == 20 and (y_l >= 0).all()
    assert len(x_u) == len(digits.train) and (y_u == NO_LABEL).all()
    # the labelled items are training items, with their true labels
    x_train, y_train = digits.train.tensors
    index = labelled_subset(y_train, 10, 2, seed=4)
    assert torch.equal(x_l, x_train[index]) and torch.equal(y_l, y_train[index])


def test_train_step_never_reads_the_unlabelled_items_labels():
    batch = {
        "x": torch.rand(8, 1, 8, 8) * 2 - 1,
        "y": torch.arange(8) % 10,
        "x_b": torch.rand(8, 1, 8, 8) * 2 - 1,
    }
    states = []
    for y_b in (torch.full((8,), NO_LABEL), torch.arange(8)):
        torch.manual_seed(0)
        model = build()
        model.train_step({**batch, "y_b": y_b}, 0)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_unsupervised_loss_is_the_k_plus_one_class_gan_loss():
    """D(x) = Z / (Z + 1) with Z = Σ exp(l_k): the loss computed by hand on one batch."""
    torch.manual_seed(0)
    model = build(dropout=0.0)  # no random masks: the same logits twice
    x, x_b = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    torch.manual_seed(1)
    stats = model.train_step({"x": x, "y": torch.arange(4), "x_b": x_b}, 0)
    torch.manual_seed(0)
    fresh = build(dropout=0.0)
    torch.manual_seed(1)
    fake = fresh.G(fresh.sample_latent(4)["z"])
    z_real = fresh.class_logits(x_b).exp().sum(dim=1)
    z_fake = fresh.class_logits(fake).exp().sum(dim=1)
    d_real, d_fake = z_real / (z_real + 1), z_fake / (z_fake + 1)
    expected = -(d_real.log().mean()) - (1 - d_fake).log().mean()
    assert stats["loss_unsupervised"] == pytest.approx(expected.item(), rel=1e-4)


def test_the_labelled_only_baseline_has_no_generator(digits):
    model = build("ssgan_labelled_only")
    assert model.G is None and set(model.optimizers) == {"D"}
    assert set(model.training_data(digits)) == {""}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels_per_class": 0}, "labels_per_class must be at least 1"),
        ({"label_seed": -1}, "label_seed"),
        ({"dropout": 1.0}, "dropout"),
        ({"input_noise": -0.1}, "input_noise"),
        ({"input_noise": float("nan")}, "input_noise"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(GankitError, match=message):
        build(**kwargs)


def test_input_noise_reaches_d_in_training_only():
    torch.manual_seed(0)
    model = build(input_noise=0.3, dropout=0.0)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    model.train()
    assert not torch.equal(model.class_logits(x), model.class_logits(x))  # a new draw each time
    model.eval()
    assert torch.equal(model.class_logits(x), model.class_logits(x))
    assert torch.equal(model.predictor()(x), model.class_logits(x))  # exported: no noise


def test_more_labels_than_a_class_holds_is_refused(digits):
    with pytest.raises(GankitError, match="class 0 has only"):
        build(labels_per_class=1000).training_data(digits)


def ssgan_config(steps: int = 4, **model) -> dict:
    config = tiny_config("ssgan", "digits", steps=steps)
    config["model"] = {"name": "ssgan", **TINY, **model}
    config["train"].update(batch_size=8, threads=1)
    return config


def test_cli_refuses_fewer_labels_than_classes(tmp_path):
    import yaml

    path = tmp_path / "ssgan.yaml"
    path.write_text(yaml.safe_dump(ssgan_config(labels_per_class=0)))
    result = cli("train", path, "--runs-dir", tmp_path / "runs", "--no-progress")
    one_line_error(result, "labels_per_class must be at least 1", "10 classes")


def test_a_run_is_evaluated_and_exported_as_a_classifier(tmp_path):
    run = gankit.train(ssgan_config(), runs_dir=tmp_path).run_dir
    report = evaluate_run(run)
    assert 0.0 <= report.scores["source_accuracy"] <= 1.0
    exported = cli("export", run, "--out", tmp_path / "classifier.safetensors")
    assert exported.exit_code == 0, exported.output


def test_ssgan_learns_digits_from_ten_labels_per_class(digits):
    """8 px digits, 10 labels of each class. Untrained, test accuracy is 0.08 (chance).
    After 200 steps of batch 32 (about 5 s of one busy CPU thread) we measured 0.85
    (seed 0). The threshold leaves room for other machines, and fails on the untrained
    model."""
    torch.manual_seed(0)
    model = create_model("ssgan", data_shape=(1, 8, 8), num_classes=10, labels_per_class=10)
    model.setup_optimizers()
    x_test, y_test = digits.test.tensors
    untrained = (model.predict(x_test) == y_test).float().mean().item()
    streams = model.training_data(digits)
    generator = torch.Generator().manual_seed(0)
    with torch_threads(1):  # small networks: on a shared CPU more threads only wait
        for step in range(200):
            batch = {}
            for suffix, split in streams.items():
                index = torch.randint(len(split), (32,), generator=generator)
                batch["x" + suffix], batch["y" + suffix] = (t[index] for t in split.tensors)
            model.train_step(batch, step)
    trained = (model.predict(x_test) == y_test).float().mean().item()
    assert untrained < 0.3, untrained
    assert trained > 0.7, (untrained, trained)
