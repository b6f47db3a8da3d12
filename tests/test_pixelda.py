"""Pixel-level adaptation: the translator phase, then the classifier on translations;
a translator from a finished run; resume across the phase change; ``gankit adapt``."""

from __future__ import annotations

import pytest
import torch
import yaml

import gankit
from conftest import cli, one_line_error, write_mnist_like
from gankit.api import evaluate_run
from gankit.config import resolve_config
from gankit.training.run import build

PIXEL_TINY = {
    "translator_channels": 4,
    "translator_n_blocks": 1,
    "translator_d_channels": 4,
    "translator_batch": 4,
    "channels": 8,
    "hidden_dim": 16,
}


def pixel_config(steps: int = 6, translator_steps: int = 3, **model) -> dict:
    return {
        "name": "pixel",
        "model": {"name": "pixel_da", "translator_steps": translator_steps, **PIXEL_TINY, **model},
        "data": {
            "name": "digits",
            "resolution": 8,
            "channels": 3,
            "target": "digits-m",
            "target_options": {"resolution": 8},
        },
        "train": {
            "steps": steps,
            "batch_size": 8,
            "ckpt_every": 2,
            "log_every": 1,
            "threads": 1,
            "progress": False,
        },
    }


def cyclegan_config(resolution: int = 8, steps: int = 4) -> dict:
    config = pixel_config()
    config["model"] = {"name": "cyclegan", "channels": 4, "n_blocks": 1, "d_channels": 4}
    config["data"].update(resolution=resolution, target_options={"resolution": resolution})
    config["train"]["steps"] = steps
    config["name"] = "translator"
    return config


def weights(run_dir, step: int) -> dict[str, torch.Tensor]:
    path = run_dir / "checkpoints" / f"step_{step:08d}.pt"
    return torch.load(path, weights_only=True)["model"]


def changed(before: dict, after: dict, prefix: str) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


def test_phase_one_trains_only_the_translator_and_phase_two_only_the_classifier(tmp_path):
    run = gankit.train(pixel_config(steps=6, translator_steps=2), runs_dir=tmp_path).run_dir
    start = create_start(tmp_path)
    step2, step4 = weights(run, 2), weights(run, 4)
    # steps 0-1: the translator learns, the classifier is untouched
    assert changed(start, step2, "translator.G_AB") and not changed(start, step2, "classifier")
    # steps 2-3: the classifier learns on frozen translations
    assert changed(step2, step4, "classifier") and not changed(step2, step4, "translator")
    logged = (run / "metrics.jsonl").read_text().splitlines()
    assert "translator_loss_cycle_a" in logged[0] and "loss_label" in logged[-1]


def create_start(tmp_path) -> dict[str, torch.Tensor]:
    """The weights at step 0: a run of the same seed with no steps taken."""
    config = resolve_config(pixel_config(steps=6, translator_steps=2))
    model, _ = build(config)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_across_the_phase_change_is_exact(tmp_path):
    """6 steps in one go == 2 steps (translator only), then --resume to 6 (the phase
    changes at step 3)."""
    assert_resume_is_exact(pixel_config, tmp_path, 6)


def assert_resume_is_exact(make_config, tmp_path, steps: int) -> None:
    """``steps`` in one go == 2 steps, then --resume to ``steps``, bit for bit."""
    gankit.train(make_config(steps=steps), name="straight", runs_dir=tmp_path)
    gankit.train(make_config(steps=2), name="resumed", runs_dir=tmp_path)
    gankit.train(None, [f"train.steps={steps}"], name="resumed", runs_dir=tmp_path, resume=True)
    straight = weights(tmp_path / "straight", steps)
    resumed = weights(tmp_path / "resumed", steps)
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key


def test_translator_from_a_run_of_the_same_domains(tmp_path):
    translator = gankit.train(cyclegan_config(), runs_dir=tmp_path).run_dir
    config = pixel_config(steps=3, translator_steps=0, translator_run=str(translator))
    # the run's sizes win over this config's: they must fit its weights
    config["model"]["translator_channels"] = 16
    run = gankit.train(config, runs_dir=tmp_path).run_dir
    mine, theirs = weights(run, 2), weights(translator, 4)
    for key, value in theirs.items():
        assert torch.equal(mine[f"translator.{key}"], value), key
    recorded = yaml.safe_load((run / "config.yaml").read_text())["model"]
    assert recorded["translator_channels"] == 4 and recorded["translator_run"] == str(translator)
    # the finished run rebuilds from its checkpoint alone, translator run gone or not
    scores = evaluate_run(run, runs_dir=tmp_path).scores
    assert 0.0 <= scores["target_accuracy"] <= 1.0


def test_translator_run_of_another_pair_of_domains_is_one_line(tmp_path):
    translator = gankit.train(cyclegan_config(), runs_dir=tmp_path).run_dir
    result = cli(
        "train", "pixel-digits-m", "--runs-dir", tmp_path,
        "--set", f"model.translator_run={translator}", "--set", "model.translator_steps=0",
    )  # fmt: skip
    one_line_error(
        result, "translator_run", "maps digits (resolution 8", "digits-m (resolution 16)"
    )
    assert not (tmp_path / "pixel-digits-m").exists()
    result = cli(
        "train", "pixel-digits-m", "--runs-dir", tmp_path,
        "--set", f"model.translator_run={tmp_path / 'nothing'}",
        "--set", "model.translator_steps=0",
    )  # fmt: skip
    one_line_error(result, "translator_run", "is not a run folder")
    # a translator of its own and one from a run contradict each other
    result = cli(
        "train", "pixel-digits-m", "--runs-dir", tmp_path,
        "--set", f"model.translator_run={translator}", "--set", "data.resolution=8",
        "--set", "data.target_options.resolution=8",
    )  # fmt: skip
    one_line_error(result, "translator_steps=0")


