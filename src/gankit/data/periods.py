"""The user's own earlier and later items, for the change family.

Two-domain sources: each returns the *earlier* period (domain A) with the *later* one as
``bundle.domain_b``. They are unpaired, as real data is: no later item is known to come
from a given earlier item, so ``domain_b.extra`` carries no hidden magnitude and no
pairing, and ``gankit eval`` scores no individual error on them (it says so).

- ``series:EARLIER,LATER``: two files of 1-D series, one per period, each ``.npy`` with a
  2-D array (N, T) or ``.csv`` with one series per row;
- ``series:FILE.csv`` with ``period_column``: one CSV with a header row; the named
  column says each row's period (``periods``, by default ``earlier`` and ``later``) and
  every other column is one point of the series;
- ``periods:DIR``: image folders ``DIR/earlier/`` and ``DIR/later/``, each read as
  ``folder:`` reads a folder (same image rules and bounds).

A CSV of one period may begin with a header row: the first row is a header when one of
its cells is not a number. Every later row must be numbers only.

``measure`` names the read-back that ``gankit eval``'s Control correlates with the code
c: ``size`` (default), the mean absolute change ``mean |after − before|`` per value, which
fits any data; or one of the built-in operators' read-backs (series: ``amplitude``,
``trend``; images: ``thicken``, ``fade``; see :mod:`gankit.data.change`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankit.data.base import DataBundle, check_seed, tensor_split
from gankit.data.change import IMAGE_OPERATORS, SERIES_OPERATORS
from gankit.errors import GankitError, choices
from gankit.files import LinkError, is_link, read_bytes

#: The most bytes one series file may hold (read whole, before parsing).
MAX_SERIES_FILE_BYTES = 256 * 2**20
#: The most values (series × points, both periods together) a source may hold: 16.7
#: million float32 values are 64 MiB, and the change family's MLPs read every point.
MAX_SERIES_VALUES = 2**24
#: Points per series: the networks take the whole series as one input vector, and the
#: Fréchet distance of ``gankit eval`` works on a (T, T) covariance.
SERIES_LENGTHS = (2, 4096)
#: Series each period needs: at least one to train on and one held out.
MIN_ITEMS = 2
SERIES_SUFFIXES = (".npy", ".csv")
#: The subfolders of ``periods:DIR``.
PERIOD_FOLDERS = ("earlier", "later")


@dataclass(frozen=True)
class ReadBack:
    """How ``gankit eval`` measures a change on data without a known operator.

    Attributes:
        name: the ``measure`` option that chose it.
        measure: ``measure(before, after) -> (N,)``, larger for a larger change.
    """

    name: str
    measure: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mean_change(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """``mean |after − before|`` per item: (N, ...) twice -> (N,)."""
    return (after - before).abs().reshape(len(before), -1).mean(dim=1)


def read_back(name: str, operators: dict, where: str) -> ReadBack:
    """The read-back ``name``: ``size`` or one of ``operators``' read-backs."""
    if name == "size":
        return ReadBack("size", mean_change)
    if name not in operators:
        valid = choices(["size", *operators])
        raise GankitError(f"{where}: unknown measure '{name}'; valid: {valid}")
    return ReadBack(name, operators[name].measure)


# --------------------------------------------------------------------------- series files
def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _file_bytes(path: Path, where: str) -> bytes:
    """The bytes of a series file: at most ``MAX_SERIES_FILE_BYTES``, never through a link."""
    try:
        return read_bytes(path, MAX_SERIES_FILE_BYTES)
    except LinkError:
        raise GankitError(
            f"{where}: '{path}' is a link; give the file itself (gankit reads no series file "
            "through a link)"
        ) from None


def _csv_rows(path: Path, where: str) -> list[list[str]]:
    """The rows of a CSV file (bounded read, no link followed), blank lines dropped."""
    data = _file_bytes(path, where)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GankitError(f"{where}: '{path}' is not UTF-8 text; a .csv holds numbers") from None
    return [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]


def _numbers(rows: list[list[str]], path: Path, where: str, first_row: int) -> np.ndarray:
    """Rows of number cells -> (N, T) float64; row numbers in errors count from 1."""
    values = []
    for i, row in enumerate(rows):
        if len(row) != len(rows[0]):
            raise GankitError(
                f"{where}: '{path}' row {first_row + i} has {len(row)} values, row "
                f"{first_row} has {len(rows[0])}; every series of a period needs the same length"
            )
        parsed = [_number(cell) for cell in row]
        if None in parsed:
            bad = row[parsed.index(None)]
            raise GankitError(
                f"{where}: '{path}' row {first_row + i} holds '{bad}', not a number; after "
                "an optional header row a series CSV holds numbers only"
            )
        values.append(parsed)
    return np.asarray(values, dtype=np.float64).reshape(len(values), len(rows[0]) if rows else 0)


