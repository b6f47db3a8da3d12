"""File-backed data sources: IDX, CIFAR-10 pickles, image folders, and finding files.

Every test writes its own tiny files under ``tmp_path``; the Debian folder, the user
cache and ``$GANKIT_DATA`` are redirected there, and the network fetch is replaced,
so nothing outside ``tmp_path`` is read or written and nothing is downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from conftest import write_idx, write_mnist_like
from gankit.data import NO_LABEL, load_dataset
from gankit.data import cifar as cifar_module
from gankit.data import download as download_module
from gankit.data import idx as idx_module
from gankit.data.cifar import cifar10
from gankit.data.folders import folder
from gankit.data.idx import fashion_mnist, mnist, read_idx
from gankit.errors import GankitError

IDX_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Point every search location into tmp_path, and forbid the network."""
    monkeypatch.setattr(download_module, "DEBIAN_DATASETS", tmp_path / "debian")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GANKIT_CACHE", raising=False)
    monkeypatch.delenv("GANKIT_DATA", raising=False)

    def no_network(url, destination):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(download_module, "fetch_url", no_network)


def cache(tmp_path: Path, dataset: str) -> Path:
    return tmp_path / "cache" / "gankit" / dataset


# --------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_exact(tmp_path, gz):
    images = np.arange(3 * 2 * 4, dtype=np.uint8).reshape(3, 2, 4)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    read_images = read_idx(write_idx(tmp_path / "images-idx3-ubyte", images, gz))
    read_labels = read_idx(write_idx(tmp_path / "labels-idx1-ubyte", labels, gz))
    assert read_images.dtype == torch.uint8 and tuple(read_images.shape) == (3, 2, 4)
    assert torch.equal(read_images, torch.from_numpy(images))
    assert torch.equal(read_labels, torch.from_numpy(labels))


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32])
def test_idx_multibyte_types_are_big_endian(tmp_path, dtype):
    values = np.array([[1, -2, 300], [10000, 5, -6]], dtype=dtype)
    read = read_idx(write_idx(tmp_path / "values.idx", values))
    np.testing.assert_array_equal(read.numpy(), values)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda good: b"\x12\x34" + good[2:], id="bad-magic"),
        pytest.param(lambda good: good[:-5], id="truncated-data"),
        pytest.param(lambda good: good[:6], id="truncated-header"),
        pytest.param(lambda good: gzip.compress(good)[:20], id="truncated-gzip"),
        pytest.param(lambda good: b"", id="empty"),
    ],
)
def test_corrupt_idx_names_the_file(tmp_path, corrupt):
    good_path = write_idx(tmp_path / "good", np.zeros((2, 3, 3), dtype=np.uint8))
    bad_path = tmp_path / "bad-images-idx3-ubyte"
    bad_path.write_bytes(corrupt(good_path.read_bytes()))
    with pytest.raises(GankitError, match="bad-images-idx3-ubyte") as info:
        read_idx(bad_path)
    assert "\n" not in str(info.value)


def test_fashion_change_from_data_dir(tmp_path):
    """fashion-change builds its later domain from the files: each later item is an
    earlier item of the same split faded by its hidden m (fade is the default operator,
    its read-back returns m), with the earlier item's label."""
    from gankit.data.change import fashion_change

    write_mnist_like(tmp_path / "fm", n_train=40, n_test=12)
    bundle = fashion_change(data_dir=str(tmp_path / "fm"), download=False, seed=3)
    later = bundle.domain_b
    assert bundle.extra["change"].name == "fade" and later.shape == (1, 28, 28)
    for split, earlier_split, later_split in (
        ("train", bundle.train, later.train),
        ("test", bundle.test, later.test),
    ):
        source = later.extra["source_index"][split]
        x, y = earlier_split.tensors
        changed, labels = later_split.tensors
        assert torch.equal(labels, y[source])
        m = later.extra["magnitude"][split]
        assert torch.allclose(bundle.extra["change"].measure(x[source], changed), m, atol=1e-4)
    again = fashion_change(data_dir=str(tmp_path / "fm"), download=False, seed=3)
    assert torch.equal(again.domain_b.train.tensors[0], later.train.tensors[0])


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_data_dir(tmp_path, gz):
    arrays = write_mnist_like(tmp_path / "fm", gz=gz)
    bundle = fashion_mnist(data_dir=str(tmp_path / "fm"), download=False)
    x_train, y_train = bundle.train.tensors
    x_test, y_test = bundle.test.tensors
    assert bundle.kind == "image" and bundle.shape == (1, 28, 28)
    assert x_train.shape == (5, 1, 28, 28) and x_test.shape == (3, 1, 28, 28)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float() / 127.5 - 1
    assert torch.allclose(x_train[:, 0], expected)
    assert y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert y_test.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert bundle.num_classes == 10 and bundle.class_names[0] == "T-shirt/top"
    assert bundle.class_names[9] == "Ankle boot"
    assert str(tmp_path / "fm") in bundle.info


