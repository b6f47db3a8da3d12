"""The user's own earlier and later items (``series:``, ``periods:``): reading, the
one-line errors on bad files, and a change run trained, scored and explored on them."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from conftest import cli, one_line_error
from gankit.data import load_dataset
from gankit.data.periods import MAX_SERIES_VALUES
from gankit.errors import GankitError


def sines(n: int, length: int = 16, seed: int = 0, gain: float = 1.0) -> np.ndarray:
    """(n, length) sine series of random phase, amplitude 0.4 times ``gain``."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length)
    return gain * 0.4 * np.sin(2 * np.pi * t * 2 + rng.uniform(0, 6, (n, 1)))


def write_csv(path, rows, header=None) -> str:
    lines = [",".join(header)] if header else []
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def series_files(tmp_path, n_earlier: int = 40, n_later: int = 30) -> str:
    """``EARLIER.npy,LATER.csv`` in tmp_path: sines, and sines grown in amplitude."""
    np.save(tmp_path / "earlier.npy", sines(n_earlier))
    write_csv(tmp_path / "later.csv", sines(n_later, seed=1, gain=1.5))
    return f"{tmp_path / 'earlier.npy'},{tmp_path / 'later.csv'}"


# --------------------------------------------------------------------------- series files
def test_series_from_two_files_are_unpaired_periods(tmp_path):
    bundle = load_dataset(f"series:{series_files(tmp_path)}")
    later = bundle.domain_b
    assert bundle.kind == later.kind == "series" and bundle.shape == later.shape == (16,)
    assert (len(bundle.train), len(bundle.test)) == (32, 8)
    assert (len(later.train), len(later.test)) == (24, 6)
    # unpaired: no hidden truth rides along, and items carry no labels
    assert later.extra == {} and "change" not in bundle.extra
    assert (later.train.tensors[1] == -1).all()
    every = torch.cat([later.train.tensors[0], later.test.tensors[0]])
    expected = torch.from_numpy(sines(30, seed=1, gain=1.5)).float()
    assert torch.allclose(every[every[:, 0].argsort()], expected[expected[:, 0].argsort()])
    again = load_dataset(f"series:{series_files(tmp_path)}")
    assert torch.equal(again.test.tensors[0], bundle.test.tensors[0])


def test_series_from_one_csv_with_a_period_column(tmp_path):
    rows = [["before", *row] for row in sines(6)] + [["after", *row] for row in sines(4, seed=1)]
    rows.insert(3, ["after", *sines(1, seed=2)[0]])
    path = write_csv(tmp_path / "both.csv", [[r[1], r[0], *r[2:]] for r in rows],
                     header=["p0", "when", *[f"p{i}" for i in range(1, 16)]])  # fmt: skip
    bundle = load_dataset(f"series:{path}", period_column="when", periods="before,after")
    assert bundle.shape == (16,)
    assert len(bundle.train) + len(bundle.test) == 6
    assert len(bundle.domain_b.train) + len(bundle.domain_b.test) == 5
    one = bundle.train.tensors[0][0]
    assert any(torch.allclose(one, torch.from_numpy(s).float()) for s in sines(6))


def bad_csv(tmp_path, text: str) -> str:
    (tmp_path / "bad.csv").write_text(text)
    return str(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    ("write", "words"),
    [
        # series of different lengths: within a file, and between the periods
        (lambda p: bad_csv(p, "1,2,3\n1,2\n1,2,3\n"), ["bad.csv", "row 2", "same length"]),
        (lambda p: np.save(p / "bad.npy", sines(5, length=12)), ["12 points", "one length"]),
        # NaN or inf values
        (lambda p: bad_csv(p, "1,2,3\n1,nan,3\n"), ["bad.csv", "nan", "finite"]),
        (lambda p: np.save(p / "bad.npy", np.array([[1.0, np.inf]] * 3)), ["inf", "finite"]),
        # an empty period
        (lambda p: bad_csv(p, "a,b,c\n"), ["bad.csv", "0 series", "at least 2"]),
        (lambda p: np.save(p / "bad.npy", np.zeros((0, 16))), ["0 series", "at least 2"]),
        # neither numbers nor the expected shape or suffix
        (lambda p: bad_csv(p, "1,2\n1,x\n"), ["'x'", "not a number"]),
        (lambda p: np.save(p / "bad.npy", np.zeros((3, 4, 4))), ["(3, 4, 4)", "(N, T)"]),
        (lambda p: (p / "bad.txt").write_text("1,2\n"), ["bad.txt", ".npy", ".csv"]),
    ],
)
def test_bad_series_files_are_one_line_errors(tmp_path, write, words):
    series_files(tmp_path)
    write(tmp_path)
    bad = next(p for p in tmp_path.iterdir() if p.stem == "bad")
    with pytest.raises(GankitError) as caught:
        load_dataset(f"series:{tmp_path / 'earlier.npy'},{bad}")
    for word in words:
        assert word in str(caught.value), caught.value