def read_series_file(path: Path, where: str) -> np.ndarray:
    """One period's series: a ``.npy`` file of shape (N, T) or a ``.csv`` with one series
    per row (an optional header row first) -> (N, T) float64, not yet checked for
    finite values or bounds (:func:`check_series` does).

    Raises:
        GankitError: a missing or unreadable file, a link, a file over
            ``MAX_SERIES_FILE_BYTES``, another suffix, another shape, or ragged rows.
    """
    suffix = path.suffix.lower()
    if suffix not in SERIES_SUFFIXES:
        raise GankitError(
            f"{where}: '{path}' is neither .npy nor .csv; a period's series are a .npy "
            "array (N, T) or a .csv with one series per row"
        )
    if not path.is_file():
        raise GankitError(f"{where}: no file '{path}'")
    if suffix == ".csv":
        rows = _csv_rows(path, where)
        header = bool(rows) and any(_number(cell) is None for cell in rows[0])
        return _numbers(rows[1:] if header else rows, path, where, 2 if header else 1)
    try:
        array = np.load(io.BytesIO(_file_bytes(path, where)), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise GankitError(f"{where}: cannot read '{path}' as a .npy array ({err})") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype.kind not in "fiu":
        shape = getattr(array, "shape", "?")
        raise GankitError(
            f"{where}: '{path}' holds an array of shape {shape} and type "
            f"{getattr(array, 'dtype', '?')}; expected numbers of shape (N, T), N series "
            "of T points"
        )
    return array.astype(np.float64)


def check_series(values: np.ndarray, path: str, where: str) -> None:
    """Refuse an empty period, NaN or infinite values and lengths outside the bounds."""
    if len(values) < MIN_ITEMS:
        raise GankitError(
            f"{where}: '{path}' holds {len(values)} series; each period needs at least {MIN_ITEMS}"
        )
    low, high = SERIES_LENGTHS
    if not low <= values.shape[1] <= high:
        raise GankitError(
            f"{where}: '{path}' holds series of {values.shape[1]} points; valid: {low} to {high}"
        )
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise GankitError(
            f"{where}: '{path}' holds {values[row, column]} in series {row + 1}, point "
            f"{column + 1} ({int(bad.sum())} values in all); every value must be a finite number"
        )


def _period_rows(path: Path, column: str, names: tuple[str, str], where: str) -> list[np.ndarray]:
    """One CSV with a period column -> the (N, T) series of each period, in ``names`` order."""
    rows = _csv_rows(path, where)
    if not rows:
        raise GankitError(f"{where}: '{path}' is empty; expected a header row, then series")
    header = [cell.strip() for cell in rows[0]]
    if column not in header:
        raise GankitError(
            f"{where}: '{path}' has no column '{column}' (data.period_column); its "
            f"columns: {', '.join(header[:10])}{' ...' if len(header) > 10 else ''}"
        )
    at = header.index(column)
    grouped: dict[str, list[list[str]]] = {name: [] for name in names}
    for i, row in enumerate(rows[1:], start=2):
        period = row[at].strip() if at < len(row) else ""
        if period not in grouped:
            raise GankitError(
                f"{where}: '{path}' row {i} has period '{period}' in column '{column}'; "
                f"valid: {', '.join(names)} (data.periods)"
            )
        grouped[period].append(row[:at] + row[at + 1 :])
    for name, members in grouped.items():
        if not members:
            raise GankitError(
                f"{where}: '{path}' has no row of period '{name}' in column '{column}'; "
                f"each of {', '.join(names)} needs at least {MIN_ITEMS} series"
            )
    # a ragged row is then named by its place among its period's rows
    return [_numbers(grouped[name], Path(f"{path} (period {name})"), where, 1) for name in names]


def _split(values: np.ndarray, test_fraction: float, generator: torch.Generator):
    """(train, test) TensorDatasets: a seeded permutation, ``test_fraction`` held out."""
    items = torch.from_numpy(values).float()
    order = torch.randperm(len(items), generator=generator)
    n_test = min(len(items) - 1, max(1, round(len(items) * test_fraction)))
    return tensor_split(items[order[n_test:]]), tensor_split(items[order[:n_test]])


def _check_fraction(test_fraction: float, where: str) -> None:
    if not (isinstance(test_fraction, int | float) and 0.0 < test_fraction < 1.0):
        raise GankitError(f"{where}: test_fraction must be in (0, 1), got {test_fraction}")


def _paired_bundles(name: str, kind: str, periods: list, shape, info: str, extra: dict):
    """Earlier bundle (A) with the later one as ``domain_b``; ``periods`` holds each
    period's (train, test, class names) in order."""
    earlier, later = (
        DataBundle(
            name=name if i == 0 else f"{name} (later)", kind=kind, train=train, test=test,
            shape=shape, num_classes=len(classes) if classes else None, class_names=classes,
            info=f"{info}; {PERIOD_FOLDERS[i]} period: {len(train)} train / {len(test)} test",
        )
        for i, (train, test, classes) in enumerate(periods)
    )  # fmt: skip
    earlier.extra = extra
    earlier.domain_b = later
    return earlier


def series(
    *,
    path: str,
    period_column: str | None = None,
    periods: str = "earlier,later",
    measure: str = "size",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DataBundle:
    """Your own 1-D series of two periods, unpaired: (T,) items of the earlier period,
    the later ones as ``domain_b``.

    ``series:EARLIER,LATER`` names one file per period, each a ``.npy`` array (N, T) or
    a ``.csv`` with one series per row; ``series:FILE.csv`` with ``period_column`` names
    one CSV whose header names that column. At most 16.7 million values in all, series
    of 2 to 4096 points, at least 2 series a period, finite numbers only. The change
    family reads values as they are: bring them to about [-1, 1] first.

    Args:
        path: ``EARLIER,LATER`` (two files) or one CSV with ``period_column``.
        period_column: the CSV column naming each row's period; the other columns are
            the series' points.
        periods: the two values of ``period_column``, earlier first.
        measure: the read-back of ``gankit eval``'s Control: ``size``, ``amplitude`` or
            ``trend`` (module docs).
        test_fraction: share of each period held out for scores and previews.
        seed: the held-out split's seed.
    """
    where = f"data (series:{path})"
    readback = read_back(measure, SERIES_OPERATORS, where)
    _check_fraction(test_fraction, where)
    check_seed(seed, where)
    if period_column is not None:
        names = tuple(part.strip() for part in periods.split(","))
        if len(names) != 2 or not all(names) or names[0] == names[1]:
            raise GankitError(
                f"{where}: data.periods must name two different periods, earlier first, "
                f"such as 'earlier,later'; got '{periods}'"
            )
        values = _period_rows(Path(path).expanduser(), period_column, names, where)
        sources = [f"{path} (period {name})" for name in names]
    else:
        files = [part.strip() for part in path.split(",")]
        if len(files) != 2 or not all(files):
            raise GankitError(
                f"{where}: give two files, series:EARLIER,LATER (.npy or .csv, one per "
                "period), or one CSV with data.period_column naming its period column"
            )
        values = [read_series_file(Path(file).expanduser(), where) for file in files]
        sources = files
    for array, source in zip(values, sources):
        check_series(array, source, where)
    if values[0].shape[1] != values[1].shape[1]:
        raise GankitError(
            f"{where}: the earlier series have {values[0].shape[1]} points ('{sources[0]}'), "
            f"the later {values[1].shape[1]} points ('{sources[1]}'); both periods need one length"
        )
    total = sum(array.size for array in values)
    if total > MAX_SERIES_VALUES:
        raise GankitError(
            f"{where}: {total:,} values (series x points, both periods); at most "
            f"{MAX_SERIES_VALUES:,}: use fewer or shorter series"
        )
    generator = torch.Generator().manual_seed(seed)
    splits = [(*_split(array, test_fraction, generator), None) for array in values]
    length = values[0].shape[1]
    info = f"series {path}: {length} points, Control read back as '{measure}'"
    return _paired_bundles(
        f"series:{path}", "series", splits, (length,), info, {"readback": readback}
    )


def periods(
    *,
    path: str,
    resolution: int = 32,
    channels: int = 3,
    measure: str = "size",
    test_fraction: float = 0.2,
    skip_bad: bool = False,
    seed: int = 0,
) -> DataBundle:
    """Your own images of two periods, unpaired: ``DIR/earlier/`` and ``DIR/later/``,
    (C, R, R) in [-1, 1], the later ones as ``domain_b``.

    Each folder is read as ``folder:`` reads one (searched recursively, hidden files
    skipped; class subfolders give labels when both periods have the same classes).
    Neither folder may be a link.

    Args:
        path: the folder DIR.
        resolution: side R: short side resized, centre cropped.
        channels: 1 for grayscale, 3 for RGB.
        measure: the read-back of ``gankit eval``'s Control: ``size``, ``thicken`` or
            ``fade`` (module docs).
        test_fraction: share of each period held out.
        skip_bad: skip unreadable files instead of failing.
        seed: the held-out split's seed.
    """
    from gankit.data.folders import folder

    where = f"data (periods:{path})"
    readback = read_back(measure, IMAGE_OPERATORS, where)
    _check_fraction(test_fraction, where)
    root = Path(path).expanduser()
    folders = [root / period for period in PERIOD_FOLDERS]
    for sub in folders:
        if is_link(sub):
            raise GankitError(f"{where}: '{sub}' is a link; give the folder itself")
        if not sub.is_dir():
            raise GankitError(
                f"{where}: no folder '{sub}'; expected DIR/earlier/ and DIR/later/ of images"
            )
    read = [
        folder(path=str(sub), resolution=resolution, channels=channels, skip_bad=skip_bad,
               test_fraction=test_fraction, seed=seed)
        for sub in folders
    ]  # fmt: skip
    classes = [bundle.class_names for bundle in read]
    if classes[0] != classes[1]:
        raise GankitError(
            f"{where}: the class subfolders differ: earlier {classes[0] or 'none'}, later "
            f"{classes[1] or 'none'}; give both periods the same classes, or none"
        )
    splits = [(bundle.train, bundle.test, bundle.class_names) for bundle in read]
    info = f"periods {root}: {resolution}px, Control read back as '{measure}'"
    shape = (channels, resolution, resolution)
    return _paired_bundles(f"periods:{path}", "image", splits, shape, info, {"readback": readback})


__all__ = ["ReadBack", "check_series", "mean_change", "periods", "read_series_file", "series"]
