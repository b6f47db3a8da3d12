"""The SOM in ``gankit report``: ``gankit som RUN --save`` keeps its picture in the run,
and the page shows it, with the SOM coverage of ``gankit eval``, in a section of its
own; every value read from the run reaches the page escaped."""

from __future__ import annotations

import json

import pytest
import yaml

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit import api
from gankit.report import write_report


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return gankit.train(tiny_config("gan", steps=4), runs_dir=runs).run_dir, runs


def _som(run, runs, *more):
    return cli("som", run.name, "--runs-dir", runs, "--n", "200", "--iterations", "300",
               "--grid", "4x4", "--save", *more)  # fmt: skip


@pytest.mark.slow  # a SOM, an eval and two pages: about 6 s on a busy machine
def test_the_report_shows_the_saved_som_picture_and_the_coverage(ring_run, tmp_path):
    run, runs = ring_run
    page = write_report([run], tmp_path / "before.html").read_text()
    assert "Self-organising map" not in page  # a run with no SOM has no such section
    result = _som(run, runs)
    assert result.exit_code == 0, result.output
    picture = run / "explore" / "som_4x4_seed0.png"
    assert picture.is_file() and f"wrote {picture}" in result.stdout
    one_line_error(_som(run, runs), "som_4x4_seed0.png' already exists", "--overwrite")
    api.evaluate_run(run, runs_dir=runs, metrics="som_toy", n=128)
    page = write_report([run], tmp_path / "after.html").read_text()
    section = page.split("<h2>Self-organising map</h2>")[1].split("</section>")[0]
    assert 'alt="som_4x4_seed0.png"' in section and "data:image/png;base64," in section
    assert "<td>som_coverage</td>" in section
    # shown once: the pictures of gankit explore leave it to its own section
    assert page.count('alt="som_4x4_seed0.png"') == 1


def test_a_hostile_som_coverage_reaches_the_page_escaped(tmp_path):
    """A mailed run folder: its config and an eval.json whose coverage is markup."""
    run = tmp_path / "mailed"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(tiny_config("gan")))
    hostile = "<script>alert(1)</script>"
    (run / "eval.json").write_text(json.dumps({"scores": {"som_coverage": hostile}}))
    page = write_report([run], tmp_path / "page.html").read_text()
    section = page.split("<h2>Self-organising map</h2>")[1].split("</section>")[0]
    assert hostile not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section
