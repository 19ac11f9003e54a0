"""Digest and confirmation mail: rendered, sent through a real SMTP server on loopback, parsed back."""

from __future__ import annotations

import email
from datetime import datetime, timezone
from email import policy
from html.parser import HTMLParser

import pytest
from smtp_sink import SmtpSink

from papertide.digest import Digest, DigestItem
from papertide.digest_mail import (
    html_body,
    paper_link,
    period_label,
    render_confirmation,
    render_digest,
    short_authors,
    snippet,
    split_sentences,
    text_body,
    write_preview,
)
from papertide.mailer import Mailer, SmtpSettings
from papertide.paper import Paper
from papertide.store.mailing import Subscription

BASE = "https://papers.example.org"
SENDER = "papertide <digest@papers.example.org>"
UNSUB = f"{BASE}/digest/unsubscribe/7.AbC_-xyz"
PREFS = f"{BASE}/account/digest"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> $\\mathcal{O}(n)$ & <b>bold</b>'


def subscription(**kw) -> Subscription:
    values = dict(id=7, email="alice@example.org", user_id=3, every="day", trending=True, categories=("cs.CL",),
                  searches=(), for_you=True, status="active", reason="", created="2026-11-01T00:00:00Z",
                  confirmed="2026-11-01T00:05:00Z", confirm_sent="2026-11-01T00:00:01Z")
    values.update(kw)
    return Subscription(**values)


def paper(pid: str, title: str, abstract: str = "", authors: int = 2) -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, authors=[f"Author {i}" for i in range(1, authors + 1)],
                 categories=["cs.CL", "cs.LG"])


ABSTRACT = ("We scale n-gram language models to 5 trillion tokens, e.g. the Pile and RedPajama, as Liu et al. "
            "proposed in 2024. Counts take 3.5 ms on average. A third sentence that is never shown.")


def digest(sub: Subscription | None = None) -> Digest:
    trending = [
        DigestItem(paper("2401.17377", "Infini-gram: Scaling Unbounded n-gram Language Models", ABSTRACT, 9), 42,
                   "among the most upvoted on 17 Mar", "trending"),
        DigestItem(paper("hep-th/9901001", HOSTILE, "Plain abstract. Second one."), 5, "among the most upvoted on 17 Mar", "trending"),
    ]
    for_you = [DigestItem(paper("doi:10.1000/xyz-1", "A DOI paper", "Only sentence."), 0,
                          "close to “Infini-gram”, which you upvoted", "for_you")]
    return Digest(sub or subscription(), "2026-11-25", "Your papertide digest: 25 Nov 2026",
                  [("Trending today", trending), ("New in cs.CL", []), ("For you", for_you)])


def render(d: Digest | None = None, **kw):
    return render_digest(d or digest(), base_url=BASE, sender=SENDER, unsubscribe_url=UNSUB, preferences_url=PREFS, **kw)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def deliver(sink: SmtpSink, msg) -> email.message.EmailMessage:
    with Mailer(SmtpSettings.from_url(sink.url()), rate=0, local_hostname="client.test") as m:
        m.send(msg)
    return sink.messages[-1].message


# --------------------------------------------------------------------------- through SMTP


def test_digest_arrives_with_both_parts_and_the_bulk_headers(sink):
    when = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)
    got = deliver(sink, render(date=when))
    assert got.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in got.iter_parts()] == ["text/plain", "text/html"]
    assert got["From"] == SENDER and got["To"] == "alice@example.org"
    assert got["Subject"] == "Your papertide digest: 25 Nov 2026"
    assert got["Date"].datetime == when
    assert got["Message-ID"].endswith("@papers.example.org>")
    assert got["List-Unsubscribe"] == f"<{UNSUB}>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got["List-Id"] == "papertide daily digest <digest.papers.example.org>"
    assert got["Auto-Submitted"] == "auto-generated"
    assert sink.messages[-1].rcpt_tos == ["alice@example.org"]


