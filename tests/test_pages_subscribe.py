"""Digest subscriptions through the HTML app (papertide/web/pages_subscribe.py).

The app mails through a real SMTP server on loopback (``smtp_sink.SmtpSink``): a
subscription's confirmation mail is sent by the response's background task, and the
tests follow the link parsed out of the mail's text part as a person would. Unsubscribe
links are made with :mod:`papertide.mailtokens` and the app's own secret; the RFC 8058
one-click POST comes from a client without cookies or a form token, as a mail client's
would.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from smtp_sink import SmtpSink
from web_helpers import client, csrf_of, logged_in, make_app, page_csrf

from papertide.config import replace
from papertide.mailtokens import make_token
from papertide.web import pages_subscribe
from papertide.web.auth import load_or_create_secret

pytest_plugins = ["web_fixtures"]  # the app and template fixtures

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}
NOT_VALID = "This link is not valid"


@pytest.fixture
def mail_app(template, config, sink):
    """The community app of ``web_fixtures`` with mail going to the loopback SMTP sink."""
    application = make_app(template, replace(config, smtp_url=sink.url()))
    yield application
    application.state.store.close()


def mailing(app):
    return app.state.store.mailing


def secret(app) -> bytes:
    return load_or_create_secret(app.state.config.home)


def subscribe(c, **fields):
    """Post the subscription form as the page would (its CSRF token, its defaults)."""
    data = {"csrf": page_csrf(c, "/subscribe"), "every": "day"} | fields
    return c.post("/subscribe", data={k: v for k, v in data.items() if v is not None}, follow_redirects=False)


def mailed_link(sink: SmtpSink, to: str, index: int = -1) -> str:
    """The path of the confirmation link in the text part of the latest mail to ``to``."""
    mails = [m for m in sink.messages if m.rcpt_tos == [to]]
    assert mails, f"no mail to {to}"
    text = mails[index].message.get_body(preferencelist=("plain",)).get_content()
    m = re.search(r"https?://\S+/subscribe/confirm/\S+", text)
    assert m, text
    return urlsplit(m.group()).path


def active(app, email: str, **settings):
    """A confirmed subscription made in the store (what a followed link leaves behind)."""
    sub = mailing(app).subscribe(email, every=settings.pop("every", "day"), trending=True, **settings)
    return mailing(app).confirm(sub.id)


def with_email(app, name: str, email: str):
    com = app.state.store.community
    return com.update_user(com.user_by_name(name).id, email=email)


# ------------------------------------------------------------- double opt-in


def test_a_visitor_subscribes_and_confirms_by_the_link_mailed_to_them(mail_app, sink):
    visitor = client(mail_app)
    r = subscribe(visitor, email="Reader@Example.org", every="week", trending="1", categories="cs.CL, cs.LG",
                  searches='"retrieval augmented"\n\n  author:Lovelace  \n')  # fmt: skip
    assert r.status_code == 200 and "Check your inbox" in r.text and "Reader@Example.org" in r.text
    assert r.headers["cache-control"] == "no-store"
    sub = mailing(mail_app).subscription_by_email("reader@example.org")
    assert (sub.status, sub.every, sub.trending, sub.for_you, sub.user_id) == ("pending", "week", True, False, None)
    assert sub.categories == ("cs.CL", "cs.LG") and sub.searches == ('"retrieval augmented"', "author:Lovelace")
    assert [m.rcpt_tos for m in sink.messages] == [["Reader@Example.org"]]  # mailed before the response returned
    mail = sink.messages[0].message
    assert mail["Subject"] == "Confirm your papertide subscription"
    assert mail.get_body(preferencelist=("html",)) is not None  # multipart: a text and an HTML part
    assert mailing(mail_app).subscription(sub.id).confirm_sent is not None

    link = mailed_link(sink, "Reader@Example.org")
    for method in ("GET", "HEAD"):  # a mail scanner's prefetch confirms nothing
        page = visitor.request(method, link)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    page = visitor.get(link)
    assert f'<form method="post" action="{link}">' in page.text and ">Confirm</button>" in page.text
    assert "weekly papertide digest to Reader@Example.org" in page.text
    assert "It is a weekly digest of trending papers, cs.CL, cs.LG and 2 saved searches." in page.text
    assert mailing(mail_app).subscription(sub.id).status == "pending"

    mail_client = client(mail_app)  # the link may be opened in another browser: no cookie, no form token
    done = mail_client.post(link)
    assert done.status_code == 200 and "Subscription confirmed" in done.text
    confirmed = mailing(mail_app).subscription(sub.id)
    assert confirmed.status == "active" and confirmed.confirmed is not None
    again = visitor.get(link)
    assert "already done" in again.text and "<button" not in again.text.split("<main>")[1]
    assert mail_client.post(link).status_code == 200  # confirming twice changes nothing
    assert mailing(mail_app).subscription(sub.id).confirmed == confirmed.confirmed
    assert len(sink.messages) == 1  # confirming sends nothing


def test_without_an_smtp_server_the_subscription_waits_for_the_worker(app):
    r = subscribe(client(app), email="later@example.org", trending="1")
    assert r.status_code == 200 and "Check your inbox" in r.text
    sub = mailing(app).subscription_by_email("later@example.org")
    assert sub.status == "pending" and sub.confirm_sent is None  # `digest send` mails those


def test_a_refused_confirmation_mail_leaves_the_subscription_for_the_worker(mail_app, sink):
    sink.reject("nobody@example.org")
    r = subscribe(client(mail_app), email="nobody@example.org", trending="1")
    assert r.status_code == 200 and "Check your inbox" in r.text  # the page does not wait on SMTP's verdict
    sub = mailing(mail_app).subscription_by_email("nobody@example.org")
    assert sub.status == "pending" and sub.confirm_sent is None and sink.messages == []


def test_subscribing_an_address_again_soon_mails_no_second_link(mail_app, sink):
    """Many clients cannot turn the form into a mail bomb aimed at one address."""
    for i, address in enumerate(("victim@example.org", "198.51.100.7", "203.0.113.9")):
        r = subscribe(client(mail_app, address=address), email="victim@example.org", trending="1",
                      categories="cs.CL" if i else "")  # fmt: skip
        assert r.status_code == 200 and "Check your inbox" in r.text
    assert len(sink.messages) == 1
    sub = mailing(mail_app).subscription_by_email("victim@example.org")
    assert sub.categories == ("cs.CL",) and sub.status == "pending"  # the settings follow the latest form
    assert mailed_link(sink, "victim@example.org")  # and the one link still confirms them


def test_confirming_an_ended_subscription_is_refused(mail_app, sink):
    subscribe(client(mail_app), email="gone@example.org", trending="1")
    link = mailed_link(sink, "gone@example.org")
    sub = mailing(mail_app).subscription_by_email("gone@example.org")
    mailing(mail_app).unsubscribe(sub.id, "changed their mind")
    page = client(mail_app).get(link)
    assert page.status_code == 200 and "was ended" in page.text and ">Confirm</button>" not in page.text
    r = client(mail_app).post(link)
    assert r.status_code == 409 and "Subscribe again" in r.text
    assert mailing(mail_app).subscription(sub.id).status == "unsubscribed"


# --------------------------------------------------------------- unsubscribe


def test_the_unsubscribe_link_shows_a_button_and_one_click_unsubscribes(app):
    sub = active(app, "Reader@Example.org")
    url = f"/unsubscribe/{make_token(secret(app), 'unsubscribe', sub.id, sub.email)}"
    page = client(app).get(url)
    assert page.status_code == 200 and f'<form method="post" action="{url}">' in page.text
    assert "Stop sending papertide digests to Reader@Example.org?" in page.text
    assert client(app).head(url).status_code == 200
    assert mailing(app).subscription(sub.id).status == "active"  # looking changes nothing

    mail_client = client(app)  # RFC 8058: the mail client posts by itself, no cookies, no CSRF token
    r = mail_client.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert r.status_code == 200 and "Unsubscribed" in r.text and "No more digests go to Reader@Example.org" in r.text
    gone = mailing(app).subscription(sub.id)
    assert gone.status == "unsubscribed" and gone.reason == "unsubscribed by link"
    assert mail_client.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK).status_code == 200
    assert "already done" in client(app).get(url).text


def test_a_token_made_for_another_case_of_the_address_still_works(app):
    sub = active(app, "Reader@Example.org")
    url = f"/unsubscribe/{make_token(secret(app), 'unsubscribe', sub.id, 'reader@example.ORG')}"
    assert client(app).post(url).status_code == 200
    assert mailing(app).subscription(sub.id).status == "unsubscribed"


def test_forged_or_misdirected_tokens_are_not_found_and_change_nothing(app):
    a, b = active(app, "a@example.org"), active(app, "b@example.org")
    key = secret(app)
    good = make_token(key, "unsubscribe", a.id, a.email)
    forged = [
        ("unsubscribe", good[:-1] + ("A" if good[-1] != "A" else "B")),  # one character changed
        ("unsubscribe", make_token(b"another secret, 32 bytes long!!", "unsubscribe", a.id, a.email)),
        ("unsubscribe", make_token(key, "unsubscribe", a.id, b.email)),  # a's id, b's address
        ("unsubscribe", make_token(key, "unsubscribe", 9_999, a.email)),  # no such subscription
        ("unsubscribe", make_token(key, "confirm", a.id, a.email)),  # the other purpose
        ("subscribe/confirm", make_token(key, "unsubscribe", a.id, a.email)),
        ("unsubscribe", f"{a.id}.short"),
        ("unsubscribe", "not-a-token"),
        ("unsubscribe", "0." + good.split(".")[1]),
    ]
    for path, token in forged:
        for method in ("GET", "POST"):
            r = client(app).request(method, f"/{path}/{token}")
            assert r.status_code == 404 and NOT_VALID in r.text, (path, token, method, r.status_code)
    assert [mailing(app).subscription(s.id).status for s in (a, b)] == ["active", "active"]


# ---------------------------------------------------------------- the form


def test_the_forms_need_their_csrf_token(mail_app, sink):
    alice = logged_in(mail_app, "alice")
    with_email(mail_app, "alice", "alice@example.org")
    mine = active(mail_app, "alice@example.org", user_id=alice_id(mail_app))
    visitor = client(mail_app)
    visitor.get("/subscribe")  # the anonymous nonce cookie
    for token in (None, "", "wrong"):
        data = {"email": "x@example.org", "trending": "1"} | ({"csrf": token} if token is not None else {})
        r = visitor.post("/subscribe", data=data, follow_redirects=False)
        assert r.status_code == 403 and "security token" in r.text
        r = alice.post("/subscribe/stop", data={} if token is None else {"csrf": token}, follow_redirects=False)
        assert r.status_code == 403
    assert mailing(mail_app).subscription_by_email("x@example.org") is None and sink.messages == []
    assert mailing(mail_app).subscription(mine.id).status == "active"


@pytest.mark.parametrize("fields, message", [
    ({"email": "not an address", "trending": "1"}, "Not an email address: &#39;not an address&#39;"),
    ({"email": "", "trending": "1"}, "An email address is required"),
    ({"email": "r@example.org"}, "A subscription needs some content"),
    ({"email": "r@example.org", "categories": "cs.CL, <b>physics!</b>"}, "Not an arXiv category or archive"),
    ({"email": "r@example.org", "trending": "1", "every": "month"}, "Every must be one of day, week"),
    ({"email": "r@example.org", "searches": "x" * 501}, "saved search"),
])  # fmt: skip
def test_invalid_forms_come_back_with_the_reason_and_store_nothing(mail_app, sink, fields, message):
    r = subscribe(client(mail_app), **fields)
    assert r.status_code == 400 and 'class="form-error" role="alert"' in r.text
    assert message in r.text, r.text[r.text.index("form-error") :][:300]
    assert "<b>physics!</b>" not in r.text  # what was typed comes back escaped
    if fields.get("categories"):
        assert 'value="cs.CL, &lt;b&gt;physics!&lt;/b&gt;"' in r.text  # and kept in the form
    assert mailing(mail_app).subscription_count() == 0 and sink.messages == []


def test_subscriptions_are_limited_per_client_address(mail_app, sink):
    limit, window = pages_subscribe.SUBSCRIBE_LIMIT
    busy = client(mail_app, address="192.0.2.50")
    for i in range(limit):
        assert subscribe(busy, email=f"bad {i}", trending="1").status_code == 400  # refused posts count too
    r = subscribe(busy, email="fine@example.org", trending="1")
    assert r.status_code == 429 and "Too many subscriptions" in r.text
    assert window - 5 <= int(r.headers["retry-after"]) <= window
    assert f"Try again in {r.headers['retry-after']} seconds" in r.text
    assert mailing(mail_app).subscription_by_email("fine@example.org") is None and sink.messages == []
    other = subscribe(client(mail_app, address="192.0.2.51"), email="fine@example.org", trending="1")
    assert other.status_code == 200 and len(sink.messages) == 1


# ----------------------------------------------------------------- accounts


def alice_id(app) -> int:
    return app.state.store.community.user_by_name("alice").id


def test_an_active_address_is_changed_only_by_its_own_account(mail_app, sink):
    alice = logged_in(mail_app, "alice")
    with_email(mail_app, "alice", "alice@example.org")
    r = subscribe(alice, email="alice@example.org", trending="1", for_you="1")
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert mailing(mail_app).subscription_by_email("alice@example.org").user_id == alice_id(mail_app)
    link = mailed_link(sink, "alice@example.org")
    assert "learned from the papertide account “alice”" in client(mail_app).get(link).text  # the holder sees whose
    assert client(mail_app).post(link).status_code == 200

    stranger = subscribe(client(mail_app), email="ALICE@example.org", categories="math.GT")
    assert stranger.status_code == 409 and "already receives a digest" in stranger.text
    mallory = logged_in(mail_app, "mallory")
    with_email(mail_app, "mallory", "alice@example.org")  # an account's address is not verified
    assert subscribe(mallory, email="alice@example.org", categories="math.GT").status_code == 409
    sub = mailing(mail_app).subscription_by_email("alice@example.org")
    assert (sub.status, sub.categories, sub.for_you, sub.user_id) == ("active", (), True, alice_id(mail_app))
    assert "Stop my digest" not in mallory.get("/subscribe").text  # nor can she see or stop it

    r = subscribe(alice, email="alice@example.org", every="week", trending=None, for_you="1", categories="cs.IR")
    assert r.status_code == 303 and r.headers["location"] == "/subscribe?saved=1"
    sub = mailing(mail_app).subscription(sub.id)
    assert (sub.status, sub.every, sub.trending, sub.for_you, sub.categories) == ("active", "week", False, True,
                                                                                  ("cs.IR",))  # fmt: skip
    page = alice.get("/subscribe?saved=1").text
    assert "Your digest settings are saved" in page and "<strong>active</strong>" in page
    assert 'value="cs.IR"' in page and 'name="for_you" value="1" checked' in page
    assert 'value="week" checked' in page and len(sink.messages) == 1  # no new confirmation for a change


def test_a_pending_subscription_keeps_the_account_it_was_made_for(mail_app, sink):
    alice = logged_in(mail_app, "alice")
    subscribe(alice, email="alice@example.org", for_you="1")
    mallory = logged_in(mail_app, "mallory")
    assert subscribe(mallory, email="alice@example.org", trending="1").status_code == 200
    assert mailing(mail_app).subscription_by_email("alice@example.org").user_id == alice_id(mail_app)


def test_for_you_is_for_signed_in_users(mail_app, sink):
    page = client(mail_app).get("/subscribe").text
    assert 'name="for_you"' not in page and 'href="/login?next=/subscribe"' in page
    r = subscribe(client(mail_app), email="v@example.org", trending="1", for_you="1")
    assert r.status_code == 200 and mailing(mail_app).subscription_by_email("v@example.org").for_you is False
    r = subscribe(client(mail_app), email="w@example.org", for_you="1")  # only "for you": no content for a visitor
    assert r.status_code == 400 and mailing(mail_app).subscription_by_email("w@example.org") is None
    alice = logged_in(mail_app, "alice")
    assert 'name="for_you"' in alice.get("/subscribe").text
    assert subscribe(alice, email="a@example.org", for_you="1").status_code == 200
    sub = mailing(mail_app).subscription_by_email("a@example.org")
    assert sub.for_you is True and sub.user_id == alice_id(mail_app)


def test_the_settings_page_stops_the_signed_in_user_s_digest(mail_app, sink):
    alice = logged_in(mail_app, "alice")
    with_email(mail_app, "alice", "alice@example.org")
    sub = active(mail_app, "alice@example.org", user_id=alice_id(mail_app))
    other = active(mail_app, "bob@example.org")
    page = alice.get("/subscribe").text
    assert "Stop my digest" in page and 'value="alice@example.org"' in page
    bob = logged_in(mail_app, "bob")
    r = bob.post("/subscribe/stop", data={"csrf": page_csrf(bob, "/subscribe")}, follow_redirects=False)
    assert r.status_code == 303 and mailing(mail_app).subscription(other.id).status == "active"  # not his account's
    r = alice.post("/subscribe/stop", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/subscribe"
    gone = mailing(mail_app).subscription(sub.id)
    assert gone.status == "unsubscribed" and gone.reason == "unsubscribed on the settings page"
    page = alice.get("/subscribe").text
    assert "<strong>unsubscribed</strong>" in page and "Stop my digest" not in page and ">Subscribe</button>" in page
    assert mailing(mail_app).subscription(sub.id).status == "unsubscribed" and sink.messages == []
