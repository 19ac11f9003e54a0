"""Helpers for the tests of the web app's accounts and community pages (fixtures: ``web_fixtures.py``).

:func:`demo_store_template` builds, once per test module, a home holding the demo
corpus listed on its day plus a few dated arXiv papers (one with ``<script>`` in its
title, as ``test_web.py`` has them); :func:`fresh_home` copies its database so every
test starts from the same state without re-ingesting. No search index is built: the
pages under test do not need it. Clients are ``TestClient``s without the lifespan
context, so several (one per person) can share one app and its store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from papertide.config import load_config
from papertide.ingest import ingest_demo, ingest_files
from papertide.store import open_store
from papertide.web import auth
from papertide.web.demo import list_demo_papers

PASSWORD = "correct horse battery"
XSS_TITLE = "Scaling laws for language models <script>alert(1)</script>"
EXTRA = [
    {"id": "2403.01234", "title": XSS_TITLE, "authors": ["Ada Lovelace"], "categories": ["cs.CL"],
     "submitted": "2024-03-15", "abstract": "We fit scaling laws for large language models."},
    {"id": "2402.05678", "title": "Retrieval with large language models", "authors": ["Ada Lovelace"],
     "categories": ["cs.IR"], "submitted": "2024-02-10", "abstract": "Large language models read retrieved text."},
    {"id": "math/0309136", "title": "An old-style arXiv paper", "authors": ["Grace Hopper"],
     "categories": ["math.GT"], "submitted": "2003-09-08", "abstract": "Knots."},
]
PAPER = "2403.01234"
OTHER = "2402.05678"
OLD_STYLE = "math/0309136"


def demo_store_template(root: Path) -> Path:
    """A home with the demo corpus (listed on 2024-03-17) and :data:`EXTRA`; the home path."""
    home = root / "template"
    cfg = load_config(home, env={})
    extra = root / "extra.jsonl"
    extra.write_text("\n".join(json.dumps(d) for d in EXTRA) + "\n")
    with open_store(cfg) as store:
        ingest_demo(store)
        ingest_files(store, [extra])
        list_demo_papers(store)
    return home


def fresh_home(template: Path, home: Path) -> None:
    """Copy the template's database (closed, so the WAL is merged) into ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    for f in template.iterdir():
        if f.is_file():
            shutil.copy2(f, home / f.name)
    url = os.environ.get("PAPERTIDE_DATABASE_URL", "")
    if os.environ.get("PAPERTIDE_TEST_BACKEND") == "postgresql" and url.startswith("postgresql://"):
        # the suite on PostgreSQL (tests/conftest.py `config`): the test's database gets the template's rows
        from papertide.store.copy import copy_store
        from papertide.store.postgres import PostgresStore
        from papertide.store.sqlite import SQLiteStore

        with SQLiteStore(home / "papertide.db") as source, PostgresStore(url, pool_size=1) as target:
            copy_store(source, target, replace=True)


def make_app(template: Path, config):
    """A fresh app over a copy of the template home (its own store, secret and rate limiter)."""
    from papertide.web import create_app

    fresh_home(template, config.home)
    return create_app(config)


def entry_links(html: str) -> list[str]:
    """The paper ids of a page's list entries, in order."""
    return [m.removeprefix("/paper/") for m in re.findall(r'<h2 class="title tex"><a href="([^"]+)">', html)]


def unlimited(app):
    """``app`` with API rate limits no test reaches (for the tests of everything else)."""
    from papertide.web.api_common import ApiLimits
    from papertide.web.security import RequestLimiter

    app.state.api_limits = ApiLimits(writes=RequestLimiter(1_000, 100_000), searches=RequestLimiter(1_000, 100_000))
    return app


def client(app, base_url: str = "http://testserver", address: str = "testclient") -> TestClient:
    """A browser of ``app`` at the client address ``address`` (what the rate limiters count by)."""
    return TestClient(app, base_url=base_url, raise_server_exceptions=False, client=(address, 50000))


_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def page_csrf(c: TestClient, url: str = "/collections") -> str:
    r = c.get(url)
    assert r.status_code == 200, (url, r.status_code)
    return csrf_of(r.text)


_HASHES: dict[str, str] = {}


def make_user(app, name: str, role: str = "user", password: str = PASSWORD):
    """An account made in the store (one argon2id hash per password per test run: hashing takes time)."""
    if password not in _HASHES:
        _HASHES[password] = auth.hash_password(password)
    com = app.state.store.community
    user = com.create_user(name, "", _HASHES[password])
    return com.update_user(user.id, role=role) if role != "user" else user


def login(c: TestClient, name: str, password: str = PASSWORD, next_url: str = "/"):
    token = page_csrf(c, "/login")
    return c.post("/login", data={"csrf": token, "username": name, "password": password, "next": next_url},
                  follow_redirects=False)  # fmt: skip


def logged_in(app, name: str, role: str = "user", base_url: str = "http://testserver") -> TestClient:
    """A client of a new account ``name``, logged in."""
    make_user(app, name, role)
    c = client(app, base_url)
    r = login(c, name)
    assert r.status_code == 303, r.text
    return c

