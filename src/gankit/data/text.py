"""Text as next-token windows: ``text:PATH`` and the embedded ``devils-dictionary``.

A text bundle (``kind="text"``) holds one tokenised text:

- ``x``: (N,) int64 ids of N consecutive tokens, ``y``: (N,) the token that follows each
  of them (``x`` shifted by one), so a window of N tokens trains N next-token
  predictions, each from the tokens before it in the window;
- the split is by position: the last ``test_fraction`` of the tokens is held out, and no
  window crosses the cut, so no held-out token is ever a training target or input;
- training windows start every ``stride`` tokens. They are views of one tensor
  (``Tensor.unfold``), so stride 1 costs no memory beyond the text itself;
- ``class_names`` is the vocabulary (``num_classes`` its size): the i-th output class
  of a language model is the token ``class_names[i]``. ``extra["train_ids"]`` and
  ``extra["test_ids"]`` are the two parts as (L,) id streams, for metrics that read
  the text in order.

Tokens are characters (``level="char"``) or words (``level="word"``: words, runs of
white space and single punctuation marks, so that joined tokens give the text back; the
``max_vocab - 1`` most frequent are kept and the rest become ``<unk>``).

The default corpus, ``devils-dictionary``, is Ambrose Bierce's *The Devil's Dictionary*
(1911; public domain), 382,679 characters of English, embedded in gankit as
``data/corpora/devils_dictionary.txt.gz``. It was taken from Debian's ``dict-devil``
package (1.0-13.1, ``/usr/share/dictd/devil.dict.dz``, the Internet Wiretap edition
of 1993) with the dictd header and index lines removed; see ``docs/text.md``.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import TensorDataset

from gankit.conventions import UNKNOWN_TOKEN, WORD_TOKEN
from gankit.data.base import DataBundle, open_regular
from gankit.errors import GankitError

#: Refuse larger inputs: the whole text is held in memory as int64 ids.
MAX_BYTES = 64 * 2**20
CORPUS = "devils_dictionary.txt.gz"

Level = Literal["char", "word"]


def devils_dictionary(
    *,
    window: int = 64,
    level: Level = "char",
    test_fraction: float = 0.1,
    stride: int = 1,
    max_vocab: int = 10000,
) -> DataBundle:
    """Ambrose Bierce's *The Devil's Dictionary* (public domain), embedded: no download.

    Args: see :func:`text`.
    """
    with resources.as_file(resources.files("gankit.data") / "corpora" / CORPUS) as path:
        corpus = gzip.decompress(path.read_bytes()).decode("utf-8")
    return text_bundle(
        corpus,
        "devils-dictionary",
        "The Devil's Dictionary (Bierce, 1911; public domain)",
        window=window,
        level=level,
        test_fraction=test_fraction,
        stride=stride,
        max_vocab=max_vocab,
    )


def text(
    path: str,
    *,
    window: int = 64,
    level: Level = "char",
    test_fraction: float = 0.1,
    stride: int = 1,
    max_vocab: int = 10000,
) -> DataBundle:
    """A UTF-8 text file, or every file under a folder (sorted by path, hidden files
    skipped, joined with a newline where a file does not end with one).

    Args:
        path: the file or folder.
        window: N, the tokens per training window (the model's ``data_shape`` is (N,)).
        level: ``char`` or ``word`` tokens.
        test_fraction: the share of tokens held out, from the end of the text.
        stride: tokens between the starts of two training windows.
        max_vocab: the most distinct tokens: more characters is an error; more words
            keep the ``max_vocab - 1`` most frequent and map the rest to ``<unk>``.

    Raises:
        GankitError: the path is missing, a file is empty, binary or not UTF-8, the
            whole is larger than 64 MiB, or too short for one window in each split.
    """
    where = f"data (text:{path})"
    root = Path(path).expanduser()
    if not root.exists():
        raise GankitError(f"{where}: '{root}' does not exist; give a UTF-8 text file or folder")
    if root.is_dir():
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        if not files:
            raise GankitError(f"{where}: folder '{root}' holds no files")
    else:
        files = [root]
    total = sum(p.stat().st_size for p in files)
    if total > MAX_BYTES:
        raise GankitError(
            f"{where}: {total / 2**20:.0f} MiB of text is more than the {MAX_BYTES // 2**20} MiB "
            "gankit holds in memory; give a smaller file or folder"
        )
    parts = [read_text_file(p, where) for p in files]
    corpus = "".join(part if part.endswith("\n") else part + "\n" for part in parts[:-1])
    corpus += parts[-1]
    info = f"{root} ({len(files)} file{'s' if len(files) > 1 else ''})"
    return text_bundle(
        corpus,
        f"text:{path}",
        info,
        window=window,
        level=level,
        test_fraction=test_fraction,
        stride=stride,
        max_vocab=max_vocab,
    )


def read_text_file(path: Path, where: str) -> str:
    """The text of ``path``; one line naming the file when it is not a regular file (a
    FIFO would block forever), is larger than ``MAX_BYTES``, empty, binary or not UTF-8."""
    try:
        with open_regular(path) as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise GankitError(f"{where}: cannot read '{path}': {err.strerror or err}") from None
    if len(raw) > MAX_BYTES:
        raise GankitError(
            f"{where}: '{path}' is larger than the {MAX_BYTES // 2**20} MiB gankit reads"
        )
    if not raw.strip():
        raise GankitError(f"{where}: '{path}' is empty; give a file with text in it")
    if b"\x00" in raw:
        raise GankitError(f"{where}: '{path}' is binary (it holds NUL bytes), not text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise GankitError(
            f"{where}: '{path}' is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
            f"{err.start}); convert it to UTF-8"
        ) from None


def encode_corpus(
    corpus: str, level: Level, max_vocab: int, where: str
) -> tuple[list[str], torch.Tensor]:
    """The sorted vocabulary and the text as (L,) int64 ids.

    Characters: every distinct character, found on the code points (no Python object per
    character). Words: ``<unk>`` first, then the ``max_vocab - 1`` most frequent tokens,
    sorted; the joined tokens give the text back.
    """
    if level == "char":
        code_points = np.frombuffer(corpus.encode("utf-32-le"), dtype=np.uint32)
        distinct, ids = np.unique(code_points, return_inverse=True)
        if len(distinct) > max_vocab:
            raise GankitError(
                f"{where}: the text has {len(distinct)} distinct characters, more than "
                f"max_vocab {max_vocab}; raise data.max_vocab"
            )
        return [chr(c) for c in distinct.tolist()], torch.from_numpy(ids.astype(np.int64))
    tokens = re.findall(WORD_TOKEN, corpus)
    counts = Counter(tokens)
    kept = sorted(counts, key=lambda token: (-counts[token], token))[: max_vocab - 1]
    vocabulary = [UNKNOWN_TOKEN, *sorted(kept)]
    index = {token: i for i, token in enumerate(vocabulary)}
    ids = np.fromiter((index.get(t, 0) for t in tokens), np.int64, count=len(tokens))
    return vocabulary, torch.from_numpy(ids)


def text_bundle(
    corpus: str,
    name: str,
    info: str,
    *,
    window: int,
    level: Level,
    test_fraction: float,
    stride: int,
    max_vocab: int,
) -> DataBundle:
    """Tokenise ``corpus``, split it by position and cut it into windows."""
    where = f"data ({name})"
    if window < 1 or stride < 1:
        raise GankitError(f"{where}: window and stride must be >= 1, got {window}, {stride}")
    if not 0.0 < test_fraction < 1.0:
        raise GankitError(f"{where}: test_fraction must be in (0, 1), got {test_fraction}")
    if max_vocab < 2:
        raise GankitError(f"{where}: max_vocab must be >= 2, got {max_vocab}")
    if level not in ("char", "word"):
        raise GankitError(f"{where}: level must be 'char' or 'word', got '{level}'")
    if not corpus.strip():
        raise GankitError(f"{where}: the text is empty")
    vocabulary, ids = encode_corpus(corpus, level, max_vocab, where)
    unknown = vocabulary.index(UNKNOWN_TOKEN) if level == "word" else -1
    cut = round(len(ids) * (1.0 - test_fraction))
    train_ids, test_ids = ids[:cut], ids[cut:]
    shortest = min(len(train_ids), len(test_ids))
    if shortest < window + 1:
        raise GankitError(
            f"{where}: {len(ids)} {level} tokens are too few for windows of {window} in both "
            f"splits (test_fraction {test_fraction}); lower data.window or give more text"
        )
    unknown_share = float((ids == unknown).float().mean()) if level == "word" else 0.0
    unk_note = f", {100 * unknown_share:.1f} % <unk>" if level == "word" else ""
    return DataBundle(
        name=name,
        kind="text",
        train=windows(train_ids, window, stride),
        test=windows(test_ids, window, window),
        shape=(window,),
        num_classes=len(vocabulary),
        class_names=vocabulary,
        info=(
            f"{info}: {len(ids)} {level} tokens, vocabulary {len(vocabulary)}{unk_note}, "
            f"{len(train_ids)} train / {len(test_ids)} held out (the last "
            f"{100 * test_fraction:.0f} %)"
        ),
        extra={"level": level, "train_ids": train_ids, "test_ids": test_ids},
    )


def windows(ids: torch.Tensor, window: int, stride: int) -> TensorDataset:
    """(L,) ids -> windows ``x`` (M, N) and their next tokens ``y`` (M, N), as views."""
    x = ids[:-1].unfold(0, window, stride)
    y = ids[1:].unfold(0, window, stride)
    return TensorDataset(x, y)
