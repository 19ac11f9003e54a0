"""``papertide index``, ``search`` and ``similar`` end to end through click on the demo corpus."""

from __future__ import annotations

import json

import pytest
from conftest import cli_run as run



@pytest.fixture
def demo(demo_indexed, warm_home):
    return warm_home


def test_search_json_finds_by_meaning_and_marks_phrases(demo):
    hits = json.loads(run("search", "n-gram language models at trillion-token scale", "--json").stdout)
    assert hits[0]["title"].startswith("Infini-gram") and {"id", "title", "score"} <= set(hits[0])
    marked = json.loads(run("search", '"language models" survey', "-k", "3", "--json").stdout)
    for hit in marked:
        spans = hit["highlights"]["title"] + hit["highlights"]["abstract"]
        assert spans  # every hit holds the phrase, and says where
    a, b = marked[0]["highlights"]["title"][0]
    assert marked[0]["title"][a:b].lower() == "language models"
    for mode in ("lexical", "dense"):
        assert json.loads(run("search", "speech", "--mode", mode, "-k", "2", "--json").stdout)


def test_hostile_queries_never_crash(demo):
    for q in ('"unbalanced', "x" * 10_000, "nope:field words", "'; DROP TABLE papers; --", "a\x00b\x07c", "NEAR(a b)"):
        result = run("search", q, "--json")
        assert isinstance(json.loads(result.stdout), list)


def test_index_is_incremental_and_similar_works(demo):
    again = run("index").stdout
    assert "0 added or updated" in again
    first = json.loads(run("search", "Infini-gram", "-k", "1", "--json").stdout)[0]
    similar = json.loads(run("similar", first["id"], "--json").stdout)
    assert similar and first["id"] not in [s["id"] for s in similar]
    assert "no paper '2401.99999'" in run("similar", "2401.99999", code=1).output


def test_search_without_an_index_says_what_to_do(warm_home):
    run("demo")
    assert "papertide index" in run("search", "anything", code=1).output
