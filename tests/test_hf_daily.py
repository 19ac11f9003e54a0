"""Hugging Face Daily Papers against a loopback server serving the endpoint's JSON."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from papertide.errors import SourceError
from papertide.paper import Paper
from papertide.sources import Rejected, Signal
from papertide.sources.hf_daily import daily, listing_items
from papertide.sources.http import Fetcher

PATH = "/api/daily_papers"
DAYS = Path(__file__).parent / "fixtures" / "hf_daily"


def serve(server, name: str, **kw: object) -> None:
    """Queue a fixture file as the next reply of the endpoint."""
    server.queue(PATH, (DAYS / name).read_bytes(), headers={"Content-Type": "application/json; charset=utf-8"}, **kw)


@pytest.fixture
def api(server):
    return server.url + PATH


@pytest.fixture
def fetcher(config):
    with Fetcher(config, interval=config.hf_interval) as f:
        yield f


def split(items):
    items = list(items)
    papers = {i.id: i for i in items if isinstance(i, Paper)}
    signals = {i.paper_id: i for i in items if isinstance(i, Signal)}
    rejected = [i for i in items if isinstance(i, Rejected)]
    return papers, signals, rejected


# --------------------------------------------------------------------- a day


def test_a_day_gives_a_paper_and_a_signal_per_item(server, api, fetcher):
    serve(server, "day_2024-01-31.json")
    items = list(daily(fetcher, api, "2024-01-31"))
    assert [type(i).__name__ for i in items] == ["Paper", "Signal"] * 3
    papers, signals, rejected = split(items)
    assert list(papers) == ["2401.18059", "2401.17377", "2402.14776"] and not rejected

    infini = papers["2401.17377"]
    assert infini.source == "hf-daily"
    assert infini.title == "Infini-gram: Scaling Unbounded n-gram Language Models to a Trillion Tokens"
    assert infini.abstract.startswith("Are n-gram language models still relevant") and "\n" not in infini.abstract
    assert infini.authors == ["Jiacheng Liu", "Sewon Min", "Luke Zettlemoyer", "Yejin Choi", "Hannaneh Hajishirzi"]
    assert infini.submitted == "2024-01-30T18:59:35Z"
    assert infini.categories == []  # arXiv fills those in
    assert infini.links["code"] == "https://github.com/liujch1998/infini-gram"
    assert infini.links["project"] == "https://infini-gram.io/"
    assert infini.links["hf"] == "https://huggingface.co/papers/2401.17377"
    assert infini.extra["ai_summary"].startswith("An unbounded n-gram language model")
    assert infini.extra["ai_keywords"] == ["n-gram language model", "suffix array", "infini-gram", "backoff"]
    assert infini.extra["github_stars"] == 451
    assert infini.extra["organization"] == "Ai2"


def test_signals_carry_upvotes_day_submitter_and_discussion(server, api, fetcher):
    serve(server, "day_2024-01-31.json")
    _, signals, _ = split(daily(fetcher, api, date(2024, 1, 31)))
    infini = signals["2401.17377"]
    assert infini.source == "hf" and infini.upvotes == 23 and infini.day == "2024-01-31"
    assert infini.data == {"submitted_by": "akhaliq", "num_comments": 3, "discussion_id": "65b9d1c1b5e5c1a2f4e0a006"}
    assert signals["2401.18059"].upvotes == 41 and signals["2401.18059"].data["num_comments"] == 0


def test_day_falls_back_to_the_requested_day(server, api, fetcher):
    serve(server, "day_2024-01-31.json")
    _, signals, _ = split(daily(fetcher, api, datetime(2024, 2, 1, 8, 30)))
    assert signals["2402.14776"].day == "2024-02-01"  # listed without submittedOnDailyAt
    assert signals["2401.17377"].day == "2024-01-31"  # its own date wins
    assert signals["2402.14776"].data["submitted_by"] == "SeanLee97"


def test_short_github_repo_and_missing_extras(server, api, fetcher):
    serve(server, "day_2024-01-31.json")
    papers, _, _ = split(daily(fetcher, api, "2024-01-31"))
    assert papers["2401.18059"].links["code"] == "https://github.com/parthsarthi03/raptor"
    assert "organization" not in papers["2401.18059"].extra
    matryoshka = papers["2402.14776"]
    assert "code" not in matryoshka.links and "project" not in matryoshka.links
    assert matryoshka.extra == {}
    assert matryoshka.authors[-1] == "Qing Li"  # hidden on HF, still an author


def test_request_params_are_what_the_endpoint_expects(server, api, fetcher):
    serve(server, "day_2024-01-31.json")
    list(daily(fetcher, api, "2024-01-31", limit=50))
    assert server.requests[0].path == PATH
    assert server.requests[0].query == {"date": "2024-01-31", "p": "0", "limit": "50"}
    assert len(server.requests) == 1  # 3 < 50: a short page ends the day


# -------------------------------------------------------------------- paging


def test_pages_until_a_short_page(server, api, fetcher):
    serve(server, "paging_p0.json")
    serve(server, "paging_p1.json")
    papers, signals, _ = split(daily(fetcher, api, "2024-01-31", limit=2))
    assert list(papers) == ["2401.18059", "2401.17377", "2402.14776"] and len(signals) == 3
    assert [r.query["p"] for r in server.requests] == ["0", "1"]
    assert {r.query["limit"] for r in server.requests} == {"2"}


def test_empty_page_ends_paging(server, api, fetcher):
    serve(server, "paging_p0.json")
    server.queue(PATH, "[]")
    papers, _, _ = split(daily(fetcher, api, "2024-01-31", limit=2))
    assert len(papers) == 2 and len(server.requests) == 2


def test_a_server_ignoring_p_does_not_loop(server, api, fetcher):
    server.always(PATH, (DAYS / "paging_p0.json").read_bytes())
    items = list(daily(fetcher, api, "2024-01-31", limit=2))
    assert len(items) == 4  # each paper and signal once
    assert len(server.requests) == 2


# -------------------------------------------------------------- bad records


def test_bad_items_are_rejected_and_the_rest_kept(server, api, fetcher):
    serve(server, "with_bad_items.json")
    papers, signals, rejected = split(daily(fetcher, api, "2024-01-31"))
    assert list(papers) == ["2401.17377", "2402.14776"] and list(signals) == list(papers)
    where = {r.where: r.reason for r in rejected}
    assert "not an arXiv id" in where["hf:acl-2024.long.12"]
    assert "no 'paper' object" in where["hf:2024-01-31#2"]
    assert "without a title" in where["hf:2402.15000"]
    assert "upvotes is 'many'" in where["hf:2401.17000"]
    assert len(rejected) == 4


def test_listing_items_rejects_non_objects():
    (item,) = listing_items(["not", "an", "object"], "2024-01-31", 7)
    assert isinstance(item, Rejected) and item.where == "hf:2024-01-31#7"


# -------------------------------------------------------------------- errors


def test_error_object_raises_its_message(server, api, fetcher):
    serve(server, "error.json", status=400)
    with pytest.raises(SourceError, match="HTTP 400: Invalid date: must be a valid RFC 3339"):
        list(daily(fetcher, api, "2024-01-31"))
    assert len(server.requests) == 1


def test_error_object_with_200_raises_too(server, api, fetcher):
    serve(server, "error.json")
    with pytest.raises(SourceError, match="expected a list of papers, got an error: Invalid date"):
        list(daily(fetcher, api, "2024-01-31"))


def test_truncated_json_is_fetched_again(server, api, fetcher):
    body = (DAYS / "day_2024-01-31.json").read_bytes()
    server.queue(PATH, body[:500])  # complete HTTP reply, JSON cut short
    serve(server, "day_2024-01-31.json")
    papers, _, _ = split(daily(fetcher, api, "2024-01-31"))
    assert len(papers) == 3 and len(server.requests) == 2


def test_503_with_retry_after_is_survived(server, api, fetcher):
    server.queue(PATH, json.dumps({"error": "Service Unavailable"}), status=503, headers={"Retry-After": "1"})
    serve(server, "day_2024-01-31.json")
    papers, _, _ = split(daily(fetcher, api, "2024-01-31"))
    assert len(papers) == 3
    assert server.requests[1].at - server.requests[0].at >= 0.95


@pytest.mark.parametrize("bad", ["2024-13-01", "yesterday", "31/01/2024", ""])
def test_bad_day_is_refused_before_any_request(server, api, fetcher, bad):
    with pytest.raises(ValueError, match=f"not a day: {bad!r}"):
        daily(fetcher, api, bad)  # raised on the call, not on iteration
    assert server.requests == []


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_outside_the_endpoint_range_is_refused(server, api, fetcher, limit):
    with pytest.raises(ValueError, match="limit must be between 1 and 100"):
        daily(fetcher, api, "2024-01-31", limit=limit)
