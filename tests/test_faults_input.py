"""Trust: bad input and resource bombs, met the way a user meets them.

Each test drives the ``gankit`` command on tiny runs with files the test builds: typer's
runner in this process, or a real ``python -m gankit`` process, under a memory limit
and a timeout, where the input could otherwise fill memory or hang. Every case must end
in one line ``gankit: error: ...`` naming the thing at fault, with exit code 2.
docs/trust.md lists the bound each test checks.
"""

from __future__ import annotations

import gzip
import inspect
import os
import resource
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import gankit
from conftest import cli, one_line_error, tiny_config
from gankit.errors import GankitError
from gankit.registry import get_spec

SRC = Path(gankit.__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX limits and FIFOs")


#: Address space for a bounded ``gankit`` process: a tiny run needs about 1 GiB (torch
#: reserves much of it); each bomb below would need several more.
MEMORY_LIMIT = 2 * 2**30


class Process:
    """What a real ``python -m gankit`` process did, shaped like the runner's result."""

    def __init__(self, done: subprocess.CompletedProcess):
        self.exit_code, self.stderr = done.returncode, done.stderr
        self.output = done.stdout + done.stderr


def bounded_gankit(*args, timeout: float = 90, memory: int = MEMORY_LIMIT) -> Process:
    """``python -m gankit ARGS`` with at most ``memory`` bytes of address space; a hang
    fails the test after ``timeout`` seconds."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "gankit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
        env=env,
    )
    return Process(done)


def train_args(config: dict, runs: Path, *extra) -> list:
    path = runs.parent / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["train", path, "--runs-dir", runs, "--no-progress", *extra]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A tiny GAN run on the ring, and a tiny CycleGAN run between digits and digits-m."""
    runs = tmp_path_factory.mktemp("faults") / "runs"
    runs.mkdir()
    assert cli(*train_args(tiny_config("gan", "ring", steps=2), runs)).exit_code == 0
    translator = tiny_config("cyclegan", "digits", steps=2)
    translator["model"].update(identity_weight=0.0, n_blocks=1)
    translator["data"].update(target="digits-m", target_options={"resolution": 8})
    translator["train"].update(batch_size=4, threads=1)
    assert cli(*train_args(translator, runs)).exit_code == 0
    return runs


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG of a few bytes that declares ``width`` x ``height`` RGBA pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def image_folder(root: Path, n: int = 8) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("L", (8, 8), 30 * i).save(root / f"{i:02d}.png")
    return root


def folder_config(root: Path, **data) -> dict:
    config = tiny_config("gan", "ring", steps=2)
    config["data"] = {"name": f"folder:{root}", "resolution": 8, "channels": 1, **data}
    config["train"]["batch_size"] = 4
    return config


# --- resource bombs
#: The classic "billion laughs": nine levels of nine aliases, 10^9 strings from 500 bytes.
LAUGHS = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [
        f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
        for previous, name in zip("abcdefgh", "bcdefghi")
    ]
)


def test_billion_laughs_config_file_is_refused_in_bounded_memory(tmp_path):
    assert len(LAUGHS) < 600
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text(LAUGHS)
    result = bounded_gankit("train", bomb, "--runs-dir", tmp_path / "runs", timeout=60)
    one_line_error(result, "laughs.yaml", "more than 10000 values (aliases expanded)")


def test_billion_laughs_in_a_set_value_is_refused_in_bounded_memory(tmp_path):
    flow = "[" + ", ".join(line.split(": ", 1)[1] for line in LAUGHS.splitlines()) + "]"
    result = bounded_gankit(
        "train", "gan-ring", "--set", f"model.betas={flow}", "--runs-dir", tmp_path, timeout=60
    )
    one_line_error(result, "--set value", "more than 10000 values (aliases expanded)")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: &a [*a]", ["repeats a node that contains it"]),
        ("x: " + "[" * 5000 + "]" * 5000, ["nested deeper than 64 levels"]),
        ("x: " + "1" * 5000, ["not valid YAML", "digits"]),
        ("x: !!timestamp 2024-02-30", ["not valid YAML", "day is out of range"]),
        ("#" * (2**20 + 1), ["bytes; a config is at most 1048576"]),
    ],
    ids=["recursive alias", "deep nesting", "huge integer", "bad date", "over 1 MiB"],
)
def test_odd_yaml_config_files_are_one_line(tmp_path, text, words):
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    one_line_error(cli("train", path, "--runs-dir", tmp_path), "odd.yaml", *words)