def test_adapt_prints_pixel_level_next_to_source_only_and_dann(tmp_path):
    config = pixel_config(steps=4, translator_steps=2)
    path = tmp_path / "pixel.yaml"
    path.write_text(yaml.safe_dump(config))
    result = cli("adapt", path, "--runs-dir", tmp_path / "runs", "--seeds", "2")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == [
        "`pixel_da`",
        "`source_only` (source-only)",
        "`dann`",
    ]
    assert all("±" in row for row in rows)  # mean ± sd over the two seeds
    made = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert made == sorted(
        f"pixel{suffix}-seed{seed}" for suffix in ("", "-source-only", "-dann") for seed in (0, 1)
    )
    # the baselines are DANN's network with the pixel run's classifier settings
    baseline = gankit.load_run(tmp_path / "runs" / "pixel-dann-seed1")
    assert baseline.model.hparams["channels"] == 8 and baseline.config["train"]["seed"] == 1


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("model.translator_batch=0", ["translator_batch"]),
        ("model.translator_batch=99", ["translator_batch", "batch_size"]),
        ("data.target=null", ["data.target"]),
    ],
)
def test_bad_pixel_settings_are_one_line(tmp_path, override, words):
    result = cli("train", "pixel-digits-m", "--runs-dir", tmp_path, "--set", override)
    one_line_error(result, *words)


def test_fashion_mnist_in_three_channels_pairs_with_fashion_m(tmp_path):
    from gankit.data import load_dataset
    from gankit.errors import GankitError

    write_mnist_like(tmp_path, n_train=6, n_test=4)
    files = {"data_dir": str(tmp_path), "download": False, "limit": 4}
    grey = load_dataset("fashion-mnist", **files)
    colour = load_dataset("fashion-mnist", **files, channels=3)
    assert colour.shape == (3, 28, 28) == load_dataset("fashion-m", **files).shape
    x, y = colour.train.tensors
    for channel in range(3):  # the grey image in R, G and B
        assert torch.equal(x[:, channel], grey.train.tensors[0][:, 0])
    assert torch.equal(y, grey.train.tensors[1])
    with pytest.raises(GankitError, match="channels must be 1 or 3"):
        load_dataset("fashion-mnist", **files, channels=2)


# --------------------------------------------------------------------------- pixel_gan
def pixelgan_config(steps: int = 4, **model) -> dict:
    config = pixel_config(steps=steps)
    config["model"] = {
        "name": "pixel_gan",
        "g_channels": 8,
        "g_blocks": 1,
        "d_channels": 8,
        "channels": 8,
        "hidden_dim": 32,
        **model,
    }
    config["train"]["batch_size"] = 16
    config["name"] = "pixelgan"
    return config


def noise_spread(run_dir) -> float:
    """The mean |G(x, z₁) − G(x, z₂)| over 200 source digits: how much G uses z."""
    from gankit.data import load_data

    model = gankit.load_run(run_dir).model
    x, _ = load_data(pixel_config()["data"]).train.tensors
    torch.manual_seed(0)
    return (model.translate_source(x[:200]) - model.translate_source(x[:200])).abs().mean().item()


def test_pixel_gan_learns_the_labels_and_its_noise_makes_many_looks(tmp_path):
    """After 100 steps the classifier reads the source (chance is 0.1), and the
    mode-seeking term makes G's output depend on z: measured 0.84 against 0.14 without
    it (at step 0 both are near 0)."""
    spreads = {}
    for weight in (1.0, 0.0):
        config = pixelgan_config(steps=100, mode_seeking=weight)
        config["name"] = f"pixelgan-ms{weight}"
        run = gankit.train(config, runs_dir=tmp_path).run_dir
        assert evaluate_run(run, runs_dir=tmp_path).scores["source_accuracy"] > 0.6
        spreads[weight] = noise_spread(run)
    assert spreads[1.0] > 0.4 and spreads[1.0] > 3 * spreads[0.0], spreads


def test_pixel_gan_resume_is_exact_and_trains_g_c_and_d(tmp_path):
    assert_resume_is_exact(pixelgan_config, tmp_path, 4)
    straight, step2 = weights(tmp_path / "straight", 4), weights(tmp_path / "straight", 2)
    for part in ("G.", "D.", "classifier.features", "classifier.classifier"):
        assert changed(step2, straight, part), part
    # the classifier's domain head is DANN's, unused here: never trained
    assert not changed(step2, straight, "classifier.domain_classifier")


def test_adapt_prints_pixel_gan_next_to_source_only_and_dann(tmp_path):
    path = tmp_path / "pixelgan.yaml"
    path.write_text(yaml.safe_dump(pixelgan_config(steps=2)))
    result = cli("adapt", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == [
        "`pixel_gan`",
        "`source_only` (source-only)",
        "`dann`",
    ]


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("model.d_dropout=1", ["d_dropout", "[0, 1)"]),
        ("model.mode_seeking=-1", ["mode_seeking"]),
        ("model.noise_dim=0", ["noise_dim"]),
        ("data.channels=1", ["one shape", "data.channels=3"]),
    ],
)
def test_bad_pixel_gan_settings_are_one_line(tmp_path, override, words):
    result = cli("train", "pixelgan-digits-m", "--runs-dir", tmp_path, "--set", override)
    one_line_error(result, *words)
    assert not (tmp_path / "pixelgan-digits-m").exists()
