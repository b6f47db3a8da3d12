"""Atomic writes and the cache folder (gankit.files)."""

from __future__ import annotations

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
