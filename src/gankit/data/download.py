"""Find a dataset's files on disk, or download them once into the user cache.

Search order, first match wins (every file of a dataset must sit in one directory):

1. the ``data_dir`` option, then ``data_dir/<dataset>``;
2. ``$GANKIT_DATA``, then ``$GANKIT_DATA/<dataset>``;
3. Debian's ``/usr/share/datasets/<dataset>`` (``apt-get install dataset-fashion-mnist``
   puts the gzipped IDX files in ``/usr/share/datasets/fashion-mnist/``);
4. the user cache, ``<cache>/<dataset>``, where ``<cache>`` is ``$GANKIT_CACHE``, else
   ``$XDG_CACHE_HOME/gankit``, else ``~/.cache/gankit``.

A file ``x`` is also found as ``x.gz``. When nothing matches and downloading is allowed,
the missing files are fetched from their official URLs into the user cache and checked
against their published MD5 before they get their final name.

Checksums are verified only for files we download: files found on disk are trusted,
because repackaged copies legitimately differ (Debian's Fashion-MNIST ``.gz`` files
are recompressed, so their MD5s are not Zalando's, while the data inside is the same).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from gankit.errors import GankitError
from gankit.files import atomic_write, cache_root

logger = logging.getLogger(__name__)

#: Where Debian's ``dataset-*`` packages install their files, one folder per dataset.
DEBIAN_DATASETS = Path("/usr/share/datasets")

#: Environment variable naming a folder that holds datasets (or one dataset's files).
DATA_ENV = "GANKIT_DATA"

#: Seconds to wait for a silent server before giving up on a download.
FETCH_TIMEOUT = 60.0


def cache_dir(dataset: str) -> Path:
    """The user cache folder for ``dataset``; read from the environment at each call."""
    return cache_root() / dataset


def search_dirs(dataset: str, data_dir: str | None, subdirs: Sequence[str] = ()) -> list[Path]:
    """Every directory searched for ``dataset``, in order, without duplicates.

    Args:
        dataset: the dataset's folder name, e.g. ``"fashion-mnist"``.
        data_dir: the user's ``data_dir`` option, searched first.
        subdirs: other layouts to try under ``data_dir`` and ``$GANKIT_DATA``, e.g.
            torchvision's ``"FashionMNIST/raw"``.
    """
    dirs: list[Path] = []
    for root in (data_dir, os.environ.get(DATA_ENV)):
        if root:
            root_path = Path(root).expanduser()
            dirs += [root_path, root_path / dataset, *(root_path / s for s in subdirs)]
    dirs += [DEBIAN_DATASETS / dataset, cache_dir(dataset)]
    return list(dict.fromkeys(dirs))


def locate(directory: Path, filename: str) -> Path | None:
    """``directory/filename``, else ``directory/filename.gz``, else None."""
    for candidate in (directory / filename, directory / f"{filename}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_files(dirs: Sequence[Path], filenames: Sequence[str]) -> Path | None:
    """The first directory holding every one of ``filenames`` (plain or ``.gz``)."""
    for directory in dirs:
        if all(locate(directory, name) for name in filenames):
            return directory
    return None


def fetch_url(url: str, destination: Path) -> None:
    """Download ``url`` to ``destination``; raises OSError when offline.

    Kept tiny and separate so tests can replace it and never touch the network.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "gankit"})
    with (
        urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response,
        open(destination, "wb") as out,
    ):
        shutil.copyfileobj(response, out, length=1 << 20)


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, target: Path, expected_md5: str | None, dataset: str, hint: str) -> None:
    """Fetch ``url`` into a temporary file beside ``target``, verify it, then rename.

    The rename is atomic, so an interrupted or corrupt download never leaves a file
    under the final name that a later run would trust.
    """

    def fetch_and_verify(partial: Path) -> None:
        logger.info("downloading %s -> %s", url, target)
        fetch_url(url, partial)
        # Unknown checksums are skipped rather than guessed: see the tables in idx.py/cifar.py.
        if expected_md5 is not None:
            actual = file_md5(partial)
            if actual != expected_md5:
                raise GankitError(
                    f"{dataset}: checksum mismatch for {url} (md5 {actual}, expected "
                    f"{expected_md5}); the download was deleted, retry or get the data by "
                    f"hand: {hint}"
                )

    atomic_write(target, fetch_and_verify)


def find_or_fetch(
    dataset: str,
    filenames: list[str],
    data_dir: str | None,
    urls: dict[str, str],
    md5: dict[str, str],
    hint: str,
    *,
    download: bool = True,
    subdirs: Sequence[str] = (),
) -> Path:
    """The directory holding all of ``filenames``, downloading them if need be.

    Args:
        dataset: the dataset's folder name, e.g. ``"fashion-mnist"``.
        filenames: files that must all be present, each as ``name`` or ``name.gz``.
        data_dir: the user's ``data_dir`` option, searched first (None to skip).
        urls: ``name -> official URL``; the download is saved under the URL's basename,
            which must be ``name`` or ``name.gz``.
        md5: ``name -> MD5 of the file at its URL``; names without one are not checked.
        hint: how a user gets the data by hand, for the error message.
        download: whether fetching into the user cache is allowed.
        subdirs: other layouts to try under ``data_dir`` and ``$GANKIT_DATA``.

    Raises:
        GankitError: the files are nowhere and could not be downloaded, or a download
            failed its checksum.
    """
    dirs = search_dirs(dataset, data_dir, subdirs)
    found = find_files(dirs, filenames)
    if found is not None:
        return found

    wanted = ", ".join(f"{name}[.gz]" for name in filenames)
    tried = ", ".join(str(d) for d in dirs)
    if not download:
        reason = "download disabled (download: false)"
    else:
        cache = cache_dir(dataset)
        try:
            for name in filenames:
                if locate(cache, name) is None:
                    url = urls[name]
                    basename = Path(urllib.parse.urlparse(url).path).name
                    _download(url, cache / basename, md5.get(name), dataset, hint)
            return cache
        except (OSError, http.client.HTTPException) as err:
            # One line: the CLI prints GankitError messages as a single line.
            detail = " ".join(str(err).split()) or type(err).__name__
            reason = f"download failed ({detail})"
    raise GankitError(
        f"{dataset} not found: looked for {wanted} in {tried}; {reason}; to get it: {hint}"
    )
