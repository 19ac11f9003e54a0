"""The web app in a real browser: Playwright for Python driving Debian's Chromium.

What only a browser shows: the pages' JavaScript (autocomplete, KaTeX, upvotes without
a reload) working under the strict CSP; hostile titles and comments staying inert text
once a browser parses the page; the community's forms end to end (sign up, log out, log
in, upvote and undo on a paper page and in the daily list — with and without script —
submit a paper fetched from a loopback arXiv API or kept while it is unreachable, save
to collections, comment and reply); and the pages as a person sees
them (screenshots, desktop and phone, kept in ``PAPERTIDE_ARTIFACTS``, by default
pytest's tmp dir). One app per module, served by uvicorn on a free loopback port, over
the demo corpus listed on 2024-03-17 plus a few papers made for these tests (TeX titles,
a ``<script>``/``onerror=`` title), indexed once. Chromium is launched by its executable
path (``apt-get install chromium``); without it the tests are skipped with the reason,
except in CI, where they fail.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from browser_server import LiveServer, Watched, artifacts_dir, chromium_path, feed_of, free_dead_url, unavailable
from loopback import LoopbackServer

from papertide.config import load_config, replace
from papertide.index import update_index
from papertide.ingest import ingest_demo, ingest_files
from papertide.store import open_store
from papertide.web import create_app
from papertide.web.demo import DEMO_DAY, demo_paper_ids, list_demo_papers

pytestmark = pytest.mark.browser

XSS_TITLE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
XSS_COMMENT = "Look: <script>window.__pwned=3</script> <img src=x onerror=\"window.__pwned=4\"> **bold**"
TEX_ID, BROKEN_TEX_ID, XSS_ID = "2403.02001", "2403.02002", "2403.02003"
EXTRA = [
    {"id": TEX_ID, "title": "Attention in $O(n \\log n)$ time with $\\alpha$-entmax", "authors": ["Ada Lovelace"],
     "categories": ["cs.LG"], "submitted": "2024-03-14", "abstract": "Sparse attention with $\\alpha = 1.5$."},
    {"id": BROKEN_TEX_ID, "title": "A formula KaTeX cannot read: $\\frac{1$ stays as written",
     "authors": ["Alan Turing"], "categories": ["cs.LG"], "submitted": "2024-03-14",
     "abstract": "Broken math should never break the page."},
    {"id": XSS_ID, "title": XSS_TITLE, "authors": ["Mallory <img src=y onerror=alert(1)>"], "categories": ["cs.CR"],
     "submitted": "2024-03-13", "abstract": "A title made of markup, about quokkafication, must show as text."},
]
MAIN_PAGES = {"daily": f"/papers/{DEMO_DAY}", "paper": f"/paper/{TEX_ID}", "trending": "/trending",
              "search": '/search?q="language+models"'}  # fmt: skip
API_PATH = "/api/query"
PASSWORD = "correct horse battery staple"
SUBMITTED_ID = "hep-th/9901001"  # in the recorded feed tests/fixtures/arxiv_api/id_list.xml
PHONE = {"width": 390, "height": 844}
WIDER_THAN_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  return [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > width + 1)
    .map(el => el.tagName.toLowerCase() + "." + el.className + ": " + (el.textContent || "").slice(0, 60));
}"""


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, launched by Playwright from its executable path."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        unavailable("Chromium is not installed: `apt-get install chromium` (or set PAPERTIDE_CHROMIUM)")
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=path, headless=True)
        except Error as e:
            unavailable(f"Chromium at {path} does not start under Playwright: {e}")
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def arxiv():
    """A stand-in for the arXiv API on loopback, serving a real Atom feed of the API's."""
    server = LoopbackServer()
    server.always(API_PATH, feed_of("id_list.xml", SUBMITTED_ID), headers={"Content-Type": "application/atom+xml"})
    yield server
    server.close()


