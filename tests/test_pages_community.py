"""Upvotes, comments, moderation, collections and submissions through the HTML app."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from web_helpers import OLD_STYLE, OTHER, PAPER, PASSWORD, client, csrf_of, logged_in, make_app, page_csrf

from papertide.config import replace
from papertide.submissions import complete_pending_submissions, today
from papertide.web import pages_account, pages_community, pages_paper

pytest_plugins = ["web_fixtures"]  # the app and template fixtures

FEEDS = Path(__file__).parent / "fixtures" / "arxiv_api"
API_PATH = "/api/query"
ATOM = {"Content-Type": "application/atom+xml"}
DEMO_DAY = "2024-03-17"


def post(c, url: str, **data):
    return c.post(url, data={"csrf": page_csrf(c)} | data, follow_redirects=False)


def comments_section(html: str) -> str:
    return html[html.index('id="comments"') :]


def new_comment(c, body: str, parent: int | None = None) -> int:
    """Post a comment; its id, from the redirect to ``#comment-<id>``."""
    r = post(c, f"/paper/{PAPER}/comments", body=body, **({"parent_id": str(parent)} if parent else {}))
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("-", 1)[1])


def comment_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="comment-(\d+)"', comments_section(html))]


def user_id(app, name: str) -> int:
    return app.state.store.community.user_by_name(name).id


# ------------------------------------------------------------------------- CSRF


def post_routes() -> list[str]:
    paths = []
    for module in (pages_account, pages_community, pages_paper):
        paths += [r.path for r in module.router.routes if "POST" in getattr(r, "methods", ())]
    return sorted(set(paths))


def test_every_post_route_refuses_a_missing_or_wrong_csrf_token(app):
    admin = logged_in(app, "root", role="admin")
    com = app.state.store.community
    root = user_id(app, "root")
    cid = com.add_comment(PAPER, root, "hello").id
    coll = com.create_collection(root, "mine").id
    com.add_item(coll, PAPER, "kept")
    fields = {"paper_id": PAPER, "body": "x", "name": "renamed", "note": "n", "paper": "2401.17377",
              "action": "email", "email": "a@b.c", "collection_id": str(coll), "new_name": "new", "hidden": "1",
              "username": "root", "password": PASSWORD, "password2": PASSWORD, "description": "d"}  # fmt: skip
    paths = post_routes()
    assert len(paths) == 18, paths  # 4 account forms, 12 community ones, 2 "not relevant" marks
    for path in paths:
        url = (path.replace("{paper_id:path}", PAPER).replace("{comment_id:int}", str(cid))
               .replace("{collection_id:int}", str(coll)))  # fmt: skip
        who = client(app) if url in ("/login", "/signup") else admin
        who.get("/")  # a visitor gets the nonce cookie first
        for token, headers in ((None, {}), ("wrong", {}), ("", {}), (None, {"X-CSRF-Token": "wrong"})):
            data = fields | ({"csrf": token} if token is not None else {})
            r = who.post(url, data=data, headers=headers, follow_redirects=False)
            assert r.status_code == 403, (url, token, headers, r.status_code)
            assert "security token" in r.text
    assert com.votes([PAPER])[PAPER] == 0 and com.comment_counts([PAPER])[PAPER] == 1
    assert com.collection(coll).name == "mine" and com.items(coll)[0].note == "kept"
    assert com.not_relevant(root) == set()
    assert com.hidden_papers() == set() and not com.comment(cid).hidden
    assert com.user_count() == 1 and com.submissions(root) == [] and com.api_tokens(root) == []
    assert admin.get("/account").status_code == 200  # still logged in: logout was refused too


# ------------------------------------------------------------------------ votes


def test_upvotes_are_one_per_user_undoable_and_exact(app):
    alice, bob = logged_in(app, "alice"), logged_in(app, "bob")
    com = app.state.store.community
    for _ in range(3):
        r = post(alice, f"/paper/{PAPER}/vote")
        assert r.status_code == 303 and r.headers["location"] == f"/paper/{PAPER}"
    assert com.votes([PAPER])[PAPER] == 1
    post(bob, f"/paper/{PAPER}/vote")
    assert com.votes([PAPER])[PAPER] == 2
    for _ in range(2):
        post(alice, f"/paper/{PAPER}/unvote")
    assert com.votes([PAPER])[PAPER] == 1 and com.voted(user_id(app, "bob"), [PAPER]) == {PAPER}
    alice_page, bob_page = alice.get(f"/paper/{PAPER}").text, bob.get(f"/paper/{PAPER}").text
    assert f'action="/paper/{PAPER}/vote"' in alice_page and "▲ Upvote" in alice_page
    assert f'action="/paper/{PAPER}/unvote"' in bob_page and "Upvoted ✓" in bob_page
    assert '<span class="n">1</span><span class="l">upvote</span>' in bob_page


