"""Reading a big JSON-lines file on every core.

The public arXiv snapshot has millions of lines, and turning a line into a checked
:class:`~papertide.paper.Paper` costs several times more than parsing its JSON.
So a large plain file is cut at line boundaries into byte ranges, worker processes
read the ranges, and the items come back *in file order* with their true line
numbers, as if read by one process. Only a bounded number of ranges is in flight,
so memory stays flat however large the file. Compressed or UTF-16 files, and small
ones, are read in one process (``files.json_items``).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Iterator

from papertide.sources import Item

MIN_BYTES = 8 << 20  # smaller files are read in one process: a pool costs more than it saves
CHUNK_BYTES = 2 << 20  # bytes per range handed to a worker (a few thousand snapshot lines)


def workers() -> int:
    """Worker processes to use: ``PAPERTIDE_READ_WORKERS``, else one per core (1 disables)."""
    try:
        return max(1, int(os.environ.get("PAPERTIDE_READ_WORKERS", "")))
    except ValueError:
        return os.cpu_count() or 1


def worth_it(path: Path) -> bool:
    """A plain (not gzipped, no UTF-16/32 byte-order mark) file big enough to split."""
    if workers() < 2:
        return False
    try:
        if path.stat().st_size < MIN_BYTES:
            return False
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False  # the one-process reader reports the problem with the file
    return not head.startswith((b"\x1f\x8b", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"))


def ranges(path: Path, chunk: int = CHUNK_BYTES) -> Iterator[tuple[int, int, int]]:
    """``(start, end, first line number)`` of consecutive ranges ending at line ends."""
    start, number = 0, 1
    with open(path, "rb") as f:
        carry = b""
        while True:
            block = f.read(chunk)
            data = carry + block
            if not block:
                if data:
                    yield start, start + len(data), number
                return
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a chunk: keep reading
                carry = data
                continue
            yield start, start + cut, number
            number += data.count(b"\n", 0, cut)
            start += cut
            carry = data[cut:]


def _read_range(path: Path, format: str, dataset: str | None, start: int, end: int, first: int) -> list[Item]:
    from papertide.sources.files import json_items

    return list(json_items(path, format, dataset, start=start, end=end, first_number=first))


def read_json_lines(
    path: Path, format: str, dataset: str | None, *, chunk: int = CHUNK_BYTES, n: int | None = None
) -> Iterator[Item]:
    """Items of a JSON-lines file read by a pool of ``n`` processes, in file order."""
    n = n or workers()
    pending: deque[Future] = deque()
    with ProcessPoolExecutor(max_workers=n) as pool:
        try:
            for start, end, first in ranges(path, chunk):
                pending.append(pool.submit(_read_range, path, format, dataset, start, end, first))
                if len(pending) >= 2 * n:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()