def test_a_config_file_that_is_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    one_line_error(cli("train", fifo, "--runs-dir", tmp_path), "is not a regular file")


def write_idx(path: Path, array: np.ndarray) -> None:
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(bytes([0, 0, 0x08, array.ndim]) + dims + array.tobytes()))


def mnist_folder(root: Path, images: bytes | None = None) -> Path:
    """The four MNIST files, tiny; ``images`` replaces the training images' bytes."""
    root.mkdir(parents=True, exist_ok=True)
    zeros = np.zeros((10, 28, 28), np.uint8)
    labels = np.arange(10, dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", zeros)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    if images is not None:
        (root / "train-images-idx3-ubyte.gz").write_bytes(images)
    return root


def mnist_args(root: Path, runs: Path) -> list:
    config = tiny_config("gan", "ring", steps=2)
    config["data"] = {"name": "mnist", "data_dir": str(root), "download": False, "limit": 10}
    return train_args(config, runs)


def test_gzip_idx_bomb_stops_where_its_header_says_in_bounded_memory(tmp_path):
    """A 3 MB gzip whose header promises 10 images of 28x28 and whose data expands to
    3 GB: gankit reads the 7,840 bytes promised and one more, and refuses the file."""
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 10, 28, 28)
    zeros = gzip.compress(bytes(2**20))  # gzip members concatenate into one stream
    bomb = gzip.compress(header + bytes(10 * 28 * 28)) + zeros * 3000
    assert len(bomb) < 4 * 2**20
    root = mnist_folder(tmp_path / "mnist", images=bomb)
    result = bounded_gankit(*mnist_args(root, tmp_path / "runs"), timeout=60)
    one_line_error(result, "train-images-idx3-ubyte.gz", "is corrupt: it holds more than")


def test_idx_header_declaring_too_much_is_refused_before_reading(tmp_path):
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 4_000_000_000, 28, 28)
    root = mnist_folder(tmp_path / "mnist", images=gzip.compress(header))
    one_line_error(
        cli(*mnist_args(root, tmp_path / "runs")),
        "train-images-idx3-ubyte.gz",
        "more than the 1073741824 an IDX file may hold",
    )


def test_png_declaring_huge_dimensions_is_refused_in_bounded_memory(tmp_path):
    """13000 x 13000 RGBA: under Pillow's default error threshold (a warning only), 676 MB
    decoded; gankit refuses anything over 2**26 pixels before decoding."""
    root = image_folder(tmp_path / "images")
    png_header(root / "bomb.png", 13000, 13000)
    result = bounded_gankit(*train_args(folder_config(root), tmp_path / "runs"), timeout=60)
    one_line_error(result, "bomb.png", "declares over 67108864 pixels")


def test_huge_png_given_to_translate_is_one_line(runs, tmp_path):
    bomb = png_header(tmp_path / "bomb.png", 13000, 13000)
    result = cli("translate", "tiny-cyclegan", "--input", bomb, "--out", tmp_path / "out",
                 "--runs-dir", runs)  # fmt: skip
    one_line_error(result, "bomb.png", "declares over 67108864 pixels")


def test_sample_count_is_bounded_in_bounded_memory(runs, tmp_path):
    """--n 10^9 would be 16 GB of latents alone: refused before any is drawn."""
    out = tmp_path / "s.npy"
    result = bounded_gankit("sample", "tiny-gan", "--n", 10**9, "--out", out, "--runs-dir", runs)
    one_line_error(result, "--n must be an integer in [1, 50000], got 1000000000")
    assert not out.exists()


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["explore", "tiny-gan", "--n", 1025], ["--n", "[1, 1024]", "1025"]),
        (["explore", "tiny-gan", "--what", "interp", "--pairs", 65], ["--pairs", "[1, 64]"]),
        (["explore", "tiny-gan", "--what", "interp", "--steps", 65], ["--steps", "[1, 64]"]),
        (["sample", "tiny-gan", "--n", 1025, "--out", "s.png"], ["1024 samples a picture"]),
    ],
    ids=["explore --n", "explore --pairs", "explore --steps", "sample --n png"],
)
def test_picture_sizes_are_bounded(runs, tmp_path, command, words):
    """One over each bound, checked before anything is drawn. (In this process: were a
    bound missing, one over it would only draw a little more, and the test fail.)"""
    command = [tmp_path / c if str(c).startswith("s.") else c for c in command]
    one_line_error(cli(*command, "--runs-dir", runs), *words)