def test_mnist_resolution_and_limit(tmp_path):
    write_mnist_like(tmp_path / "mnist")
    bundle = mnist(data_dir=str(tmp_path), resolution=16, limit=2, download=False)
    x_train = bundle.train.tensors[0]
    assert x_train.shape == (2, 1, 16, 16) and len(bundle.test) == 2
    assert bundle.shape == (1, 16, 16)
    assert x_train.min() >= -1 and x_train.max() <= 1
    assert bundle.class_names == [str(d) for d in range(10)]


def test_idx_resolution_must_be_supported(tmp_path):
    with pytest.raises(GankitError, match=r"resolution 30 .*valid: 8, 16, 28, 32, 64"):
        fashion_mnist(data_dir=str(tmp_path), resolution=30)


def test_idx_label_file_must_match_images(tmp_path):
    write_mnist_like(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8), gz=True)
    with pytest.raises(GankitError, match="t10k-labels-idx1-ubyte"):
        mnist(data_dir=str(tmp_path), download=False)


# --------------------------------------------------------------------------- search order
def test_search_order(tmp_path, monkeypatch):
    """data_dir > $GANKIT_DATA > Debian > user cache; each place has a different size."""
    places = {
        "data_dir": tmp_path / "mine",
        "env": tmp_path / "env" / "fashion-mnist",
        "debian": tmp_path / "debian" / "fashion-mnist",
        "cache": cache(tmp_path, "fashion-mnist"),
    }
    for n_train, place in enumerate(places.values(), start=1):
        write_mnist_like(place, n_train=n_train)
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "env"))

    def found(**options) -> int:
        return len(fashion_mnist(download=False, **options).train)

    assert found(data_dir=str(places["data_dir"])) == 1
    assert found() == 2
    shutil.rmtree(tmp_path / "env")
    assert found() == 3
    shutil.rmtree(tmp_path / "debian")
    assert found() == 4


def test_torchvision_layout_is_found(tmp_path):
    write_mnist_like(tmp_path / "root" / "FashionMNIST" / "raw", gz=False)
    assert len(fashion_mnist(data_dir=str(tmp_path / "root"), download=False).train) == 5


def test_files_must_be_together(tmp_path):
    """Half the files in data_dir and half in the cache is not a dataset."""
    write_mnist_like(tmp_path / "mine")
    for name in IDX_NAMES[2:]:
        (tmp_path / "mine" / f"{name}.gz").unlink()
    with pytest.raises(GankitError, match="not found"):
        fashion_mnist(data_dir=str(tmp_path / "mine"), download=False)


def expected_paths(tmp_path: Path) -> list[str]:
    return [
        str(tmp_path / "mine"),
        str(tmp_path / "mine" / "fashion-mnist"),
        str(tmp_path / "env"),
        str(tmp_path / "env" / "fashion-mnist"),
        str(tmp_path / "debian" / "fashion-mnist"),
        str(cache(tmp_path, "fashion-mnist")),
    ]


def test_not_found_with_download_disabled_lists_every_path(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "env"))
    with pytest.raises(GankitError) as info:
        fashion_mnist(data_dir=str(tmp_path / "mine"), download=False)
    message = str(info.value)
    assert "\n" not in message
    for path in expected_paths(tmp_path):
        assert path in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "download disabled" in message


def test_not_found_when_offline_lists_every_path(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "env"))

    def offline(url, destination):
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(download_module, "fetch_url", offline)
    with pytest.raises(GankitError) as info:
        fashion_mnist(data_dir=str(tmp_path / "mine"))
    message = str(info.value)
    assert "\n" not in message
    for path in expected_paths(tmp_path):
        assert path in message
    assert "download failed" in message and "Network is unreachable" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert not any(cache(tmp_path, "fashion-mnist").glob("*")), "no partial file is left"


