"""What a new user meets in the first hour: progress on long commands, scores printed
with how to read them, eval.json's history, ``generate`` without a seed text,
``presets NAME``, and ``inspect evaluator:DATASET`` finding the trained evaluator."""

from __future__ import annotations

import json
import random

import pytest

import gankit
from conftest import cli, one_line_error, tiny_config


# --------------------------------------------------------------------------- presets NAME
def test_presets_name_prints_the_preset_file_with_its_comments():
    from importlib import resources

    result = cli("presets", "dcgan-digits")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout == (resources.files("gankit") / "presets" / "dcgan-digits.yaml").read_text()
    )
    assert result.stdout.startswith("# DCGAN on the embedded 8x8 digits")


def test_presets_unknown_name_is_one_line_listing_the_valid_names():
    line = one_line_error(cli("presets", "dcgan-digitz"), "unknown preset 'dcgan-digitz'")
    assert "did you mean 'dcgan-digits'?" in line and "valid:" in line and "wgan-gp-grid" in line


# --------------------------------------------------------------------------- generate
def text_run(tmp_path) -> str:
    rng = random.Random(0)
    words = ["the cat", "a dog", "sat on", "ran to", "the mat.", "a tree."]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(rng.choice(words) for _ in range(400)))
    config = {
        "name": "lm",
        "model": {"name": "char_lstm", "hidden_dim": 16, "embed_dim": 8, "n_layers": 1},
        "data": {"name": f"text:{corpus}", "window": 16, "stride": 8},
        "train": {"steps": 5, "batch_size": 8, "progress": False, "threads": 1},
    }
    gankit.train(config, runs_dir=tmp_path / "runs")
    return corpus.read_text()


def test_generate_without_seed_text_draws_a_start_from_the_training_text(tmp_path):
    text = text_run(tmp_path)
    args = ("generate", "lm", "--runs-dir", tmp_path / "runs", "--length", 20, "--greedy")
    first = cli(*args)
    assert first.exit_code == 0, first.output
    said = [line for line in first.stdout.splitlines() if line.startswith("seed text ")]
    assert len(said) == 1 and "drawn from the training text" in said[0], first.stdout
    start = said[0].split("'")[1]
    assert len(start) > 10 and start in text and start.endswith(" ")
    passage = first.stdout.split("--- greedy ---\n")[1]
    assert passage.startswith(start)
    assert cli(*args).stdout == first.stdout  # seeded: the same start again
    other = cli(*args, "--seed", 3).stdout
    assert [line for line in other.splitlines() if line.startswith("seed text ")] != said
    given = cli(*args, "--seed-text", "the cat ")
    assert given.exit_code == 0 and "seed text " not in given.stdout


# --------------------------------------------------------------------------- progress
@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    gankit.train(tiny_config("dcgan", "digits", steps=10), runs_dir=runs)
    return runs


def stage_lines(text: str) -> list[str]:
    """The lines on stderr, tqdm's redraws split apart."""
    return [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]


def test_eval_says_what_it_does_on_stderr_and_no_progress_silences_it(digits_runs, evaluator_cache):
    args = ("eval", "tiny-dcgan", "--runs-dir", digits_runs, "--n", 50, "--overwrite")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    said = stage_lines(result.stderr)
    assert said[0] == "scoring run 'tiny-dcgan' at step 10...", said
    assert "drawing 50 samples from the checkpoint of step 10..." in said
    assert "extracting evaluator features of 50 generated samples..." in said
    assert "scoring run" not in result.stdout  # stdout stays the result
    quiet = cli(*args, "--no-progress")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.splitlines()[:-1] == result.stdout.splitlines()[:-1]  # but the time


def test_the_library_is_quiet_unless_asked(digits_runs, evaluator_cache, capsys):
    gankit.evaluate_run("tiny-dcgan", n=50, runs_dir=digits_runs, write=False)
    assert capsys.readouterr().err == ""
    gankit.evaluate_run("tiny-dcgan", n=50, runs_dir=digits_runs, write=False, progress=True)
    assert "drawing 50 samples" in capsys.readouterr().err