def test_sample_writes_npy_in_chunks_that_match_one_draw(runs, tmp_path):
    """Over 1,024 samples are drawn in chunks; the file holds the samples of one draw."""
    out = tmp_path / "many.npy"
    assert cli("sample", "tiny-gan", "--n", 2500, "--out", out, "--runs-dir", runs).exit_code == 0
    run = gankit.load_run("tiny-gan", runs)
    np.testing.assert_allclose(np.load(out), run.sample(2500).numpy(), rtol=1e-5, atol=1e-6)


def test_fifo_in_a_data_folder_is_refused_not_waited_on(tmp_path):
    """A FIFO named like an image would block its reader forever: it is an unreadable
    file, named; with skip_bad it is skipped and counted like one."""
    root = image_folder(tmp_path / "images")
    os.mkfifo(root / "x.png")
    result = bounded_gankit(*train_args(folder_config(root), tmp_path / "runs"), timeout=60)
    one_line_error(result, "x.png", "a FIFO, not a regular file", "skip_bad")

    from gankit.data import load_dataset

    bundle = load_dataset(f"folder:{root}", resolution=8, channels=1, skip_bad=True)
    assert len(bundle.train) == 8 and bundle.extra["skipped_files"] == [str(root / "x.png")]


def test_fifo_given_to_translate_is_refused_not_waited_on(runs, tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    result = bounded_gankit(
        "translate", "tiny-cyclegan", "--input", fifo, "--out", tmp_path / "out",
        "--runs-dir", runs, timeout=60,
    )  # fmt: skip
    one_line_error(result, "x.png", "a FIFO, not a regular file")


def test_fifo_given_as_a_text_file_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "corpus.txt"
    os.mkfifo(fifo)
    result = bounded_gankit(
        "train", "charlstm-devils", "--set", f"data.name=text:{fifo}", "--runs-dir", tmp_path,
        timeout=60,
    )  # fmt: skip
    one_line_error(result, "corpus.txt", "a FIFO, not a regular file")


# --- bad input
#: gan-ring for one step on few points: were a check missing, the test would fail quickly.
SHORT = ["--set", "train.steps=1", "--set", "data.n_test=64", "--no-progress"]
#: One preset per family file, with the names of its learning rate, of its Adam betas
#: (None: it has none to set) and of a size.
FAMILIES = {
    "gan-ring": ("lr_g", "betas", "latent_dim"),
    "dcgan-digits": ("lr_d", "betas", "latent_dim"),
    "cgan-digits": ("lr_g", "betas", "latent_dim"),
    "infogan-digits": ("lr_d", "betas", "g_channels"),
    "vae-digits": ("lr", None, "latent_dim"),
    "cyclegan-digits-m": ("lr", "betas", "channels"),
    "dann-digits-m": ("lr", None, "hidden_dim"),
    "pixel-digits-m": ("translator_lr", None, "translator_channels"),
    "adaptseg-segshift": ("lr_d", None, "channels"),
    "charlstm-devils": ("lr", None, "hidden_dim"),
    "pix2pix-edges2digits": ("lr", "betas", "channels"),
    "ssgan-digits": ("lr", "betas", "latent_dim"),
    "aae-digits": ("lr", None, "latent_dim"),
}
#: One over the bound of each size: were the bound missing, the model would still build.
OVER = {
    "latent_dim": 2049,
    "hidden_dim": 2049,
    "g_channels": 129,
    "channels": 129,
    "translator_channels": 129,
}
BAD_SETTINGS = [
    ("lr", ".nan", "must be finite (no .nan or .inf)"),
    ("lr", "-1", "must be a finite number > 0, got -1"),
    ("betas", "[2,3]", "betas must be two numbers in [0, 1), got [2, 3]"),
    ("size", "-1", "must be an integer in [1, "),
    ("size", "over", "must be an integer in [1, "),
]


@pytest.mark.parametrize("preset", sorted(FAMILIES))
@pytest.mark.parametrize(("which", "value", "message"), BAD_SETTINGS)
def test_bad_model_settings_are_one_line_for_every_family(tmp_path, preset, which, value, message):
    lr, betas, size = FAMILIES[preset]
    key = {"lr": lr, "betas": betas, "size": size}[which]
    if key is None:
        pytest.skip(f"{preset} has no {which} to set")
    value = OVER[key] if value == "over" else value
    # tiny data: the error comes after the data is loaded, before any training (and were
    # the check missing, one step would run and the test fail)
    data = {"adaptseg-segshift": ["--set", "data.n_train=8", "--set", "data.n_test=4"]}
    result = cli("train", preset, "--set", f"model.{key}={value}", *data.get(preset, []),
                 "--set", "train.steps=1", "--runs-dir", tmp_path, "--no-progress")  # fmt: skip
    one_line_error(result, key, message)


@pytest.mark.parametrize(
    "name", ["gan", "cgan", "infogan", "vae", "cyclegan", "dann", "adaptseg", "char_lstm"]
)
def test_family_constructors_check_their_own_arguments(name):
    """Without the config's checks (a library user building the class): each family's
    constructor refuses a NaN learning rate and a size over its bound itself."""
    cls = get_spec(name).cls
    shape = (8,) if cls.task == "sequence" else (3, 16, 16)
    rate = next(k for k in ("lr_g", "lr") if k in inspect.signature(cls).parameters)
    with pytest.raises(GankitError, match="must be a finite number > 0, got nan"):
        cls(data_shape=shape, num_classes=5, **{rate: float("nan")})
    size = next(k for k in OVER if k in inspect.signature(cls).parameters)
    with pytest.raises(
        GankitError, match=rf"{size} must be an integer in \[1, \d+\], got {OVER[size]}"
    ):
        cls(data_shape=shape, num_classes=5, **{size: OVER[size]})


@pytest.mark.parametrize(
    ("name", "fraction"),
    [("gan", "decay_start"), ("cyclegan", "decay_start"), ("infogan", "decay_start"),
     ("infogan", "supervised_fraction")],
)  # fmt: skip
@pytest.mark.parametrize("value", [1.5, -0.1, float("nan")])
def test_shares_of_the_run_outside_0_1_are_refused_by_the_constructor(name, fraction, value):
    """One check (``check_fractions``) for every share of the run or of the steps; were it
    missing, the model would build."""
    with pytest.raises(GankitError, match=rf"model: {fraction} must be in \[0, 1\], got "):
        get_spec(name).cls(data_shape=(3, 16, 16), num_classes=10, **{fraction: value})


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        (2**63, "must be within 64 bits"),
        (2**32, "train.seed must be an integer in [0, 4294967295], got 4294967296"),
        (-1, "train.seed must be an integer in [0, 4294967295], got -1"),
    ],
)
def test_bad_train_seed_is_one_line(tmp_path, seed, message):
    result = cli("train", "gan-ring", "--set", f"train.seed={seed}", *SHORT, "--runs-dir", tmp_path)
    one_line_error(result, "seed", message)