# --------------------------------------------------------------------------- download
def fake_server(tmp_path: Path, monkeypatch, files: Path) -> list[str]:
    """Serve the files in ``files`` by URL basename; returns the URLs requested."""
    requested = []

    def fetch(url, destination):
        requested.append(url)
        shutil.copyfile(files / url.rsplit("/", 1)[-1], destination)

    monkeypatch.setattr(download_module, "fetch_url", fetch)
    return requested


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_verifies_md5_then_caches(tmp_path, monkeypatch):
    served = tmp_path / "server"
    write_mnist_like(served, gz=True)
    requested = fake_server(tmp_path, monkeypatch, served)
    good_md5 = {name: md5_of(served / f"{name}.gz") for name in IDX_NAMES}
    monkeypatch.setattr(idx_module, "FASHION_MNIST_MD5", good_md5)

    bundle = fashion_mnist()
    assert len(bundle.train) == 5
    assert requested == [f"{idx_module.FASHION_MNIST_URL}{name}.gz" for name in IDX_NAMES]
    assert requested[0].startswith("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
    cached = cache(tmp_path, "fashion-mnist")
    assert sorted(p.name for p in cached.iterdir()) == sorted(f"{n}.gz" for n in IDX_NAMES)
    assert str(cached) in bundle.info

    # Second load: found in the cache, nothing fetched again.
    fashion_mnist()
    assert len(requested) == 4


def test_download_with_wrong_md5_is_deleted(tmp_path, monkeypatch):
    served = tmp_path / "server"
    write_mnist_like(served, gz=True)
    fake_server(tmp_path, monkeypatch, served)
    # The real published MD5s cannot match these tiny files.
    with pytest.raises(GankitError, match="checksum mismatch") as info:
        fashion_mnist()
    assert "8d4fb7e6c68d591d4c3dfef9ec88bf0d" in str(info.value)
    assert "\n" not in str(info.value)
    assert list(cache(tmp_path, "fashion-mnist").iterdir()) == []


def test_find_or_fetch_directly(tmp_path, monkeypatch):
    served = tmp_path / "server"
    served.mkdir()
    (served / "a.bin").write_bytes(b"payload")
    fake_server(tmp_path, monkeypatch, served)
    urls = {"a.bin": "https://example.invalid/files/a.bin"}
    common = {"dataset": "toyset", "data_dir": None, "urls": urls, "hint": "ask a friend"}

    with pytest.raises(GankitError, match=r"checksum mismatch .*ask a friend"):
        download_module.find_or_fetch(filenames=["a.bin"], md5={"a.bin": "0" * 32}, **common)
    assert list(cache(tmp_path, "toyset").iterdir()) == []

    found = download_module.find_or_fetch(
        filenames=["a.bin"], md5={"a.bin": md5_of(served / "a.bin")}, **common
    )
    assert found == cache(tmp_path, "toyset")
    assert (found / "a.bin").read_bytes() == b"payload"


def test_gankit_cache_moves_the_download_cache(tmp_path, monkeypatch):
    served = tmp_path / "server"
    served.mkdir()
    (served / "a.bin").write_bytes(b"payload")
    fake_server(tmp_path, monkeypatch, served)
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "elsewhere"))

    found = download_module.find_or_fetch(
        "toyset", ["a.bin"], None, {"a.bin": "https://example.invalid/a.bin"}, {}, "hint"
    )
    assert found == tmp_path / "elsewhere" / "toyset"
    assert (found / "a.bin").read_bytes() == b"payload"
    assert not cache(tmp_path, "toyset").exists(), "$XDG_CACHE_HOME is not used"


# --------------------------------------------------------------------------- CIFAR-10
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer"]
CIFAR_NAMES += ["dog", "frog", "horse", "ship", "truck"]


