"""Reading a JSON-lines file with a process pool gives exactly what one process reads."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from papertide.sources import Rejected, files, parallel


def snapshot_line(i: int) -> str:
    return json.dumps({
        "id": f"2401.{i:05d}", "title": f"Paper number {i}", "abstract": "An abstract. " * (i % 7 + 1),
        "authors": "A. Author", "authors_parsed": [["Author", "A.", ""]], "categories": "cs.CL",
        "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}], "update_date": "2024-01-01",
    })  # fmt: skip


@pytest.fixture
def messy(tmp_path) -> Path:
    lines = [snapshot_line(i) for i in range(1, 301)]
    lines[40] = '{"id": "2401.00041", "title": '  # malformed
    lines[41] = ""  # blank
    lines[150] = '{"id": "garbage", "title": "x"}'  # bad id
    lines[151] = "[1, 2]"  # not an object
    path = tmp_path / "snap.jsonl"
    data = "\n".join(lines).encode() + b"\n" + b'{"id": "2401.99999", "title": "\xff broken"}\n' + b'{"id": "2401.9'
    path.write_bytes(data)
    return path


def test_ranges_cover_the_file_at_line_ends(messy):
    data = messy.read_bytes()
    spans = list(parallel.ranges(messy, chunk=997))
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(data[end - 1 : end] == b"\n" for _, end, _ in spans[:-1])
    for start, _, first in spans:
        assert first == data[:start].count(b"\n") + 1


def test_a_line_longer_than_a_chunk_stays_whole(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text("a" * 5000 + "\nb\n")
    assert list(parallel.ranges(path, chunk=1000)) == [(0, 5003, 1)]  # never cut inside a line


@pytest.mark.parametrize("chunk", [500, 4096, 1 << 20])
def test_pool_reads_exactly_what_one_process_reads(messy, chunk):
    one = list(files.json_items(messy, "arxiv-snapshot", None))
    many = list(parallel.read_json_lines(messy, "arxiv-snapshot", None, chunk=chunk, n=2))
    assert many == one
    rejected = [(r.where.rsplit(":", 1)[1], r.reason[:20]) for r in many if isinstance(r, Rejected)]
    assert [line for line, _ in rejected] == ["41", "151", "152", "301", "302"]
    assert "ends in the middle" in many[-1].reason


def test_only_big_plain_files_are_split(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_BYTES", 100)
    monkeypatch.setenv("PAPERTIDE_READ_WORKERS", "2")
    plain = tmp_path / "a.jsonl"
    plain.write_text(snapshot_line(1) + "\n")
    assert parallel.worth_it(plain)
    small = tmp_path / "b.jsonl"
    small.write_text("{}\n")
    assert not parallel.worth_it(small)
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert not parallel.worth_it(gz)
    utf16 = tmp_path / "d.jsonl"
    utf16.write_bytes(plain.read_text().encode("utf-16"))
    assert not parallel.worth_it(utf16)
    monkeypatch.setenv("PAPERTIDE_READ_WORKERS", "1")
    assert not parallel.worth_it(plain)


def test_files_read_uses_the_pool_for_big_files(messy, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_BYTES", 100)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 3000)
    monkeypatch.setenv("PAPERTIDE_READ_WORKERS", "2")
    calls = []
    real = parallel.read_json_lines
    monkeypatch.setattr(parallel, "read_json_lines", lambda *a, **k: calls.append(a) or real(*a, **k))
    items = list(files.read(messy, "arxiv-snapshot"))
    assert calls and len(items) == 301  # 296 papers, 5 rejects; the blank line is skipped