@pytest.mark.parametrize("seed", [2**64, -1])
@pytest.mark.parametrize("command", ["sample", "explore"])
def test_bad_sample_and_explore_seed_is_one_line(runs, tmp_path, command, seed):
    out = tmp_path / ("s.npy" if command == "sample" else "pictures")
    result = cli(command, "tiny-gan", "--seed", seed, "--out", out, "--runs-dir", runs)
    one_line_error(result, "--seed must be an integer in [0, 4294967295]")


@pytest.mark.parametrize("command", ["sample", "explore", "translate"])
def test_unwritable_out_is_one_line(runs, tmp_path, command):
    """--out inside a regular file: no folder can be made there (whoever runs the test,
    root included)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    if command == "sample":
        args = ["sample", "tiny-gan", "--out", blocker / "s.npy"]
    elif command == "explore":
        args = ["explore", "tiny-gan", "--out", blocker / "pictures"]
    else:
        image = image_folder(tmp_path / "inputs", n=1) / "00.png"
        args = ["translate", "tiny-cyclegan", "--input", image, "--out", blocker / "out"]
    one_line_error(cli(*args, "--runs-dir", runs), "cannot write --out", "a-file")


def test_bad_image_under_dataloader_workers_is_one_line(tmp_path):
    """A streamed folder read by a worker process: the worker's error, not its traceback."""
    root = image_folder(tmp_path / "images", n=12)
    (root / "05.png").write_bytes(b"not a png")
    config = folder_config(root, in_memory_limit=0)
    config["train"].update(num_workers=1, steps=4)  # 3 steps of 4 read all 12 images
    result = cli(*train_args(config, tmp_path / "runs"))
    line = one_line_error(result, "cannot read image", "05.png", "skip_bad")
    assert "DataLoader worker" not in line and "\\n" not in line


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("data.n_train=10000001", "data: n_train must be an integer in [1, 10000000]"),
        ("data.radius=18446744073709551616", "must be within 64 bits"),
        ("train.num_workers=65", "train.num_workers must be an integer in [0, 64]"),
        ("model.n_critic=101", "n_critic must be an integer in [1, 100]"),
        ('name="a\\nb"', "run name 'a\\nb' is not a folder name"),
    ],
)
def test_other_bounds_are_one_line(tmp_path, setting, message):
    """One over each bound (were it missing, a short run would start, and the test fail)."""
    result = cli("train", "gan-ring", "--set", setting, *SHORT, "--runs-dir", tmp_path)
    one_line_error(result, message)