def test_a_csv_without_the_named_column_or_with_an_unknown_period(tmp_path):
    path = write_csv(tmp_path / "both.csv", [["x", 1, 2], ["y", 3, 4]], header=["p", "a", "b"])
    with pytest.raises(GankitError, match=r"both.csv' has no column 'period'.*columns: p, a, b"):
        load_dataset(f"series:{path}", period_column="period")
    with pytest.raises(GankitError, match="row 2 has period 'x'.*valid: earlier, later"):
        load_dataset(f"series:{path}", period_column="p")
    path = write_csv(tmp_path / "one.csv", [["earlier", 1, 2]] * 3, header=["p", "a", "b"])
    with pytest.raises(GankitError, match="no row of period 'later'"):
        load_dataset(f"series:{path}", period_column="p")


def test_series_sources_are_bounded_and_follow_no_link(tmp_path, monkeypatch):
    import gankit.data.periods as periods

    files = series_files(tmp_path)
    monkeypatch.setattr(periods, "MAX_SERIES_VALUES", 16 * 60)
    with pytest.raises(GankitError, match="1,120 values.*at most 960"):
        load_dataset(f"series:{files}")
    assert MAX_SERIES_VALUES == 2**24
    monkeypatch.setattr(periods, "MAX_SERIES_FILE_BYTES", 100)
    with pytest.raises(GankitError, match="larger than the 100 bytes"):
        load_dataset(f"series:{files}")
    monkeypatch.undo()
    os.symlink(tmp_path / "later.csv", tmp_path / "link.csv")
    with pytest.raises(GankitError, match="link.csv' is a link; give the file itself"):
        load_dataset(f"series:{tmp_path / 'earlier.npy'},{tmp_path / 'link.csv'}")
    with pytest.raises(GankitError, match="two files"):
        load_dataset(f"series:{tmp_path / 'earlier.npy'}")
    with pytest.raises(
        GankitError, match="unknown measure 'ink'; valid: amplitude, level_trend, size, trend"
    ):
        load_dataset(f"series:{files}", measure="ink")


# --------------------------------------------------------------------------- a run on them
def series_run_config(data: str, steps: int = 6) -> dict:
    return {
        "name": "mine",
        "model": {"name": "change", "width": 16, "n_layers": 1, "lr": 1e-3},
        "data": {"name": f"series:{data}"},
        "train": {"steps": steps, "batch_size": 8, "log_every": 3, "sample_every": 100,
                  "ckpt_every": steps, "progress": False, "threads": 1},
    }  # fmt: skip


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    """A change run trained a few steps on series files (plumbing, not learning)."""
    root = tmp_path_factory.mktemp("series-run")
    data = series_files(root)
    return gankit.train(series_run_config(data), runs_dir=root / "runs").run_dir, root


def test_eval_on_unpaired_series_scores_control_and_fd_and_says_why_not_more(series_run):
    run_dir, _ = series_run
    result = cli("eval", run_dir, "--n", "50")
    assert result.exit_code == 0, result.output
    assert "individual scores: missing (the data has no hidden pairs" in result.output
    scores = json.loads((run_dir / "eval.json").read_text())["scores"]
    assert {"control", "fd", "fd_before", "identity"} <= set(scores)
    # no hidden truth, so no score that would need it
    assert not {"individual_error", "calibration_error", "calibration_rank"} & set(scores)


def test_a_bad_series_file_stops_training_in_one_line(tmp_path):
    np.save(tmp_path / "earlier.npy", sines(10))
    np.save(tmp_path / "later.npy", np.where(np.eye(10, 16) > 0, np.nan, sines(10)))
    config = tmp_path / "run.yaml"
    data = f"{tmp_path / 'earlier.npy'},{tmp_path / 'later.npy'}"
    config.write_text(json.dumps(series_run_config(data)))
    result = cli("train", config, "--runs-dir", tmp_path / "runs", "--no-progress")
    one_line_error(result, "later.npy", "nan in series 1, point 1", "finite")