def test_a_vote_goes_back_to_the_page_it_came_from(app):
    alice = logged_in(app, "alice")
    r = post(alice, f"/paper/{PAPER}/vote", next=f"/papers/{DEMO_DAY}")
    assert r.headers["location"] == f"/papers/{DEMO_DAY}"
    r = alice.post(f"/paper/{PAPER}/unvote", data={"csrf": page_csrf(alice), "next": "https://evil.example/"},
                   headers={"Referer": "http://testserver/trending?window=week"}, follow_redirects=False)  # fmt: skip
    assert r.headers["location"] == "/trending?window=week"
    r = post(alice, f"/paper/{OLD_STYLE}/vote")  # an id with a slash
    assert r.status_code == 303 and app.state.store.community.votes([OLD_STYLE])[OLD_STYLE] == 1


def test_json_votes_for_the_script(app):
    alice = logged_in(app, "alice")
    token = page_csrf(alice, f"/paper/{PAPER}")
    headers = {"Accept": "application/json", "X-CSRF-Token": token}
    assert alice.post(f"/paper/{PAPER}/vote", headers=headers).json() == {"votes": 1, "voted": True}
    assert alice.post(f"/paper/{PAPER}/vote", headers=headers).json() == {"votes": 1, "voted": True}
    assert alice.post(f"/paper/{PAPER}/unvote", headers=headers).json() == {"votes": 0, "voted": False}
    missing = alice.post("/paper/2401.99999/vote", headers=headers)
    assert missing.status_code == 404 and "2401.99999" in missing.json()["detail"]
    visitor = client(app)
    anon = {"Accept": "application/json", "X-CSRF-Token": page_csrf(visitor, "/login")}
    r = visitor.post(f"/paper/{PAPER}/vote", headers=anon)
    assert r.status_code == 401 and r.json()["detail"] == "log in to upvote"


