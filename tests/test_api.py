"""The JSON API (papertide/web/api*.py) through Starlette's TestClient, on the demo corpus.

Read tests share the indexed home of ``web_fixtures.py`` (``api_home``: the demo corpus
listed on 2024-03-17 as ``papertide serve`` lists it, three dated arXiv papers, one
with ``<script>`` in its title, one hidden by a moderator, three accounts holding API
tokens, votes, a comment thread and collections) and one client of it
(``api_client``); write tests each get a fresh copy of the database (``writer``: the
index is not needed to write).
"""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient
from web_corpus import HIDDEN, HOSTILE, MORE_HOSTILE, SCRIPT_COMMENT, TOKENS, XSS_TITLE
from web_helpers import entry_links, unlimited, fresh_home

from papertide.ingest import ingest_demo
from papertide.store import open_store
from papertide.web import create_app
from papertide.web.api_common import ApiLimits
from papertide.web.auth import SESSION_COOKIE, hash_password, new_csrf, session_expires, token_hash
from papertide.web.demo import DEMO_DAY, demo_paper_ids
from papertide.web.security import RequestLimiter

pytest_plugins = ["web_fixtures"]  # api_home, api_client

HOSTILE = HOSTILE + MORE_HOSTILE  # the page tests' queries, and more


@pytest.fixture
def writer(api_home, config):
    """A client of a fresh app over a copy of the module's database (no index): for tests that write."""
    fresh_home(api_home["pristine"], config.home)
    with TestClient(unlimited(create_app(config)), raise_server_exceptions=False) as c:
        yield c


