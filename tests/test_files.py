"""Atomic writes and the cache folder (gankit.files)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from gankit.files import atomic_save, atomic_write, atomic_write_text, cache_root


def test_cache_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GANKIT_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "gankit"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "gankit"
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


def test_atomic_save_and_text_round_trip(tmp_path):
    target = tmp_path / "new" / "folder" / "state.pt"
    atomic_save({"step": 3, "weights": torch.arange(4)}, target)
    state = torch.load(target, weights_only=True)
    assert state["step"] == 3 and state["weights"].tolist() == [0, 1, 2, 3]

    atomic_write_text(tmp_path / "config.yaml", "name: é\n")
    assert (tmp_path / "config.yaml").read_text(encoding="utf-8") == "name: é\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "new"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "state.pt"
    target.write_text("old")

    def half_then_fail(partial: Path) -> None:
        partial.write_text("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_a_huge_metrics_log_is_read_in_bounded_memory(tmp_path):
    """``metrics.jsonl`` is read as a stream and thinned evenly past 20,000 rows: 200,000
    lines and a 1 MB line cost a few MB, where holding every row took about 20 times
    that (a 688 MB log took 6 GB in ``info``)."""
    import tracemalloc

    from gankit.files import MAX_ROWS, read_jsonl

    path = tmp_path / "metrics.jsonl"
    with open(path, "w") as handle:
        for step in range(1, 200_001):
            handle.write(json.dumps({"step": step, "loss_d": 0.5, "loss_g": 1.5}) + "\n")
            if step == 7:
                handle.write('{"step": 7, "junk": "' + "x" * (1 << 20) + '"}\n')
    tracemalloc.start()
    rows = read_jsonl(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(rows) <= 2 * MAX_ROWS + 1
    assert rows[0]["step"] == 1 and rows[-1]["step"] == 200_000  # the first and last kept
    steps = [row["step"] for row in rows[:-1]]
    assert len({b - a for a, b in itertools.pairwise(steps)}) == 1  # evenly thinned
    assert not any("junk" in row for row in rows)  # the overlong line skipped
    assert peak < 25 << 20, f"{peak / 2**20:.0f} MiB"
