"""The web app's read-only pages, through Starlette's TestClient, on the demo corpus.

One home per module: the demo corpus listed on 2024-03-17 (as ``papertide serve``
does), three dated arXiv papers (one with ``<script>`` in its title), an HF signal,
a vote and comments, indexed once.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone

import pytest
from web_corpus import EXTRA, HOSTILE, SCRIPT_COMMENT
from fastapi.testclient import TestClient

from papertide.config import load_config
from papertide.index import update_index
from papertide.ingest import ingest_demo, ingest_files
from papertide.sources import Signal
from papertide.store import Batch, open_store
from papertide.web import create_app
from papertide.web.auth import SESSION_COOKIE, new_csrf, session_expires, token_hash
from papertide.web.demo import DEMO_DAY, demo_paper_ids, list_demo_papers



@pytest.fixture(scope="module")
def web_config(tmp_path_factory, demo_embeddings, embedder):
    home = tmp_path_factory.mktemp("web") / "home"
    shutil.copytree(demo_embeddings, home / "embeddings")
    shutil.copytree(demo_embeddings.parent / "models", home / "models")
    cfg = load_config(home, env={})
    extra = home.parent / "extra.jsonl"
    extra.write_text("\n".join(json.dumps(d) for d in EXTRA) + "\n")
    with open_store(cfg) as store:
        ingest_demo(store)
        ingest_files(store, [extra])
        assert list_demo_papers(store) == 43
        ids = demo_paper_ids()
        store.write(Batch(signals=[Signal(ids[5], "hf", 42, DEMO_DAY, {"submitted_by": "akhaliq"})]))
        com = store.community
        alice = com.create_user("alice", "", "argon2-hash-for-tests")
        com.vote(alice.id, ids[7])
        com.add_comment(ids[7], alice.id, SCRIPT_COMMENT)
        update_index(store, cfg, embedder=embedder)
    return cfg


@pytest.fixture(scope="module")
def client(web_config):
    with TestClient(create_app(web_config), raise_server_exceptions=False) as c:
        yield c


def entry_titles(html: str) -> list[str]:
    return re.findall(r'<h2 class="title tex"><a href="[^"]+">(.*?)</a></h2>', html)


def entry_links(html: str) -> list[str]:
    return re.findall(r'<h2 class="title tex"><a href="([^"]+)">', html)


def demo_title(store_config, index: int) -> str:
    with open_store(store_config) as store:
        return store.get(demo_paper_ids()[index]).title


# ---------------------------------------------------------------- daily


def test_home_is_the_latest_day_with_the_43_demo_papers_most_voted_first(client, web_config):
    r = client.get("/")
    assert r.status_code == 200
    assert "Sunday, 17 March 2024" in r.text
    assert len(entry_titles(r.text)) == 43
    assert 'href="/papers/2024-03-16"' in r.text and 'href="/papers/2024-03-18"' in r.text
    assert 'href="/papers/week/2024-W11"' in r.text and 'href="/papers/month/2024-03"' in r.text
    titles = entry_titles(r.text)
    assert titles[0] == demo_title(web_config, 7)  # the one upvote
    assert titles[1] == demo_title(web_config, 5)  # HF upvotes break the tie among the rest
    assert "submitted by akhaliq" in r.text and "42 upvotes on Hugging Face" in r.text
    assert "1 comment<" in r.text
    same = client.get(f"/papers/{DEMO_DAY}").text  # the same list; only the log-in links' next differ
    assert same.replace(f"next=/papers/{DEMO_DAY}", "next=/") == r.text


def test_a_day_without_listings_shows_the_papers_submitted_that_day(client):
    r = client.get("/papers/2024-03-15")
    assert r.status_code == 200
    assert "submitted (first version)" in r.text
    assert entry_links(r.text) == ["/paper/2403.01234"]
    assert 'href="https://github.com/example/scaling"' in r.text and 'href="https://arxiv.org/pdf/2403.01234"' in r.text
    assert "No papers that day" in client.get("/papers/2024-03-16").text


def test_week_and_month_views_and_bad_periods(client):
    week = client.get("/papers/week/2024-W11")
    assert week.status_code == 200 and len(entry_titles(week.text)) == 43  # the listing wins over submissions
    assert 'href="/papers/week/2024-W10"' in week.text
    month = client.get("/papers/month/2024-02")
    assert entry_links(month.text) == ["/paper/2402.05678"]
    assert 'href="/papers/month/2024-01"' in month.text and 'href="/papers/month/2024-03"' in month.text
    for bad in ("/papers/2024-02-30", "/papers/yesterday", "/papers/week/2024-W60", "/papers/month/2024-13"):
        r = client.get(bad)
        assert r.status_code == 404 and "<h1>Not found</h1>" in r.text, bad


def test_trending_ranks_voted_papers_and_explains_the_formula(client, web_config):
    r = client.get("/trending?window=day")
    assert r.status_code == 200
    assert entry_titles(r.text) == [demo_title(web_config, 7)]
    assert "halves every" in r.text and "6 hours" in r.text
    assert client.get("/trending?window=year").status_code == 422


# ------------------------------------------------------------------ paper


def test_paper_page_has_abstract_similar_papers_chart_and_escaped_title(client):
    r = client.get("/paper/2403.01234")
    assert r.status_code == 200
    html = r.text
    assert "We fit scaling laws for large language models in $O(n \\log n)$ time" in html  # raw TeX for KaTeX
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="/author/Ada%20Lovelace"' in html and "cs.CL" in html
    similar = html[html.index('class="similar"') : html.index('id="comments"')]
    assert len(entry_titles(similar)) >= 3
    charts = html[html.index('class="charts"') : html.index('class="similar"')]
    assert "<svg" in charts and "language models" in charts
    assert 'action="/paper/2403.01234/vote"' not in html  # no one is logged in


def signed_in(client, web_config, name: str = "alice") -> TestClient:
    """A browser of the module's app with a session for ``name`` made in the store, as a log-in makes one."""
    token = f"{name}-session-token-0123456789"
    with open_store(web_config) as store:
        com = store.community
        user = com.user_by_name(name)
        if not com.session(token_hash(token)):
            com.create_session(user.id, token_hash(token), new_csrf(), session_expires())
    return TestClient(client.app, raise_server_exceptions=False, cookies={SESSION_COOKIE: token})