def test_eval_with_inception_features_shows_a_bar_over_the_images(
    digits_runs, tmp_path, monkeypatch
):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    args = ("eval", "tiny-dcgan", "--runs-dir", digits_runs, "--features", "inception")
    result = cli(*args, "--n", 6, "--overwrite")
    assert result.exit_code == 0, result.output
    said = stage_lines(result.stderr)
    assert "loading the InceptionV3 (FID) network..." in said
    assert "extracting InceptionV3 features of 6 reference images (test split)..." in said
    bars = [line for line in said if line.startswith("InceptionV3 features: 100%")]
    assert len(bars) == 3 and all("6/6" in bar for bar in bars), said


def test_fid_on_folders_shows_each_side(digits_runs, tmp_path):
    folder = tmp_path / "samples"
    assert cli("sample", "tiny-dcgan", "--runs-dir", digits_runs, "--out", folder, "--n", 6)
    result = cli("fid", folder, "data:digits:test", "--n", 6)
    assert result.exit_code == 0, result.output
    said = stage_lines(result.stderr)
    assert f"A: InceptionV3 features of 6 images ({folder})..." in said
    assert any(line.startswith("A: features: 100%") and "6/6" in line for line in said), said
    assert "B: InceptionV3 features of 6 digits test images..." in said


