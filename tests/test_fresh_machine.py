"""Every test runs as on a new user's machine: no internet, no real data unless marked.

tests/conftest.py and pyproject's addopts set this up; each test here fails where its
part is missing, so a test that would download, or read data a new machine lacks,
fails on every machine rather than only on a fresh one.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_socket import SocketConnectBlockedError

from conftest import missing_data, write_mnist_like
from gankit.data import download
from gankit.data.idx import fashion_mnist_files
from gankit.files import cache_root

#: TEST-NET-1 (RFC 5737), an address on no real network: even without the block, a
#: connection there reaches nobody.
OUTSIDE = "192.0.2.1"
#: pytest-socket warns as it refuses; here the refusal is what is tested.
refusal_expected = pytest.mark.filterwarnings("ignore:A test tried to use socket")


@refusal_expected
def test_a_test_cannot_connect_beyond_loopback():
    with pytest.raises(SocketConnectBlockedError, match=OUTSIDE):
        socket.create_connection((OUTSIDE, 80), timeout=5)


@refusal_expected
def test_a_download_in_the_test_process_is_refused_by_name(tmp_path):
    with pytest.raises(SocketConnectBlockedError, match=OUTSIDE):
        download.fetch_url(f"http://{OUTSIDE}/train-images-idx3-ubyte.gz", tmp_path / "x.gz")
    assert not (tmp_path / "x.gz").exists() or (tmp_path / "x.gz").stat().st_size == 0


def test_loopback_still_works():
    """The lab's and the browser tests' servers, and gloo's rendezvous, are on loopback."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("localhost", port), timeout=5) as client:
            peer, _ = server.accept()
            with peer:
                client.sendall(b"ping")
                assert peer.recv(4) == b"ping"


def test_a_child_process_cannot_download(tmp_path):
    """``python -m gankit`` in a test runs without pytest-socket; its downloads go to the
    proxy conftest names, a closed loopback port. The host cannot resolve (.invalid), so
    only a download sent to that proxy fails with 'Connection refused'; one sent out
    would fail its name lookup first."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from gankit.data.download import fetch_url\n"
        "for scheme in ('http', 'https'):\n"
        "    try:\n"
        "        fetch_url(f'{scheme}://fashion-mnist.invalid/t10k-labels-idx1-ubyte.gz',"
        " Path(sys.argv[1]))\n"
        "    except OSError as err:\n"
        "        print(scheme, err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x.gz")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all("Connection refused" in line for line in lines), lines


def test_an_unmarked_test_sees_no_real_data():
    assert Path("/usr/share/datasets") != download.DEBIAN_DATASETS
    assert not download.DEBIAN_DATASETS.exists()
    assert "GANKIT_DATA" not in os.environ
    assert cache_root() != Path.home() / ".cache" / "gankit"
    assert fashion_mnist_files() is None


def test_needs_data_names_the_package_where_the_data_is_missing(tmp_path, monkeypatch):
    assert missing_data(("fashion-mnist",)) == (
        "needs the real fashion-mnist: apt-get install dataset-fashion-mnist (.ci/run installs it)"
    )
    write_mnist_like(tmp_path / "debian" / "fashion-mnist")
    monkeypatch.setattr(download, "DEBIAN_DATASETS", tmp_path / "debian")
    assert missing_data(("fashion-mnist",)) is None


@pytest.mark.needs_data("fashion-mnist")
def test_a_marked_test_sees_the_real_places():
    assert Path("/usr/share/datasets") == download.DEBIAN_DATASETS
    assert fashion_mnist_files() is not None


def test_the_demos_data_is_built_in():
    """make demo trains, scores (an evaluator it trains on the same data) and reports on
    a machine with only Python: its preset's data ships inside the package."""
    from gankit.config import resolve_config
    from gankit.data import describe_datasets

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    preset = re.search(r"^DEMO_PRESET \?= (\S+)$", makefile, re.MULTILINE).group(1)
    where = {name: files for name, _, files in describe_datasets()}
    assert where[resolve_config(preset)["data"]["name"]] == "built in"
