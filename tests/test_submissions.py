"""Submissions: kept first, completed from the store or the arXiv API, retried in one batch."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from web_helpers import PAPER, fresh_home

from papertide.config import replace
from papertide.errors import InvalidIdError
from papertide.store import open_store
from papertide.submissions import PENDING_MESSAGE, complete_pending_submissions, submit, today

pytest_plugins = ["web_fixtures"]  # the template fixture

FEEDS = Path(__file__).parent / "fixtures" / "arxiv_api"
API_PATH = "/api/query"
ATOM = {"Content-Type": "application/atom+xml"}


@pytest.fixture
def store(template, config):
    fresh_home(template, config.home)
    with open_store(config) as s:
        yield s


@pytest.fixture
def users(store):
    com = store.community
    return com.create_user("alice", "", "hash-a").id, com.create_user("bob", "", "hash-b").id


def dead(config):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return replace(config, arxiv_api_url=f"http://127.0.0.1:{port}{API_PATH}")


def test_garbage_is_refused_and_nothing_is_recorded(store, config, users):
    with pytest.raises(InvalidIdError):
        submit(store, config, users[0], "see my blog")
    assert store.community.submissions(users[0]) == []


def test_retry_asks_arxiv_once_for_every_pending_id(store, config, users, server):
    alice, bob = users
    offline = dead(config)
    first = submit(store, offline, alice, "https://arxiv.org/abs/2401.17377v3")
    second = submit(store, offline, bob, "hep-th/9901001")
    assert first.status == second.status == "pending" and first.message.startswith(PENDING_MESSAGE)
    # a paper already in the store completes without the network, even while it is down
    assert submit(store, offline, bob, PAPER).status == "done"
    server.queue(API_PATH, (FEEDS / "id_list.xml").read_bytes(), headers=ATOM)
    online = replace(config, arxiv_api_url=server.url + API_PATH)
    assert complete_pending_submissions(store, online, day="2024-04-05") == 2
    assert [r.query["id_list"] for r in server.requests] == ["2401.17377,hep-th/9901001"]
    com = store.community
    assert com.pending_submissions() == []
    assert com.listing(["2401.17377", "hep-th/9901001"]) == {"2401.17377": ("2024-04-05", alice),
                                                             "hep-th/9901001": ("2024-04-05", bob)}  # fmt: skip
    assert com.listing([PAPER])[PAPER] == (today(), bob)
    assert store.get("hep-th/9901001").title.startswith("Boundary States")
    assert complete_pending_submissions(store, online) == 0 and len(server.requests) == 1  # nothing left to ask


def test_a_paper_arxiv_lacks_fails_and_an_error_answer_fails(store, config, users, server):
    online = replace(config, arxiv_api_url=server.url + API_PATH)
    feed = (FEEDS / "paging_empty_start2.xml").read_text()
    feed = feed.replace(">5</opensearch:totalResults>", ">0</opensearch:totalResults>")
    server.queue(API_PATH, feed.replace(">2</opensearch:startIndex>", ">0</opensearch:startIndex>"), headers=ATOM)
    missing = submit(store, online, users[0], "2401.99999")
    assert missing.status == "failed" and missing.message == "arXiv has no paper 2401.99999"
    server.queue(API_PATH, (FEEDS / "error_entry.xml").read_bytes(), status=400, headers=ATOM)
    refused = submit(store, online, users[0], "2401.99998")
    assert refused.status == "failed" and refused.message.startswith("arXiv refused it")
    server.queue(API_PATH, "Forbidden", status=403)  # a refusal without an error entry
    forbidden = submit(store, online, users[0], "2401.99997")
    assert forbidden.status == "failed" and forbidden.message.startswith("arXiv refused it")
    assert "HTTP 403 (Forbidden)" in forbidden.message
    assert store.community.pending_submissions() == []


def test_a_server_error_keeps_it_pending(store, config, users, server):
    server.always(API_PATH, "overloaded", status=503)
    online = replace(config, arxiv_api_url=server.url + API_PATH, retries=1)
    sub = submit(store, online, users[0], "2401.17377")
    assert sub.status == "pending" and "HTTP 503" in sub.message
    assert len(server.requests) == 2  # the fetcher's retry, then it stays pending


def test_arxiv_requests_keep_their_interval_across_submissions(store, config, users, server):
    feed = (FEEDS / "id_list.xml").read_bytes()
    server.always(API_PATH, feed, headers=ATOM)
    polite = replace(config, arxiv_api_url=server.url + API_PATH, arxiv_interval=0.3)
    submit(store, polite, users[0], "2401.17377")
    submit(store, polite, users[1], "hep-th/9901001")
    a, b = server.requests
    assert b.at - a.at >= 0.3 * 0.85  # two fetchers, one gate


# ------------------------------------------------------------- retrying in serve


def test_the_app_retries_pending_submissions_in_the_background_without_blocking(store, config, users, server):
    from fastapi.testclient import TestClient

    from papertide.web import create_app

    pending = submit(store, dead(config), users[0], "2401.17377")
    assert pending.status == "pending"
    server.queue(API_PATH, "busy", status=503, headers={"Retry-After": "3"})  # the round waits 3 s on arXiv...
    server.queue(API_PATH, (FEEDS / "id_list.xml").read_bytes(), headers=ATOM)
    online = replace(config, arxiv_api_url=server.url + API_PATH)
    app = create_app(online, retry_submissions=0.2)
    retrier = app.state.retrier
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        page = client.get("/")  # ...while a page is answered at once
        assert page.status_code == 200 and time.monotonic() - started < 2
        assert store.community.pending_submissions() != []  # the round was still waiting
        while store.community.pending_submissions() and time.monotonic() < deadline:
            time.sleep(0.05)
        done = store.community.submissions(users[0])[0]
        assert done.status == "done" and done.message == f"listed on {today()}"
        assert [r.query["id_list"] for r in server.requests] == ["2401.17377", "2401.17377"]
        assert retrier.holds_lease and retrier._thread.is_alive()
    assert not retrier._thread.is_alive() and not retrier.holds_lease  # stopped with the app
    assert create_app(online).state.retrier is None  # off unless asked for


def test_only_the_process_holding_the_lease_retries(config, template, users, server):
    from papertide.submissions import PendingRetrier, retry_lease_path

    server.always(API_PATH, (FEEDS / "id_list.xml").read_bytes(), headers=ATOM)
    online = replace(config, arxiv_api_url=server.url + API_PATH)
    with open_store(config) as one, open_store(config) as two:  # two workers' connections
        first, second = PendingRetrier(one, online, 60), PendingRetrier(two, online, 60)
        assert first.run_once() == 0 and first.holds_lease  # nothing pending: no request either
        submit(one, dead(config), users[1], "2401.17377")
        assert second.run_once() is None and not second.holds_lease and server.requests == []
        assert retry_lease_path(config).read_text().strip() == str(os.getpid())
        assert first.stop() and not first.holds_lease
        assert second.run_once() == 1 and second.holds_lease  # the lease passed on
        assert [r.query["id_list"] for r in server.requests] == ["2401.17377"]
        assert second.stop()
    with pytest.raises(ValueError, match="must be positive"):
        PendingRetrier(None, config, 0)  # type: ignore[arg-type]