def write_cifar(directory: Path, per_batch: int = 4) -> dict[str, dict]:
    """The official layout with tiny batches; byte keys, as in the real files."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    batches = {}
    for b, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        batch = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": [(b + i) % 10 for i in range(per_batch)],
        }
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = batch
    meta = {b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
    (directory / "batches.meta").write_bytes(pickle.dumps(meta))
    return batches


def check_cifar(bundle, batches: dict[str, dict], per_batch: int = 4) -> None:
    x_train, y_train = bundle.train.tensors
    assert x_train.shape == (5 * per_batch, 3, 32, 32) and bundle.shape == (3, 32, 32)
    assert len(bundle.test) == per_batch
    assert bundle.class_names == CIFAR_NAMES and bundle.num_classes == 10
    first = batches["data_batch_1"][b"data"][0]
    # Row layout: 1024 red, then 1024 green, then 1024 blue, each row-major.
    assert x_train[0, 0, 0, 0].item() == pytest.approx(first[0] / 127.5 - 1)
    assert x_train[0, 1, 0, 1].item() == pytest.approx(first[1025] / 127.5 - 1)
    assert x_train[0, 2, 1, 0].item() == pytest.approx(first[2048 + 32] / 127.5 - 1)
    expected_labels = [
        label for i in range(1, 6) for label in batches[f"data_batch_{i}"][b"labels"]
    ]
    assert y_train.tolist() == expected_labels
    assert bundle.test.tensors[1].tolist() == batches["test_batch"][b"labels"]


def test_cifar_from_extracted_folder(tmp_path):
    batches = write_cifar(tmp_path / "data" / "cifar-10-batches-py")
    bundle = cifar10(data_dir=str(tmp_path / "data"), download=False)
    check_cifar(bundle, batches)
    assert "cifar-10-batches-py" in bundle.info


def test_cifar_from_tarball_extracts_into_cache(tmp_path):
    batches = write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    (tmp_path / "data").mkdir()
    with tarfile.open(tmp_path / "data" / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    bundle = cifar10(data_dir=str(tmp_path / "data"), download=False)
    check_cifar(bundle, batches)
    extracted = cache(tmp_path, "cifar10") / "cifar-10-batches-py"
    assert (extracted / "data_batch_5").is_file()
    assert str(extracted) in bundle.info
    assert [p.name for p in cache(tmp_path, "cifar10").iterdir()] == ["cifar-10-batches-py"]


def test_cifar_limit_and_resolution(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    bundle = cifar10(data_dir=str(tmp_path), download=False, limit=6, resolution=8)
    assert bundle.train.tensors[0].shape == (6, 3, 8, 8) and len(bundle.test) == 4
    with pytest.raises(GankitError, match="resolution 12"):
        cifar10(data_dir=str(tmp_path), resolution=12)


def test_cifar_tarball_with_unsafe_member_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    with tarfile.open(tmp_path / "data" / "cifar-10-python.tar.gz", "w:gz") as archive:
        member = tarfile.TarInfo("../escaped")
        member.size = 4
        archive.addfile(member, io.BytesIO(b"evil"))
    with pytest.raises(GankitError, match=r"unsafe path '\.\./escaped'"):
        cifar10(data_dir=str(tmp_path / "data"), download=False)
    assert not (cache(tmp_path, "cifar10").parent / "escaped").exists()
    assert not (tmp_path / "cache" / "escaped").exists()


def test_cifar_pickle_with_foreign_code_is_refused(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    # A pickle that would call os.getcwd() on load: any callable is refused.
    evil = b"cos\ngetcwd\n(tR."
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(evil)
    with pytest.raises(GankitError, match=r"data_batch_1.*refusing to load os"):
        cifar10(data_dir=str(tmp_path), download=False)


def test_cifar_not_found_message(tmp_path):
    with pytest.raises(GankitError, match=r"cifar10 not found.*cifar-10-python\.tar\.gz"):
        cifar10(data_dir=str(tmp_path / "nothing"), download=False)


def test_cifar_download_path(tmp_path, monkeypatch):
    write_cifar(tmp_path / "src" / "cifar-10-batches-py")
    served = tmp_path / "server"
    served.mkdir()
    with tarfile.open(served / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    requested = fake_server(tmp_path, monkeypatch, served)
    monkeypatch.setattr(cifar_module, "TARBALL_MD5", md5_of(served / "cifar-10-python.tar.gz"))
    bundle = cifar10()
    assert requested == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert len(bundle.train) == 20


# --------------------------------------------------------------------------- folders
def solid(path: Path, color, size=(10, 6), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def make_class_folders(root: Path) -> None:
    solid(root / "cats" / "a.png", (255, 0, 0))
    solid(root / "cats" / "b.JPG", (255, 0, 0))
    solid(root / "dogs" / "nested" / "c.bmp", (0, 0, 255))
    solid(root / "dogs" / "d.png", (0, 255, 0), size=(5, 20))
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "junk.png").write_bytes(b"junk")
    (root / "dogs" / "._d.png").write_bytes(b"macOS resource fork")


def test_folder_with_class_subfolders(tmp_path):
    make_class_folders(tmp_path / "pets")
    bundle = folder(path=str(tmp_path / "pets"), resolution=8)
    assert bundle.in_memory and bundle.test is None
    assert bundle.class_names == ["cats", "dogs"] and bundle.num_classes == 2
    x, y = bundle.train.tensors
    assert x.shape == (4, 3, 8, 8) and bundle.shape == (3, 8, 8)
    # Sorted by relative path: cats/a.png, cats/b.JPG, dogs/d.png, dogs/nested/c.bmp.
    assert y.tolist() == [0, 0, 1, 1]
    assert torch.allclose(x[0], torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1))
    assert torch.allclose(x[2], torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1))
    assert torch.allclose(x[3], torch.tensor([-1.0, -1.0, 1.0]).view(3, 1, 1))
    assert "2 classes" in bundle.info


def test_folder_unlabelled_and_grayscale(tmp_path):
    solid(tmp_path / "top.png", 200, mode="L")
    solid(tmp_path / "sub" / "deeper.png", (255, 255, 255))
    bundle = folder(path=str(tmp_path), resolution=16, channels=1)
    x, y = bundle.train.tensors
    assert x.shape == (2, 1, 16, 16)
    assert y.tolist() == [NO_LABEL, NO_LABEL]
    assert bundle.num_classes is None and bundle.class_names is None
    # Sorted by relative path: sub/deeper.png, then top.png.
    assert x[0].eq(1.0).all() and x[1].sub(200 / 127.5 - 1).abs().max() < 1e-6


def test_folder_center_crops_without_stretching(tmp_path):
    image = Image.new("RGB", (30, 10), (0, 0, 0))
    image.paste((255, 255, 255), (10, 0, 20, 10))  # the centre third is white
    image.save(tmp_path / "wide.png")
    x = folder(path=str(tmp_path), resolution=8).train.tensors[0]
    assert x.shape == (1, 3, 8, 8)
    assert x[0, :, :, 2:6].min() > 0.9, "the centre square is the white band"


def test_folder_corrupt_file_is_named_or_skipped(tmp_path):
    make_class_folders(tmp_path)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(GankitError, match=r"broken\.png.*skip_bad: true") as info:
        folder(path=str(tmp_path), resolution=8)
    assert "\n" not in str(info.value)

    bundle = folder(path=str(tmp_path), resolution=8, skip_bad=True)
    assert len(bundle.train) == 4
    assert "skipped 1 unreadable" in bundle.info
    assert bundle.extra["skipped_files"] == [str(tmp_path / "dogs" / "broken.png")]


def test_folder_streaming_path(tmp_path):
    make_class_folders(tmp_path)
    bundle = folder(path=str(tmp_path), resolution=16, in_memory_limit=2)
    assert not isinstance(bundle.train, TensorDataset) and not bundle.in_memory
    assert len(bundle.train) == 4
    x, y = bundle.train[2]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.item() == 1
    assert "streamed" in bundle.info
    batch_x, batch_y = next(iter(torch.utils.data.DataLoader(bundle.train, batch_size=4)))
    assert batch_x.shape == (4, 3, 16, 16) and batch_y.tolist() == [0, 0, 1, 1]


def test_folder_streams_when_decoded_images_would_be_too_large(tmp_path, monkeypatch):
    from gankit.data import folders

    make_class_folders(tmp_path)
    # 4 images of 3 x 16 x 16 float32 = 12,288 bytes; below the count limit, above this
    monkeypatch.setattr(folders, "IN_MEMORY_BYTES", 12_287)
    assert "streamed" in folder(path=str(tmp_path), resolution=16).info
    monkeypatch.setattr(folders, "IN_MEMORY_BYTES", 12_288)
    assert "in memory" in folder(path=str(tmp_path), resolution=16).info


def test_folder_streaming_bad_files(tmp_path):
    make_class_folders(tmp_path)
    (tmp_path / "cats" / "aa_broken.png").write_bytes(b"not a png at all")
    # A truncated JPEG passes Image.verify() and only fails when decoded.
    # (Noise, so the cut falls in the pixel data rather than in the header.)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    jpeg = io.BytesIO()
    Image.fromarray(noise).save(jpeg, format="JPEG")
    (tmp_path / "dogs" / "a_truncated.jpg").write_bytes(
        jpeg.getvalue()[: len(jpeg.getvalue()) // 2]
    )

    strict = folder(path=str(tmp_path), resolution=8, in_memory_limit=2)
    assert len(strict.train) == 6, "nothing is decoded up front without skip_bad"
    with pytest.raises(GankitError, match=r"aa_broken\.png.*skip_bad"):
        strict.train[1]

    lenient = folder(path=str(tmp_path), resolution=8, in_memory_limit=2, skip_bad=True)
    assert len(lenient.train) == 5 and "skipped 1 unreadable" in lenient.info
    # cats/a, cats/b, dogs/a_truncated, dogs/d, dogs/nested/c: the truncated one is
    # replaced at read time by the next readable image.
    with pytest.warns(UserWarning, match="a_truncated"):
        x, y = lenient.train[2]
    assert y.item() == 1 and torch.allclose(x[:, 0, 0], torch.tensor([-1.0, 1.0, -1.0]))


def test_folder_test_fraction_is_deterministic(tmp_path):
    for i in range(10):
        solid(tmp_path / f"{i:02d}.png", (i * 20, 0, 0))

    def split(seed):
        bundle = folder(path=str(tmp_path), resolution=8, test_fraction=0.3, seed=seed)
        return bundle.train.tensors[0][:, 0, 0, 0], bundle.test.tensors[0][:, 0, 0, 0]

    train, test = split(0)
    assert len(train) == 7 and len(test) == 3
    assert not set(train.tolist()) & set(test.tolist())
    again_train, again_test = split(0)
    assert torch.equal(train, again_train) and torch.equal(test, again_test)
    assert any(not torch.equal(test, split(seed)[1]) for seed in (1, 2, 3))

    streamed = folder(path=str(tmp_path), resolution=8, test_fraction=0.3, in_memory_limit=0)
    assert len(streamed.train) == 7 and len(streamed.test) == 3
    assert torch.equal(torch.stack([x[0, 0, 0] for x, _ in streamed.test]), test)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"resolution": 30}, r"resolution 30 .*valid: 8, 16, 28, 32, 64"),
        ({"channels": 2}, r"channels must be 1 .* or 3 .*got 2"),
        ({"test_fraction": 1.0}, r"test_fraction must be in \[0, 1\)"),
        ({"in_memory_limit": -1}, "in_memory_limit"),
    ],
)
def test_folder_option_validation(tmp_path, options, match):
    solid(tmp_path / "x.png", (0, 0, 0))
    with pytest.raises(GankitError, match=match):
        folder(path=str(tmp_path), **options)


def test_folder_missing_or_empty(tmp_path):
    with pytest.raises(GankitError, match="nope"):
        folder(path=str(tmp_path / "nope"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    with pytest.raises(GankitError, match=r"no images in .*empty"):
        folder(path=str(tmp_path / "empty"))


# --------------------------------------------------------------------------- registry
def test_folder_through_registry(tmp_path):
    make_class_folders(tmp_path / "pets")
    bundle = load_dataset("folder:" + str(tmp_path / "pets"), resolution=8, channels=1)
    assert bundle.name == "folder:" + str(tmp_path / "pets")
    assert bundle.shape == (1, 8, 8) and len(bundle.train) == 4
    with pytest.raises(GankitError, match="channels"):
        load_dataset("folder:" + str(tmp_path / "pets"), channels="3")


def test_idx_and_cifar_through_registry(tmp_path):
    write_mnist_like(tmp_path / "fashion-mnist")
    write_cifar(tmp_path / "cifar10" / "cifar-10-batches-py")
    fm = load_dataset("fashion-mnist", data_dir=str(tmp_path), download=False, limit=2)
    assert fm.name == "fashion-mnist" and len(fm.train) == 2
    c10 = load_dataset("cifar10", data_dir=str(tmp_path), download=False, limit=3)
    assert c10.shape == (3, 32, 32) and len(c10.train) == 3
    with pytest.raises(GankitError, match="limit"):
        load_dataset("mnist", limit="all")