def test_the_text_part_lists_each_paper_with_link_authors_snippet_upvotes_and_reason(sink):
    text = text_body(deliver(sink, render()))
    assert "Infini-gram: Scaling Unbounded n-gram Language Models" in text
    assert f"{BASE}/paper/2401.17377" in text
    assert f"{BASE}/paper/hep-th/9901001" in text and f"{BASE}/paper/doi:10.1000/xyz-1" in text
    assert "Author 1, Author 2, Author 3, Author 4, Author 5, Author 6 et al." in text
    flat = " ".join(text.split())
    assert "as Liu et al. proposed in 2024. Counts take 3.5 ms on average." in flat
    assert "A third sentence" not in text
    assert "42 upvotes · among the most upvoted on 17 Mar" in text and "0 upvotes · close to “Infini-gram”, which you upvoted" in text
    assert UNSUB in text and PREFS in text
    assert max(len(line) for line in text.splitlines() if "://" not in line) <= 76


def test_sections_come_in_order_with_their_headings_and_empty_ones_are_left_out():
    msg = render()
    text, html = text_body(msg), html_body(msg)
    for body in (text, html[html.index("<h1"):]):  # (the HTML's hidden preheader names titles first)
        assert body.index("Trending today") < body.index("Infini-gram") < body.index("For you") < body.index("A DOI paper")
        assert "New in cs.CL" not in body
    h2 = [t for t in Tags(html).tags if t[0] == "h2"]
    assert len(h2) == 2


def test_the_html_part_links_titles_and_shows_hostile_titles_as_text(sink):
    html = html_body(deliver(sink, render()))
    tags = Tags(html)
    names = {name for name, _ in tags.tags}
    assert not names & {"script", "img", "style", "link", "iframe", "object", "form"}
    assert not any(k.startswith("on") for _, attrs in tags.tags for k in attrs)
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    text = "".join(tags.text)
    assert HOSTILE in " ".join(text.split())  # shown to the reader exactly as written, TeX included
    hrefs = [attrs["href"] for name, attrs in tags.tags if name == "a"]
    assert f"{BASE}/paper/2401.17377" in hrefs and f"{BASE}/paper/hep-th/9901001" in hrefs
    assert UNSUB in hrefs and PREFS in hrefs
    assert all(h.startswith(BASE) for h in hrefs)
    # Mail clients drop <style> blocks: every visible element carries its own inline style,
    # and the layout is tables marked as presentation.
    assert all("style" in attrs for name, attrs in tags.tags if name in ("td", "a", "p", "h1", "h2"))
    assert all(attrs.get("role") == "presentation" for name, attrs in tags.tags if name == "table")


def test_a_message_id_given_is_kept_and_one_made_is_unique():
    assert render(message_id="<digest-7-2026-11-25@papers.example.org>")["Message-ID"] == \
        "<digest-7-2026-11-25@papers.example.org>"
    assert render()["Message-ID"] != render()["Message-ID"]


def test_weekly_digest_names_its_week():
    msg = render(Digest(subscription(every="week"), "2026-W48", "Your week", []))
    assert msg["List-Id"].startswith("papertide weekly digest")
    assert "23–29 Nov 2026" in text_body(msg)
    assert "No new papers matched" in text_body(msg) and "No new papers matched" in html_body(msg)


def test_an_address_that_would_inject_headers_is_refused():
    for bad in ("alice@example.org\r\nBcc: all@example.org", "a@b.org, c@d.org", "nobody"):
        with pytest.raises(ValueError, match="not a single email address"):
            render(digest(subscription(email=bad)))
    with pytest.raises(ValueError, match="sender must be one address"):
        render_digest(digest(), base_url=BASE, sender="nobody", unsubscribe_url=UNSUB, preferences_url=PREFS)


def test_confirmation_mail(sink):
    url = f"{BASE}/digest/confirm/7.token"
    got = deliver(sink, render_confirmation("bob@example.org", url, sender=SENDER, base_url=BASE,
                                            subscription=subscription(email="bob@example.org", every="week")))
    assert got["To"] == "bob@example.org" and got["Subject"] == "Confirm your papertide subscription"
    assert got["Auto-Submitted"] == "auto-generated" and "List-Unsubscribe" not in got
    text, html = text_body(got), html_body(got)
    assert url in text and "a weekly digest of trending papers, cs.CL and papers picked for you" in " ".join(text.split())
    assert url in [a["href"] for n, a in Tags(html).tags if n == "a"]
    assert "Nothing more is sent" in " ".join(text.split())
    bare = render_confirmation("bob@example.org", url, sender=SENDER)  # no base URL, no subscription details
    assert url in text_body(bare) and "papertide digests" in text_body(bare)
    assert [a["href"] for n, a in Tags(html_body(bare)).tags if n == "a"] == [url, url]