def test_inspect_filters_shows_a_bar_over_the_ascent_steps(evaluator_cache, tmp_path):
    args = ("inspect", "evaluator:digits", "--what", "filters", "--filters", 2, "--steps", 3)
    result = cli(*args, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    said = stage_lines(result.stderr)
    assert said[0] == "loading evaluator:digits...", said
    assert any(line.startswith("filter patterns: 100%") and "9/9" in line for line in said)


# --------------------------------------------------------------------------- reading scores
@pytest.mark.parametrize(
    ("names", "way"),
    [
        (["fd", "kid", "w1", "reverse_kl", "fd_ab", "cycle_l1_a", "bits_per_char"], "lower"),
        (["code_error", "nll", "recon_mse", "perplexity", "identity"], "lower"),
        (["is", "precision", "recall", "density", "coverage", "modes", "high_quality"], "higher"),
        (["acc_ab", "target_accuracy", "q_accuracy", "target_miou", "iou_sky"], "higher"),
        (["cond_acc", "elbo", "control", "class_kept", "class_kept_evaluator"], "higher"),
        (["kid_std", "is_std", "fd_before", "fd_ab_before", "acc_ab_before"], None),
        (["unigram_bits_per_char", "word_share_t0.5", "entropy_t1", "kl", "x"], None),
    ],
)
def test_each_score_declares_which_way_is_better(names, way):
    from gankit.metrics.evaluate import score_direction

    assert {name: score_direction(name) for name in names} == dict.fromkeys(names, way)


def test_the_eval_table_marks_each_score_and_says_how_to_read_it(digits_runs, evaluator_cache):
    result = cli("eval", "tiny-dcgan", "--runs-dir", digits_runs, "--n", 50, "--overwrite")
    assert result.exit_code == 0, result.output
    cells = [line.split() for line in result.stdout.splitlines()]
    rows = {cell[0]: cell[1] for cell in cells if len(cell) > 1}
    assert rows["fd"] == rows["kid"] == "↓"
    assert rows["is"] == rows["precision"] == rows["recall"] == rows["coverage"] == "↑"
    assert rows["kid_std"][0].isdigit()  # a spread: no better way
    assert "↓ lower is better, ↑ higher is better" in result.stdout
    assert "'real floor': real images the model never saw" in result.stdout


def test_a_floor_drawn_from_the_reference_items_themselves_is_flagged():
    import dataclasses

    from gankit.data import load_dataset
    from gankit.metrics.evaluate import Scorer

    bundle = dataclasses.replace(load_dataset("ring", n_train=64, n_test=32), test=None)
    scorer = Scorer(bundle, "w1", n=64, split="train")
    assert scorer.floor() == {"w1": 0.0} and scorer.floor_is_reference
    assert "both the reference and the floor sample" in scorer.notes[-1]
    fewer = Scorer(bundle, "w1", n=32, split="train")  # two different halves of 64 points
    assert fewer.floor()["w1"] > 0 and not fewer.floor_is_reference
    held_out = Scorer(load_dataset("ring", n_train=64, n_test=32), "w1", n=64)
    held_out.floor()
    assert not held_out.floor_is_reference and not held_out.notes


@pytest.mark.slow
def test_a_floor_of_the_reference_images_themselves_says_so(tmp_path):
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(6):
        Image.new("L", (8, 8), color=40 * i).save(folder / f"{i}.png")
    config = tiny_config("dcgan", "digits", steps=2, batch_size=4)
    config["data"] = {"name": f"folder:{folder}", "resolution": 8, "channels": 1}
    gankit.train(config, runs_dir=tmp_path / "runs")
    args = ("eval", "tiny-dcgan", "--runs-dir", tmp_path / "runs", "--features", "inception")
    result = cli(*args, "--split", "train", "--metrics", "fd,pr", "--n", 6, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "note: floor: " in result.stdout and "both the reference and the floor" in (
        result.stdout
    )
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line}
    assert rows["fd"].endswith("(itself)") and rows["recall"].endswith("(itself)")
    saved = json.loads((tmp_path / "runs" / "tiny-dcgan" / "eval.json").read_text())
    assert saved["extra"]["floor_is_reference"] is True


def test_a_floor_of_held_out_images_has_no_such_note(digits_runs, evaluator_cache):
    result = cli("eval", "tiny-dcgan", "--runs-dir", digits_runs, "--n", 50, "--overwrite")
    assert "(itself)" not in result.stdout and "note: floor" not in result.stdout
    saved = json.loads((digits_runs / "tiny-dcgan" / "eval.json").read_text())
    assert "floor_is_reference" not in saved["extra"]


# --------------------------------------------------------------------------- eval history
def test_eval_after_more_training_scores_again_and_keeps_the_earlier_scores(tmp_path):
    runs = tmp_path / "runs"
    gankit.train(tiny_config(steps=10), runs_dir=runs)
    path = runs / "tiny-gan" / "eval.json"
    args = ("eval", "tiny-gan", "--runs-dir", runs, "--n", 100)
    assert cli(*args).exit_code == 0
    first = json.loads(path.read_text())
    gankit.train("tiny-gan", {"train.steps": 20}, runs_dir=runs, resume=True)
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "with 1 earlier in its history" in result.stdout
    latest = json.loads(path.read_text())
    # the top level is the latest evaluation, in the shape it always had
    keys = ["run", "step", "n", "n_reference", "n_floor", "split", "features", "scores",
            "floor", "seconds", "extra"]  # fmt: skip
    assert [key for key in latest if key in keys] == keys and latest["step"] == 20
    (earlier,) = latest["history"]
    assert earlier["step"] == 10 and earlier["scores"] == first["scores"]
    assert earlier["when"] == first["when"] and earlier["floor"] == first["floor"]


def test_an_unreadable_eval_json_is_refused_without_overwrite(tmp_path):
    runs = tmp_path / "runs"
    gankit.train(tiny_config(steps=10), runs_dir=runs)
    path = runs / "tiny-gan" / "eval.json"
    path.write_text("{not json")
    args = ("eval", "tiny-gan", "--runs-dir", runs, "--n", 100)
    one_line_error(cli(*args), "eval.json' is not the JSON gankit eval writes", "--overwrite")
    assert path.read_text() == "{not json"
    assert cli(*args, "--overwrite").exit_code == 0
    assert json.loads(path.read_text())["history"] == []


# --------------------------------------------------------------------------- inspect evaluator
def test_inspect_uses_the_evaluator_trained_here_at_another_resolution(tmp_path, monkeypatch):
    from gankit.metrics.features import train_evaluator

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    train_evaluator("digits", resolution=16, epochs=1, progress=False)  # as dcgan-digits runs
    out = tmp_path / "out"
    result = cli("inspect", "evaluator:digits", "--layer", "conv1", "--out", out)
    assert result.exit_code == 0, result.output
    assert "the digits evaluator of 16 px images (trained here: 16 px" in result.stderr
    assert (out / "activations-conv1.png").is_file()


def test_inspect_with_no_evaluator_trained_says_how_to_train_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    result = cli("inspect", "evaluator:digits", "--out", tmp_path / "out")
    one_line_error(
        result, "no digits evaluator is trained on this machine",
        "train one with: gankit evaluator train digits",
    )  # fmt: skip
