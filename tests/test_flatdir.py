"""Index directories are replaced whole or not at all."""

from __future__ import annotations

import pytest

from papertide.flatdir import publish, resolve


def test_publish_replaces_the_whole_directory(tmp_path):
    target = tmp_path / "index"
    with publish(target) as tmp:
        (tmp / "a.npy").write_text("one")
    with publish(target) as tmp:
        (tmp / "b.npy").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["b.npy"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]  # no temporary or old copies left


def test_a_failed_write_leaves_the_old_directory(tmp_path):
    target = tmp_path / "index"
    with publish(target) as tmp:
        (tmp / "a.npy").write_text("one")
    with pytest.raises(RuntimeError), publish(target) as tmp:
        (tmp / "half.npy").write_text("partial")
        raise RuntimeError("disk full")
    assert [p.name for p in target.iterdir()] == ["a.npy"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_resolve_finds_the_previous_copy_after_a_crash_between_renames(tmp_path):
    target = tmp_path / "index"
    (tmp_path / "index.old").mkdir()
    assert resolve(target) == tmp_path / "index.old"
    target.mkdir()
    assert resolve(target) == target
