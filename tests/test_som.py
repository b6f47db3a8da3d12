"""Self-organising maps (gankit som, the som metrics): a collapsed generator covers fewer
units than a good one, the quantisation error falls as the map trains, and a grid under
2x2 is refused in one line."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit import api
from gankit.data import load_dataset
from gankit.errors import GankitError
from gankit.metrics.som import check_grid, coverage, fit_som, parse_grid, som_coverage


@pytest.fixture(scope="module")
def ring():
    """Real ring points, a good generator's (fresh points of the same ring) and a
    generator collapsed onto 2 of its 8 modes."""
    bundle = load_dataset("ring", n_train=1000, n_test=1000)
    real, good = bundle.train.tensors[0].numpy(), bundle.test.tensors[0].numpy()
    rng = np.random.default_rng(0)
    modes = np.asarray(bundle.modes)
    collapsed = modes[rng.integers(0, 2, 1000)] + rng.normal(0, bundle.mode_std, (1000, 2))
    return real, good, collapsed


def test_a_generator_collapsed_to_two_modes_covers_clearly_fewer_units(ring):
    """Measured: good 0.98, collapsed 0.25 (2 of 8 modes: about a quarter)."""
    real, good, collapsed = ring
    good_share = som_coverage(real, good)["som_coverage"]
    collapsed_share = som_coverage(real, collapsed)["som_coverage"]
    assert good_share > 0.9, good_share
    assert collapsed_share < 0.4, collapsed_share
    assert good_share > collapsed_share + 0.5


def test_quantisation_error_falls_as_it_trains(ring):
    """Measured: 0.24 at the start (the PCA plane) to 0.012 after 20,000 steps."""
    real, _, _ = ring
    som = fit_som(real, (10, 10), iterations=5000, checkpoints=5)
    errors = som.errors
    assert errors[-1] < 0.25 * errors[0], errors
    assert all(later <= earlier * 1.05 for earlier, later in itertools.pairwise(errors)), errors


def test_coverage_counts_only_units_real_data_occupies():
    real = np.array([[3, 0], [1, 0]])
    fake = np.array([[0, 5], [1, 0]])
    assert coverage(real, fake) == 0.5  # of 2 occupied units, 1 reached; (0, 1) not counted


@pytest.mark.parametrize("grid", [(1, 5), (5, 1), (1, 1), (0, 3), (65, 4)])
def test_grids_under_two_by_two_or_too_large_are_refused(grid):
    with pytest.raises(GankitError, match="at least 2x2 and at most 64x64"):
        check_grid(grid)


def test_grid_text_is_parsed_or_refused():
    assert parse_grid("12x8") == (12, 8)
    assert parse_grid("3,4") == (3, 4)
    with pytest.raises(GankitError, match="ROWSxCOLUMNS such as 10x10; got 'big'"):
        parse_grid("big")


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return gankit.train(tiny_config("gan", steps=4), runs_dir=runs).run_dir, runs


def test_som_command_draws_the_maps_and_reports_coverage(ring_run, tmp_path):
    run, runs = ring_run
    out = tmp_path / "som.png"
    result = cli("som", run.name, "--runs-dir", runs, "--n", "200", "--iterations", "500",
                 "--grid", "4x4", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "SOM 4x4 fitted to 128 real items (raw points)" in result.stdout
    assert "SOM coverage" in result.stdout and out.stat().st_size > 0
    again = cli("som", run.name, "--runs-dir", runs, "--out", out)
    one_line_error(again, f"--out '{out}' exists", "--overwrite")


@pytest.mark.parametrize("grid", ["1x5", "1x1", "2x0"])
def test_a_grid_under_two_by_two_fails_in_one_line(ring_run, grid):
    run, runs = ring_run
    one_line_error(cli("som", run.name, "--runs-dir", runs, "--grid", grid), "at least 2x2")


def test_eval_scores_som_coverage_only_when_asked(ring_run):
    run, runs = ring_run
    asked = api.evaluate_run(run, runs_dir=runs, metrics="som_toy", n=128, write=False)
    assert 0.0 <= asked.scores["som_coverage"] <= 1.0
    default = api.evaluate_run(run, runs_dir=runs, n=128, write=False)
    assert "som_coverage" not in default.scores


def test_som_on_images_uses_the_evaluators_features(evaluator_cache, tmp_path):
    run = gankit.train(tiny_config("dcgan", "digits", steps=2), runs_dir=tmp_path).run_dir
    result = api.som(run, grid="3x3", n=100, iterations=200, runs_dir=tmp_path)
    assert result.space == "the digits evaluator's features"
    scores = api.evaluate_run(run, runs_dir=tmp_path, metrics="som", n=100, write=False)
    assert 0.0 <= scores.scores["som_coverage"] <= 1.0