def test_a_visitor_who_upvotes_is_sent_to_log_in_and_back(app):
    visitor = client(app)
    r = visitor.post(f"/paper/{PAPER}/vote", data={"csrf": page_csrf(visitor, "/login")},
                     headers={"Referer": f"http://testserver/paper/{PAPER}"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/paper/{PAPER}"
    assert app.state.store.community.votes([PAPER])[PAPER] == 0
    page = visitor.get(f"/paper/{PAPER}").text
    assert "Log in to upvote" in page and 'class="comment-form"' not in page


def vote_forms(html: str) -> dict[str, tuple[str, str, str]]:
    """The list entries' vote forms by paper id: (action, aria-pressed, next)."""
    found = re.findall(r'<article class="entry" id="p-([^"]+)">\s*<div class="votes"[^>]*>\s*'
                       r'<form class="vote" method="post" action="([^"]+)".*?name="next" value="([^"]*)"'
                       r'.*?aria-pressed="(true|false)"', html, re.S)
    return {pid: (action, pressed, nxt) for pid, action, nxt, pressed in found}


def test_list_entries_have_vote_buttons_in_the_visitor_s_state(app):
    alice = logged_in(app, "alice")
    com = app.state.store.community
    listed = [pid for pid, _, _ in com.listed(DEMO_DAY, DEMO_DAY)]
    com.vote(user_id(app, "alice"), listed[2])
    forms = vote_forms(alice.get(f"/papers/{DEMO_DAY}").text)
    assert set(forms) == set(listed)
    assert forms[listed[2]] == (f"/paper/{listed[2]}/unvote", "true", f"/papers/{DEMO_DAY}#p-{listed[2]}")
    assert forms[listed[0]] == (f"/paper/{listed[0]}/vote", "false", f"/papers/{DEMO_DAY}#p-{listed[0]}")
    page = alice.get(f"/papers/{DEMO_DAY}").text
    assert page.count(f'name="csrf" value="{csrf_of(page)}"') == len(listed) + 1  # each form, and log out's
    week = vote_forms(alice.get("/papers/week/2024-W11?page=1").text)
    assert week[listed[2]][2] == f"/papers/week/2024-W11?page=1#p-{listed[2]}"
    author = vote_forms(alice.get("/author/Ada%20Lovelace").text)
    assert set(author) == {PAPER, OTHER} and author[PAPER][2] == f"/author/Ada%20Lovelace#p-{PAPER}"


def test_a_vote_from_a_list_comes_back_to_its_entry_without_script(app):
    alice = logged_in(app, "alice")
    page = alice.get(f"/papers/{DEMO_DAY}").text
    pid = next(iter(vote_forms(page)))
    r = alice.post(f"/paper/{pid}/vote", data={"csrf": csrf_of(page), "next": f"/papers/{DEMO_DAY}#p-{pid}"},
                   follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/papers/{DEMO_DAY}#p-{pid}"
    assert vote_forms(alice.get(f"/papers/{DEMO_DAY}").text)[pid][:2] == (f"/paper/{pid}/unvote", "true")
    entry = alice.get(f"/papers/{DEMO_DAY}").text.split(f'id="p-{pid}"')[1]
    assert entry.index('<span class="n">1</span><span class="l">upvote</span>') < entry.index("</article>")


def test_visitors_get_a_link_to_log_in_in_every_list_entry(app):
    html = client(app).get(f"/papers/{DEMO_DAY}").text
    entries = html.count('<article class="entry"')
    assert entries == 43 and 'class="vote"' not in html
    assert html.count(f'<a class="up" href="/login?next=/papers/{DEMO_DAY}" aria-label="Log in to upvote">') == 43
    html = client(app).get("/author/Ada%20Lovelace?page=1").text
    assert 'href="/login?next=/author/Ada%2520Lovelace%3Fpage%3D1"' in html  # back to this very page


def test_each_page_asks_the_store_for_the_visitor_s_votes_once(app, monkeypatch):
    alice = logged_in(app, "alice")
    com = app.state.store.community
    coll = com.create_collection(user_id(app, "alice"), "Mine")
    com.add_item(coll.id, PAPER)
    com.vote(user_id(app, "alice"), PAPER)  # something trending
    calls: list[list[str]] = []
    real = com.voted

    def counted(user, ids):
        calls.append(list(ids))
        return real(user, ids)

    monkeypatch.setattr(com, "voted", counted)
    for url in (f"/papers/{DEMO_DAY}", "/papers/week/2024-W11", "/papers/month/2024-03", "/trending?window=month",
                "/author/Ada%20Lovelace", f"/collection/{coll.id}", f"/paper/{PAPER}"):  # fmt: skip
        calls.clear()
        assert alice.get(url).status_code == 200, url
        assert len(calls) == 1, (url, len(calls))
    calls.clear()
    client(app).get(f"/papers/{DEMO_DAY}")
    assert calls == []  # a visitor has no votes to ask about


# ----------------------------------------------------------------- not relevant


def mark_form(html: str) -> tuple[str, str, str]:
    """The "not relevant" form of a page: (action, aria-pressed, button text)."""
    m = re.search(r'<form class="mark" method="post" action="([^"]+)".*?aria-pressed="(true|false)"'
                  r'.*?>([^<]*)</button>', html, re.S)  # fmt: skip
    assert m, "no not-relevant form"
    return m.group(1), m.group(2), m.group(3)


def test_a_paper_is_marked_not_relevant_and_back_from_its_page(app):
    alice = logged_in(app, "alice")
    com, uid = app.state.store.community, user_id(app, "alice")
    page = alice.get(f"/paper/{PAPER}").text
    assert mark_form(page) == (f"/paper/{PAPER}/not-relevant", "false", "✕ Not relevant to me")
    assert f'data-unmark="/paper/{PAPER}/not-relevant/undo"' in page
    r = alice.post(f"/paper/{PAPER}/not-relevant", data={"csrf": csrf_of(page)},
                   headers={"Referer": f"http://testserver/paper/{PAPER}"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/paper/{PAPER}"
    assert com.not_relevant(uid) == {PAPER}
    assert post(alice, f"/paper/{PAPER}/not-relevant").status_code == 303 and com.not_relevant(uid) == {PAPER}
    assert mark_form(alice.get(f"/paper/{PAPER}").text) == (f"/paper/{PAPER}/not-relevant/undo", "true",
                                                            "Not relevant ✓ (undo)")  # fmt: skip
    logged_in(app, "bob")
    assert com.not_relevant(user_id(app, "bob")) == set()  # a mark is one user's
    r = post(alice, f"/paper/{OLD_STYLE}/not-relevant", next="/papers/2024-03-17#x")
    assert r.status_code == 303 and r.headers["location"] == "/papers/2024-03-17#x"  # back where it came from
    assert com.not_relevant(uid) == {PAPER, OLD_STYLE}
    assert post(alice, f"/paper/{PAPER}/not-relevant/undo").status_code == 303
    assert com.not_relevant(uid) == {OLD_STYLE}
    assert post(alice, f"/paper/{PAPER}/not-relevant/undo").status_code == 303  # undoing twice is harmless
    assert mark_form(alice.get(f"/paper/{PAPER}").text)[1] == "false"


def test_not_relevant_answers_the_script_in_json(app):
    alice = logged_in(app, "alice")
    token = page_csrf(alice, f"/paper/{PAPER}")
    headers = {"Accept": "application/json", "X-CSRF-Token": token}
    r = alice.post(f"/paper/arXiv:{PAPER}v1/not-relevant", headers=headers)
    assert r.status_code == 200 and r.json() == {"paper_id": PAPER, "not_relevant": True}
    r = alice.post(f"/paper/{PAPER}/not-relevant/undo", headers=headers)
    assert r.json() == {"paper_id": PAPER, "not_relevant": False}
    r = alice.post("/paper/2401.99999/not-relevant", headers=headers)
    assert r.status_code == 404 and "2401.99999" in r.json()["detail"]
    assert alice.post(f"/paper/{PAPER}/not-relevant", headers={"Accept": "application/json"}).status_code == 403
    visitor = client(app)
    r = visitor.post(f"/paper/{PAPER}/not-relevant",
                     headers={"Accept": "application/json", "X-CSRF-Token": page_csrf(visitor, "/login")})  # fmt: skip
    assert r.status_code == 401 and r.json()["detail"] == "log in to mark papers"
    assert app.state.store.community.not_relevant(user_id(app, "alice")) == set()


def test_visitors_and_hidden_papers_get_no_mark(app):
    visitor = client(app)
    assert 'class="mark"' not in visitor.get(f"/paper/{PAPER}").text
    r = visitor.post(f"/paper/{PAPER}/not-relevant", data={"csrf": page_csrf(visitor, "/login")},
                     headers={"Referer": f"http://testserver/paper/{PAPER}"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/paper/{PAPER}"
    app.state.store.community.set_paper_hidden(OTHER, True)
    alice = logged_in(app, "alice")
    assert post(alice, f"/paper/{OTHER}/not-relevant").status_code == 404
    assert post(alice, "/paper/not-an-id/not-relevant").status_code == 404
    assert app.state.store.community.not_relevant(user_id(app, "alice")) == set()


# --------------------------------------------------------------------- comments


def test_comments_are_threaded(app):
    alice, bob = logged_in(app, "alice"), logged_in(app, "bob")
    r = post(alice, f"/paper/{PAPER}/comments", body="First **point**")
    first = int(r.headers["location"].rsplit("-", 1)[1])
    assert r.status_code == 303 and r.headers["location"] == f"/paper/{PAPER}#comment-{first}"
    second = new_comment(alice, "Second thought")
    reply = new_comment(bob, "A reply", first)
    deeper = new_comment(alice, "Deeper", reply)
    html = bob.get(f"/paper/{PAPER}").text
    assert comment_ids(html) == [first, reply, deeper, second]
    section = comments_section(html)
    assert "Comments (4)" in section and "<strong>point</strong>" in section
    assert f'class="comment reply depth-1" id="comment-{reply}"' in section
    assert f'class="comment reply depth-2" id="comment-{deeper}"' in section
    assert f'class="comment" id="comment-{second}"' in section
    assert f'name="parent_id" value="{first}"' in section  # every comment has its reply form


def test_bad_comments_are_refused_with_the_reason(app):
    alice = logged_in(app, "alice")
    com = app.state.store.community
    elsewhere = com.add_comment(OTHER, user_id(app, "alice"), "on another paper").id
    cases = [
        (dict(body=""), 400, "1 to 20,000 characters"),
        (dict(body="x" * 20_001), 400, "at most 20,000 characters"),
        (dict(body="reply", parent_id=str(elsewhere)), 404, f"no comment {elsewhere} on {PAPER}"),
        (dict(body="reply", parent_id="abc"), 400, "must be a number"),
        (dict(body="reply", parent_id="99999"), 404, "no comment 99999"),
    ]
    for data, status, fragment in cases:
        r = post(alice, f"/paper/{PAPER}/comments", **data)
        assert r.status_code == status and fragment in r.text, (data, r.status_code)
    assert post(alice, "/paper/2401.99999/comments", body="hi").status_code == 404
    assert post(alice, f"/paper/{PAPER}/comments", body="ok " * 6_000).status_code == 303  # 18,000 characters
    assert com.comment_counts([PAPER])[PAPER] == 1


HOSTILE = ("<script>alert('c')</script>\n\n<img src=x onerror=alert(1)>\n\n[click](javascript:alert(2)) "
           '<a href="#" onclick="alert(3)">a</a> <svg onload=alert(4)>')


def test_hostile_comments_and_titles_are_inert(app):
    alice = logged_in(app, "alice")
    assert post(alice, f"/paper/{PAPER}/comments", body=HOSTILE).status_code == 303
    html = alice.get(f"/paper/{PAPER}").text
    section = comments_section(html)
    assert "<script>alert" not in section and "&lt;script&gt;alert('c')&lt;/script&gt;" in section
    assert "<img" not in section and "<svg" not in section
    assert not re.search(r"<[^>]+\son\w+\s*=", section)  # no event handler attribute anywhere
    assert not re.search(r"href=\"\s*javascript:", section, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in html  # the paper's own hostile title
    assert len(re.findall(r"<script\b", html)) == len(re.findall(r"<script defer src=", html))


# ------------------------------------------------------------------- moderation


def test_an_admin_hides_a_comment_with_its_replies_and_a_user_cannot(app):
    admin, alice, bob = logged_in(app, "root", role="admin"), logged_in(app, "alice"), logged_in(app, "bob")
    com = app.state.store.community
    first = com.add_comment(PAPER, user_id(app, "alice"), "spam spam").id
    com.add_comment(PAPER, user_id(app, "bob"), "reply to spam", parent_id=first)
    keep = com.add_comment(PAPER, user_id(app, "bob"), "useful").id
    r = post(alice, f"/comment/{first}/hide")
    assert r.status_code == 403 and "only an admin" in r.text
    assert 'action="/comment/' not in bob.get(f"/paper/{PAPER}").text  # no hide buttons for users
    assert f'action="/comment/{first}/hide"' in admin.get(f"/paper/{PAPER}").text
    r = post(admin, f"/comment/{first}/hide")
    assert r.status_code == 303 and r.headers["location"] == f"/paper/{PAPER}#comments"
    assert comment_ids(bob.get(f"/paper/{PAPER}").text) == [keep]
    assert "Comments (1)" in bob.get(f"/paper/{PAPER}").text
    assert post(bob, f"/paper/{PAPER}/comments", body="me too", parent_id=str(first)).status_code == 404
    post(admin, f"/comment/{first}/hide", hidden="0")
    assert len(comment_ids(bob.get(f"/paper/{PAPER}").text)) == 3
    assert post(admin, "/comment/99999/hide").status_code == 404


def comment_block(html: str, cid: int) -> str:
    start = html.index(f'id="comment-{cid}"')
    return html[start : html.index("\n    </div>", start)]


def test_admins_see_hidden_comments_marked_and_unhide_them_and_nobody_else_does(app):
    admin, bob = logged_in(app, "root", role="admin"), logged_in(app, "bob")
    com = app.state.store.community
    spam = com.add_comment(PAPER, user_id(app, "bob"), "spam spam").id
    reply = com.add_comment(PAPER, user_id(app, "root"), "a reply to spam", parent_id=spam).id
    keep = com.add_comment(PAPER, user_id(app, "bob"), "useful").id
    com.set_comment_hidden(spam, True)
    for viewer in (bob, client(app)):
        html = viewer.get(f"/paper/{PAPER}").text
        assert comment_ids(html) == [keep] and "spam" not in html and "Comments (1)" in html
        section = comments_section(html)
        assert "flag" not in section and "hidden-comment" not in section and "Unhide" not in section
    html = admin.get(f"/paper/{PAPER}").text
    assert comment_ids(html) == [spam, reply, keep] and "Comments (1, and 2 hidden)" in html
    hidden = comment_block(html, spam)
    assert 'class="comment hidden-comment"' in html and '<span class="flag">hidden</span>' in hidden
    assert "spam spam" in hidden and 'name="hidden" value="0"' in hidden and ">Unhide</button>" in hidden
    assert 'class="reply-box"' not in hidden  # no replies under a hidden comment
    under = comment_block(html, reply)
    assert "hidden with its thread" in under and "/hide" not in under  # unhide its parent instead
    shown = comment_block(html, keep)
    assert 'name="hidden" value="1"' in shown and ">Hide</button>" in shown and "flag" not in shown
    r = post(admin, f"/comment/{spam}/hide", hidden="0")  # the Unhide button's form
    assert r.status_code == 303 and r.headers["location"] == f"/paper/{PAPER}#comments"
    assert comment_ids(bob.get(f"/paper/{PAPER}").text) == [spam, reply, keep]
    again = comment_block(admin.get(f"/paper/{PAPER}").text, spam)
    assert "flag" not in again and ">Hide</button>" in again


def test_an_admin_hides_a_paper_from_everyone_else(app):
    admin, alice = logged_in(app, "root", role="admin"), logged_in(app, "alice")
    com = app.state.store.community
    listed = [pid for pid, _, _ in com.listed(DEMO_DAY, DEMO_DAY)]
    target = listed[0]
    assert post(alice, f"/paper/{target}/hide").status_code == 403
    r = post(admin, f"/paper/{target}/hide")
    assert r.status_code == 303 and com.hidden_papers() == {target}
    assert alice.get(f"/paper/{target}").status_code == 404
    assert client(app).get(f"/paper/{target}").status_code == 404
    assert f'href="/paper/{target}"' not in alice.get(f"/papers/{DEMO_DAY}").text
    assert post(alice, f"/paper/{target}/vote").status_code == 404
    admin_view = admin.get(f"/paper/{target}")
    assert admin_view.status_code == 200 and "Show this paper again" in admin_view.text
    post(admin, f"/paper/{target}/hide", hidden="0")
    assert alice.get(f"/paper/{target}").status_code == 200 and com.hidden_papers() == set()


# ------------------------------------------------------------------ collections


def make_collection(c, name: str, public: bool = False, description: str = "") -> int:
    data = {"name": name, "description": description} | ({"public": "1"} if public else {})
    r = post(c, "/collections", **data)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def test_private_collections_are_the_owners_alone(app):
    alice, bob = logged_in(app, "alice"), logged_in(app, "bob")
    secret = make_collection(alice, "Secret")
    public = make_collection(alice, "Reading <list>", public=True, description="Papers for *Monday*")
    assert alice.get(f"/collection/{secret}").status_code == 200
    for who in (bob, client(app)):
        assert who.get(f"/collection/{secret}").status_code == 404
        page = who.get(f"/collection/{public}")
        assert page.status_code == 200 and "Reading &lt;list&gt;" in page.text and "Papers for *Monday*" in page.text
        listing = who.get("/collections").text
        assert f'href="/collection/{public}"' in listing and f'href="/collection/{secret}"' not in listing
    mine = alice.get("/collections").text
    assert f'href="/collection/{secret}"' in mine and "private" in mine


def test_papers_are_added_with_notes_replaced_and_removed(app):
    alice = logged_in(app, "alice")
    com = app.state.store.community
    cid = make_collection(alice, "Reading", public=True)
    r = post(alice, f"/collection/{cid}/add", paper_id=f"arXiv:{PAPER}v2", note="read §3 <b>now</b>")
    assert r.status_code == 303 and r.headers["location"] == f"/collection/{cid}"
    post(alice, f"/collection/{cid}/add", paper_id=OTHER)
    post(alice, f"/collection/{cid}/add", paper_id=PAPER, note="read §4 instead")
    assert [(i.paper_id, i.note) for i in com.items(cid)] == [(PAPER, "read §4 instead"), (OTHER, "")]
    page = client(app).get(f"/collection/{cid}").text
    assert "read §4 instead" in page and f'href="/paper/{PAPER}"' in page and "2 papers" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the hostile title, escaped
    assert post(alice, f"/collection/{cid}/add", paper_id="2401.99999").status_code == 404
    assert post(alice, f"/collection/{cid}/add", paper_id=PAPER, note="n" * 2_001).status_code == 400
    r = post(alice, f"/collection/{cid}/remove", paper_id=PAPER)
    assert r.status_code == 303 and [i.paper_id for i in com.items(cid)] == [OTHER]
    assert post(alice, f"/collection/{cid}/remove", paper_id=PAPER).status_code == 303  # already out: no-op


def test_only_the_owner_changes_a_collection(app):
    alice, bob = logged_in(app, "alice"), logged_in(app, "bob")
    com = app.state.store.community
    public, private = make_collection(alice, "Open", public=True), make_collection(alice, "Closed")
    changes = ((f"/collection/{public}/add", {"paper_id": PAPER}), (f"/collection/{public}", {"name": "mine"}),
               (f"/collection/{public}/remove", {"paper_id": PAPER}), (f"/collection/{public}/delete", {}))
    for url, data in changes:
        r = post(bob, url, **data)
        assert r.status_code == 403 and "only its owner" in r.text, url
        assert post(bob, url.replace(str(public), str(private)), **data).status_code == 404, url
    r = post(bob, "/collections/save", collection_id=str(public), paper_id=PAPER)
    assert r.status_code == 403
    assert com.collection(public).name == "Open" and com.items(public) == []
    r = post(alice, f"/collection/{public}", name="Open papers", description="now private")
    assert r.status_code == 303 and not com.collection(public).public and com.collection(public).name == "Open papers"
    assert bob.get(f"/collection/{public}").status_code == 404
    assert post(alice, "/collections", name="Closed").status_code == 409  # one name per owner
    assert post(alice, "/collections", name="   ").status_code == 400
    r = post(alice, f"/collection/{private}/delete")
    assert r.status_code == 303 and r.headers["location"] == "/collections"
    assert alice.get(f"/collection/{private}").status_code == 404


def test_save_to_a_collection_from_the_paper_page(app):
    alice = logged_in(app, "alice")
    com = app.state.store.community
    page = alice.get(f"/paper/{PAPER}").text
    assert 'action="/collections/save"' in page and '<option value="new" selected>' in page
    r = post(alice, "/collections/save", collection_id="new", new_name="From papers", paper_id=PAPER, note="good",
             next=f"/paper/{PAPER}")  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/paper/{PAPER}"
    (coll,) = com.collections(user_id(app, "alice"))
    assert coll.name == "From papers" and not coll.public and com.items(coll.id)[0].note == "good"
    page = alice.get(f"/paper/{OTHER}").text
    assert f'<option value="{coll.id}">From papers (private)</option>' in page
    post(alice, "/collections/save", collection_id=str(coll.id), paper_id=OTHER)
    assert [i.paper_id for i in com.items(coll.id)] == [PAPER, OTHER]


# ------------------------------------------------------------------- submissions


def feed(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def empty_feed() -> bytes:
    text = feed("paging_empty_start2.xml").decode()
    text = text.replace(">5</opensearch:totalResults>", ">0</opensearch:totalResults>")
    return text.replace(">2</opensearch:startIndex>", ">0</opensearch:startIndex>").encode()


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{API_PATH}"


@pytest.fixture
def online(template, config, server):
    application = make_app(template, replace(config, arxiv_api_url=server.url + API_PATH))
    yield application
    application.state.store.close()


def submit(c, raw: str):
    return post(c, "/submit", paper=raw)


def test_submit_fetches_from_arxiv_and_lists_on_today(online, server):
    server.queue(API_PATH, feed("id_list.xml"), headers=ATOM)
    alice = logged_in(online, "alice")
    r = submit(alice, "https://arxiv.org/abs/2401.17377v3")
    assert r.status_code == 303 and r.headers["location"].startswith("/submit?done=")
    assert server.requests[0].query["id_list"] == "2401.17377"
    page = alice.get(r.headers["location"]).text
    assert "Thank you" in page and f"listed on {today()}" in page
    st = online.state.store
    assert st.get("2401.17377").title.startswith("Infini-gram")
    assert st.community.listing(["2401.17377"])["2401.17377"] == (today(), user_id(online, "alice"))
    (sub,) = st.community.submissions(user_id(online, "alice"))
    assert sub.status == "done" and sub.paper_id == "2401.17377"
    daily = client(online).get(f"/papers/{today()}").text
    assert 'href="/paper/2401.17377"' in daily and "submitted by alice" in daily


def test_submitting_a_paper_already_in_the_store_needs_no_network(online, server):
    alice = logged_in(online, "alice")
    r = submit(alice, PAPER)
    assert "Thank you" in alice.get(r.headers["location"]).text and server.requests == []
    assert online.state.store.community.listing([PAPER])[PAPER][0] == today()
    bob = logged_in(online, "bob")
    again = bob.get(submit(bob, PAPER).headers["location"]).text  # the first listing wins
    assert f"already listed on {today()}" in again


def test_submit_refuses_what_is_not_an_arxiv_id_and_reports_missing_papers(online, server):
    alice = logged_in(online, "alice")
    r = submit(alice, "not a paper <b>")
    assert r.status_code == 400 and "Not an arXiv id" in r.text and "&lt;b&gt;" in r.text
    assert online.state.store.community.submissions(user_id(online, "alice")) == []
    server.queue(API_PATH, empty_feed(), headers=ATOM)
    page = alice.get(submit(alice, "2401.99999").headers["location"]).text
    assert "could not be submitted: arXiv has no paper 2401.99999" in page
    (sub,) = online.state.store.community.submissions(user_id(online, "alice"))
    assert sub.status == "failed"


def test_an_offline_submission_is_kept_and_completed_later(template, config, server):
    offline = make_app(template, replace(config, arxiv_api_url=dead_url()))
    try:
        alice = logged_in(offline, "alice")
        r = submit(alice, "arXiv:2401.17377")
        page = alice.get(r.headers["location"]).text
        assert "arXiv could not be reached just now" in page and "will be completed later" in page
        com = offline.state.store.community
        (sub,) = com.pending_submissions()
        assert sub.raw == "arXiv:2401.17377" and sub.paper_id == "2401.17377"
        assert com.listing(["2401.17377"]) == {}
        still_down = replace(config, arxiv_api_url=dead_url())
        assert complete_pending_submissions(offline.state.store, still_down) == 0
        assert len(com.pending_submissions()) == 1
        server.queue(API_PATH, feed("id_list.xml"), headers=ATOM)
        back = replace(config, arxiv_api_url=server.url + API_PATH)
        assert complete_pending_submissions(offline.state.store, back) == 1
        assert com.pending_submissions() == [] and com.submissions(sub.user_id)[0].status == "done"
        assert com.listing(["2401.17377"])["2401.17377"] == (today(), sub.user_id)
        assert "Infini-gram" in alice.get("/paper/2401.17377").text
    finally:
        offline.state.store.close()


def test_submit_is_for_members(app):
    visitor = client(app)
    r = visitor.get("/submit", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/submit"
    r = visitor.post("/submit", data={"csrf": page_csrf(visitor, "/login"), "paper": PAPER}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert csrf_of(logged_in(app, "alice").get("/submit").text)


def test_every_community_page_keeps_to_the_csp(app):
    admin = logged_in(app, "root", role="admin")
    coll = make_collection(admin, "Mine", public=True)
    post(admin, f"/collection/{coll}/add", paper_id=PAPER, note="note")
    new_comment(admin, "a comment")
    pages = [(admin, u) for u in ("/account", "/collections", f"/collection/{coll}", "/submit", f"/paper/{PAPER}")]
    pages += [(client(app), u) for u in ("/login", "/signup", "/collections", f"/collection/{coll}")]
    for who, url in pages:
        r = who.get(url)
        assert r.status_code == 200, url
        scripts = re.findall(r"<script\b[^>]*>", r.text)
        assert scripts and all(" src=" in s for s in scripts), url
        assert not re.search(r"<[^>]+\son\w+\s*=", r.text), url
        assert not re.search(r"<[^>]+\sstyle\s*=", r.text), url
        assert "script-src 'self'" in r.headers["content-security-policy"], url
