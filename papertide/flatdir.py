"""Publishing an index directory atomically: write it aside, then swap it in.

Indexes are directories of flat files. A save writes a complete new directory under
a temporary name next to the old one, flushes it to disk, and only then swaps it in
by renames on one filesystem, so a reader (or a crash) sees the old index or the new
one, never a mix. If a crash falls between the two renames, :func:`resolve` finds the
previous copy at ``<name>.old``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def publish(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty directory to write into; on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; an index is not a secret
        _fsync_tree(tmp)
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve(target: str | os.PathLike) -> Path:
    """``target``, or its ``.old`` copy when a save died between its two renames."""
    target = Path(target)
    old = target.with_name(target.name + ".old")
    return old if not target.is_dir() and old.is_dir() else target


def _fsync_tree(directory: Path) -> None:
    for path in [*directory.iterdir(), directory]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap(tmp: Path, final: Path) -> None:
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
