"""The arXiv API client against a loopback server serving Atom feeds in the API's format."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from papertide.errors import InvalidIdError, SourceError, SourceRefusedError
from papertide.paper import Paper, Version
from papertide.sources import Rejected
from papertide.sources.arxiv_api import fetch, query
from papertide.sources.http import Fetcher

PATH = "/api/query"


FEEDS = Path(__file__).parent / "fixtures" / "arxiv_api"


def serve(server, name: str, **kw: object) -> None:
    """Queue a fixture feed as the next reply of the API path."""
    server.queue(PATH, (FEEDS / name).read_bytes(), headers={"Content-Type": "application/atom+xml"}, **kw)


@pytest.fixture
def api(server):
    return server.url + PATH


@pytest.fixture
def fetcher(config):
    with Fetcher(config) as f:
        yield f


def by_id(items):
    return {i.id: i for i in items if isinstance(i, Paper)}


# ------------------------------------------------------------------- fields


def test_entries_are_read_field_by_field(server, api, fetcher):
    serve(server, "feed_four_entries.xml")
    items = list(query(fetcher, api, search_query="all:language", max_results=10))
    assert [type(i) for i in items] == [Paper] * 4
    p = by_id(items)

    infini = p["2401.17377"]
    assert infini.source == "arxiv-api"
    assert infini.version == 3
    assert infini.title == "Infini-gram: Scaling Unbounded n-gram Language Models to a Trillion Tokens"
    assert infini.abstract.startswith("Are $n$-gram language models still relevant")
    assert "$\\infty$-gram LM with backoff" in infini.abstract and "\n" not in infini.abstract
    assert infini.authors == ["Jiacheng Liu", "Sewon Min", "Luke Zettlemoyer", "Yejin Choi", "Hannaneh Hajishirzi"]
    assert infini.extra["affiliations"] == {
        "Jiacheng Liu": ["University of Washington"],
        "Yejin Choi": ["University of Washington", "Allen Institute for AI"],
    }
    assert infini.categories == ["cs.CL", "cs.AI", "cs.IR"]
    assert infini.submitted == "2024-01-30T18:59:35Z"
    assert infini.updated == "2024-04-04T17:49:21Z"
    assert infini.versions == [Version(1, "2024-01-30T18:59:35Z"), Version(3, "2024-04-04T17:49:21Z")]
    assert infini.comments == "Published at COLM 2024"
    assert infini.doi is None and infini.journal_ref is None
    assert infini.links == {"abs": "https://arxiv.org/abs/2401.17377", "pdf": "https://arxiv.org/pdf/2401.17377"}


def test_old_style_id_with_doi_journal_ref_and_comment(server, api, fetcher):
    serve(server, "feed_four_entries.xml")
    old = by_id(query(fetcher, api, search_query="all:language"))["hep-th/9901001"]
    assert old.version == 2
    assert old.title == "Boundary States and Open String Amplitudes in Curved Backgrounds"
    assert old.doi == "10.1016/S0550-3213(99)00201-8"
    assert old.journal_ref == "Nucl.Phys. B550 (1999) 123-145"
    assert old.comments == "21 pages, LaTeX; v2: references added"
    assert old.links["doi"] == "https://dx.doi.org/10.1016/S0550-3213(99)00201-8"
    assert old.links["abs"] == "https://arxiv.org/abs/hep-th/9901001"
    assert old.categories == ["hep-th", "gr-qc"]
    assert old.extra["other_classes"] == ["81T30"]  # an MSC class, not an arXiv category
    assert old.extra["affiliations"] == {"A. Author": ["Dept. of Physics, Example University"]}


def test_acm_classes_are_kept_apart_and_entities_decoded(server, api, fetcher):
    serve(server, "feed_four_entries.xml")
    p = by_id(query(fetcher, api, search_query="all:language"))
    sbert = p["1908.10084"]
    assert sbert.categories == ["cs.CL", "cs.LG"] and sbert.extra["other_classes"] == ["I.2.7"]
    assert sbert.version == 1 and sbert.versions == [Version(1, "2019-08-27T08:50:17Z")]
    assert "affiliations" not in sbert.extra  # only kept when some author has one
    assert p["0704.0001"].authors[0] == "C. Balázs"


def test_malformed_entries_are_rejected_and_the_rest_kept(server, api, fetcher):
    serve(server, "with_bad_entries.xml")
    items = list(query(fetcher, api, search_query="all:gram"))
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert [i.id for i in items if isinstance(i, Paper)] == ["2401.17377"]
    assert len(rejected) == 2
    assert rejected[0].where == "http://arxiv.org/abs/2401.173" and "not an arXiv id" in rejected[0].reason
    assert rejected[1].where == "http://arxiv.org/abs/2403.09999v1" and "neither title nor abstract" in rejected[1].reason


# ------------------------------------------------------------------- paging


def test_pages_with_start_and_max_results(server, api, fetcher):
    for name in ("paging_start0.xml", "paging_start2.xml", "paging_start4.xml"):
        serve(server, name)
    items = list(query(fetcher, api, search_query="cat:cs.CL", max_results=10, page_size=2, sort_by="submittedDate"))
    assert [i.id for i in items] == ["2401.17377", "1908.10084", "2002.10957", "0704.0001", "hep-th/9901001"]
    sent = [(r.query["start"], r.query["max_results"]) for r in server.requests]
    assert sent == [("0", "2"), ("2", "2"), ("4", "2")]  # stops at totalResults=5: no fourth call
    first = server.requests[0].query
    assert first["search_query"] == "cat:cs.CL"
    assert first["sortBy"] == "submittedDate" and first["sortOrder"] == "descending"
    assert "id_list" not in first


def test_stops_at_max_results_and_asks_only_for_what_remains(server, api, fetcher):
    serve(server, "paging_start0.xml")
    serve(server, "paging_start2.xml")
    items = list(query(fetcher, api, search_query="cat:cs.CL", max_results=3, page_size=2))
    # the server sends two entries on the second page although one was asked for
    assert [i.id for i in items] == ["2401.17377", "1908.10084", "2002.10957"]
    assert [(r.query["start"], r.query["max_results"]) for r in server.requests] == [("0", "2"), ("2", "1")]


def test_short_page_ends_paging(server, api, fetcher):
    serve(server, "feed_four_entries.xml")  # totalResults 4, so no second call either way
    server.always(PATH, "must not be asked", status=500)
    items = list(query(fetcher, api, search_query="all:language", max_results=100, page_size=50))
    assert len(items) == 4 and len(server.requests) == 1


def test_empty_page_before_the_end_is_asked_again(server, api, fetcher):
    serve(server, "paging_start0.xml")
    serve(server, "paging_empty_start2.xml")
    serve(server, "paging_start2.xml")
    serve(server, "paging_start4.xml")
    items = list(query(fetcher, api, search_query="cat:cs.CL", max_results=10, page_size=2))
    assert len(items) == 5
    assert [r.query["start"] for r in server.requests] == ["0", "2", "2", "4"]


def test_page_that_stays_empty_stops_with_a_warning(server, api, fetcher, caplog):
    serve(server, "paging_start0.xml")
    for _ in range(3):
        serve(server, "paging_empty_start2.xml")
    with caplog.at_level(logging.WARNING, logger="papertide.sources.arxiv_api"):
        items = list(query(fetcher, api, search_query="cat:cs.CL", max_results=10, page_size=2))
    assert len(items) == 2
    assert [r.query["start"] for r in server.requests] == ["0", "2", "2", "2"]
    assert "stayed empty" in caplog.text


# ----------------------------------------------------------------- id lists


def test_id_list_is_sent_comma_separated(server, api, fetcher):
    serve(server, "id_list.xml")
    items = list(query(fetcher, api, id_list=["arXiv:2401.17377", "https://arxiv.org/abs/hep-th/9901001v2"]))
    assert [i.id for i in items] == ["2401.17377", "hep-th/9901001"]
    sent = server.requests[0].query
    assert sent["id_list"] == "2401.17377,hep-th/9901001v2"
    assert "search_query" not in sent


def test_fetch_looks_up_ids(server, api, fetcher):
    serve(server, "id_list.xml")
    items = fetch(fetcher, api, ["2401.17377", "hep-th/9901001", "2401.17377"])
    assert [i.id for i in items] == ["2401.17377", "hep-th/9901001"]
    assert server.requests[0].query["id_list"] == "2401.17377,hep-th/9901001"  # duplicates asked once
    assert server.requests[0].query["max_results"] == "2"


def test_invalid_id_fails_before_any_request(server, api, fetcher):
    with pytest.raises(InvalidIdError, match=r"id_list: not an arXiv id: '2401\.9'"):
        query(fetcher, api, id_list=["2401.17377", "2401.9"])  # raised on the call, not on iteration
    with pytest.raises(ValueError, match="not an arXiv id"):
        fetch(fetcher, api, ["garbage"])
    assert server.requests == []


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"sort_by": "date"}, "sort_by must be one of relevance, lastUpdatedDate, submittedDate"),
        ({"sort_order": "up"}, "sort_order must be one of ascending, descending"),
        ({"page_size": 2001}, "page_size must be between 1 and 2000"),
        ({"max_results": 30001}, "max_results must be between 1 and 30,000"),
        ({"search_query": None}, "give a search_query, an id_list, or both"),
    ],
)
def test_bad_arguments_are_refused(server, api, fetcher, kw, message):
    args = {"search_query": "all:x"} | kw
    with pytest.raises(ValueError, match=message):
        query(fetcher, api, **args)
    assert server.requests == []


# ------------------------------------------------------------------- errors


def test_error_entry_with_400_raises_its_summary(server, api, fetcher):
    serve(server, "error_entry.xml", status=400)
    with pytest.raises(SourceRefusedError, match="incorrect id format for 2401.9"):
        list(query(fetcher, api, search_query='ti:"unbalanced'))
    assert len(server.requests) == 1  # an error answer is not retried


def test_error_entry_with_200_raises_too(server, api, fetcher):
    serve(server, "error_entry.xml")
    with pytest.raises(SourceRefusedError, match="the API answered with an error: incorrect id format"):
        list(query(fetcher, api, search_query="all:x"))


def test_400_without_a_feed_names_the_status(server, api, fetcher):
    server.queue(PATH, "Bad Request", status=400)
    with pytest.raises(SourceRefusedError, match=r"HTTP 400 \(Bad Request\)"):
        list(query(fetcher, api, search_query="all:x"))


def test_other_4xx_is_a_refusal_and_a_dead_server_is_not(server, api, fetcher):
    server.queue(PATH, "Forbidden", status=403)
    with pytest.raises(SourceRefusedError, match=r"HTTP 403 \(Forbidden\)"):
        list(query(fetcher, api, search_query="all:x"))
    server.always(PATH, "overloaded", status=503)
    with pytest.raises(SourceError, match="giving up after 4 attempts: HTTP 503") as down:
        list(query(fetcher, api, search_query="all:x"))
    assert not isinstance(down.value, SourceRefusedError)  # worth asking again later


def test_truncated_xml_body_is_fetched_again(server, api, fetcher):
    body = (FEEDS / "feed_four_entries.xml").read_bytes()
    server.queue(PATH, body[: len(body) // 2])  # complete HTTP reply, XML cut short
    server.queue(PATH, body, truncate_at=len(body) // 3)  # connection closed mid-body
    serve(server, "feed_four_entries.xml")
    items = list(query(fetcher, api, search_query="all:language"))
    assert len(items) == 4
    assert len(server.requests) == 3


def test_body_that_stays_broken_gives_up(server, api, fetcher):
    server.always(PATH, "<feed xmlns='http://www.w3.org/2005/Atom'><entry>")
    with pytest.raises(SourceError, match="giving up after 4 attempts: arXiv API answer is not well-formed XML") as e:
        list(query(fetcher, api, search_query="all:x"))
    assert not isinstance(e.value, SourceRefusedError)