def test_search_and_similar_papers_carry_vote_buttons_from_one_question_to_the_store(client, web_config, monkeypatch):
    alice = signed_in(client, web_config)
    voted_paper = demo_paper_ids()[7]  # alice's vote
    com = client.app.state.store.community
    calls = []
    real = com.voted
    monkeypatch.setattr(com, "voted", lambda user, ids: calls.append(list(ids)) or real(user, ids))
    html = alice.get("/search", params={"q": demo_title(web_config, 7)}).text
    assert len(calls) == 1 and len(calls[0]) == len(entry_links(html)) > 1
    results = html[html.index('class="results"') :]
    assert f'action="/paper/{voted_paper}/unvote"' in results and 'aria-pressed="true"' in results
    assert results.count('<form class="vote"') == len(entry_links(html))
    calls.clear()
    page = alice.get("/paper/2403.01234").text
    similar = page[page.index('class="similar"') : page.index('id="comments"')]
    assert len(calls) == 1 and calls[0][0] == "2403.01234" and len(calls[0]) == 1 + len(entry_titles(similar))
    assert similar.count('<form class="vote"') == len(entry_titles(similar)) >= 3
    assert 'action="/paper/2403.01234/vote"' in page  # and the paper's own button


def test_paper_ids_in_other_forms_redirect_to_the_canonical_page(client):
    for form in ("/paper/arXiv:2403.01234v2", "/paper/https://arxiv.org/abs/2403.01234"):
        r = client.get(form, follow_redirects=False)
        assert r.status_code == 308 and r.headers["location"] == "/paper/2403.01234", form


def test_comments_are_rendered_markdown_with_no_script(client):
    html = client.get(entry_links(client.get("/").text)[0]).text
    comments = html[html.index('id="comments"') :]
    assert "<strong>bold</strong>" in comments and "Comments (1)" in comments
    assert "&lt;script&gt;alert(" in comments and "<script>alert" not in comments  # shown as typed, inert
    assert "<img" not in comments and not re.search(r"<[^>]+\son\w+\s*=", comments)


def test_unknown_papers_and_pages_are_proper_404_pages(client):
    for url in ("/paper/2401.99999", "/paper/not-an-id", "/no/such/page"):
        r = client.get(url)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), url
        assert "<h1>Not found</h1>" in r.text and "Traceback" not in r.text
    assert "2401.99999" in client.get("/paper/2401.99999").text
    api = client.get("/api/no-such-thing")
    assert api.status_code == 404 and "detail" in api.json()


# ----------------------------------------------------------------- search


def test_search_finds_infini_gram(client):
    r = client.get("/search", params={"q": "n-gram language models at trillion-token scale"})
    assert r.status_code == 200
    assert "Infini-gram" in entry_titles(r.text)[0]


def test_search_marks_exact_phrases_and_query_words(client):
    r = client.get("/search", params={"q": '"language models" scaling', "mode": "lexical"})
    first = r.text[r.text.index('<ol class="results"') :]
    assert entry_links(first)[0] == "/paper/2403.01234"
    assert re.search(r"<mark>[Ll]anguage models</mark>", first) and "<mark>scaling</mark>" in first


def test_search_filters_modes_paging_and_notes(client):
    r = client.get("/search", params={"q": "language models", "author": "Ada Lovelace", "mode": "dense"})
    assert sorted(entry_links(r.text)) == ["/paper/2402.05678", "/paper/2403.01234"]
    r = client.get("/search", params={"q": "title:models", "mode": "fancy"})
    assert r.text.count('class="note"') == 2 and "unknown mode" in r.text
    page1 = entry_links(client.get("/search", params={"q": "language"}).text)
    page2 = client.get("/search", params={"q": "language", "page": 2})
    assert len(page1) == 20 and 'rel="prev"' in page2.text and not set(page1) & set(entry_links(page2.text))
    since = client.get("/search", params={"q": "since:2024-03 until:2024-01"})
    assert since.status_code == 200 and "Note:" in since.text
    lookup = client.get("/search", params={"q": "2403.01234"}, follow_redirects=False)
    assert lookup.headers["location"] == "/paper/2403.01234"