def auth(name: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def ids_of(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [p["id"] for p in r.json()["items"]]


def walk(c: TestClient, url: str, **params) -> list[str]:
    """Every id of a list, following ``next`` links; checks the envelope on the way."""
    got, r = [], c.get(url, params=params)
    while True:
        body = r.json()
        got += ids_of(r)
        assert body["offset"] >= 0 and 1 <= body["limit"] <= 100
        if body["next"] is None:
            return got
        assert body["next"].startswith("http://testserver/api/")
        r = c.get(body["next"])


def assert_error(r, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail, r.text
    for w in words:
        assert w in detail, (w, detail)


# ------------------------------------------------------------------- papers


def test_a_paper_by_any_id_form_answers_with_its_canonical_id_and_community_numbers(api_client, api_home):
    for form in ("2403.01234", "arXiv:2403.01234v2", "https://arxiv.org/abs/2403.01234"):
        r = api_client.get(f"/api/papers/{form}")
        assert r.status_code == 200, form
        p = r.json()
        assert p["id"] == "2403.01234" and p["title"] == XSS_TITLE  # JSON carries the text as it is
        assert p["url"] == "http://testserver/paper/2403.01234"
        assert p["authors"] == ["Ada Lovelace", "Alan Turing"] and p["submitted"] == "2024-03-15"
        assert p["links"]["code"] == "https://github.com/example/scaling" and p["voted"] is None
    demo = api_client.get(f"/api/papers/{api_home['ids'][7]}").json()
    assert demo["votes"] == 2 and demo["comment_count"] == 3 and demo["listed"] == DEMO_DAY
    assert api_client.get(f"/api/papers/{api_home['ids'][7]}", headers=auth("bob")).json()["voted"] is True
    assert api_client.get(f"/api/papers/{api_home['ids'][0]}", headers=auth("bob")).json()["voted"] is False


def test_unknown_invalid_and_hidden_papers_are_json_404s(api_client):
    assert_error(api_client.get("/api/papers/2401.99999"), 404, "2401.99999")
    assert_error(api_client.get("/api/papers/not-an-id"), 404, "not a paper id")
    assert_error(api_client.get(f"/api/papers/{HIDDEN}"), 404)
    assert api_client.get(f"/api/papers/{HIDDEN}", headers=auth("carol")).json()["id"] == HIDDEN  # an admin sees it


def test_several_papers_by_id_keep_the_order_and_name_the_missing(api_client, api_home):
    ids = api_home["ids"]
    r = api_client.get("/api/papers", params=[("ids", f"arXiv:2402.05678v1,{ids[2]}"), ("ids", "nope"),
                                          ("ids", HIDDEN), ("ids", "2403.01234")])  # fmt: skip
    assert ids_of(r) == ["2402.05678", ids[2], "2403.01234"]
    assert r.json()["missing"] == ["nope", HIDDEN] and r.json()["total"] == 3
    assert_error(api_client.get("/api/papers", params={"ids": ",".join(["2403.01234"] * 101)}), 422, "at most 100")


def test_all_papers_page_by_page(api_client):
    first = api_client.get("/api/papers", params={"limit": 10}).json()
    assert first["total"] == 45 and len(first["items"]) == 9  # the hidden paper leaves a gap: offsets stay stable
    everything = walk(api_client, "/api/papers", limit=10)
    assert len(everything) == len(set(everything)) == 45 and HIDDEN not in everything
    assert everything[0] == "2403.01234"  # newest first
    assert_error(api_client.get("/api/papers", params={"limit": 0}), 422, "limit")
    assert_error(api_client.get("/api/papers", params={"limit": 101}), 422, "limit")
    assert_error(api_client.get("/api/papers", params={"offset": -1}), 422, "offset")


# -------------------------------------------------------------------- lists


def test_daily_is_the_home_page_s_list_in_the_same_order(api_client, api_home):
    ids = api_home["ids"]
    r = api_client.get("/api/daily")
    body = r.json()
    assert (body["kind"], body["first"], body["last"], body["source"]) == ("day", DEMO_DAY, DEMO_DAY, "listed")
    assert body["total"] == 43 and len(body["items"]) == 20
    assert ids_of(r)[:2] == [ids[7], ids[3]]  # by votes
    everything = walk(api_client, "/api/daily", limit=7)
    assert everything == entry_links(api_client.get("/").text)
    assert walk(api_client, "/api/daily", day=DEMO_DAY, limit=100) == everything


def test_daily_week_month_and_days_without_listings(api_client):
    day = api_client.get("/api/daily", params={"day": "2024-03-15"}).json()
    assert day["source"] == "submitted" and [p["id"] for p in day["items"]] == ["2403.01234"]
    assert api_client.get("/api/daily", params={"week": "2024-W11"}).json()["total"] == 43
    month = api_client.get("/api/daily", params={"month": "2024-02"}).json()
    assert (month["first"], month["last"], [p["id"] for p in month["items"]]) == ("2024-02-01", "2024-02-29",
                                                                                   ["2402.05678"])  # fmt: skip
    assert api_client.get("/api/daily", params={"month": "2023-12"}).json()["items"] == []  # the one paper is hidden
    for params, word in (({"day": "2024-02-30"}, "day"), ({"day": "yesterday"}, "day"), ({"week": "2024-W60"}, "week"),
                         ({"month": "2024-13"}, "month"), ({"day": DEMO_DAY, "week": "2024-W11"}, "one of")):
        assert_error(api_client.get("/api/daily", params=params), 422, word)


def test_trending_ranks_by_decayed_votes_like_the_page(api_client, api_home):
    ids = api_home["ids"]
    r = api_client.get("/api/trending", params={"window": "day"})
    body = r.json()
    assert ids_of(r) == [ids[7], ids[3]] and body["total"] == 2 and body["next"] is None
    scores = [p["score"] for p in body["items"]]
    assert scores[0] > scores[1] > 0 and body["half_life_hours"] == 6
    assert ids_of(api_client.get("/api/trending", params={"limit": 1, "offset": 1})) == [ids[3]]
    assert ids_of(r) == entry_links(api_client.get("/trending?window=day").text)
    assert_error(api_client.get("/api/trending", params={"window": "year"}), 422, "window")


# ------------------------------------------------------------------- search


@pytest.mark.parametrize("params", [{"q": "language models"}, {"q": '"language models" scaling', "mode": "lexical"},
                                    {"q": "retrieval", "mode": "dense"}, {"q": "language", "page": 2},
                                    {"q": "models", "author": "Ada Lovelace"}, {"q": "cat:cs.CL"}])  # fmt: skip
def test_search_answers_what_the_search_page_shows(api_client, params):
    page = params.pop("page", 1)
    html = api_client.get("/search", params=params | {"page": page}).text
    api = api_client.get("/api/search", params=params | {"offset": (page - 1) * 20, "limit": 20})
    assert ids_of(api) and ids_of(api) == entry_links(html[html.index('class="searchpage"'):])
    assert HIDDEN not in ids_of(api)


def test_search_results_carry_scores_highlights_and_paging(api_client):
    r = api_client.get("/api/search", params={"q": '"language models" scaling', "mode": "lexical", "k": 5})
    body = r.json()
    first = body["items"][0]
    assert first["id"] == "2403.01234" and body["limit"] == 5 and len(body["items"]) == 5
    marked = [first["title"][a:b].lower() for a, b in first["highlights"]["title"]]
    assert "language models" in marked and "scaling" in marked
    assert all(x["score"] is not None for x in body["items"])
    assert '"language models"' in body["describe"] and "scaling" in body["describe"] and body["notes"] == []
    pages = walk(api_client, "/api/search", q="language", limit=20)
    assert len(pages) == len(set(pages)) > 20
    assert_error(api_client.get("/api/search", params={"q": "x", "offset": 5000}), 422, "offset")


def test_search_notes_lookups_and_bad_modes(api_client):
    r = api_client.get("/api/search", params={"q": "title:models"}).json()
    assert r["notes"] and "title" in r["notes"][0] and r["items"]
    contradiction = api_client.get("/api/search", params={"q": "since:2024-03 until:2024-01"})
    assert contradiction.status_code == 200 and contradiction.json()["notes"] and contradiction.json()["items"] == []
    assert ids_of(api_client.get("/api/search", params={"q": "arXiv:2403.01234v3"})) == ["2403.01234"]
    assert ids_of(api_client.get("/api/search", params={"q": HIDDEN})) == []
    assert api_client.get("/api/search", params={"q": ""}).json()["items"] == []
    assert_error(api_client.get("/api/search", params={"q": "x", "mode": "fancy"}), 422, "hybrid")


def test_hostile_queries_never_break_the_search_api(api_client):
    for q in HOSTILE:
        r = api_client.get("/api/search", params={"q": q})
        assert r.status_code == 200, (q[:20], r.text[:200])
        assert isinstance(r.json()["notes"], list)
    for field in ("cat", "author", "since", "until"):
        assert api_client.get("/api/search", params={"q": "models", field: '"<script>'}).status_code == 200


# ------------------------------------------------------- similar, authors, ngram


def test_similar_papers(api_client):
    r = api_client.get("/api/similar/arXiv:2403.01234")
    body = r.json()
    got = ids_of(r)
    assert body["paper_id"] == "2403.01234" and len(got) == 20 and "2403.01234" not in got and HIDDEN not in got
    scores = [p["score"] for p in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert walk(api_client, "/api/similar/2403.01234", limit=9)[:20] == got
    assert_error(api_client.get("/api/similar/2401.99999"), 404)
    assert_error(api_client.get(f"/api/similar/{HIDDEN}"), 404)


def test_author_papers(api_client):
    r = api_client.get("/api/authors/ada lovelace")
    assert r.json()["name"] == "Ada Lovelace" and ids_of(r) == ["2403.01234", "2402.05678"]
    assert_error(api_client.get("/api/authors/Grace Hopper"), 404)  # her one paper is hidden
    assert_error(api_client.get("/api/authors/Nobody Atall"), 404, "Nobody Atall")


def test_ngram_counts(api_client):
    body = api_client.get("/api/ngram/count", params={"phrase": "Language Models"}).json()
    assert body["tokens"] == ["language", "models"] and body["count"] >= body["papers"] > 3
    assert api_client.get("/api/ngram/count", params={"phrase": "zyzzyva quux"}).json()["count"] == 0
    assert api_client.get("/api/ngram/count", params={"phrase": "   "}).json() == {
        "phrase": "   ", "tokens": [], "count": 0, "papers": 0}
    assert api_client.get("/api/ngram/count", params={"phrase": "<script>" * 100}).status_code == 200
    assert_error(api_client.get("/api/ngram/count"), 422, "phrase")


def test_without_indexes_the_api_says_503_and_the_rest_works(config):
    with open_store(config) as store:
        ingest_demo(store)
    with TestClient(create_app(config), raise_server_exceptions=False) as c:
        assert_error(c.get("/api/search", params={"q": "language"}), 503, "papertide index")
        assert_error(c.get("/api/ngram/count", params={"phrase": "language"}), 503, "papertide index")
        assert_error(c.get(f"/api/similar/{demo_paper_ids()[0]}"), 503, "papertide index")
        assert c.get(f"/api/papers/{demo_paper_ids()[0]}").status_code == 200


# ---------------------------------------------------- comments, collections (read)


def test_comments_in_thread_order_with_sanitised_html(api_client, api_home):
    r = api_client.get(f"/api/papers/{api_home['ids'][7]}/comments")
    body = r.json()
    assert body["total"] == 3 and [c["user"] for c in body["items"]] == ["alice", "bob", "bob"]
    first, reply, later = body["items"]
    assert reply["parent_id"] == first["id"] and later["parent_id"] is None
    assert first["body"] == SCRIPT_COMMENT and "<strong>bold</strong>" in first["html"]
    assert "<script" not in first["html"] and "<img" not in first["html"] and "onerror" not in first["html"].replace(
        "onerror=alert", "")  # fmt: skip
    assert not re.search(r"<[^>]+\son\w+\s*=", first["html"])
    assert "<em>agree</em>" in reply["html"]
    assert api_client.get(f"/api/papers/{api_home['ids'][7]}/comments", params={"limit": 2}).json()["next"]
    assert_error(api_client.get("/api/papers/2401.99999/comments"), 404)


def test_collections_are_public_or_their_owner_s(api_client, api_home):
    pub, priv = api_home["public"], api_home["private"]
    r = api_client.get(f"/api/collections/{pub}")
    body = r.json()
    assert (body["name"], body["owner"], body["public"], body["size"]) == ("Reading list", "alice", True, 2)
    assert [i["paper_id"] for i in body["items"]] == [api_home["ids"][7], "2403.01234"]
    assert body["items"][0]["note"] == "read <b>this</b> first" and body["items"][1]["paper"]["title"] == XSS_TITLE
    assert_error(api_client.get(f"/api/collections/{priv}"), 404)
    assert_error(api_client.get(f"/api/collections/{priv}", headers=auth("bob")), 404)
    assert api_client.get(f"/api/collections/{priv}", headers=auth("alice")).json()["name"] == "Secret"
    listed = api_client.get("/api/collections").json()["items"]
    assert [c["id"] for c in listed] == [pub] and listed[0]["url"] == f"http://testserver/api/collections/{pub}"
    mine = api_client.get("/api/me/collections", headers=auth("alice")).json()["items"]
    assert sorted(c["name"] for c in mine) == ["Reading list", "Secret"]
    assert_error(api_client.get("/api/collections/99999"), 404)
    assert_error(api_client.get("/api/collections/abc"), 422)
    assert_error(api_client.get(f"/api/collections/{2**70}"), 422)


# --------------------------------------------------------------------- tokens


def test_token_authentication(api_client):
    me = api_client.get("/api/me", headers=auth("carol")).json()
    assert (me["username"], me["role"]) == ("carol", "admin") and me["created"].startswith("20")
    missing = api_client.get("/api/me")
    assert_error(missing, 401, "Bearer")
    assert missing.headers["www-authenticate"] == 'Bearer realm="papertide"'
    for header in ("Bearer wrong-token", "Bearer ", "Basic YWxpY2U6cGFzcw==", "bearer " + "x" * 5000):
        r = api_client.get("/api/me", headers={"Authorization": header})
        assert_error(r, 401)
        assert r.headers["www-authenticate"].startswith('Bearer realm="papertide", error=')
    wrong = api_client.get("/api/daily", headers={"Authorization": "Bearer wrong"})
    assert_error(wrong, 401)  # a wrong token is never ignored


def test_writes_need_a_token_and_a_session_cookie_is_not_one(writer, api_home):
    pid = api_home["ids"][0]
    assert_error(writer.post(f"/api/papers/{pid}/vote"), 401, "token")
    assert_error(writer.post(f"/api/papers/{pid}/vote", headers={"Authorization": "Bearer nope"}), 401)
    com = writer.app.state.store.community
    alice = com.user_by_name("alice")
    cookie = "a-session-token-for-alice-0123456789"
    com.create_session(alice.id, token_hash(cookie), new_csrf(), session_expires())
    writer.cookies.set(SESSION_COOKIE, cookie)
    assert_error(writer.post(f"/api/papers/{pid}/vote"), 401)
    assert_error(writer.post("/api/collections", json={"name": "x"}), 401)
    assert com.votes([pid])[pid] == 0
    assert writer.post(f"/api/papers/{pid}/vote", headers=auth("alice")).json()["votes"] == 1


# ---------------------------------------------------------------------- writes


def test_votes_are_one_per_user_and_undoable(writer, api_home):
    pid = api_home["ids"][7]  # two votes already (alice, bob)
    assert writer.post(f"/api/papers/{pid.upper()}/vote", headers=auth("carol")).json() == {
        "paper_id": pid, "votes": 3, "voted": True}
    assert writer.post("/api/papers/arXiv:2403.01234v2/vote", headers=auth("carol")).json()["paper_id"] == "2403.01234"
    assert writer.post(f"/api/papers/{pid}/vote", headers=auth("carol")).json()["votes"] == 3
    assert writer.get(f"/api/papers/{pid}", headers=auth("carol")).json()["voted"] is True
    assert writer.delete(f"/api/papers/{pid}/vote", headers=auth("carol")).json() == {
        "paper_id": pid, "votes": 2, "voted": False}
    assert writer.delete(f"/api/papers/{pid}/vote", headers=auth("carol")).json()["votes"] == 2
    assert_error(writer.post("/api/papers/2401.99999/vote", headers=auth("alice")), 404)
    assert_error(writer.post(f"/api/papers/{HIDDEN}/vote", headers=auth("alice")), 404)
    assert_error(writer.get(f"/api/papers/{pid}/vote"), 404)  # GET is not a vote


def test_not_relevant_marks_are_per_user_undoable_and_need_a_token(writer, api_home):
    pid = api_home["ids"][5]
    com = writer.app.state.store.community
    alice, bob = com.user_by_name("alice").id, com.user_by_name("bob").id
    assert writer.post(f"/api/papers/{pid}/not-relevant", headers=auth("alice")).json() == {
        "paper_id": pid, "not_relevant": True}
    assert writer.post("/api/papers/arXiv:2403.01234v2/not-relevant", headers=auth("alice")).json() == {
        "paper_id": "2403.01234", "not_relevant": True}
    assert writer.post(f"/api/papers/{pid}/not-relevant", headers=auth("alice")).status_code == 200  # idempotent
    assert com.not_relevant(alice) == {pid, "2403.01234"} and com.not_relevant(bob) == set()
    assert writer.delete(f"/api/papers/{pid}/not-relevant", headers=auth("alice")).json() == {
        "paper_id": pid, "not_relevant": False}
    assert writer.delete(f"/api/papers/{pid}/not-relevant", headers=auth("bob")).json()["not_relevant"] is False
    assert com.not_relevant(alice) == {"2403.01234"}
    assert_error(writer.post(f"/api/papers/{pid}/not-relevant"), 401, "token")
    assert_error(writer.delete("/api/papers/2403.01234/not-relevant"), 401, "token")
    assert_error(writer.post("/api/papers/2401.99999/not-relevant", headers=auth("bob")), 404)
    assert_error(writer.post(f"/api/papers/{HIDDEN}/not-relevant", headers=auth("bob")), 404)
    assert_error(writer.post("/api/papers/not-an-id/not-relevant", headers=auth("bob")), 404)
    assert_error(writer.get(f"/api/papers/{pid}/not-relevant", headers=auth("bob")), 404)  # GET marks nothing
    assert com.not_relevant(bob) == set() and com.not_relevant(alice) == {"2403.01234"}


def test_posting_comments_and_replies(writer, api_home):
    pid, other = api_home["ids"][1], api_home["ids"][2]
    r = writer.post(f"/api/papers/{pid}/comments", headers=auth("bob"),
                    json={"body": "# Title\n<script>alert(1)</script> [x](javascript:alert(1)) *ok*"})  # fmt: skip
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["user"] == "bob" and made["paper_id"] == pid and made["parent_id"] is None
    assert "<script" not in made["html"] and "&lt;script&gt;" in made["html"] and "<em>ok</em>" in made["html"]
    assert "<a" not in made["html"]  # a javascript: link stays text
    reply = writer.post(f"/api/papers/{pid}/comments", headers=auth("alice"),
                        json={"body": "Thanks", "parent_id": made["id"]})  # fmt: skip
    assert reply.status_code == 201 and reply.json()["parent_id"] == made["id"]
    thread = writer.get(f"/api/papers/{pid}/comments").json()
    assert [c["id"] for c in thread["items"]] == [made["id"], reply.json()["id"]]
    on_other = writer.post(f"/api/papers/{other}/comments", headers=auth("alice"),
                           json={"body": "x", "parent_id": made["id"]})  # fmt: skip
    assert_error(on_other, 422, "another paper")
    assert_error(writer.post(f"/api/papers/{pid}/comments", headers=auth("alice"),
                             json={"body": "x", "parent_id": 424242}), 404, "424242")  # fmt: skip
    for bad in ({"body": ""}, {"body": "   \n  "}, {"body": "x" * 20_001}, {"body": "x", "extra": 1}, {}, [1]):
        assert_error(writer.post(f"/api/papers/{pid}/comments", headers=auth("alice"), json=bad), 422)
    assert_error(writer.post(f"/api/papers/{pid}/comments", headers=auth("alice"), content=b"{not json",
                             ), 422)  # fmt: skip
    assert_error(writer.post(f"/api/papers/{HIDDEN}/comments", headers=auth("alice"), json={"body": "x"}), 404)


def test_collections_create_change_fill_and_delete(writer, api_home):
    a = auth("alice")
    r = writer.post("/api/collections", headers=a, json={"name": "Transformers", "description": "<i>x</i>"})
    assert r.status_code == 201, r.text
    made = r.json()
    cid = made["id"]
    assert (made["public"], made["size"], made["owner"]) == (False, 0, "alice")
    assert_error(writer.post("/api/collections", headers=a, json={"name": "Transformers"}), 409, "Transformers")
    assert_error(writer.post("/api/collections", headers=a, json={"name": "x" * 101}), 422, "name")
    assert_error(writer.post("/api/collections", headers=a, json={"name": "  "}), 422)
    put = writer.put(f"/api/collections/{cid}/papers/arXiv:2403.01234v2", headers=a, json={"note": "first"})
    assert put.status_code == 200 and put.json()["note"] == "first" and put.json()["paper"]["id"] == "2403.01234"
    assert writer.put(f"/api/collections/{cid}/papers/2403.01234", headers=a, json={"note": "again"}).json()[
        "note"] == "again"  # fmt: skip
    assert writer.put(f"/api/collections/{cid}/papers/{api_home['ids'][0]}", headers=a).status_code == 200  # no body
    assert_error(writer.put(f"/api/collections/{cid}/papers/2401.99999", headers=a), 404)
    assert_error(writer.put(f"/api/collections/{cid}/papers/2403.01234", headers=a, json={"note": "\x00"}), 422)
    assert writer.get(f"/api/collections/{cid}", headers=a).json()["size"] == 2
    patched = writer.patch(f"/api/collections/{cid}", headers=a, json={"name": "Attention", "public": True})
    assert patched.status_code == 200 and (patched.json()["name"], patched.json()["public"]) == ("Attention", True)
    assert_error(writer.patch(f"/api/collections/{cid}", headers=a, json={"name": "Reading list"}), 409)
    assert writer.delete(f"/api/collections/{cid}/papers/2403.01234", headers=a).status_code == 204
    assert writer.delete(f"/api/collections/{cid}/papers/2403.01234", headers=a).status_code == 204  # idempotent
    assert [i["paper_id"] for i in writer.get(f"/api/collections/{cid}").json()["items"]] == [api_home["ids"][0]]
    assert writer.delete(f"/api/collections/{cid}", headers=a).status_code == 204
    assert_error(writer.get(f"/api/collections/{cid}", headers=a), 404)


def test_only_owners_change_collections(writer, api_home):
    pub, priv, b = api_home["public"], api_home["private"], auth("bob")
    assert_error(writer.patch(f"/api/collections/{pub}", headers=b, json={"name": "mine now"}), 403, "alice")
    assert_error(writer.delete(f"/api/collections/{pub}", headers=b), 403)
    assert_error(writer.put(f"/api/collections/{pub}/papers/2403.01234", headers=b), 403)
    assert_error(writer.delete(f"/api/collections/{pub}/papers/2403.01234", headers=b), 403)
    for call in (writer.patch(f"/api/collections/{priv}", headers=b, json={"public": True}),
                 writer.delete(f"/api/collections/{priv}", headers=b),
                 writer.put(f"/api/collections/{priv}/papers/2403.01234", headers=b)):  # fmt: skip
        assert_error(call, 404)  # someone else's private collection does not exist for you
    assert writer.get(f"/api/collections/{pub}").json()["size"] == 2
    assert writer.get(f"/api/collections/{priv}", headers=auth("alice")).json()["name"] == "Secret"


def test_hostile_input_anywhere_is_a_json_answer_never_a_500(api_client):
    from urllib.parse import quote

    bad = ("<script>alert(1)</script>", "x" * 5_000, "a\x00b", "../../etc/passwd", "%00", "😀",
           "'; DROP TABLE votes;--")
    for text in bad:
        q = quote(text, safe="")
        for url in (f"/api/papers/{q}", f"/api/papers/{q}/comments", f"/api/similar/{q}", f"/api/authors/{q}",
                    f"/api/papers?ids={q}", f"/api/daily?day={q}", f"/api/daily?week={q}", f"/api/daily?month={q}",
                    f"/api/trending?window={q}", f"/api/search?mode={q}", f"/api/search?cat={q}",
                    f"/api/ngram/count?phrase={q[:1000]}", f"/api/collections/{q}", f"/api/papers?limit={q}"):
            r = api_client.get(url)
            assert r.status_code < 500 and r.headers["content-type"].startswith("application/json"), (url[:80], r)


# -------------------------------------------------------------- rate limits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_searches_are_limited_per_token_or_address(api_client):
    app = api_client.app
    default = ApiLimits.default()
    assert (default.searches.rate * 60, default.searches.burst) == (120, 30)
    clock, saved = Clock(), app.state.api_limits
    app.state.api_limits = ApiLimits(writes=RequestLimiter(100, 100, clock=clock),
                                     searches=RequestLimiter(1.0, 3, clock=clock))  # fmt: skip
    try:
        searches = ["/api/search?q=retrieval", "/api/similar/2403.01234", "/api/ngram/count?phrase=language+models"]
        for url in searches:
            assert api_client.get(url).status_code == 200, url
        r = api_client.get("/api/search", params={"q": "retrieval"})
        assert_error(r, 429, "too many searches", "try again in 1 s")
        assert r.headers["retry-after"] == "1"
        assert api_client.get("/api/papers/2403.01234").status_code == 200  # other reads are not searches
        assert api_client.get("/api/complete", params={"q": "lang"}).status_code == 200  # the search box's helper
        assert api_client.get("/api/search?q=retrieval", headers=auth("alice")).status_code == 200  # her own count
        elsewhere = TestClient(app, client=("198.51.100.23", 4000))
        assert elsewhere.get("/api/search?q=retrieval").status_code == 200  # another address
        clock.now += 1
        assert api_client.get("/api/search?q=retrieval").status_code == 200
    finally:
        app.state.api_limits = saved


def test_429_is_documented_where_it_can_happen(api_client):
    paths = api_client.get("/api/openapi.json").json()["paths"]
    for path, method in (("/api/search", "get"), ("/api/similar/{paper_id}", "get"), ("/api/ngram/count", "get"),
                         ("/api/papers/{paper_id}/vote", "post"), ("/api/collections", "post"),
                         ("/api/papers/{paper_id}/not-relevant", "post")):  # fmt: skip
        assert "429" in paths[path][method]["responses"], (path, method)
    assert "429" not in paths["/api/papers"]["get"]["responses"]


# ------------------------------------------------------------- schema, errors


ENDPOINTS = {
    "/api/papers": {"get"}, "/api/papers/{paper_id}": {"get"}, "/api/daily": {"get"}, "/api/trending": {"get"},
    "/api/search": {"get"}, "/api/similar/{paper_id}": {"get"}, "/api/authors/{name}": {"get"},
    "/api/papers/{paper_id}/comments": {"get", "post"}, "/api/papers/{paper_id}/vote": {"post", "delete"},
    "/api/collections": {"get", "post"}, "/api/collections/{collection_id}": {"get", "patch", "delete"},
    "/api/collections/{collection_id}/papers/{paper_id}": {"put", "delete"}, "/api/me": {"get"},
    "/api/me/collections": {"get"}, "/api/ngram/count": {"get"}, "/api/complete": {"get"},
    "/api/papers/{paper_id}/not-relevant": {"post", "delete"},
}  # fmt: skip


def test_the_openapi_schema_documents_every_endpoint(api_client):
    schema = api_client.get("/api/openapi.json").json()
    for path, methods in ENDPOINTS.items():
        assert methods <= set(schema["paths"].get(path, {})), path
    assert not [p for p in schema["paths"] if not p.startswith("/api/")]  # pages and feeds stay out
    assert schema["components"]["securitySchemes"]["token"] == {
        "type": "http", "scheme": "bearer", "description": "A personal API token, created on the account page."}
    vote = schema["paths"]["/api/papers/{paper_id}/vote"]["post"]
    assert vote["security"] == [{"token": []}] and "401" in vote["responses"]
    ok = schema["paths"]["/api/daily"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/DailyOut"}
    paper_fields = schema["components"]["schemas"]["PaperOut"]["properties"]
    assert {"id", "title", "votes", "comment_count", "listed", "highlights"} <= set(paper_fields)
    assert schema["components"]["schemas"]["ErrorOut"]["properties"]["detail"]["type"] == "string"


def test_the_docs_page_uses_the_vendored_swagger_ui_and_no_inline_script(api_client):
    r = api_client.get("/api/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    scripts = re.findall(r"<script\b[^>]*>", r.text)
    assert len(scripts) == 2 and all(" src=" in s for s in scripts)
    assert not re.search(r"<[^>]+\s(on\w+|style)\s*=", r.text) and "<style" not in r.text
    assert 'data-url="/api/openapi.json"' in r.text and "script-src 'self'" in r.headers["content-security-policy"]
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
        assert api_client.get(src).status_code == 200, src
    for name in ("LICENSE", "NOTICE", "README.txt"):
        assert api_client.get(f"/static/swagger/{name}").status_code == 200


def test_errors_are_json_with_proper_statuses(api_client):
    assert_error(api_client.get("/api/nothing/here"), 404)
    assert_error(api_client.delete("/api/daily"), 405)
    assert_error(api_client.post("/api/collections/1", json={}), 405)
    assert_error(api_client.get("/api/trending", params={"limit": "many"}), 422, "limit")


# ------------------------------------------------------------------ browser


@pytest.mark.browser
@pytest.mark.slow
def test_swagger_ui_renders_under_the_csp_in_chromium(api_home):
    """The docs page in Debian's Chromium: every operation shown, a request tried, no CSP violation."""
    import socket
    import threading
    import time

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:  # the browser suite (test_browser.py) is the one that insists on Chromium in CI
        pytest.skip("Chromium or Playwright is not installed")
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(api_home["config"]), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.add_init_script("document.addEventListener('securitypolicyviolation',"
                                 " e => console.error('CSP: ' + e.violatedDirective + ' ' + e.blockedURI))")
            page.goto(url + "/api/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            assert page.locator(".opblock").count() >= len(ENDPOINTS)
            daily = page.locator("#operations-lists-daily_api_daily_get")
            daily.locator(".opblock-summary").click()
            daily.get_by_role("button", name="Try it out").click()
            daily.get_by_role("button", name="Execute").click()
            status = daily.locator(".live-responses-table tr.response td.response-col_status").first
            status.wait_for(timeout=20_000)
            assert status.inner_text().strip().startswith("200")
            assert "2024-03-17" in daily.locator(".live-responses-table .microlight").first.inner_text()
            browser.close()
        assert problems == []
    finally:
        server.should_exit = True
        thread.join(10)


def test_concurrent_votes_over_http_are_never_lost_or_doubled(api_home, config):
    """24 clients on their own connections vote at once through the real server: exact counts."""
    import threading

    import httpx
    from browser_server import LiveServer

    fresh_home(api_home["pristine"], config.home)
    paper = demo_paper_ids()[5]
    tokens = []
    with open_store(config) as store:
        before = store.community.votes([paper]).get(paper, 0)
        for i in range(24):
            user = store.community.create_user(f"voter{i}", "", hash_password("a long password"))
            tokens.append(f"voter-token-{i:04d}-0123456789")
            store.community.create_api_token(user.id, "t", token_hash(tokens[-1]))
    server = LiveServer(create_app(config))
    start = threading.Barrier(len(tokens))
    failures: list[str] = []

    def voter(i: int, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as c:
            start.wait()
            steps = ["POST", "POST"] + (["DELETE", "POST", "DELETE"] if i % 3 == 0 else [])
            for method in steps:  # every third voter ends with no vote
                r = c.request(method, f"/api/papers/{paper}/vote")
                if r.status_code != 200:
                    failures.append(f"{i} {method} {r.status_code} {r.text[:100]}")

    try:
        threads = [threading.Thread(target=voter, args=(i, t)) for i, t in enumerate(tokens)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = httpx.get(f"{server.url}/api/papers/{paper}").json()
    finally:
        server.close()
    assert failures == []
    expected = before + sum(1 for i in range(24) if i % 3)
    assert final["votes"] == expected
    with open_store(config) as store:
        assert store.community.votes([paper])[paper] == expected
        voted = {f"voter{i}" for i in range(24)} - {f"voter{i}" for i in range(0, 24, 3)}
        for i in range(24):
            user = store.community.user_by_name(f"voter{i}")
            assert (paper in store.community.voted(user.id, [paper])) == (f"voter{i}" in voted)
