"""The ingest loop: batches, counts, rejects, checkpoints, interruption and source failure."""

from __future__ import annotations

import pytest

from papertide.errors import SourceError
from papertide.ingest import ingest
from papertide.paper import Paper
from papertide.sources import Checkpoint, Deleted, Rejected, Signal
from papertide.store import open_store


def paper(i: int, **kw) -> Paper:
    return Paper(**({"id": f"2402.{i:05d}", "title": f"Paper {i}", "authors": [f"A{i}"]} | kw)).normalised()


@pytest.fixture
def store(config):
    s = open_store(config)
    yield s
    s.close()


def test_counts_and_rejects(store):
    seen = []
    items = [paper(1), paper(2), Rejected("f.jsonl:3", "malformed JSON"), paper(3), Signal("2402.00001", "hf", 5)]
    r = ingest(store, items, batch_size=2, on_reject=seen.append)
    assert (r.added, r.updated, r.unchanged, r.rejected, r.signals) == (3, 0, 0, 1, 1)
    assert [str(x) for x in seen] == ["f.jsonl:3: malformed JSON"] and not r.ok
    r = ingest(store, [paper(1), paper(2, title="new"), Deleted("2402.00003")])
    assert (r.added, r.updated, r.unchanged, r.deleted, r.rejected) == (0, 1, 1, 1, 0) and r.ok
    assert r.summary() == "0 added, 1 updated, 1 unchanged, 1 deleted, 0 rejected"


def test_progress_counts_every_item(store):
    ticks = []
    ingest(store, [paper(i) for i in range(1, 8)], batch_size=3, on_progress=ticks.append)
    assert sum(ticks) == 7 and store.count() == 7


def test_signal_for_unknown_paper_is_reported(store):
    r = ingest(store, [Signal("2402.09999", "hf", 5)])
    assert r.rejected == 1 and "not in the store" in r.rejects[0].reason


def test_checkpoint_commits_the_records_before_it(store):
    def source():
        yield paper(1)
        yield paper(2)
        yield Checkpoint("h", {"page": 1})
        yield paper(3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(store, source(), batch_size=100)
    assert store.count() == 2 and store.get_checkpoint("h") == {"page": 1}


def test_interrupted_ingest_is_consistent_and_a_rerun_completes_it(store):
    def source(stop_at: int | None):
        for i in range(1, 26):
            if i == stop_at:
                raise KeyboardInterrupt
            yield paper(i)

    with pytest.raises(KeyboardInterrupt):
        ingest(store, source(stop_at=18), batch_size=5)
    assert store.count() == 15  # three whole batches; the fourth was dropped
    authors = store.db.execute("SELECT COUNT(*) FROM paper_authors").fetchone()[0]
    assert authors == 15
    r = ingest(store, source(stop_at=None), batch_size=5)
    assert (r.added, r.unchanged) == (10, 15) and store.count() == 25


def test_source_failure_keeps_what_came_before(store):
    def source():
        yield paper(1)
        yield Checkpoint("h", {"page": 1})
        yield paper(2)
        raise SourceError("http://x/oai: giving up after 4 attempts: HTTP 500")

    r = ingest(store, source())
    assert store.count() == 2 and r.errors == ["http://x/oai: giving up after 4 attempts: HTTP 500"]
    assert store.get_checkpoint("h") == {"page": 1} and not r.ok


def test_non_items_are_a_programming_error(store):
    with pytest.raises(TypeError, match="not an item"):
        ingest(store, ["just a string"])  # type: ignore[list-item]
