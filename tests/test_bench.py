"""``gankit bench``: the table maths and input checks (the runs themselves are benchmarks)."""

from __future__ import annotations

import pytest

from gankit.bench import (
    PACGAN_TABLE1,
    ToyResult,
    image_presets,
    image_table,
    run_images,
    run_toy,
    toy_presets,
    toy_table,
)
from gankit.errors import GankitError


def row(preset, mixture, seed, modes, quality):
    n_modes = 8 if mixture == "ring" else 25
    return ToyResult(preset, mixture, seed, modes, n_modes, quality, 0.0, 10.0, 100)


def test_toy_table_mean_and_standard_error():
    rows = [
        row("gan-ring", "ring", s, m, q)
        for s, (m, q) in enumerate([(8, 0.98), (7, 0.96), (8, 0.97), (7, 0.99)])
    ]
    table = toy_table(rows)
    # modes: mean 7.5, stdev 0.577, se 0.289; quality: mean 97.5, se 0.645
    assert (
        "| gankit `gan-ring` (4 seeds) | 7.5 ± 0.3 | 97.5 ± 0.6 % | — | — | 100 | 10 s |" in table
    )
    for method in PACGAN_TABLE1:
        assert f"| {method} (PacGAN, published) |" in table


def test_toy_presets_are_the_ring_and_grid_recipes():
    presets = toy_presets()
    assert presets["gan-ring"] == "ring" and presets["gan-grid"] == "grid"
    assert "dcgan-digits" not in presets


def test_bench_rejects_other_presets_and_zero_seeds():
    with pytest.raises(GankitError, match="'dcgan-digits' is not a ring/grid preset"):
        run_toy(["dcgan-digits"], seeds=1)
    with pytest.raises(GankitError, match="--seeds must be >= 1"):
        run_toy(["gan-ring"], seeds=0)


def test_image_presets_cover_digits_and_fashion():
    presets = image_presets()
    assert presets["dcgan-digits"] == "digits" and presets["dcgan-fashion"] == "fashion-mnist"
    assert "gan-ring" not in presets
    assert "cyclegan-digits-m" not in presets and "dann-digits-m" not in presets
    with pytest.raises(GankitError, match="'gan-ring' is not an image preset"):
        run_images(["gan-ring"])


# about 30 s: two presets trained and scored
@pytest.mark.slow
def test_bench_images_trains_scores_and_tabulates(evaluator_cache, tmp_path):
    tiny = ["data.resolution=8", "model.g_channels=8", "model.d_channels=8", "train.batch_size=16"]
    results = run_images(["dcgan-digits"], steps=5, n=100, overrides=tiny, runs_dir=tmp_path)
    (row,) = results
    assert (row.preset, row.dataset, row.resolution, row.steps) == ("dcgan-digits", "digits", 8, 5)
    # five steps of an untrained G are far from real digits; the floor is close
    assert row.scores["fd"] > 3 * row.floor["fd"]
    assert 0.5 < row.evaluator_accuracy <= 1.0
    table = image_table(results)
    assert "| `dcgan-digits` | digits 8px | 5 |" in table
    assert "| real train vs test (floor, evaluator test accuracy" in table
