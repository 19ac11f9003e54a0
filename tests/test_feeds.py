"""RSS and Atom feeds (papertide/web/feeds.py): valid XML, the pages' papers, escaped text.

Uses the indexed home the API tests use (``web_fixtures.py``: the demo corpus listed on
2024-03-17, dated arXiv papers, one with ``<script>`` in its title, one hidden, votes).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime

import pytest
from web_corpus import HIDDEN, HOSTILE, MORE_HOSTILE, XSS_TITLE
from web_helpers import entry_links

from papertide.paper import Paper
from papertide.web.demo import DEMO_DAY
from papertide.web.feeds import _when, rss, xml_text
from papertide.web.pages_common import Entry

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"

pytest_plugins = ["web_fixtures"]  # api_home, api_client


def rss_items(r) -> tuple[ET.Element, list[ET.Element]]:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "application/rss+xml; charset=utf-8"
    root = ET.fromstring(r.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    return channel, channel.findall("item")


def atom_entries(r) -> tuple[ET.Element, list[ET.Element]]:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(r.content)
    assert root.tag == f"{ATOM}feed"
    return root, root.findall(f"{ATOM}entry")


def rss_ids(items) -> list[str]:
    return [i.findtext("link").removeprefix("http://testserver/paper/") for i in items]


def atom_ids(entries) -> list[str]:
    return [e.findtext(f"{ATOM}id").removeprefix("http://testserver/paper/") for e in entries]


def test_daily_rss_lists_the_home_page_s_papers_with_absolute_links_and_dates(api_client, api_home):
    channel, items = rss_items(api_client.get("/feeds/daily.rss"))
    assert channel.findtext("title") == f"papertide: daily papers of {DEMO_DAY}"
    assert channel.findtext("link") == f"http://testserver/papers/{DEMO_DAY}"
    assert channel.find(f"{ATOM}link").get("href") == "http://testserver/feeds/daily.rss"
    assert rss_ids(items) == entry_links(api_client.get("/").text)[:50]
    first = items[0]
    assert first.findtext("guid") == first.findtext("link") and first.find("guid").get("isPermaLink") == "true"
    assert parsedate_to_datetime(first.findtext("pubDate")).date().isoformat() == DEMO_DAY  # the listing day
    assert first.findtext("description")
    assert parsedate_to_datetime(channel.findtext("lastBuildDate")).date().isoformat() == DEMO_DAY


def test_daily_atom_and_a_day_of_submissions(api_client):
    root, entries = atom_entries(api_client.get("/feeds/daily.atom", params={"day": "2024-03-15"}))
    assert atom_ids(entries) == ["2403.01234"]
    e = entries[0]
    assert e.findtext(f"{ATOM}title") == XSS_TITLE and e.find(f"{ATOM}title").get("type") == "text"
    assert e.findtext(f"{ATOM}published") == "2024-03-15T00:00:00Z" == e.findtext(f"{ATOM}updated")
    assert [a.findtext(f"{ATOM}name") for a in e.findall(f"{ATOM}author")] == ["Ada Lovelace", "Alan Turing"]
    assert [c.get("term") for c in e.findall(f"{ATOM}category")] == ["cs.CL"]
    related = {link.get("title"): link.get("href") for link in e.findall(f"{ATOM}link[@rel='related']")}
    assert related["Code"] == "https://github.com/example/scaling" and related["PDF"].startswith("https://arxiv.org/")
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links == {"self": "http://testserver/feeds/daily.atom?day=2024-03-15",
                     "alternate": "http://testserver/papers/2024-03-15"}  # fmt: skip
    assert root.findtext(f"{ATOM}updated") == "2024-03-15T00:00:00Z" and root.findtext(f"{ATOM}id")
    assert api_client.get("/feeds/daily.atom", params={"day": "2024-02-30"}).status_code == 422


def test_script_in_a_title_stays_text(api_client):
    for url in ("/feeds/daily.rss?day=2024-03-15", "/feeds/daily.atom?day=2024-03-15"):
        raw = api_client.get(url).content
        assert b"<script" not in raw and b"&lt;script&gt;" in raw
    _, items = rss_items(api_client.get("/feeds/daily.rss?day=2024-03-15"))
    assert items[0].findtext("title") == XSS_TITLE  # plain text in the title


def test_an_rss_description_is_html_whose_text_is_the_abstract():
    paper = Paper(id="2403.00001", title="<b>T</b>", abstract="a <script>x()</script> & b", submitted="2024-03-01")
    body = rss("https://example.org", "t", "d", "https://example.org/", "https://example.org/f.rss",
               [Entry(paper=paper, title=[], snippet=[])])  # fmt: skip
    item = ET.fromstring(body).find("channel/item")
    assert item.findtext("description") == "a &lt;script&gt;x()&lt;/script&gt; &amp; b"  # readers show it as text
    assert item.findtext("title") == "<b>T</b>" and item.findtext("link") == "https://example.org/paper/2403.00001"
    assert item.findtext("pubDate") == "Fri, 01 Mar 2024 00:00:00 GMT" and item.find(f"{DC}creator") is None


def test_trending_feeds_follow_the_trending_page(api_client, api_home):
    ids = api_home["ids"]
    _, items = rss_items(api_client.get("/feeds/trending.rss", params={"window": "day"}))
    assert rss_ids(items) == [ids[7], ids[3]] == entry_links(api_client.get("/trending?window=day").text)
    root, entries = atom_entries(api_client.get("/feeds/trending.atom"))
    assert atom_ids(entries) == [ids[7], ids[3]]
    assert root.find(f"{ATOM}link[@rel='alternate']").get("href") == "http://testserver/trending?window=week"
    for e in entries:  # demo papers have no dates of their own: the listing day
        assert e.findtext(f"{ATOM}updated") == f"{DEMO_DAY}T00:00:00Z" and e.find(f"{ATOM}published") is not None
    assert api_client.get("/feeds/trending.rss", params={"window": "year"}).status_code == 422


def test_search_feeds_list_the_search_page_s_results(api_client):
    q = '"language models" scaling'
    html = api_client.get("/search", params={"q": q, "mode": "lexical"}).text
    root, entries = atom_entries(api_client.get("/feeds/search.atom", params={"q": q, "mode": "lexical"}))
    page = entry_links(html[html.index('class="searchpage"'):])
    assert len(page) >= 19 and atom_ids(entries)[: len(page)] == page
    assert root.findtext(f"{ATOM}title") == f"papertide: search for {q}"
    alternate = root.find(f"{ATOM}link[@rel='alternate']").get("href")
    assert alternate.startswith("http://testserver/search?q=%22language+models%22+scaling")
    _, items = rss_items(api_client.get("/feeds/search.rss", params={"q": "retrieval", "author": "Ada Lovelace"}))
    assert rss_ids(items) == ["2402.05678", "2403.01234"]  # Ada Lovelace's two, the retrieval one first
    assert HIDDEN not in atom_ids(atom_entries(api_client.get("/feeds/search.atom", params={"q": "scientific"}))[1])


def test_hostile_search_feeds_are_valid_xml(api_client):
    for q in (*HOSTILE, *MORE_HOSTILE, "<script>alert(1)</script>", "]]><x>", "\x01\x02\ufffe\uffff"):
        for fmt in ("atom", "rss"):
            r = api_client.get(f"/feeds/search.{fmt}", params={"q": q, "mode": "<b>"})
            assert r.status_code == 200, (q[:20], r.text[:200])
            root = ET.fromstring(r.content)  # parses: nothing unescaped, no character XML forbids
            assert b"<script" not in r.content and b"<x>" not in r.content
            title = root.findtext(f"{ATOM}title") if fmt == "atom" else root.find("channel").findtext("title")
            assert title.startswith("papertide: search for")
    raw = api_client.get("/feeds/search.atom?q=%ED%BF%BF%FF%01x")  # not UTF-8 at all
    assert raw.status_code == 200 and ET.fromstring(raw.content).findtext(f"{ATOM}title")
    empty = atom_entries(api_client.get("/feeds/search.atom"))
    assert empty[1] == [] and "No query" in empty[0].findtext(f"{ATOM}subtitle")


def test_feeds_answer_head_and_are_not_in_the_api_schema(api_client):
    assert api_client.head("/feeds/daily.atom").status_code == 200
    assert not [p for p in api_client.get("/api/openapi.json").json()["paths"] if p.startswith("/feeds")]
    assert api_client.get("/feeds/nothing.rss").status_code == 404


@pytest.mark.parametrize("text, day", [("2024-03-17", "2024-03-17"), ("2024-03-17T23:30:00Z", "2024-03-17"),
                                       ("2024-03-17T23:30:00-05:00", "2024-03-18"), ("garbage", None), (None, None),
                                       ("2024-03", None)])  # fmt: skip
def test_dates_are_read_tolerantly(text, day):
    when = _when(text)
    assert (when.date().isoformat() if when else None) == day
    assert when is None or when.tzinfo is not None


def test_xml_text_drops_what_xml_cannot_carry():
    assert xml_text("a\x00b\x07c\x1f\ufffe\uffff\udfffd\te\n") == "abcd\te\n"
    assert xml_text("ümlaut 😀 <&>") == "ümlaut 😀 <&>"  # ElementTree escapes <&>