def test_write_preview_writes_the_eml_and_the_html(tmp_path):
    msg = render()
    eml, html = write_preview(msg, tmp_path / "previews" / "alice@example.org")
    assert eml.name == "alice@example.org.eml" and html.name == "alice@example.org.html"
    back = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert back["Subject"] == msg["Subject"] and back["List-Unsubscribe"] == f"<{UNSUB}>"
    assert html.read_text(encoding="utf-8") == html_body(msg) == html_body(back)


# --------------------------------------------------------------------------- text helpers


@pytest.mark.parametrize("text, sentences", [
    ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
    ("Models, e.g. BERT, help. Next one.", ["Models, e.g. BERT, help.", "Next one."]),
    ("As shown by Liu et al. The rest.", ["As shown by Liu et al. The rest."]),
    ("Accuracy rose by 3.5 points. Then 0.7 more.", ["Accuracy rose by 3.5 points.", "Then 0.7 more."]),
    ("See Fig. 2 and Eq. 3 for details. Done.", ["See Fig. 2 and Eq. 3 for details.", "Done."]),
    ("By J. Smith and the U.S. Army. Done.", ["By J. Smith and the U.S. Army.", "Done."]),
    ("That is, i.e. True scaling works. Done.", ["That is, i.e. True scaling works.", "Done."]),
    ("We ask (why?) Because. Yes.", ["We ask (why?)", "Because.", "Yes."]),
    ("It works (see below). Also \"quoted.\" Then more.", ["It works (see below).", "Also \"quoted.\"", "Then more."]),
    ("lowercase after a stop. does not split", ["lowercase after a stop. does not split"]),
    ("  spaced \n\n lines.  Next.\n", ["spaced lines.", "Next."]),
    ("", []),
])
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_snippet_takes_one_or_two_sentences_and_never_runs_long():
    assert snippet("Short one. Short two. Short three.") == "Short one. Short two."
    long_second = "First sentence here. " + "Word " * 100 + "end."
    assert snippet(long_second) == "First sentence here."
    huge = "word " * 200
    s = snippet(huge)
    assert len(s) <= 320 and s.endswith("…") and "  " not in s
    assert snippet("") == ""


def test_short_authors():
    assert short_authors([]) == ""
    assert short_authors(["A"]) == "A"
    assert short_authors(["A", "B"]) == "A and B"
    assert short_authors(list("ABCDEF")) == "A, B, C, D, E and F"
    assert short_authors(list("ABCDEFG")) == "A, B, C, D, E, F et al."


def test_paper_link_and_period_label():
    assert paper_link("https://x.org/", "2401.17377") == "https://x.org/paper/2401.17377"
    assert paper_link("https://x.org", "beir:scifact:12 3?") == "https://x.org/paper/beir:scifact:12%203%3F"
    assert period_label("2026-11-25") == "25 Nov 2026"
    assert period_label("2026-W48") == "23–29 Nov 2026"
    assert period_label("2026-W49") == "30 Nov – 6 Dec 2026"
    assert period_label("2026-W53") == "28 Dec 2026 – 3 Jan 2027"


def test_a_long_unsubscribe_url_goes_out_verbatim_in_the_header():
    """Mail clients read List-Unsubscribe raw: a URL longer than a line must not be folded into
    encoded words (it was, before the headers were written as given)."""
    url = "https://papers.example.org/unsubscribe/12345." + "A" * 43
    raw = bytes(render_digest(digest(), base_url=BASE, sender=SENDER, unsubscribe_url=url, preferences_url=PREFS))
    assert b"List-Unsubscribe: <" + url.encode() + b">" in raw
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