@pytest.fixture(scope="module")
def web_config(browser, arxiv, request, tmp_path_factory):
    """A home with the demo corpus and this module's papers, listed on the demo day and indexed.

    The session's demo embeddings are asked for only once a browser is there (a skipped
    run costs nothing): a fixture argument would build them before ``browser`` skips.
    """
    demo_embeddings, embedder = request.getfixturevalue("demo_embeddings"), request.getfixturevalue("embedder")
    home = tmp_path_factory.mktemp("browser") / "home"
    shutil.copytree(demo_embeddings, home / "embeddings")
    shutil.copytree(demo_embeddings.parent / "models", home / "models")
    cfg = load_config(home, env={}, arxiv_api_url=arxiv.url + API_PATH, arxiv_interval=0, retries=0, backoff=0.01,
                      timeout=5)  # fmt: skip
    extra = home.parent / "extra.jsonl"
    extra.write_text("\n".join(json.dumps(d) for d in EXTRA) + "\n")
    with open_store(cfg) as store:
        ingest_demo(store)
        ingest_files(store, [extra])
        list_demo_papers(store)
        com = store.community
        for d in EXTRA:
            com.list_paper(d["id"], DEMO_DAY)
        bob = com.create_user("bob", "", "argon2-hash-for-tests")
        com.vote(bob.id, demo_paper_ids()[3])  # something to trend
        com.add_comment(XSS_ID, bob.id, XSS_COMMENT)
        update_index(store, cfg, embedder=embedder)
    return cfg


