"""Filter masks over the index's papers: dates, category prefixes, ids; saved and loaded."""

from __future__ import annotations

from datetime import date

import numpy as np

from papertide.filters import NO_DATE, DocFacts, day_number
from papertide.paper import Paper


def facts() -> DocFacts:
    return DocFacts.build([
        Paper(id="a", title="x", categories=["cs.CL", "math.CO"], submitted="2024-03-01"),
        Paper(id="b", title="y"),
        Paper(id="c", title="z", categories=["cs"], submitted="2023-12-31T23:59:59Z"),
        Paper(id="d", title="w", categories=["hep-th"], submitted="2024-01-01"),
    ])  # fmt: skip


def test_day_numbers():
    assert day_number("1970-01-02") == 1 and day_number(None) == NO_DATE and day_number("garbage") == NO_DATE


def test_category_prefixes_and_exact_names():
    f = facts()
    assert f.category_mask(["cs"]).tolist() == [True, False, True, False]
    assert f.category_mask(["CS.cl"]).tolist() == [True, False, False, False]
    assert f.category_mask(["math", "hep-th"]).tolist() == [True, False, False, True]
    assert not f.category_mask(["c"]).any()  # a prefix is a whole archive name, not any string start


def test_date_ranges_are_inclusive_and_undated_papers_never_match():
    f = facts()
    assert f.date_mask(date(2024, 1, 1), None).tolist() == [True, False, False, True]
    assert f.date_mask(None, date(2023, 12, 31)).tolist() == [False, False, True, False]
    assert f.date_mask(None, None).tolist() == [True, False, True, True]


def test_key_mask_and_round_trip(tmp_path):
    f = facts()
    assert f.key_mask(["d", "nope", "a"]).tolist() == [True, False, False, True]
    f.save(tmp_path / "facts", watermark=7)
    g, mark = DocFacts.load(tmp_path / "facts")
    assert mark == 7 and g.keys == f.keys and g.categories == f.categories
    assert np.array_equal(g.days, f.days) and g.category_mask(["cs"]).tolist() == [True, False, True, False]
    f.save(tmp_path / "facts", watermark=8)  # replacing an existing index works
    assert DocFacts.load(tmp_path / "facts")[1] == 8


def test_merged_equals_a_fresh_build():
    f = facts()
    changed = Paper(id="c", title="z", categories=["q-bio.NC", "cs.AI"], submitted="2020-05-05")
    new = Paper(id="e", title="v", categories=["cs.CL"], submitted="2025-01-01")
    g = f.merged([changed, new], removed=["a"])
    assert g.keys == ["b", "d", "c", "e"]
    fresh = DocFacts.build([Paper(id="b", title="y"), Paper(id="d", title="w", categories=["hep-th"],
                            submitted="2024-01-01"), changed, new])  # fmt: skip
    assert g.days.tolist() == fresh.days.tolist()
    for cat in ("cs", "cs.CL", "hep-th", "q-bio", "math"):
        assert g.category_mask([cat]).tolist() == fresh.category_mask([cat]).tolist(), cat
    assert f.merged([]).keys == f.keys
