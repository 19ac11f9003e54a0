"""The "for you" page (papertide/web/pages.py: /for-you) over a real search index.

Every test gets a copy of the indexed home of ``web_fixtures.py`` (``api_home``: the demo
corpus, three dated arXiv papers, one hidden; alice upvoted one demo paper and saved it,
a dated paper and another demo paper in her collections; bob upvoted two). The page
must show exactly what :func:`papertide.rank.recommend` answers for the newest papers,
with each paper's reason, and learn from the "not relevant" marks made on it.
"""

from __future__ import annotations

import re
import shutil

import pytest
from markupsafe import escape
from web_corpus import HIDDEN
from web_helpers import client, csrf_of, entry_links, login, make_user, fresh_home

from papertide.index import index_dir
from papertide.rank import recommend
from papertide.web import create_app
from papertide.web.pages import FOR_YOU, FOR_YOU_CANDIDATES, newest_ids

pytest_plugins = ["web_fixtures"]  # api_home

NAV_LINK = '<a href="/for-you">For you</a>'


@pytest.fixture
def indexed_app(api_home, config):
    """A fresh app over a copy of the indexed home (its database and search index)."""
    fresh_home(api_home["pristine"], config.home)
    shutil.copytree(index_dir(api_home["config"]), index_dir(config))
    app = create_app(config)
    yield app
    app.state.store.close()


def signed_in(app, name: str):
    c = client(app)
    assert login(c, name).status_code == 303
    return c


def reasons(html: str) -> dict[str, str]:
    """Each entry's reason by paper id."""
    found = re.findall(r'<article class="entry" id="p-([^"]+)">.*?<p class="reason">([^<]*)</p>', html, re.S)
    return dict(found)


def index_of(app):
    return app.state.engines.search_index()


def test_visitors_are_asked_to_log_in(indexed_app):
    r = client(indexed_app).get("/for-you")
    assert r.status_code == 200 and 'href="/login?next=/for-you"' in r.text
    assert entry_links(r.text) == [] and NAV_LINK not in r.text
    assert NAV_LINK in signed_in(indexed_app, "bob").get("/").text  # the nav has it for signed-in users


def test_the_page_shows_the_recommender_s_papers_with_their_reasons(indexed_app, api_home):
    alice = signed_in(indexed_app, "alice")
    html = alice.get("/for-you").text
    st, uid = indexed_app.state.store, indexed_app.state.store.community.user_by_name("alice").id
    index = index_of(indexed_app)
    expected = recommend(index, st, uid, k=FOR_YOU, candidates=newest_ids(index, FOR_YOU_CANDIDATES))
    shown = entry_links(html)
    assert shown and shown == [r.paper_id for r in expected]
    liked = {api_home["ids"][7], api_home["ids"][3], "2403.01234"}
    assert not liked & set(shown) and HIDDEN not in shown  # nothing she liked, nothing hidden
    assert reasons(html) == {r.paper_id: str(escape(r.reason)) for r in expected}
    assert all(reasons(html).values())
    assert "1 upvote, 3 saved papers" in html
    assert "<script>alert" not in html  # the saved paper's hostile title is named in reasons, escaped
    for pid in shown:  # each entry can be marked, coming back to it
        assert f'name="next" value="/for-you#p-{pid}"' in html


def test_a_paper_marked_not_relevant_leaves_the_page_and_teaches_it(indexed_app):
    alice = signed_in(indexed_app, "alice")
    html = alice.get("/for-you").text
    first = entry_links(html)[0]
    r = alice.post(f"/paper/{first}/not-relevant", data={"csrf": csrf_of(html), "next": f"/for-you#p-{first}"},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/for-you#p-{first}"
    after = alice.get("/for-you").text
    assert first not in entry_links(after) and "1 marked not relevant" in after
    st = indexed_app.state.store
    uid = st.community.user_by_name("alice").id
    index = index_of(indexed_app)
    expected = recommend(index, st, uid, k=FOR_YOU, candidates=newest_ids(index, FOR_YOU_CANDIDATES))
    assert entry_links(after) == [r.paper_id for r in expected]  # the mark is a negative example now


def test_without_likes_the_page_explains_how_to_get_recommendations(indexed_app):
    make_user(indexed_app, "newbie")
    html = signed_in(indexed_app, "newbie").get("/for-you").text
    assert "Nothing to recommend yet" in html and entry_links(html) == []
    for words in ("<strong>Upvote</strong>", "<strong>Save</strong>", "<strong>not relevant</strong>",
                  "<strong>choose categories</strong>", 'name="categories"'):  # fmt: skip
        assert words in html, words


def test_chosen_categories_start_from_their_newest_papers(indexed_app):
    newbie_id = make_user(indexed_app, "newbie").id
    newbie = signed_in(indexed_app, "newbie")
    html = newbie.get("/for-you", params={"categories": "cs.CL, <b>bogus</b>"}).text
    assert entry_links(html) == ["2403.01234"]  # the other cs.CL paper is hidden
    assert reasons(html) == {"2403.01234": "new in cs.CL"}
    assert "left out: &lt;b&gt;bogus&lt;/b&gt;" in html and 'value="cs.CL"' in html
    assert set(entry_links(newbie.get("/for-you?categories=cs").text)) == {"2403.01234", "2402.05678"}
    indexed_app.state.store.mailing.subscribe("newbie@example.org", every="day", categories=("cs.IR",),
                                              user_id=newbie_id)  # fmt: skip
    indexed_app.state.store.community.update_user(newbie_id, email="newbie@example.org")
    assert entry_links(newbie.get("/for-you").text) == ["2402.05678"]  # the digest's categories


def test_without_a_search_index_the_page_says_so(app):
    make_user(app, "alice")
    r = signed_in(app, "alice").get("/for-you")
    assert r.status_code == 200 and "once the search index is built" in r.text


def test_candidates_are_the_newest_papers_of_the_index(indexed_app):
    index = index_of(indexed_app)
    assert set(newest_ids(index, 2)) == {"2403.01234", "2402.05678"}  # dated 2024-03-15 and 2024-02-10
    assert set(newest_ids(index, 3)) == {"2403.01234", "2402.05678", "2312.09999"}
    assert sorted(newest_ids(index, 10_000)) == sorted(index.facts.keys)
