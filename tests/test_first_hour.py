"""What a new user meets in the first hour: progress on long commands, scores printed
with how to read them, eval.json's history, ``generate`` without a seed text,
``presets NAME``, and ``inspect evaluator:DATASET`` finding the trained evaluator."""

from __future__ import annotations

import random

import gankit
from conftest import cli, one_line_error


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
