"""Tests for papertide.text.postings: string tables, segments from tokens, merging rows."""

from __future__ import annotations

import numpy as np
import pytest

from papertide.text.postings import Pending, StringTable, merge_vocab, place_rows


def test_string_table_round_trip_and_lookup():
    words = sorted(["", "a", "b", "müller", "東京", "zz", "\ud800x"])  # a lone surrogate survives too
    table = StringTable.from_list(words)
    assert len(table) == len(words) and table.tolist() == words and list(table) == words
    assert table[1] == words[1] and table[-1] == words[-1] and table[1:3] == words[1:3]
    assert table.take(np.array([3, 0])) == [words[3], words[0]]
    for i, w in enumerate(words):
        assert table.find_sorted(w) == i
    assert table.find_sorted("c") == -1 and table.find_sorted("zzz") == -1
    with pytest.raises(IndexError):
        table[len(words)]


def test_string_table_lookup_through_an_order():
    keys = ["k3", "k1", "k2"]
    table = StringTable.from_list(keys)
    order = np.array(sorted(range(3), key=keys.__getitem__), dtype=np.int32)
    assert [table.find_sorted(k, order) for k in ("k1", "k2", "k3", "k0")] == [1, 2, 0, -1]
    assert StringTable.from_list([]).find_sorted("x") == -1


def test_segment_counts_weighted_field_frequencies():
    pending = Pending((2.0, 1.0, 0.0), old_keys=[])  # authors not indexed
    pending.add(("d0", "graph graph", "graph neural", ["Graph Author"]))
    pending.add(("d1", "", "neural", []))
    seg = pending.segment()
    assert seg.keys == ["d0", "d1"] and seg.terms == ["graph", "neural"]
    assert seg.indptr.tolist() == [0, 1, 3]
    assert seg.docs.tolist() == [0, 0, 1] and seg.tf.tolist() == [5.0, 1.0, 1.0]  # 2*2 + 1
    assert seg.length.tolist() == [6.0, 1.0]


def test_pending_replacements_and_removals():
    pending = Pending((1.0, 1.0, 1.0), old_keys=["old0", "old1"])
    pending.add(("old1", "t", "replaced", []))
    pending.add(("new", "t", "first", []))
    pending.add(("new", "t", "second", []))
    pending.drop("old0")
    assert pending.exists("new") and pending.exists("old1") and not pending.exists("old0")
    assert pending.removed == {0, 1}
    seg = pending.segment()
    assert seg.keys == ["old1", "new"] and "first" not in seg.terms and "second" in seg.terms


def test_merge_vocab_and_place_rows():
    merged, old_at, new_at = merge_vocab(["b", "d"], ["a", "b", "c", "e"])
    assert merged == ["a", "b", "c", "d", "e"]
    assert old_at.tolist() == [1, 3] and new_at.tolist() == [0, 1, 2, 4]
    # rows: b -> docs [0, 1]; d -> [1]; placed at rows 1 and 3 of a 5-row target with room for one more each
    indptr = np.array([0, 0, 3, 3, 5, 5])
    docs, tf = np.full(5, -1, np.int32), np.zeros(5, np.float32)
    place_rows(docs, tf, indptr, old_at, 0, np.array([0, 1, 1], np.int32), np.array([1, 2, 3], np.float32),
               np.array([0, 2, 3]))  # fmt: skip
    assert docs.tolist() == [0, 1, -1, 1, -1] and tf.tolist() == [1, 2, 0, 3, 0]