@pytest.fixture(scope="module")
def live(web_config):
    with LiveServer(create_app(web_config)) as server:
        yield server


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return artifacts_dir(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture
def web(browser, live):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    watched = Watched(context.new_page(), live.url)
    yield watched
    context.close()


def titles(page) -> list[str]:
    return page.locator("article.entry h2.title").all_inner_texts()


# ------------------------------------------------------------- daily pages


def test_daily_page_lists_the_demo_papers_and_its_day_links_work(web):
    page = web.page
    web.goto(f"/papers/{DEMO_DAY}")
    assert page.locator("h1 small").inner_text() == "Sunday, 17 March 2024"
    assert len(titles(page)) == len(demo_paper_ids()) + len(EXTRA)
    page.get_by_role("link", name="← 2024-03-16").click()
    page.wait_for_url("**/papers/2024-03-16")
    assert page.locator("p.empty").inner_text() == "No papers that day."
    page.get_by_role("link", name="2024-03-17 →").click()
    page.wait_for_url(f"**/papers/{DEMO_DAY}")
    assert len(titles(page)) == len(demo_paper_ids()) + len(EXTRA)
    page.get_by_role("link", name="Week", exact=True).click()
    page.wait_for_url("**/papers/week/2024-W11")
    assert len(titles(page)) == len(demo_paper_ids()) + len(EXTRA)
    assert web.errors == []


# ------------------------------------------------------------------ search


def test_search_with_autocomplete_picked_by_keyboard_shows_marked_phrases(web):
    page = web.page
    web.goto(f"/papers/{DEMO_DAY}")
    box = page.locator("header form.search input[name=q]")
    with page.expect_response(lambda r: "/api/complete" in r.url and "q=large%20lan" in r.url) as answer:
        box.press_sequentially("large lan", delay=20)
    completions = [c["phrase"] for c in answer.value.json()["completions"]]
    assert completions and completions[0].startswith("large language")
    options = page.locator("header ul.completions li")
    options.first.wait_for(state="visible")
    assert options.locator("span").all_inner_texts() == completions  # shown as text, in the API's order
    box.press("ArrowDown")
    assert options.first.get_attribute("aria-selected") == "true"
    box.press("Enter")  # picks the highlighted completion (does not submit)
    assert box.input_value() == completions[0]
    assert page.locator("header ul.completions").is_hidden()
    box.press("Home")
    box.type('"')
    box.press("End")
    box.type('"')
    box.press("Enter")  # now the form submits: an exact-phrase search
    page.wait_for_url("**/search?q=*")
    marks = page.locator("ol.results mark").all_inner_texts()
    assert len(page.locator("ol.results > li").all()) >= 3
    assert marks and all(m.lower() == completions[0] for m in marks[:3]), marks[:5]
    assert web.errors == [] and web.csp_violations() == []


# -------------------------------------------------------------------- math


def test_katex_renders_tex_titles_and_leaves_unreadable_formulas_as_raw_text(web):
    page = web.page
    web.goto(f"/papers/{DEMO_DAY}")
    tex = page.locator("article.entry h2.title", has=page.locator(f'a[href="/paper/{TEX_ID}"]'))
    tex.locator(".katex").first.wait_for()
    assert tex.locator(".katex").count() == 2
    assert tex.locator("annotation").first.text_content() == "O(n \\log n)"  # KaTeX keeps the source
    assert "$" not in tex.inner_text().split("\n")[0].replace("\\$", "")
    broken = page.locator("article.entry h2.title", has=page.locator(f'a[href="/paper/{BROKEN_TEX_ID}"]'))
    assert broken.locator(".katex").count() == 0
    assert broken.inner_text() == EXTRA[1]["title"]
    web.goto(f"/paper/{TEX_ID}")
    assert page.locator("h1.tex .katex").count() == 2 and page.locator("p.abstract .katex").count() == 1
    assert web.errors == []


# ----------------------------------------------------------- hostile input


def test_a_title_made_of_markup_renders_inert_on_every_page(web):
    page = web.page
    in_list = f'h2.title a[href="/paper/{XSS_ID}"]'
    for path, title in ((f"/papers/{DEMO_DAY}", in_list), (f"/paper/{XSS_ID}", "h1"),
                        ("/search?q=quokkafication", "ol.results " + in_list)):  # fmt: skip
        web.goto(path)
        assert page.locator(title).inner_text() == XSS_TITLE, path  # shown as the text it is
        assert page.locator('img[src="x"], img[src="y"]').count() == 0, path
        assert page.locator("script:not([src])").count() == 0, path
        assert web.pwned() is None, path
    assert web.errors == [] and web.csp_violations() == []


def test_a_comment_made_of_markup_renders_inert(web):
    page = web.page
    web.goto(f"/paper/{XSS_ID}")
    body = page.locator("#comments .comment .body").first
    assert body.locator("strong").inner_text() == "bold"  # Markdown still works
    assert body.locator("script, img, [onerror]").count() == 0
    assert web.pwned() is None
    assert web.errors == [] and web.csp_violations() == []


# ---------------------------------------------------------- how pages look


def test_main_pages_load_without_csp_violations_and_are_kept_as_screenshots(web, shots):
    page = web.page
    for name, path in MAIN_PAGES.items():
        web.goto(path)
        page.locator("main").wait_for()
        page.screenshot(path=str(shots / f"{name}.png"), full_page=name != "daily")  # 46 papers: the top is enough
    assert web.csp_violations() == []
    assert web.errors == []
    noisy = [(t, text) for t, text in web.console if t in ("error", "warning") and "KaTeX" not in text]
    assert noisy == []
    for name in MAIN_PAGES:
        assert (shots / f"{name}.png").stat().st_size > 10_000, name


@pytest.mark.parametrize("name", ["daily", "paper", "search", "trending"])
def test_pages_fit_a_phone_screen(browser, live, shots, name):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(live.url + MAIN_PAGES[name])
        page.screenshot(path=str(shots / f"{name}-phone.png"))
        assert page.evaluate(WIDER_THAN_SCREEN) == []
    finally:
        context.close()


# --------------------------------------------------------------- community


def sign_up(page, base: str, username: str) -> None:
    page.goto(base + "/signup")
    form = page.locator("form[action='/signup']")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("input[name=password2]").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    page.locator("header .who").wait_for()


@pytest.fixture(scope="module")
def member_state(browser, live) -> dict:
    """The cookies of a member who signed up through the form (contexts start logged in with them)."""
    context = browser.new_context()
    try:
        sign_up(context.new_page(), live.url, "dora")
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def member(browser, live, member_state):
    context = browser.new_context(storage_state=member_state, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    watched = Watched(context.new_page(), live.url)
    yield watched
    context.close()


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def vote_count(page) -> int:
    return int(page.locator(".votes.big .n").inner_text())


def test_sign_up_log_out_and_log_in(web):
    page = web.page
    web.goto("/")
    page.locator("header").get_by_role("link", name="Sign up").click()
    page.wait_for_url("**/signup*")
    sign_up(page, web.base, "carol")
    assert page.locator("header .who").inner_text() == "carol"
    assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly: no script can read it
    session = [c for c in page.context.cookies() if c["httpOnly"] and c["sameSite"] == "Lax"]
    assert session and not any(c["secure"] for c in session)  # plain http on loopback
    page.locator("header").get_by_role("button", name="Log out").click()
    page.locator("header").get_by_role("link", name="Log in").wait_for()
    assert page.locator("header .who").count() == 0
    page.locator("header").get_by_role("link", name="Log in").click()
    form = page.locator("form[action='/login']")
    form.locator("input[name=username]").fill("carol")
    form.locator("input[name=password]").fill("not the password")
    form.get_by_role("button", name="Log in").click()
    assert page.locator(".form-error").is_visible() and page.locator("header .who").count() == 0
    form.locator("input[name=password]").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    assert page.locator("header .who").inner_text() == "carol"
    assert web.errors == [] and web.csp_violations() == []


def test_upvote_counts_up_and_undo_counts_down(member):
    from playwright.sync_api import expect

    page, pid = member.page, demo_paper_ids()[10]
    member.goto(f"/paper/{pid}")
    before = vote_count(page)
    button = page.locator(".paper-meta form.vote button")
    with page.expect_response(lambda r: r.url.endswith(f"/paper/{pid}/vote")) as answer:
        button.click()
    assert answer.value.json() == {"votes": before + 1, "voted": True}
    expect(page.locator(".votes.big .n")).to_have_text(str(before + 1))
    expect(button).to_have_attribute("aria-pressed", "true")
    page.reload()
    assert vote_count(page) == before + 1 and button.inner_text() == "Upvoted ✓"  # it was stored
    member.goto(f"/papers/{DEMO_DAY}")
    entry = page.locator("article.entry", has=page.locator(f'h2.title a[href="/paper/{pid}"]'))
    assert entry.locator(".votes .n").inner_text() == str(before + 1)
    member.goto(f"/paper/{pid}")
    with page.expect_response(lambda r: r.url.endswith(f"/paper/{pid}/unvote")):
        button.click()
    expect(page.locator(".votes.big .n")).to_have_text(str(before))
    expect(button).to_have_attribute("aria-pressed", "false")
    page.reload()
    assert vote_count(page) == before and button.inner_text() == "▲ Upvote"
    assert member.errors == [] and member.csp_violations() == []


def list_entry(page, pid: str):
    return page.locator("article.entry", has=page.locator(f'h2.title a[href="/paper/{pid}"]'))


def test_upvote_from_the_daily_list_and_undo_without_leaving_it(member):
    from playwright.sync_api import expect

    page, pid, neighbour = member.page, demo_paper_ids()[20], demo_paper_ids()[21]
    member.goto(f"/papers/{DEMO_DAY}")
    url, entry = page.url, list_entry(page, pid)
    count, button = entry.locator(".votes .n"), entry.locator("form.vote button")
    before, beside = int(count.inner_text()), list_entry(page, neighbour).locator(".votes .n").inner_text()
    assert button.get_attribute("aria-pressed") == "false"
    with page.expect_response(lambda r: r.url.endswith(f"/paper/{pid}/vote")) as answer:
        button.click()
    assert answer.value.json() == {"votes": before + 1, "voted": True}
    expect(count).to_have_text(str(before + 1))
    expect(button).to_have_attribute("aria-pressed", "true")
    assert entry.locator(".votes .l").inner_text() == ("upvote" if before == 0 else "upvotes")
    assert list_entry(page, neighbour).locator(".votes .n").inner_text() == beside  # only its own entry moved
    assert page.url == url  # no page load
    page.reload()
    expect(count).to_have_text(str(before + 1))  # stored
    expect(button).to_have_attribute("aria-pressed", "true")
    with page.expect_response(lambda r: r.url.endswith(f"/paper/{pid}/unvote")) as answer:
        button.click()
    assert answer.value.json() == {"votes": before, "voted": False}
    expect(count).to_have_text(str(before))
    expect(button).to_have_attribute("aria-pressed", "false")
    page.reload()
    expect(count).to_have_text(str(before))
    assert member.errors == [] and member.csp_violations() == []


def test_list_votes_work_without_script_and_visitors_are_sent_to_log_in(browser, live, member_state):
    pid = demo_paper_ids()[22]
    context = browser.new_context(storage_state=member_state, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live.url}/papers/{DEMO_DAY}")
        before = int(list_entry(page, pid).locator(".votes .n").inner_text())
        list_entry(page, pid).locator("form.vote button").click()  # a plain form post, then back here
        page.wait_for_url(f"**/papers/{DEMO_DAY}#p-{pid}")
        assert list_entry(page, pid).locator(".votes .n").inner_text() == str(before + 1)
        assert list_entry(page, pid).locator("form.vote button").get_attribute("aria-pressed") == "true"
        list_entry(page, pid).locator("form.vote button").click()
        page.wait_for_load_state()
        assert list_entry(page, pid).locator(".votes .n").inner_text() == str(before)
    finally:
        context.close()
    visitor = browser.new_context()
    try:
        page = visitor.new_page()
        page.goto(f"{live.url}/papers/{DEMO_DAY}")
        assert list_entry(page, pid).locator("form.vote").count() == 0
        list_entry(page, pid).get_by_role("link", name="Log in to upvote").click()
        page.wait_for_url(f"**/login?next=/papers/{DEMO_DAY}")
        assert page.locator("form[action='/login'] input[name=next]").input_value() == f"/papers/{DEMO_DAY}"
    finally:
        visitor.close()


def test_submit_a_paper_by_arxiv_url_fetched_from_the_arxiv_api(member, arxiv):
    page = member.page
    member.goto("/submit")
    page.locator("form[action='/submit'] input[name=paper]").fill(f"https://arxiv.org/abs/{SUBMITTED_ID}v2")
    page.locator("form[action='/submit']").get_by_role("button", name="Submit").click()
    done = page.locator(".form-done")
    assert f"is listed on {today()}" in done.inner_text()
    assert [r.query.get("id_list") for r in arxiv.requests] == [SUBMITTED_ID]
    done.get_by_role("link", name=SUBMITTED_ID).click()
    assert page.locator("h1").inner_text() == "Boundary States and Open String Amplitudes in Curved Backgrounds"
    member.goto(f"/papers/{today()}")
    entry = page.locator("article.entry", has=page.locator(f'h2.title a[href="/paper/{SUBMITTED_ID}"]'))
    assert "submitted by dora" in entry.inner_text()
    assert member.errors == [] and member.csp_violations() == []


def test_a_submission_made_while_arxiv_is_unreachable_is_kept(browser, web_config, member_state):
    with LiveServer(create_app(replace(web_config, arxiv_api_url=free_dead_url()))) as offline:
        context = browser.new_context(storage_state=member_state)  # cookies are per host, not per port
        try:
            page = context.new_page()
            page.goto(offline.url + "/submit")
            page.locator("form[action='/submit'] input[name=paper]").fill("2405.00001")
            page.locator("form[action='/submit']").get_by_role("button", name="Submit").click()
            pending = page.locator(".form-pending")
            assert "kept and will be completed later" in pending.inner_text()
            mine = page.locator("section.submit li", has_text="2405.00001")
            assert "pending" in mine.inner_text()
        finally:
            context.close()


def test_save_papers_to_a_new_and_then_an_existing_collection(member, browser, live):
    page = member.page
    first, second = demo_paper_ids()[12], demo_paper_ids()[13]
    member.goto(f"/paper/{first}")
    page.locator("details.tools summary").click()
    form = page.locator("form[action='/collections/save']")
    form.locator("select[name=collection_id]").select_option("new")
    form.locator("input[name=new_name]").fill("Reading list")
    form.locator("input[name=note]").fill("read on the train")
    form.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    member.goto(f"/paper/{second}")
    page.locator("details.tools summary").click()
    form.locator("select[name=collection_id]").select_option(label="Reading list (private)")
    form.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    member.goto("/collections")
    page.get_by_role("link", name="Reading list").click()
    page.wait_for_url("**/collection/*")
    assert "Private collection by dora · 2 papers" in page.locator("h1").inner_text()
    assert page.locator("h2.title a").evaluate_all("els => els.map(a => a.getAttribute('href'))") == [
        f"/paper/{first}", f"/paper/{second}"]
    assert page.get_by_label(f"Note on {first}").input_value() == "read on the train"
    stranger = browser.new_context()
    try:
        assert stranger.new_page().goto(page.url).status == 404  # private: not even its existence shows
    finally:
        stranger.close()
    assert member.errors == [] and member.csp_violations() == []


def test_comments_made_of_markup_render_inert(member):
    page, pid = member.page, demo_paper_ids()[14]
    payload = ("Nice <script>window.__pwned=5</script> <img src=x onerror=\"window.__pwned=6\"> "
               "[click](javascript:window.__pwned=7) **bold**")  # fmt: skip
    member.goto(f"/paper/{pid}")
    page.locator("form.comment-form textarea[name=body]").fill(payload)
    page.locator("form.comment-form").get_by_role("button", name="Comment").click()
    comment = page.locator("#comments .comment").last
    comment.wait_for()
    body = comment.locator(".body")
    assert "<script>window.__pwned=5</script>" in body.inner_text()  # shown as the text it is
    assert body.locator("strong").inner_text() == "bold"
    comment.locator("details.reply-box summary").click()
    comment.locator("textarea[name=body]").fill('<svg onload="window.__pwned=8"></svg> a reply')
    comment.get_by_role("button", name="Reply").click()
    reply = page.locator("#comments .comment.reply").last
    reply.wait_for()
    assert "a reply" in reply.inner_text()
    comments = page.locator("#comments")
    assert comments.locator("script, img, svg, [onerror], [onload], a[href^='javascript']").count() == 0
    assert member.pwned() is None
    page.reload()
    assert member.pwned() is None
    assert member.errors == [] and member.csp_violations() == []


# ------------------------------------------------------------ email digests


@pytest.fixture
def mail_site(browser, tmp_path):
    """The web app on a fresh home, mailing through a real SMTP server on loopback (aiosmtpd)."""
    from smtp_sink import SmtpSink

    sink = SmtpSink()
    cfg = load_config(tmp_path / "mail-home", env={}, smtp_url=sink.url(), mail_rate=0)
    app = create_app(cfg)
    try:
        with LiveServer(app) as server:
            # the mail's links must lead to this server, whose port is known once it listens
            app.state.config = replace(cfg, base_url=server.url)
            yield server, sink, app.state.config
    finally:
        sink.close()


def test_subscribe_to_the_daily_digest_and_confirm_by_the_mailed_link(browser, mail_site, shots):
    import re
    import time

    server, sink, cfg = mail_site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    web = Watched(context.new_page(), server.url)
    page = web.page
    try:
        sign_up(page, server.url, "erin")
        web.goto("/subscribe")
        form = page.locator("form[action='/subscribe']")
        form.get_by_label("Email").fill("erin@example.org")
        form.get_by_label("Daily").check()
        form.get_by_label("Trending papers").check()
        page.screenshot(path=str(shots / "subscribe.png"), full_page=True)
        form.get_by_role("button", name="Subscribe").click()
        page.locator("h1", has_text="Check your inbox").wait_for()
        assert "erin@example.org" in page.locator("main").inner_text()

        deadline = time.monotonic() + 10
        while not sink.messages and time.monotonic() < deadline:  # mailed after the response
            time.sleep(0.05)
        [received] = sink.messages
        assert received.message["To"] == "erin@example.org"
        text = received.message.get_body(preferencelist=("plain",)).get_content()
        [link] = re.findall(r"https?://\S+/subscribe/confirm/\S+", text)
        assert link.startswith(server.url + "/subscribe/confirm/")

        page.goto(link)
        assert page.locator("h1").inner_text() == "Confirm your subscription"
        with open_store(cfg) as store:
            assert store.mailing.subscription_by_email("erin@example.org").status == "pending"  # opening is not confirming
        page.get_by_role("button", name="Confirm").click()
        page.locator("h1", has_text="confirmed").wait_for()
        assert "erin@example.org" in page.locator("main").inner_text()
        with open_store(cfg) as store:
            sub = store.mailing.subscription_by_email("erin@example.org")
            erin = store.community.user_by_name("erin")
        assert (sub.status, sub.every, sub.trending, sub.user_id) == ("active", "day", True, erin.id)
        assert web.errors == [] and web.csp_violations() == []
    finally:
        context.close()
    assert (shots / "subscribe.png").stat().st_size > 10_000