# --------------------------------------------------------------------------- image folders
def image_periods(root, n: int = 4, size: int = 8) -> str:
    """``root/earlier`` and ``root/later``: tiny PNGs of a bar, thin then thick."""
    for period, width in (("earlier", 1), ("later", 3)):
        (root / period).mkdir(parents=True)
        for i in range(n):
            pixels = np.zeros((size, size), dtype=np.uint8)
            pixels[1:-1, 2 + i % 3 : 2 + i % 3 + width] = 255
            Image.fromarray(pixels).save(root / period / f"{i}.png")
    return str(root)


def test_image_folders_by_period(tmp_path):
    bundle = load_dataset(f"periods:{image_periods(tmp_path)}", resolution=8, channels=1)
    later = bundle.domain_b
    assert bundle.kind == later.kind == "image" and bundle.shape == later.shape == (1, 8, 8)
    assert len(bundle.train) + len(bundle.test) == len(later.train) + len(later.test) == 4
    assert len(bundle.test) == 1 and later.extra == {}
    # the later bars are thicker: more ink
    assert later.train.tensors[0].mean() > bundle.train.tensors[0].mean()
    assert bundle.extra["readback"].name == "size"


def test_bad_image_periods_are_one_line_errors(tmp_path):
    (tmp_path / "earlier").mkdir()
    with pytest.raises(GankitError, match="no folder .*later.*DIR/earlier/ and DIR/later/"):
        load_dataset(f"periods:{tmp_path}")
    image_periods(tmp_path / "ok")
    os.symlink(tmp_path / "ok" / "later", tmp_path / "later")
    with pytest.raises(GankitError, match="is a link"):
        load_dataset(f"periods:{tmp_path}")
    (tmp_path / "ok" / "later" / "3.png").write_bytes(b"not a png")
    with pytest.raises(GankitError, match="cannot read image .*3.png"):
        load_dataset(f"periods:{tmp_path / 'ok'}", resolution=8)
    with pytest.raises(
        GankitError, match="unknown measure 'trend'; valid: fade, ink_fade, rotate, size, thicken"
    ):
        load_dataset(f"periods:{tmp_path / 'ok'}", measure="trend")


# --------------------------------------------------------------------------- translate, explore
def test_translate_changes_a_series_file_into_csv_or_npy_with_a_plot(series_run, tmp_path):
    run_dir, root = series_run
    source = root / "later.csv"  # 30 series of 16 points, as the source reads them
    result = cli("translate", run_dir, "--amount", "0.5", "--input", source,
                 "--out", tmp_path / "half.csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half.csv", "half.png"]
    written = np.loadtxt(tmp_path / "half.csv", delimiter=",")
    run = gankit.load_run(run_dir)
    x = torch.from_numpy(np.loadtxt(source, delimiter=",")).float()
    expected = run.model.change(x, 0.5, run.sampler_net)
    assert written.shape == (30, 16)
    assert np.allclose(written, expected.numpy(), atol=1e-6)
    with Image.open(tmp_path / "half.png") as plot:
        assert plot.size[0] > 300 and plot.size[1] > 200
    result = cli("translate", run_dir, "--amount", "1", "--input", root / "earlier.npy",
                 "--out", tmp_path / "full.npy")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "full.npy").shape == (40, 16)
    # the same again without --overwrite, an image suffix, a folder, another length
    again = ("--amount", "0.5", "--input", source, "--out", tmp_path / "half.csv")
    one_line_error(cli("translate", run_dir, *again), "already exists")
    bad_out = ("--amount", "0.5", "--input", source, "--out", tmp_path / "o.png")
    one_line_error(cli("translate", run_dir, *bad_out), "--out", ".npy or .csv")
    folder = ("--amount", "0.5", "--input", root, "--out", tmp_path / "x.csv")
    one_line_error(cli("translate", run_dir, *folder), "is a folder", "series")
    np.save(tmp_path / "short.npy", sines(3, length=8))
    short = ("--amount", "0.5", "--input", tmp_path / "short.npy", "--out", tmp_path / "x.csv")
    one_line_error(cli("translate", run_dir, *short), "8 points", "series of 16")
    one_line_error(cli("translate", run_dir, "--input", source, "--out", tmp_path / "x.csv"),
                   "--amount")  # fmt: skip


def test_explore_draws_a_labelled_plot_of_a_series_run(series_run):
    run_dir, _ = series_run
    result = cli("explore", run_dir, "--what", "change", "--pairs", "4")
    assert result.exit_code == 0, result.output
    with Image.open(run_dir / "explore" / "change.png") as picture:
        assert picture.size[0] > 600
