"""``gankit report``: one self-contained HTML page per run, or several runs compared.

Tiny runs of a few steps: these check what the page holds and what is refused. The
browser tests (test_browser.py) check that the page works in a real browser.
"""

from __future__ import annotations

import json
import re

import pytest

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit.api import evaluate_run
from gankit.config import resolve_config
from gankit.explore.pictures import curve_panels
from gankit.report import write_report
from gankit.report.folder import read_folder, spread
from gankit.report.provenance import closest_preset
from gankit.runs.lock import run_lock


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    ring = tiny_config("gan", "ring", steps=20, eval_every=10, eval_n=200)
    gankit.train(ring, runs_dir=root, name="ring")
    evaluate_run("ring", n=200, runs_dir=root)
    gankit.train(tiny_config("dcgan", "digits", steps=10), runs_dir=root, name="digits")
    adapt = tiny_config("dann", "moons", steps=10, eval_every=5)
    adapt["data"].update(target="moons", target_options={"n_train": 512, "n_test": 128})
    gankit.train(adapt, runs_dir=root, name="dann")
    return root


def frames(page: str) -> list[list[dict]]:
    """The frames of each slider of a page."""
    found = re.findall(r'<script type="application/json">(.*?)</script>', page, re.S)
    return [json.loads(text.replace("<\\/", "</")) for text in found]


def test_a_toy_run_shows_curves_previews_field_scores_and_commands(runs, tmp_path):
    page = write_report(["ring"], tmp_path / "ring.html", runs_dir=runs).read_text()
    previews, field = frames(page)
    # sample_every 10 over 20 steps: the previews of steps 10 and 20, labelled with the run
    assert [f["label"] for f in previews] == ["ring step 10", "ring step 20"]
    assert all(f["content"].startswith("data:image/png;base64,") for f in previews)
    assert [f["label"] for f in field] == ["ring step 10", "ring step 20"]
    assert "G against D on the plane" in page and "<svg" in page
    evaluation = json.loads((runs / "ring" / "eval.json").read_text())
    for key, floor in evaluation["floor"].items():  # each score beside its floor
        assert re.search(rf"<td>{key}</td><td>[^<]+</td><td>{floor:.4g}</td>", page), key
    assert "gankit train gan-ring --name ring" in page and "gankit explore ring --what toy" in page


def test_the_page_fetches_nothing(runs, tmp_path):
    page = write_report(["digits"], tmp_path / "digits.html", runs_dir=runs).read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "<script src" not in page
    assert "No eval.json yet" in page


def test_the_closest_preset_and_its_overrides_make_the_same_config(runs):
    config = read_folder(runs / "ring").config
    preset, overrides = closest_preset(config)
    assert preset == "gan-ring" and "train.steps=20" in overrides
    again = resolve_config(preset, overrides)
    assert {**again, "name": "ring"} == config


def test_adaptation_runs_get_a_table_by_domain(runs, tmp_path):
    page = write_report(["dann"], tmp_path / "dann.html", runs_dir=runs).read_text()
    assert "Scores by domain" in page
    assert re.search(r"<td>source</td><td>\d+\.\d %</td>", page)
    assert re.search(r"<td>target</td><td>\d+\.\d %</td>", page)


def test_a_run_still_training_shows_what_is_there(runs, tmp_path):
    folder = tmp_path / "runs" / "live"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text((runs / "ring" / "config.yaml").read_text())
    lines = (runs / "ring" / "metrics.jsonl").read_text().splitlines()
    (folder / "metrics.jsonl").write_text(lines[0] + "\n" + lines[1][:10])  # a cut line
    with run_lock(folder):
        page = write_report([folder], tmp_path / "live.html").read_text()
    assert "training now" in page and "step 5 of 20 so far" in page
    assert "No eval.json yet" in page and "Previews over training" not in page
    page = write_report([folder], tmp_path / "stopped.html").read_text()
    assert "stopped at step 5 of 20" in page


def test_compare_overlays_curves_and_tabulates_every_run(runs, tmp_path):
    page = write_report(["ring", "digits"], tmp_path / "c.html", runs_dir=runs).read_text()
    assert "<td>ring</td><td>gan</td>" in page and "<td>digits</td><td>dcgan</td>" in page
    assert "no eval.json" in page and "Config differences" in page


def test_the_report_refuses_to_replace_a_file_and_bad_input(runs, tmp_path):
    out = tmp_path / "r.html"
    out.write_text("mine")
    common = ["--runs-dir", runs, "--out", out]
    one_line_error(cli("report", "digits", *common), "already exists", "--overwrite")
    assert out.read_text() == "mine"
    assert cli("report", "digits", *common, "--overwrite").exit_code == 0
    assert "gankit report: digits" in out.read_text()
    one_line_error(cli("report", "ring", "digits", *common), "--compare")
    one_line_error(cli("report", "--compare", "ring", *common), "at least two runs")
    one_line_error(cli("report", "nope", *common), "run 'nope' not found")
    one_line_error(
        cli("report", "digits", "--runs-dir", runs, "--out", tmp_path / "r.txt"), ".html"
    )
    (runs / "digits" / "eval.json").write_text("{not json")
    try:
        one_line_error(cli("report", "digits", *common, "--overwrite"), "eval.json")
    finally:
        (runs / "digits" / "eval.json").unlink()


def test_curve_panels_keep_each_scale_on_its_own_axis():
    rows = [{"step": 1, "time": 0.1, "loss_d": 1.0, "loss_g": 2.0, "eval_modes": 8, "eval_w1": 0.1}]
    assert curve_panels(rows) == [
        ("losses", ["loss_d", "loss_g"]),
        ("eval_modes", ["eval_modes"]),
        ("eval_w1", ["eval_w1"]),
    ]
    assert [p[0] for p in curve_panels(rows, overlay=True)] == [
        "eval_modes", "eval_w1", "loss_d", "loss_g",
    ]  # fmt: skip


def test_spread_keeps_the_first_and_the_last():
    assert spread(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert spread([1, 2], 5) == [1, 2]