def test_hostile_queries_give_pages(client):
    for q in HOSTILE:
        r = client.get("/search", params={"q": q})
        assert r.status_code == 200 and 'class="searchpage"' in r.text, repr(q[:20])
        assert "Traceback" not in r.text and "<script>" not in r.text.split("</head>")[1]
    assert client.get("/search?page=0").status_code == 422
    assert client.get("/search?page=abc").status_code == 422


def test_complete_returns_json_phrases(client):
    r = client.get("/api/complete", params={"q": "language mo"})
    assert r.status_code == 200
    done = r.json()["completions"]
    assert done and all(c["phrase"].startswith("language mo") and c["count"] > 0 for c in done)
    assert client.get("/api/complete", params={"q": ""}).json()["completions"] == []
    assert client.get("/api/complete", params={"q": "<script>" * 100}).status_code == 200
    bad = client.get("/api/complete", params={"k": 0})
    assert bad.status_code == 422 and "detail" in bad.json()


# -------------------------------------------------------------- the rest


def test_author_page(client):
    r = client.get("/author/ada lovelace")
    assert r.status_code == 200 and "<h1>Ada Lovelace</h1>" in r.text
    assert sorted(entry_links(r.text)) == ["/paper/2402.05678", "/paper/2403.01234"]
    assert client.get("/author/Nobody%20Atall").status_code == 404


def test_subscribe_page_is_linked_from_the_daily_page(client):
    r = client.get("/subscribe")
    assert r.status_code == 200 and 'action="/subscribe"' in r.text
    assert 'href="/subscribe"' in client.get("/").text


PAGES = ("/", "/papers/2024-03-15", "/papers/week/2024-W11", "/trending", "/paper/2403.01234", "/search?q=models",
         "/search", "/author/Ada%20Lovelace", "/subscribe", "/no/such/page")


def test_no_inline_scripts_and_security_headers_everywhere(client):
    for url in PAGES:
        r = client.get(url)
        scripts = re.findall(r"<script\b[^>]*>", r.text)
        assert scripts and all(" src=" in s for s in scripts), url
        assert not re.search(r"<[^>]+\son\w+\s*=", r.text), url  # no event-handler attributes
        assert not re.search(r"<[^>]+\sstyle\s*=", r.text), url  # no inline styles either
        assert "script-src 'self'" in r.headers["content-security-policy"], url
        assert r.headers["x-content-type-options"] == "nosniff"


def test_static_assets_are_served(client):
    for path in ("app.js", "app.css", "katex/katex.min.js", "katex/katex.min.css", "katex/auto-render.min.js",
                 "katex/fonts/KaTeX_Main-Regular.woff2", "katex/LICENSE"):
        assert client.get(f"/static/{path}").status_code == 200, path


def test_a_bug_is_a_500_page_with_headers_not_a_traceback(web_config):
    app = create_app(web_config)

    def boom():
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    app.add_api_route("/api/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        page = c.get("/boom")
        assert page.status_code == 500 and "<h1>Something went wrong</h1>" in page.text
        assert "secret internals" not in page.text and "Traceback" not in page.text
        assert "content-security-policy" in page.headers
        api = c.get("/api/boom")
        assert api.status_code == 500 and "secret internals" not in api.json()["detail"]


def test_without_an_index_pages_still_render(config):
    with open_store(config) as store:
        ingest_demo(store)
    with TestClient(create_app(config), raise_server_exceptions=False) as c:
        r = c.get("/search", params={"q": "language"})
        assert r.status_code == 503 and "papertide index" in r.text
        day = c.get("/")  # nothing listed, no dated papers: an empty page for today
        assert day.status_code == 200 and datetime.now(timezone.utc).strftime("%B") in day.text
        paper = c.get(f"/paper/{demo_paper_ids()[0]}")
        assert paper.status_code == 200 and "once the search index is built" in paper.text
        assert c.get("/api/complete", params={"q": "lang"}).json()["completions"] == []


def test_indexes_are_reopened_when_the_store_moves_and_papertide_index_ran(demo_indexed, config, embedder):
    new = config.home.parent / "new.jsonl"
    new.write_text(json.dumps({"id": "2405.00001", "title": "Zymurgical transformers", "submitted": "2024-05-01",
                               "abstract": "Zymurgical transformers brew tokens."}) + "\n")
    with TestClient(create_app(config)) as c:
        assert "2405.00001" not in c.get("/search", params={"q": "zymurgical"}).text
        with open_store(config) as store:
            ingest_files(store, [new])
            # the store moved but the index on disk did not: the loaded one keeps serving
            assert c.get("/search", params={"q": "zymurgical"}).status_code == 200
            update_index(store, config, embedder=embedder)
        assert entry_links(c.get("/search", params={"q": "zymurgical"}).text)[0] == "/paper/2405.00001"
        assert c.get("/api/complete", params={"q": "zymurg"}).json()["completions"][0]["phrase"].startswith("zymurgical")