def test_a_picture_of_classes_or_codes_is_bounded():
    """Rows (classes, or categories times codes) times --steps: at most 4,096 samples."""
    from gankit.explore.latent import MAX_BLOCK, check_block

    check_block(64, 64, "classes")
    with pytest.raises(GankitError, match=r"1000 x 10 = 10000 samples.*use --steps 4 or less"):
        check_block(1000, 10, "classes")
    assert MAX_BLOCK == 4096


def zip_bomb_checkpoint(real: Path, out: Path, inflated: int) -> Path:
    """``real`` (a run's checkpoint) with its first tensor's member replaced by
    ``inflated`` zero bytes, deflated: the archive declares that size, and inflating it
    would need it all."""
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(out, "w") as bomb:
        members = source.infolist()
        first_tensor = next(m for m in members if "/data/" in m.filename)
        for member in members:
            if member is not first_tensor:
                bomb.writestr(member, source.read(member.filename))
                continue
            info = zipfile.ZipInfo(member.filename)
            info.compress_type = zipfile.ZIP_DEFLATED
            chunk = bytes(1 << 24)
            with bomb.open(info, "w", force_zip64=True) as handle:
                for _ in range(inflated // len(chunk)):
                    handle.write(chunk)
    return out


def bombed_run(tmp_path: Path, inflated: int) -> Path:
    runs = tmp_path / "runs"
    gankit.train(tiny_config(steps=10), name="bombed", runs_dir=runs)
    newest = runs / "bombed" / "checkpoints" / "step_00000010.pt"
    zip_bomb_checkpoint(newest, tmp_path / "bomb.pt", inflated).replace(newest)
    return runs


def test_a_checkpoint_declaring_more_than_it_holds_is_refused_before_inflating(tmp_path):
    """A 0.3 MB checkpoint that declares 256 MB: refused from its archive's directory
    (the sizes it declares), in one line, before torch inflates a byte."""
    runs = bombed_run(tmp_path, 256 << 20)
    assert (runs / "bombed" / "checkpoints" / "step_00000010.pt").stat().st_size < 2 << 20
    result = cli("sample", "bombed", "--n", "4", "--runs-dir", runs)
    one_line_error(result, "step_00000010.pt", "decompression bomb")


@pytest.mark.slow
def test_a_zip_bomb_checkpoint_is_refused_in_bounded_memory(tmp_path):
    """The probe's case: a checkpoint of a few MB that inflates to 3 GB, loaded by a
    process with 2 GiB of address space: one line, no MemoryError (about 10 s to build)."""
    runs = bombed_run(tmp_path, 3 << 30)
    result = bounded_gankit("sample", "bombed", "--n", "4", "--runs-dir", runs, timeout=120)
    one_line_error(result, "step_00000010.pt", "decompression bomb")
